"""Scripted-expert episodes in the simulator (ROS-free): run, score, keep what a dataset needs.

:func:`run_expert_episode` drives a :class:`~act_interp_ros.sim.simulator.SimArm` with the
:class:`~act_interp_ros.sim.expert.PickExpert` from one seed and returns a :class:`SimEpisode` (policy units,
as LeRobot records an SO-101). :func:`expert_success` measures the expert on held-out seeds.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from act_interp_ros.sim.expert import ExpertConfig, PickExpert
from act_interp_ros.sim.simulator import SimArm
from act_interp_ros.sim.units import mujoco_to_policy

__all__ = ["DEFAULT_EPISODE_STEPS", "EXPERT_SEED_OFFSET", "SimEpisode", "expert_success", "run_expert_episode"]

#: control steps per episode (5 s at 30 Hz): the expert lifts the cube after about 2-2.5 s.
DEFAULT_EPISODE_STEPS = 150
#: demonstrations use seeds from 0; held-out evaluation seeds start here.
EXPERT_SEED_OFFSET = 100_000


@dataclass
class SimEpisode:
    """One recorded episode. T = steps.

    Attributes:
        seed: the scene seed. state: (T, 6) observed joints, policy units (deg, gripper 0..100).
        action: (T, 6) commanded joint targets, policy units. images: {camera: (T, H, W, 3) uint8} or None.
        success: (T,) bool, the task's success at each step (after that step's action).
        cube_pos: (T, 3) cube centre (m) when observed.
    """

    seed: int
    state: np.ndarray
    action: np.ndarray
    success: np.ndarray
    cube_pos: np.ndarray
    images: dict[str, np.ndarray] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return len(self.state)

    @property
    def succeeded(self) -> bool:
        return bool(self.success.any())

    @property
    def first_success_step(self) -> int | None:
        hits = np.flatnonzero(self.success)
        return int(hits[0]) if hits.size else None


def run_expert_episode(arm: SimArm, seed: int, steps: int = DEFAULT_EPISODE_STEPS, render: bool = True,
                       expert: PickExpert | None = None, stop_after_success: int | None = None) -> SimEpisode:
    """Reset ``arm`` to ``seed`` and let the expert act for ``steps`` control steps (fewer with
    ``stop_after_success``: that many steps after the first success)."""
    expert = expert or PickExpert(arm.model, ExpertConfig())
    expert.reset()
    obs = arm.reset(seed, render=render)
    state, action, success, cube = [], [], [], []
    frames: dict[str, list[np.ndarray]] = {c: [] for c in obs.images}
    for _ in range(steps):
        target = expert.act(obs.qpos, arm.cube_pose(), arm.tcp_pos())
        state.append(obs.state)
        cube.append(obs.cube_pos)
        for c, img in obs.images.items():
            frames[c].append(img)
        action.append(mujoco_to_policy(target))
        obs = arm.step(target, render=render)
        success.append(obs.success)
        if stop_after_success is not None and any(success) and len(success) - success.index(True) > stop_after_success:
            break
    return SimEpisode(seed=seed, state=np.asarray(state), action=np.asarray(action), success=np.asarray(success),
                      cube_pos=np.asarray(cube), images={c: np.stack(f) for c, f in frames.items()} if render else None)


def expert_success(arm: SimArm, seeds, steps: int = DEFAULT_EPISODE_STEPS) -> tuple[float, list[SimEpisode]]:
    """(success rate, episodes without images) of the expert on ``seeds``."""
    episodes = [run_expert_episode(arm, s, steps, render=False) for s in seeds]
    return float(np.mean([e.succeeded for e in episodes])), episodes
