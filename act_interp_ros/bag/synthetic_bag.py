"""Write synthetic SO-101 rosbag2 bags (mcap or sqlite3; raw or JPEG-compressed images) with rosbags.

Topics (docs/CONVENTIONS.md):

* ``/camera/front/image_raw``, ``/camera/wrist/image_raw``: sensor_msgs/msg/Image, ``rgb8``; or with
  ``compressed=True`` ``<topic>/compressed``: sensor_msgs/msg/CompressedImage, JPEG
  (format ``"rgb8; jpeg compressed bgr8"`` as image_transport writes it);
* ``/joint_states``: sensor_msgs/msg/JointState, names shoulder_pan..gripper, positions in radians
  (policy units / 57.29577951308232, so gripper 0..100 <-> 0..1.745 rad), velocities in rad/s.

Every message's header stamp equals its bag receive time. Cameras run at ``fps`` (30 Hz); joint states
at the same rate, ``joint_offset_s`` (2 ms) after the frame they belong to. Episodes (seed, seed+1, ...)
follow each other back to back, ``episode_gap_s`` apart.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from act_interp_ros.synthetic import (
    CAMERA_NAMES,
    JOINT_NAMES,
    SceneConfig,
    SyntheticScene,
    simulate_episode,
)

logger = logging.getLogger(__name__)

IMAGE_TOPICS: dict[str, str] = {"front": "/camera/front/image_raw", "wrist": "/camera/wrist/image_raw"}
COMPRESSED_SUFFIX = "/compressed"
JOINT_STATES_TOPIC = "/joint_states"
FRAME_IDS: dict[str, str] = {"front": "front_camera_optical_frame", "wrist": "wrist_camera_optical_frame"}
JPEG_FORMAT = "rgb8; jpeg compressed bgr8"
#: 2023-11-14T22:13:20Z; a fixed epoch so generated bags are byte-for-byte reproducible.
DEFAULT_START_NS = 1_700_000_000 * 10**9
STORAGES: dict[str, StoragePlugin] = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}


def image_topic(camera: str, compressed: bool = False) -> str:
    """Topic of ``camera`` (``front``/``wrist``), with the ``/compressed`` suffix when ``compressed``."""
    return IMAGE_TOPICS[camera] + (COMPRESSED_SUFFIX if compressed else "")


def default_typestore():
    """Newest released ROS 2 typestore of the installed rosbags (Kilted, else Jazzy, else Humble).

    sensor_msgs Image/CompressedImage/JointState are identical in all of them; newer stores add RIHS01
    type hashes to the bag metadata.
    """
    for name in ("ROS2_KILTED", "ROS2_JAZZY", "ROS2_HUMBLE"):
        store = getattr(Stores, name, None)
        if store is not None:
            return get_typestore(store)
    raise RuntimeError("rosbags provides no ROS 2 typestore (expected Stores.ROS2_HUMBLE or newer)")


@dataclass(frozen=True)
class SyntheticFrame:
    """One 30 Hz step of a synthetic bag.

    Attributes:
        episode: episode index in the bag (its scene seed is ``seed + episode``).
        step: step index inside the episode.
        camera_stamp_ns: {camera: header stamp = receive time, ns}.
        joint_stamp_ns: stamp of the matching /joint_states message.
        images: {camera: (H, W, 3) uint8 RGB} (empty when rendering was disabled).
        boxes: {camera: {"target"|"distractor": (x0, y0, x1, y1) | None}}.
        position_rad: (6,) joint positions in radians; velocity_rad_s: (6,) rad/s.
        state: (6,) joint state in policy units; action: (6,) expert command in policy units.
    """

    episode: int
    step: int
    camera_stamp_ns: dict[str, int]
    joint_stamp_ns: int
    images: dict[str, np.ndarray]
    boxes: dict[str, dict[str, tuple[int, int, int, int] | None]]
    position_rad: np.ndarray
    velocity_rad_s: np.ndarray
    state: np.ndarray
    action: np.ndarray


def iter_synthetic_frames(
    *,
    n_frames: int = 150,
    image_size: tuple[int, int] = (480, 640),
    seed: int = 0,
    n_episodes: int = 1,
    fps: float = 30.0,
    start_time_ns: int = DEFAULT_START_NS,
    joint_offset_s: float = 0.002,
    wrist_offset_s: float = 0.0,
    episode_gap_s: float = 0.0,
    render: bool = True,
    scene: SyntheticScene | None = None,
) -> Iterator[SyntheticFrame]:
    """Frames of a synthetic bag, in order; exactly what :func:`write_synthetic_bag` writes.

    ``n_frames`` is per episode. Frame ``k`` overall (episode ``e``, step ``s``) is stamped
    ``start_time_ns + round((k / fps + e * episode_gap_s) * 1e9)``.
    """
    if n_frames < 1 or n_episodes < 1:
        raise ValueError(f"n_frames and n_episodes must be >= 1 (got {n_frames}, {n_episodes})")
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    scene = scene or SyntheticScene(SceneConfig(image_size=tuple(image_size)))
    k = 0
    for e in range(n_episodes):
        ep = simulate_episode(seed + e, n_frames, scene_config=scene.config, fps=fps)
        vel = np.zeros_like(ep.state_rad)
        vel[1:] = np.diff(ep.state_rad, axis=0) * fps
        for s in range(n_frames):
            t_ns = start_time_ns + int(round((k / fps + e * episode_gap_s) * 1e9))
            stamps = {c: t_ns for c in CAMERA_NAMES}
            stamps["wrist"] = t_ns + int(round(wrist_offset_s * 1e9))
            state = ep.scene_state(s)
            if render:
                images, boxes = scene.render_with_boxes(state)
            else:
                images, boxes = {}, {c: scene.boxes(state, c) for c in CAMERA_NAMES}
            yield SyntheticFrame(
                episode=e,
                step=s,
                camera_stamp_ns=stamps,
                joint_stamp_ns=t_ns + int(round(joint_offset_s * 1e9)),
                images=images,
                boxes=boxes,
                position_rad=ep.state_rad[s].copy(),
                velocity_rad_s=vel[s].copy(),
                state=ep.state[s].copy(),
                action=ep.action[s].copy(),
            )
            k += 1


def write_synthetic_bag(
    path: str | Path,
    *,
    storage: str = "mcap",
    compressed: bool = False,
    n_frames: int = 150,
    duration_s: float | None = None,
    image_size: tuple[int, int] = (480, 640),
    seed: int = 0,
    n_episodes: int = 1,
    fps: float = 30.0,
    jpeg_quality: int = 90,
    start_time_ns: int = DEFAULT_START_NS,
    joint_offset_s: float = 0.002,
    wrist_offset_s: float = 0.0,
    episode_gap_s: float = 0.0,
    progress: Callable[[int], None] | None = None,
    joint_transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Path:
    """Write a synthetic SO-101 bag and return its path (a rosbag2 directory with metadata.yaml).

    Args:
        path: output bag directory; must not exist yet.
        storage: ``"mcap"`` or ``"sqlite3"``.
        compressed: JPEG CompressedImage on ``<topic>/compressed`` instead of raw rgb8 Image.
        n_frames: frames per episode (ignored when ``duration_s`` is given: ``round(duration_s * fps)``).
        image_size: (H, W) of both cameras.
        seed: scene seed of the first episode (episode ``e`` uses ``seed + e``).
        n_episodes: episodes written back to back.
        fps: camera / joint-state rate.
        jpeg_quality: 1..100, for ``compressed``.
        start_time_ns: receive time (= header stamp) of the first frame.
        joint_offset_s / wrist_offset_s: stamp offsets of /joint_states and the wrist camera.
        episode_gap_s: extra time between episodes.
        progress: called with the number of frames written so far, after each frame (e.g. tqdm.update).
        joint_transform: (6,) radians -> (6,) values written as the JointState positions instead (a driver in
            another convention, e.g. ``np.degrees`` for degrees published as radians).

    Raises:
        FileExistsError: ``path`` exists. ValueError: bad storage / sizes / counts.
    """
    path = Path(path)
    if storage not in STORAGES:
        raise ValueError(f"storage must be one of {sorted(STORAGES)}, got {storage!r}")
    if path.exists():
        raise FileExistsError(f"output bag {str(path)!r} already exists; choose a new path or delete it")
    if duration_s is not None:
        n_frames = int(round(duration_s * fps))
    h, w = (int(v) for v in image_size)
    if h < 8 or w < 8:
        raise ValueError(f"image_size must be at least 8x8, got {image_size}")
    if not 1 <= jpeg_quality <= 100:
        raise ValueError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")

    ts = default_typestore()
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    Image = ts.types["sensor_msgs/msg/Image"]
    CompressedImage = ts.types["sensor_msgs/msg/CompressedImage"]
    JointState = ts.types["sensor_msgs/msg/JointState"]

    def header(stamp_ns: int, frame_id: str):
        return Header(stamp=Time(sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9), frame_id=frame_id)

    img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    path.parent.mkdir(parents=True, exist_ok=True)
    n_written = 0
    with Writer(path, version=Writer.VERSION_LATEST, storage_plugin=STORAGES[storage]) as writer:
        conns = {c: writer.add_connection(image_topic(c, compressed), img_type, typestore=ts) for c in CAMERA_NAMES}
        joint_conn = writer.add_connection(JOINT_STATES_TOPIC, "sensor_msgs/msg/JointState", typestore=ts)
        writer.set_custom_data(
            "act_interp_ros.synthetic",
            json.dumps({"seed": seed, "n_episodes": n_episodes, "n_frames": n_frames, "fps": fps,
                        "image_size": [h, w], "compressed": compressed, "start_time_ns": start_time_ns}),
        )
        for frame in iter_synthetic_frames(
            n_frames=n_frames, image_size=(h, w), seed=seed, n_episodes=n_episodes, fps=fps,
            start_time_ns=start_time_ns, joint_offset_s=joint_offset_s, wrist_offset_s=wrist_offset_s,
            episode_gap_s=episode_gap_s,
        ):
            records = []
            for cam in CAMERA_NAMES:
                stamp = frame.camera_stamp_ns[cam]
                rgb = frame.images[cam]
                if compressed:
                    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                                           [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
                    if not ok:
                        raise RuntimeError(f"JPEG encoding of the {cam} image failed")
                    msg = CompressedImage(header=header(stamp, FRAME_IDS[cam]), format=JPEG_FORMAT,
                                          data=buf.reshape(-1))
                else:
                    msg = Image(header=header(stamp, FRAME_IDS[cam]), height=h, width=w, encoding="rgb8",
                                is_bigendian=0, step=w * 3, data=np.ascontiguousarray(rgb).reshape(-1))
                records.append((stamp, conns[cam], ts.serialize_cdr(msg, img_type)))
            js = JointState(
                header=header(frame.joint_stamp_ns, ""),
                name=list(JOINT_NAMES),
                position=np.asarray(frame.position_rad if joint_transform is None
                                    else joint_transform(frame.position_rad.copy()), dtype=np.float64),
                velocity=frame.velocity_rad_s.astype(np.float64),
                effort=np.zeros(0, np.float64),
            )
            records.append((frame.joint_stamp_ns, joint_conn, ts.serialize_cdr(js, "sensor_msgs/msg/JointState")))
            for stamp, conn, data in sorted(records, key=lambda r: r[0]):
                writer.write(conn, stamp, data)
            n_written += 1
            if progress is not None:
                progress(n_written)
    logger.info("wrote %s: %d frames x %d episodes, %s, %s images %dx%d", path, n_frames, n_episodes, storage,
                "jpeg" if compressed else "raw", w, h)
    return path
