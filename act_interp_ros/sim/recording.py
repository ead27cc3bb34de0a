"""Scripted-expert demonstrations in the simulator, written as a LeRobotDataset (ROS-free).

The writer is the project's (:func:`act_interp_ros.dataset.synthetic.build_synthetic_dataset`, i.e. LeRobot's
own ``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` / ``finalize``) with the simulator's rendered
episodes: SO-101 follower features as ``lerobot-record`` writes them (``observation.images.front`` /
``.wrist`` (H, W, 3), ``observation.state`` and ``action`` (6,) float32 named ``shoulder_pan.pos`` ...
``gripper.pos``, degrees and gripper 0..100), ``robot_type`` so101_follower, 30 fps.

Only episodes in which the expert lifted the cube are kept (a failed demonstration teaches failure); each is
cut ``tail_steps`` after its first success.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from act_interp_ros.sim.episodes import DEFAULT_EPISODE_STEPS, SimEpisode, run_expert_episode
from act_interp_ros.sim.scene import CAMERA_NAMES, SimConfig
from act_interp_ros.sim.simulator import SimArm

__all__ = ["SIM_REPO_ID", "SIM_TASK", "SimDataset", "record_expert_dataset"]

logger = logging.getLogger(__name__)
SIM_TASK = "Pick up the red cube."
SIM_REPO_ID = "act_interp_ros/sim_so101_pick"


@dataclass
class SimDataset:
    """What :func:`record_expert_dataset` wrote: ``root``, ``repo_id``, the kept episodes (with their seeds) and
    the seeds whose expert run failed (left out)."""

    root: Path
    repo_id: str
    episodes: list[SimEpisode]
    failed_seeds: list[int]


def _cut(ep: SimEpisode, tail_steps: int) -> SimEpisode:
    end = min(len(ep), ep.first_success_step + 1 + tail_steps)
    return SimEpisode(ep.seed, ep.state[:end], ep.action[:end], ep.success[:end], ep.cube_pos[:end],
                      {c: v[:end] for c, v in ep.images.items()})


def record_expert_dataset(root: str | Path, n_episodes: int, *, seed: int = 0, config: SimConfig = SimConfig(),
                          steps: int = DEFAULT_EPISODE_STEPS, tail_steps: int = 15, use_videos: bool = True,
                          vcodec: str = "libsvtav1", overwrite: bool = False, arm: SimArm | None = None) -> SimDataset:
    """Record ``n_episodes`` successful expert picks (seeds ``seed``, ``seed + 1``, ... skipping failures, at most
    ``2 * n_episodes`` tried) as a LeRobotDataset at ``root``. Raises RuntimeError when too few succeed."""
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset

    own = arm is None
    arm = arm or SimArm(config)
    kept, failed = [], []
    try:
        s = seed
        while len(kept) < n_episodes and s < seed + 2 * n_episodes:
            ep = run_expert_episode(arm, s, steps, stop_after_success=tail_steps)
            if ep.succeeded:
                kept.append(_cut(ep, tail_steps))
            else:
                failed.append(s)
                logger.warning("sim dataset: the expert failed on seed %d; episode left out", s)
            s += 1
    finally:
        if own:
            arm.close()
    if len(kept) < n_episodes:
        raise RuntimeError(f"the expert succeeded on only {len(kept)} of {s - seed} seeds from {seed}; "
                           f"needed {n_episodes} demonstrations")
    written = build_synthetic_dataset(root, image_size=tuple(arm.config.image_size), cameras=CAMERA_NAMES,
                                      use_videos=use_videos, task=SIM_TASK, repo_id=SIM_REPO_ID, vcodec=vcodec,
                                      keep_images=False, overwrite=overwrite, rendered=kept)
    logger.info("sim dataset: %d expert episodes (%d frames) at %s; %d failed seeds left out", len(kept),
                sum(len(e) for e in kept), written.root, len(failed))
    return SimDataset(written.root, SIM_REPO_ID, kept, failed)
