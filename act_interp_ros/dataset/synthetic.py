"""Write a small LeRobotDataset v3.0 from the synthetic SO-101 scene (tests and the demo).

Every episode is a scripted pick of the red cube (:func:`act_interp_ros.synthetic.simulate_episode`)
rendered by :class:`~act_interp_ros.synthetic.SyntheticScene`; the dataset is written with LeRobot's own
``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` / ``finalize``, with the cameras stored as
video (AV1 through PyAV, LeRobot's default) or as PNG images inside the parquet files.

Features (SO-101 follower naming and units, as ``lerobot-record`` writes them):

* ``observation.images.<camera>``: (H, W, 3) uint8 RGB, ``front`` and optionally ``wrist``;
* ``observation.state``: (6,) float32 joint positions, degrees, gripper 0..100 (``shoulder_pan.pos``, ...);
* ``action``: (6,) float32 the expert's joint command, same units;
* ``observation.environment_state`` (optional): (6,) float32 target and distractor cube centres (m).

Deterministic: episode ``i`` is simulated from seed ``seed + i``; the same arguments give the same frames.
The dataset is built in a temporary sibling directory and moved to ``root`` when complete.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

from act_interp_ros.runtime.scheduling import scheduling_preserved
from act_interp_ros.settings.vocabulary import CAMERA_KEY_PREFIX
from act_interp_ros.synthetic import (
    CAMERA_NAMES,
    FPS,
    JOINT_NAMES,
    Episode,
    SceneConfig,
    SyntheticScene,
    render_episode,
    simulate_episode,
)

logger = logging.getLogger(__name__)

DEFAULT_TASK = "Pick up the red cube and place it on the marked spot."
ENV_STATE_NAMES = ("target_x", "target_y", "target_z", "distractor_x", "distractor_y", "distractor_z")


@dataclass
class SyntheticDataset:
    """What :func:`build_synthetic_dataset` wrote.

    Attributes:
        root: dataset directory. repo_id: the id written into nothing but kept for ``LeRobotDataset(repo_id, root)``.
        fps: frames per second (30).
        camera_keys: ``observation.images.<name>`` in feature order.
        use_videos: True = cameras stored as video, False = PNG images in the parquet files.
        task: the task string of every frame.
        episodes: the source episodes (``Episode.images[name]`` (T, H, W, 3) uint8 when ``keep_images``,
            ``state``/``action`` (T, 6) float64 policy units, ``target_pos``/``distractor_pos`` (T, 3) m).
    """

    root: Path
    repo_id: str
    fps: int
    camera_keys: tuple[str, ...]
    use_videos: bool
    task: str
    episodes: list[Episode] = field(default_factory=list)

    def source_images(self, episode_index: int, camera_key: str) -> np.ndarray:
        """(T, H, W, 3) uint8 frames written for ``camera_key`` in episode ``episode_index``."""
        images = self.episodes[episode_index].images
        if images is None:
            raise ValueError("the builder ran with keep_images=False; source images were not kept")
        return images[camera_key[len(CAMERA_KEY_PREFIX):] if camera_key.startswith(CAMERA_KEY_PREFIX) else camera_key]


def synthetic_features(
    image_size: tuple[int, int], cameras: Sequence[str], use_videos: bool, env_state: bool = False
) -> dict[str, dict]:
    """LeRobot feature dict of the synthetic dataset (images (H, W, 3))."""
    h, w = image_size
    features: dict[str, dict] = {}
    for cam in cameras:
        features[CAMERA_KEY_PREFIX + cam] = {
            "dtype": "video" if use_videos else "image",
            "shape": (h, w, 3),
            "names": ["height", "width", "channels"],
        }
    joint_names = [f"{j}.pos" for j in JOINT_NAMES]
    features[OBS_STATE] = {"dtype": "float32", "shape": (len(joint_names),), "names": joint_names}
    if env_state:
        features[OBS_ENV_STATE] = {"dtype": "float32", "shape": (len(ENV_STATE_NAMES),), "names": list(ENV_STATE_NAMES)}
    features[ACTION] = {"dtype": "float32", "shape": (len(joint_names),), "names": joint_names}
    return features


def build_synthetic_dataset(
    root: str | Path,
    *,
    n_episodes: int = 2,
    episode_steps: int | Sequence[int] = 30,
    image_size: tuple[int, int] = (96, 128),
    cameras: Sequence[str] = ("front",),
    use_videos: bool = True,
    env_state: bool = False,
    seed: int = 0,
    task: str = DEFAULT_TASK,
    repo_id: str = "act_interp_ros/synthetic_so101",
    vcodec: str = "libsvtav1",
    keep_images: bool = True,
    overwrite: bool = False,
    rendered: Sequence[Episode] | None = None,
) -> SyntheticDataset:
    """Render ``n_episodes`` synthetic SO-101 episodes and write them as a LeRobotDataset at ``root``.

    Args:
        root: target directory; must not exist unless ``overwrite``.
        n_episodes: number of episodes (seeds ``seed``, ``seed + 1``, ...).
        episode_steps: frames per episode (30 Hz), one value for all or one per episode.
        image_size: (H, W) of every camera.
        cameras: short camera names from ``("front", "wrist")``.
        use_videos: store cameras as video (True) or as PNG inside the parquet files (False).
        env_state: add ``observation.environment_state`` (cube centres).
        vcodec: LeRobot video codec (``libsvtav1`` default; ``h264`` where the bundled FFmpeg has it).
        keep_images: keep the rendered source frames in the result (memory: T * H * W * 3 per camera).
        overwrite: replace an existing ``root``.
        rendered: episodes already simulated and rendered elsewhere (``Episode.images`` holding ``cameras``,
            e.g. the shortcut scene's); written instead of ``n_episodes`` new ones (``n_episodes``,
            ``episode_steps`` and ``seed`` are then taken from them).
    Returns:
        :class:`SyntheticDataset` describing the written dataset and its source episodes.
    """
    from act_interp_ros.core.lerobot_compat import create_dataset

    root = Path(root)
    if rendered is not None:
        n_episodes, episode_steps, seed = len(rendered), [len(ep) for ep in rendered], rendered[0].seed if rendered else 0
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    steps = [int(episode_steps)] * n_episodes if isinstance(episode_steps, int) else [int(s) for s in episode_steps]
    if len(steps) != n_episodes or min(steps) < 1:
        raise ValueError(f"episode_steps must be one positive int or {n_episodes} of them, got {episode_steps}")
    unknown = [c for c in cameras if c not in CAMERA_NAMES]
    if unknown or not cameras:
        raise ValueError(f"cameras must be a non-empty subset of {CAMERA_NAMES}, got {list(cameras)}")
    if root.exists() and not overwrite:
        raise FileExistsError(f"dataset root '{root}' already exists; pass overwrite=True to replace it")

    root.parent.mkdir(parents=True, exist_ok=True)
    staging = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    features = synthetic_features(image_size, cameras, use_videos, env_state)
    scene = SyntheticScene(SceneConfig(image_size=tuple(image_size)))
    episodes: list[Episode] = []
    try:
        ds = create_dataset(repo_id, int(FPS), features, root=staging, robot_type="so101_follower",
                            use_videos=use_videos, vcodec=vcodec)
        for e, n in enumerate(steps):
            if rendered is not None:
                ep = rendered[e]
            else:
                ep = render_episode(simulate_episode(seed + e, n, scene_config=scene.config), scene)
            for t in range(n):
                frame: dict = {CAMERA_KEY_PREFIX + c: ep.images[c][t] for c in cameras}
                frame[OBS_STATE] = ep.state[t].astype(np.float32)
                if env_state:
                    frame[OBS_ENV_STATE] = _env_state(ep, t)
                frame[ACTION] = ep.action[t].astype(np.float32)
                frame["task"] = task
                ds.add_frame(frame)
            with scheduling_preserved():  # SVT-AV1 run as root leaves this thread SCHED_FIFO 99 otherwise
                ds.save_episode(parallel_encoding=False)  # in-process encoding; no worker processes
            if keep_images:
                ep.images = {c: ep.images[c] for c in cameras}
            else:
                ep.images = None
            episodes.append(ep)
            logger.debug("synthetic dataset: episode %d (%d frames, seed %d) written", e, n, seed + e)
        with scheduling_preserved():
            ds.finalize()
        del ds
        if root.exists():
            shutil.rmtree(root)
        os.replace(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("synthetic LeRobotDataset: %d episodes, %d frames, %s storage at %s", n_episodes, sum(steps),
                "video" if use_videos else "PNG", root)
    return SyntheticDataset(
        root=root, repo_id=repo_id, fps=int(FPS), camera_keys=tuple(CAMERA_KEY_PREFIX + c for c in cameras),
        use_videos=use_videos, task=task, episodes=episodes,
    )


def _env_state(ep: Episode, t: int) -> np.ndarray:
    distractor = ep.distractor_pos[t] if not np.isnan(ep.distractor_pos[t]).any() else np.zeros(3)
    return np.concatenate([ep.target_pos[t], distractor]).astype(np.float32)
