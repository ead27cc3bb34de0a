"""Scripted pick-and-place expert and deterministic episode generation for the synthetic scene.

The expert sees only the current joint state (policy units) and the TARGET cube pose; the distractor
is never an input, so moving the distractor leaves every action unchanged while moving the target
changes them (``shoulder_pan`` aims at the target, the wrist roll aligns with its yaw).

Phases: approach (hover above the target, gripper opens) -> descend -> grasp (gripper closes; the
simulated fingers stop on the cube and it attaches) -> lift -> carry to the place spot -> lower ->
release -> retreat to the home pose -> done (hold).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from act_interp_ros.synthetic.arm import (
    HOME_POSE,
    JOINT_NAMES,
    ArmGeometry,
    forward_kinematics,
    inverse_kinematics,
    policy_to_radians,
)
from act_interp_ros.synthetic.scene import SyntheticScene
from act_interp_ros.synthetic.scene_state import CAMERA_NAMES, OBJECT_NAMES, CubeState, SceneConfig, SceneState

PHASES: tuple[str, ...] = ("approach", "descend", "grasp", "lift", "carry", "lower", "release", "retreat", "done")
FPS: float = 30.0


@dataclass(frozen=True)
class ExpertConfig:
    """Tuning of the scripted expert (metres, policy units per 30 Hz step)."""

    hover_height: float = 0.07  # TCP height above the cube centre while approaching
    lift_height: float = 0.13  # TCP height while carrying
    place_xy: tuple[float, float] = (0.09, -0.16)  # where the target is put down
    gripper_open: float = 85.0
    gripper_closed: float = 5.0
    max_step_deg: float = 3.0  # arm joint speed limit (deg / step = 90 deg/s at 30 Hz)
    max_step_gripper: float = 8.0
    tolerance_deg: float = 1.5  # waypoint reached when every arm joint error is below this
    grasp_steps: int = 12
    release_steps: int = 8
    max_phase_steps: int = 90  # a phase that has not converged by then is left anyway


class ScriptedExpert:
    """Stateful scripted expert; call :meth:`act` once per step.

    ``act(state, target)`` returns the next joint command (policy units, shape (6,)): the arm joints move
    from the current state towards the phase's inverse-kinematics goal at most ``max_step_deg`` per step;
    the gripper command ramps from the previous command. The internal phase advances with the joint
    state and step counts only; nothing but the target's pose and the joint state is ever an input.
    """

    def __init__(self, config: ExpertConfig | None = None, geometry: ArmGeometry | None = None) -> None:
        self.config = config or ExpertConfig()
        self.geometry = geometry or ArmGeometry()
        self.reset()

    def reset(self) -> None:
        """Back to the first phase."""
        self.phase_index = 0
        self.steps_in_phase = 0
        self._grasp_xyz: np.ndarray | None = None
        self._grasp_yaw = 0.0
        self._last_gripper: float | None = None

    @property
    def phase(self) -> str:
        return PHASES[self.phase_index]

    def _waypoint(self, target_xyz: np.ndarray, target_yaw: float) -> np.ndarray:
        """Joint goal (6,) of the current phase."""
        c = self.config
        phase = self.phase
        if phase in ("approach", "descend", "grasp"):
            xyz = np.asarray(target_xyz, dtype=np.float64)
            yaw = target_yaw
        else:
            xyz = self._grasp_xyz if self._grasp_xyz is not None else np.asarray(target_xyz, dtype=np.float64)
            yaw = self._grasp_yaw
        if phase == "approach":
            arm = inverse_kinematics(xyz + [0.0, 0.0, c.hover_height], yaw, self.geometry)
            grip = c.gripper_open
        elif phase == "descend":
            arm = inverse_kinematics(xyz, yaw, self.geometry)
            grip = c.gripper_open
        elif phase == "grasp":
            arm = inverse_kinematics(xyz, yaw, self.geometry)
            grip = c.gripper_closed
        elif phase == "lift":
            arm = inverse_kinematics([xyz[0], xyz[1], c.lift_height], yaw, self.geometry)
            grip = c.gripper_closed
        elif phase in ("carry", "lower", "release"):
            z = c.lift_height if phase == "carry" else xyz[2] + 0.004
            px, py = c.place_xy
            place_yaw = yaw + math.degrees(math.atan2(py, px) - math.atan2(xyz[1], xyz[0]))
            arm = inverse_kinematics([px, py, z], place_yaw, self.geometry)
            grip = c.gripper_open if phase == "release" else c.gripper_closed
        else:  # retreat / done
            arm = HOME_POSE[:5].copy()
            grip = HOME_POSE[5]
        return np.append(arm, grip)

    def act(self, state: np.ndarray, target_xyz: np.ndarray, target_yaw_deg: float = 0.0) -> np.ndarray:
        """Next joint command (6,) in policy units for joint ``state`` (6,) and the target cube pose."""
        c = self.config
        state = np.asarray(state, dtype=np.float64)
        goal = self._waypoint(target_xyz, target_yaw_deg)
        reached = bool(np.all(np.abs(goal[:5] - state[:5]) < c.tolerance_deg))
        phase = self.phase
        advance = False
        if phase == "grasp":
            advance = self.steps_in_phase >= c.grasp_steps
        elif phase == "release":
            advance = self.steps_in_phase >= c.release_steps
        elif phase != "done":
            advance = reached or self.steps_in_phase >= c.max_phase_steps
        if advance:
            if phase == "descend":
                self._grasp_xyz = np.asarray(target_xyz, dtype=np.float64).copy()
                self._grasp_yaw = float(target_yaw_deg)
            self.phase_index += 1
            self.steps_in_phase = 0
            goal = self._waypoint(target_xyz, target_yaw_deg)
        self.steps_in_phase += 1
        action = state + np.clip(goal - state, -c.max_step_deg, c.max_step_deg)
        # the gripper command ramps from the previous command, not from the (possibly blocked) state:
        # while the fingers rest on the cube the command keeps squeezing towards ``gripper_closed``
        prev = state[5] if self._last_gripper is None else self._last_gripper
        action[5] = prev + float(np.clip(goal[5] - prev, -c.max_step_gripper, c.max_step_gripper))
        self._last_gripper = float(action[5])
        return action


@dataclass
class Episode:
    """One synthetic episode at ``fps`` (30 Hz). T = number of steps.

    Attributes:
        seed: the seed it was generated from.
        timestamps: (T,) seconds since the episode start (t / fps).
        state: (T, 6) joint state in policy units (deg, gripper 0..100), observed at each step.
        state_rad: (T, 6) the same in ROS radians (policy / 57.29577951308232).
        action: (T, 6) expert command in policy units issued at each step.
        target_pos: (T, 3) target cube centre (moves once grasped); target_rot: (T, 3, 3).
        distractor_pos: (T, 3) distractor centre (constant) or NaN when absent; distractor_rot (3, 3).
        target_xy_yaw / distractor_xy_yaw: initial (x, y, yaw_deg) of each cube.
        phase: (T,) int index into :data:`PHASES`.
        images: {camera: (T, H, W, 3) uint8 RGB} or None when not rendered.
        boxes: {camera: {"target"|"distractor": (T, 4) int32 (x0, y0, x1, y1), -1 where not visible}}.
    """

    seed: int
    fps: float
    timestamps: np.ndarray
    state: np.ndarray
    state_rad: np.ndarray
    action: np.ndarray
    target_pos: np.ndarray
    target_rot: np.ndarray
    distractor_pos: np.ndarray
    distractor_rot: np.ndarray
    target_xy_yaw: tuple[float, float, float]
    distractor_xy_yaw: tuple[float, float, float] | None
    phase: np.ndarray
    images: dict[str, np.ndarray] | None = None
    boxes: dict[str, dict[str, np.ndarray]] | None = None
    joint_names: tuple[str, ...] = field(default=JOINT_NAMES)

    def __len__(self) -> int:
        return int(self.state.shape[0])

    @property
    def action_rad(self) -> np.ndarray:
        """(T, 6) actions in ROS radians."""
        return policy_to_radians(self.action)

    def scene_state(self, t: int) -> SceneState:
        """Renderer input of step ``t``."""
        distractor = None
        if not np.isnan(self.distractor_pos[t]).any():
            distractor = CubeState(self.distractor_pos[t].copy(), self.distractor_rot.copy())
        return SceneState(self.state[t].copy(), CubeState(self.target_pos[t].copy(), self.target_rot[t].copy()),
                          distractor)


def _sample_polar(rng: np.random.Generator) -> tuple[float, float]:
    r = rng.uniform(0.15, 0.23)
    a = math.radians(rng.uniform(-35.0, 35.0))
    return r * math.cos(a), r * math.sin(a)


def sample_cube_positions(seed: int, place_xy: tuple[float, float] = ExpertConfig.place_xy,
                          min_distance: float = 0.065) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Initial (x, y, yaw_deg) of target and distractor for ``seed`` (independent random streams).

    The distractor is kept ``min_distance`` away from the target and the place spot.
    """
    s_target, s_distractor = np.random.SeedSequence(seed).spawn(2)
    rt = np.random.default_rng(s_target)
    tx, ty = _sample_polar(rt)
    target = (tx, ty, float(rt.uniform(-45.0, 45.0)))
    rd = np.random.default_rng(s_distractor)
    for _ in range(1000):
        dx, dy = _sample_polar(rd)
        far_from_target = math.hypot(dx - tx, dy - ty) >= min_distance
        if far_from_target and math.hypot(dx - place_xy[0], dy - place_xy[1]) >= min_distance:
            break
    distractor = (dx, dy, float(rd.uniform(-45.0, 45.0)))
    return target, distractor


def simulate_episode(
    seed: int,
    n_steps: int = 150,
    *,
    target_xy_yaw: tuple[float, float, float] | None = None,
    distractor_xy_yaw: tuple[float, float, float] | None = None,
    with_distractor: bool = True,
    initial_state: np.ndarray | None = None,
    expert_config: ExpertConfig | None = None,
    scene_config: SceneConfig | None = None,
    fps: float = FPS,
) -> Episode:
    """Run the scripted expert in the (kinematic) simulation; no rendering.

    Dynamics: ``q[t+1] = q[t] + 0.85 (a[t] - q[t])`` (servo lag); while the gripper closes around the
    target its opening cannot go below the cube width, and a cube held between the fingers follows the
    gripper until it is opened again. ``target_xy_yaw`` / ``distractor_xy_yaw`` override the seeded
    positions (the other cube keeps its seeded pose, so moving one cube never moves the other).
    """
    if n_steps < 1:
        raise ValueError(f"n_steps must be >= 1, got {n_steps}")
    scene_config = scene_config or SceneConfig()
    expert_config = expert_config or ExpertConfig()
    geom = scene_config.geometry
    size = scene_config.cube_size
    t_seed, d_seed = sample_cube_positions(seed, expert_config.place_xy)
    t_xyy = tuple(float(v) for v in (target_xy_yaw or t_seed))
    d_xyy = tuple(float(v) for v in (distractor_xy_yaw or d_seed)) if with_distractor else None

    if initial_state is None:
        s_init = np.random.SeedSequence(seed).spawn(3)[2]
        r0 = np.random.default_rng(s_init)
        q = HOME_POSE + np.append(r0.uniform(-4.0, 4.0, 5), r0.uniform(-3.0, 3.0))
    else:
        q = np.asarray(initial_state, dtype=np.float64).copy()
    target = CubeState.on_table(t_xyy[0], t_xyy[1], t_xyy[2], size)
    distractor = CubeState.on_table(*d_xyy, size=size) if d_xyy is not None else None
    clamp = size / geom.max_opening * 100.0  # gripper value at which the fingers touch the cube
    expert = ScriptedExpert(expert_config, geom)

    states = np.zeros((n_steps, 6))
    actions = np.zeros((n_steps, 6))
    tpos = np.zeros((n_steps, 3))
    trot = np.zeros((n_steps, 3, 3))
    phases = np.zeros(n_steps, dtype=np.int64)
    held_rel: tuple[np.ndarray, np.ndarray] | None = None  # cube pose in the gripper frame
    for t in range(n_steps):
        states[t] = q
        tpos[t] = target.center
        trot[t] = target.rotation
        a = expert.act(q, target.center, target.yaw_deg)
        actions[t] = a
        phases[t] = expert.phase_index
        # --- simulate one step
        q = q + 0.85 * (a - q)
        pose = forward_kinematics(q, geom)
        G = pose.gripper_frame
        if held_rel is None:
            between = G.T @ (target.center - pose.tcp)  # cube centre in gripper frame (lat, normal, axis)
            inside = abs(between[0]) < 0.5 * pose.opening + 1e-3 and abs(between[1]) < 0.015 and abs(between[2]) < 0.02
            if inside and q[5] <= clamp + 2.0 and a[5] < q[5] + 1e-9:
                q[5] = max(q[5], clamp)
                held_rel = (between, G.T @ target.rotation)
        else:
            if a[5] > clamp + 1.0 and q[5] > clamp + 3.0:  # opened: the cube drops onto the table
                target = CubeState.on_table(target.center[0], target.center[1], target.yaw_deg, size)
                held_rel = None
            else:
                q[5] = max(q[5], clamp)
        if held_rel is not None:
            target = CubeState(pose.tcp + G @ held_rel[0], G @ held_rel[1])

    dpos = np.full((n_steps, 3), np.nan)
    drot = np.eye(3)
    if distractor is not None:
        dpos[:] = distractor.center
        drot = distractor.rotation
    return Episode(
        seed=seed,
        fps=fps,
        timestamps=np.arange(n_steps) / fps,
        state=states,
        state_rad=policy_to_radians(states),
        action=actions,
        target_pos=tpos,
        target_rot=trot,
        distractor_pos=dpos,
        distractor_rot=drot,
        target_xy_yaw=t_xyy,  # type: ignore[arg-type]
        distractor_xy_yaw=d_xyy,  # type: ignore[arg-type]
        phase=phases,
    )


def render_episode(episode: Episode, scene: SyntheticScene) -> Episode:
    """Fill ``episode.images`` and ``episode.boxes`` with ``scene`` (in place; returns the episode)."""
    n = len(episode)
    images = {c: np.empty((n, *scene.config.size_of(c), 3), np.uint8) for c in CAMERA_NAMES}
    boxes = {c: {o: np.full((n, 4), -1, np.int32) for o in OBJECT_NAMES} for c in CAMERA_NAMES}
    for t in range(n):
        frames, frame_boxes = scene.render_with_boxes(episode.scene_state(t))
        for c in CAMERA_NAMES:
            images[c][t] = frames[c]
            for o, b in frame_boxes[c].items():
                if b is not None:
                    boxes[c][o][t] = b
    episode.images = images
    episode.boxes = boxes
    return episode


def generate_episode(
    seed: int,
    n_steps: int = 150,
    image_size: tuple[int, int] = (480, 640),
    *,
    render: bool = True,
    scene: SyntheticScene | None = None,
    **kwargs,
) -> Episode:
    """Deterministic synthetic episode: expert rollout + both camera images and object boxes.

    Args:
        seed: seeds the cube poses and the initial joint perturbation.
        n_steps: number of 30 Hz steps (150 = 5 s covers the whole pick and place).
        image_size: (H, W) of both cameras (ignored when ``scene`` is given). Memory: T*2*H*W*3 bytes.
        render: False skips rendering (images/boxes stay None).
        scene: reuse a renderer (its config decides sizes and colours).
        **kwargs: forwarded to :func:`simulate_episode` (target_xy_yaw, distractor_xy_yaw,
            with_distractor, initial_state, expert_config).
    """
    if scene is None:
        scene = SyntheticScene(SceneConfig(image_size=tuple(image_size)))
    episode = simulate_episode(seed, n_steps, scene_config=scene.config, **kwargs)
    if render:
        render_episode(episode, scene)
    return episode
