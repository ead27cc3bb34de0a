"""Coordinate-conditioned pick task: two identical-looking cubes, only the given coordinates name the target.

The scene is the known-answer scene of :mod:`act_interp_ros.synthetic` with the distractor painted in
the target's colour, so an image shows two indistinguishable cubes. The scripted expert picks the
TARGET (it is the only cube the expert ever sees), and the policy is told which one that is through
``observation.environment_state``:

    env_state = (target_x, target_y)   float32, metres, robot base frame

(the synthetic world frame: origin at the robot base, x forward towards the front camera, y to the
robot's left, z up; the cube's initial centre, constant over the episode like a pickup coordinate).
A policy that ignores the env state cannot know which cube to reach for; the best it can do from the
image alone is to hedge between the two (the mode collapse of issue 15).

Layouts come from the scene's own sampler (:func:`~act_interp_ros.synthetic.expert.sample_cube_positions`,
as the known-answer model uses): both cubes uniform over the same reachable patch, the other cube at least
``min_cube_distance`` from the target and from the place spot. So in ~2.6 % of layouts (min distance
0.09 m) the target sits near the place spot, where the other cube never does - the only image-only hint
of which cube is the target.

No torch and no ROS imports.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from act_interp_ros.synthetic.expert import PHASES, Episode, simulate_episode
from act_interp_ros.synthetic.scene_state import SceneConfig

#: Names and units of the env-state vector, in order.
ENV_STATE_NAMES: tuple[str, ...] = ("target_x", "target_y")
ENV_STATE_UNITS: str = "m"
ENV_STATE_DIM: int = len(ENV_STATE_NAMES)


def coordinate_scene_config(image_size: tuple[int, int] = (96, 128), **overrides) -> SceneConfig:
    """A :class:`SceneConfig` whose two cubes look identical (the distractor takes the target's colour)."""
    base = SceneConfig(image_size=tuple(image_size), **overrides)
    return replace(base, distractor_color=base.target_color)


def env_state_of(episode: Episode) -> np.ndarray:
    """(2,) float32 env state of an episode: the target cube's initial (x, y) in metres."""
    x, y, _ = episode.target_xy_yaw
    return np.array([x, y], dtype=np.float32)


def expert_chunk(
    episode: Episode,
    step: int,
    n_steps: int,
    target_xy_yaw: tuple[float, float, float] | None = None,
    scene_config: SceneConfig | None = None,
) -> np.ndarray:
    """(n_steps, 6) expert actions (policy units) from the joint state of ``episode`` at ``step``.

    The expert restarts from that state and aims at ``target_xy_yaw`` (default: the episode's own
    target). With the other cube's pose, e.g. ``episode.distractor_xy_yaw``, this is the known answer
    for a policy told the other cube's coordinates; with a slightly moved target it is the expert's own
    coordinate sensitivity. The restart is exact only in the approach phase (the expert's first phase),
    so other steps are refused.
    """
    if PHASES[int(episode.phase[step])] != "approach":
        raise ValueError(f"step {step} of episode {episode.seed} is in phase "
                         f"'{PHASES[int(episode.phase[step])]}'; expert_chunk restarts the expert in 'approach'")
    target = episode.target_xy_yaw if target_xy_yaw is None else tuple(float(v) for v in target_xy_yaw)
    restarted = simulate_episode(
        episode.seed, n_steps, target_xy_yaw=target, distractor_xy_yaw=episode.distractor_xy_yaw,
        with_distractor=episode.distractor_xy_yaw is not None, initial_state=episode.state[step],
        scene_config=scene_config,
    )
    return restarted.action.astype(np.float32)


def expert_sensitivity(
    episode: Episode,
    step: int,
    deltas: tuple[float, ...],
    n_steps: int,
    scene_config: SceneConfig | None = None,
) -> np.ndarray:
    """(2,) the expert's own coordinate sensitivity at ``step``: mean |d action / d target_i| (policy units per m).

    Central difference over the first ``n_steps`` actions of :func:`expert_chunk` with the target moved
    by +/- ``deltas[i]`` metres along x (i = 0) and y (i = 1) - the same definition as
    :class:`act_interp_ros.core.env_state_sensitivity.EnvStateSensitivity` applies to a policy, so the
    two numbers are directly comparable.
    """
    if len(deltas) != ENV_STATE_DIM:
        raise ValueError(f"expert_sensitivity needs {ENV_STATE_DIM} deltas (x, y), got {len(deltas)}")
    out = np.zeros(ENV_STATE_DIM)
    for i, d in enumerate(deltas):
        moved = [np.array(episode.target_xy_yaw, dtype=np.float64) for _ in range(2)]
        moved[0][i] += d
        moved[1][i] -= d
        plus, minus = (expert_chunk(episode, step, n_steps, tuple(m), scene_config) for m in moved)
        out[i] = np.abs(plus.astype(np.float64) - minus).mean() / (2.0 * abs(d))
    return out


__all__ = [
    "ENV_STATE_DIM",
    "ENV_STATE_NAMES",
    "ENV_STATE_UNITS",
    "coordinate_scene_config",
    "env_state_of",
    "expert_chunk",
    "expert_sensitivity",
]
