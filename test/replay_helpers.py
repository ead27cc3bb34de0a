"""Helpers for the offline replay tests: tiny hand-made bags for the bad-input cases.

Normal bags come from the synthetic SO-101 generator (``act_interp_ros.bag.synthetic_bag``); these
helpers only write what it deliberately cannot: wrong encodings, missing topics, empty and corrupt bags.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

SO101_JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
T0_NS = 1_700_000_000 * 1_000_000_000


def write_minimal_bag(
    path: Path,
    *,
    cameras: Sequence[str] = ("front", "wrist"),
    encoding: str = "rgb8",
    n: int = 5,
    hw: tuple[int, int] = (8, 8),
    storage: str = "mcap",
    joints: bool = True,
    messages: bool = True,
    stamp_offset_ns: int = 0,
    zero_stamp_topics: Sequence[str] = (),
    env_state: str | None = None,
    env_values=None,
    late_wrist: dict[int, float] | None = None,
) -> Path:
    """A rosbag2 directory with raw Image topics ``/camera/<cam>/image_raw`` and ``/joint_states`` at 30 Hz.

    ``encoding`` is written as is (the pixel bytes are 3 per pixel whatever it says); ``messages=False``
    writes the topics but no message (an empty bag); ``stamp_offset_ns`` puts every header stamp that far from
    its log time (a clock other than the recorder's); the messages of ``zero_stamp_topics`` are stamped 0 (a
    publisher that does not stamp). ``env_state`` adds ``/target`` as ``point_stamped``
    (geometry_msgs/PointStamped) or ``float64_multi_array`` (std_msgs/Float64MultiArray, no header), with
    ``env_values(k) -> sequence`` per frame (default (0.2, -0.05)). ``late_wrist`` {frame: s}: the wrist camera's
    stamp of that frame lies that many seconds earlier (a frame that arrived late: ``skew`` at that tick).
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_HUMBLE)
    T = ts.types
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    h, w = hw
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {c: writer.add_connection(f"/camera/{c}/image_raw", "sensor_msgs/msg/Image", typestore=ts) for c in cameras}
        js = writer.add_connection("/joint_states", "sensor_msgs/msg/JointState", typestore=ts) if joints else None
        env_type = {"point_stamped": "geometry_msgs/msg/PointStamped",
                    "float64_multi_array": "std_msgs/msg/Float64MultiArray"}.get(env_state or "")
        env = writer.add_connection("/target", env_type, typestore=ts) if env_type else None

        def header(topic: str, st: int):
            st = 0 if topic in zero_stamp_topics else st
            return T["std_msgs/msg/Header"](
                stamp=T["builtin_interfaces/msg/Time"](sec=st // 10**9, nanosec=st % 10**9), frame_id="cam")

        for k in range(n if messages else 0):
            t = T0_NS + round(k * 1e9 / 30)
            st = t + stamp_offset_ns
            for cam, conn in conns.items():
                late = round((late_wrist or {}).get(k, 0.0) * 1e9) if cam == "wrist" else 0
                img = T["sensor_msgs/msg/Image"](header=header(conn.topic, st - late), height=h, width=w, encoding=encoding,
                                                 is_bigendian=0, step=w * 3,
                                                 data=np.full(h * w * 3, 7 * k % 256, dtype=np.uint8))
                writer.write(conn, t, ts.serialize_cdr(img, "sensor_msgs/msg/Image"))
            if js is not None:
                msg = T["sensor_msgs/msg/JointState"](header=header(js.topic, st), name=SO101_JOINTS,
                                                      position=np.zeros(6), velocity=np.zeros(0), effort=np.zeros(0))
                writer.write(js, t, ts.serialize_cdr(msg, "sensor_msgs/msg/JointState"))
            if env is not None:
                values = [float(v) for v in (env_values(k) if env_values else (0.2, -0.05))]
                if env_type.endswith("PointStamped"):
                    xyz = (values + [0.0, 0.0, 0.0])[:3]
                    msg = T[env_type](header=header(env.topic, st),
                                      point=T["geometry_msgs/msg/Point"](x=xyz[0], y=xyz[1], z=xyz[2]))
                else:
                    msg = T[env_type](layout=T["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0),
                                      data=np.asarray(values, dtype=np.float64))
                writer.write(env, t, ts.serialize_cdr(msg, env_type))
    return path


def storage_file(bag_dir: Path) -> Path:
    """The single .mcap/.db3 storage file inside a rosbag2 directory."""
    (file,) = [p for p in bag_dir.iterdir() if p.suffix in (".mcap", ".db3")]
    return file


def rerun_column(recording, entity: str, component: str, index: str = "frame_index") -> tuple[list, list]:
    """(index values, component values) of one entity's rows in a Rerun recording, through rerun.dataframe."""
    table = recording.view(index=index, contents=entity).select().read_all()
    col = f"{entity}:{component}"
    rows = [(t, v) for t, v in zip(table.column(index).to_pylist(), table.column(col).to_pylist()) if v is not None]
    return [t for t, _ in rows], [v for _, v in rows]


def rerun_entities(recording) -> set[str]:
    """Entity paths holding components (Rerun's own ``/__...`` entities left out)."""
    return {c.entity_path for c in recording.schema().component_columns() if not c.entity_path.startswith("/__")}


def count_video_frames(path) -> int:
    """Frames OpenCV decodes from a video file."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    assert cap.isOpened(), f"cannot open {path}"
    n = 0
    while cap.read()[0]:
        n += 1
    cap.release()
    return n


def write_cli_bag(path: Path) -> Path:
    """The 12-frame synthetic SO-101 bag (front + wrist, 96x128, raw, mcap) the command-line tests replay."""
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    return write_synthetic_bag(path, storage="mcap", compressed=False, n_frames=12, image_size=(96, 128), seed=7)


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``act_interp_replay ARGS`` in this process: (exit code, stdout, stderr)."""
    from act_interp_ros.cli import replay as replay_cli

    rc = replay_cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err
