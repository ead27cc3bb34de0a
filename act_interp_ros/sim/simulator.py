"""The simulated SO-101 (ROS-free): reset to a seeded scene, render the cameras, step one control period.

:class:`SimArm` owns so101-nexus's MuJoCo pick environment (:mod:`.scene`) and one offscreen renderer. Time is
simulated: ``time_ns`` advances by exactly one control period per :meth:`SimArm.step` (``substeps`` physics
steps with the joint-position targets held), however long the CPU takes, and never goes back (a reset keeps the
clock running, so a ROS ``/clock`` built on it is monotonic).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from act_interp_ros.sim.scene import CAMERA_NAMES, SimConfig, make_pick_env
from act_interp_ros.sim.units import mujoco_to_policy, policy_to_mujoco

__all__ = ["SimArm", "SimObservation"]

logger = logging.getLogger(__name__)
NS = 1_000_000_000


@dataclass
class SimObservation:
    """What the arm's sensors give at one control step.

    Attributes:
        step: control steps since the episode's reset. time_ns: simulated time (ns) since the arm was made.
        images: {camera name: (H, W, 3) uint8 RGB}.
        qpos: (6,) joint angles, MuJoCo radians (JOINT_NAMES order). state: (6,) the same in policy units.
        cube_pos: (3,) cube centre (m). success: grasped and lifted. grasped: both fingers pinch the cube.
        lift: height above the cube's resting height (m).
    """

    step: int
    time_ns: int
    images: dict[str, np.ndarray]
    qpos: np.ndarray
    state: np.ndarray
    cube_pos: np.ndarray
    success: bool
    grasped: bool
    lift: float


class SimArm:
    """A simulated SO-101 with a cube to pick (see the module docstring). Not thread-safe."""

    def __init__(self, config: SimConfig = SimConfig()) -> None:
        self.config = config
        self.env = make_pick_env(config)  # first: it selects the GL backend before mujoco is imported
        import mujoco

        self.model, self.data = self.env.unwrapped.model, self.env.unwrapped.data
        self.period_ns = round(NS / config.control_hz)
        h, w = config.image_size
        self._renderer = mujoco.Renderer(self.model, height=h, width=w)
        self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
        self._front = mujoco.MjvCamera()
        self._front.type = mujoco.mjtCamera.mjCAMERA_FREE
        x, y, z, dist, az, el = config.front_camera
        self._front.lookat[:] = (x, y, z)
        self._front.distance, self._front.azimuth, self._front.elevation = dist, az, el
        self._cameras = {"front": self._front, "wrist": "wrist_cam"}
        self.time_ns = 0
        self.step_index = 0
        self.seed: int | None = None
        self._info: dict = {}
        self.target = np.zeros(6)

    # ------------------------------------------------------------------------------ episode
    def reset(self, seed: int, render: bool = True) -> SimObservation:
        """A new episode: the arm at rest, the cube at the position and yaw drawn from ``seed``."""
        _, self._info = self.env.reset(seed=int(seed))
        self.seed, self.step_index = int(seed), 0
        self.target = self.qpos().copy()
        return self.observe(render)

    def step(self, target_rad: np.ndarray, render: bool = True) -> SimObservation:
        """Hold the (6,) joint-position targets (MuJoCo rad, clipped to the actuators' ranges) for one control
        period, advance the simulated time by it, and observe (``render=False``: no images)."""
        target = np.asarray(target_rad, dtype=np.float64)
        if target.shape != (6,) or not np.all(np.isfinite(target)):
            raise ValueError(f"joint target must be 6 finite values, got {target}")
        space = self.env.action_space
        self.target = np.clip(target, space.low, space.high)
        _, _, _, _, self._info = self.env.step(self.target.astype(np.float32))
        self.step_index += 1
        self.time_ns += self.period_ns
        return self.observe(render)

    def step_policy(self, action: np.ndarray, render: bool = True) -> SimObservation:
        """:meth:`step` with a (6,) target in LeRobot policy units (deg, gripper 0..100)."""
        return self.step(policy_to_mujoco(action), render)

    # ------------------------------------------------------------------------------ sensors
    def qpos(self) -> np.ndarray:
        """(6,) joint angles (MuJoCo rad)."""
        return self.env.unwrapped._get_current_qpos().astype(np.float64)

    def cube_pos(self) -> np.ndarray:
        """(3,) cube centre (m)."""
        return self.cube_pose()[:3]

    def render(self, camera: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB of ``camera`` (``front`` or ``wrist``) at the current state."""
        self._renderer.update_scene(self.data, camera=self._cameras[camera])
        return self._renderer.render().copy()

    def cube_pose(self) -> np.ndarray:
        """(7,) cube centre (m) and orientation quaternion (w, x, y, z)."""
        return self.env.unwrapped._get_target_pose().astype(np.float64)

    def tcp_pos(self) -> np.ndarray:
        """(3,) the gripper site ``gripperframe`` (m)."""
        return self.env.unwrapped._get_tcp_pose()[:3].astype(np.float64)

    def observe(self, render: bool = True) -> SimObservation:
        q = self.qpos()
        info = self._info
        return SimObservation(
            step=self.step_index, time_ns=self.time_ns,
            images={c: self.render(c) for c in CAMERA_NAMES} if render else {},
            qpos=q, state=mujoco_to_policy(q), cube_pos=self.cube_pos(), success=bool(info.get("success", False)),
            grasped=bool(info.get("is_grasped", 0.0) > 0.5), lift=float(info.get("lift_height", 0.0)))

    def close(self) -> None:
        self._renderer.close()
        self.env.close()
