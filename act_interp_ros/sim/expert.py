"""A scripted pick expert for the simulated SO-101 (ROS-free): inverse kinematics on MuJoCo's own model.

Each control step the expert picks a goal for the gripper site ``gripperframe`` (so101-nexus's TCP) from the
cube's true pose (privileged: the expert is a demonstrator, not a policy) and its phase, and solves for the
five arm joints by damped least squares on the site Jacobian (``mj_jacSite``) in a scratch ``MjData``, warm
started from its previous target. The gripper points straight down with its jaws square to the cube's faces
(the cube's yaw modulo 90 deg nearest the arm's natural wrist roll). Joint targets move at most
``max_step_rad`` per step, so every command stays close to the measured joints (as the node's
``max_joint_step`` requires on a real arm).

Phases: ``approach`` (above the cube, gripper open) -> ``descend`` -> ``close`` (squeeze for ``close_steps``)
-> ``lift`` -> ``hold``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["ExpertConfig", "PHASES", "PickExpert"]

PHASES = ("approach", "descend", "close", "lift", "hold")
ARM = slice(0, 5)  # the five arm joints; qpos/dof 0..5 are the robot's (the cube's free joint follows)


@dataclass(frozen=True)
class ExpertConfig:
    """Geometry and speeds of the scripted pick (metres, radians, control steps)."""

    hover_m: float = 0.07  # site height above the cube centre while approaching
    grasp_m: float = 0.005  # site height above the cube centre when closing
    lift_m: float = 0.12  # site height above the cube's resting centre at the end
    gripper_open_rad: float = 1.0
    gripper_closed_rad: float = -0.17  # the joint's lower limit: the jaw squeezes the cube
    close_steps: int = 12
    max_step_rad: float = 0.05  # per control step, arm joints (1.5 rad/s at 30 Hz)
    gripper_step_rad: float = 0.1
    descend_speed_m_s: float = 0.12
    reach_tol_m: float = 0.008
    ik_iterations: int = 30
    ik_damping: float = 0.02
    orientation_weight: float = 0.15  # metres of position error one radian of orientation error weighs


class PickExpert:
    """The scripted expert for one :class:`~act_interp_ros.sim.simulator.SimArm` (see the module docstring)."""

    def __init__(self, model, config: ExpertConfig = ExpertConfig()) -> None:
        import mujoco

        self._mj = mujoco
        self.model, self.config = model, config
        self._scratch = mujoco.MjData(model)
        self._site = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "gripperframe")
        self._lo, self._hi = model.jnt_range[:6, 0].copy(), model.jnt_range[:6, 1].copy()
        self.reset()

    def reset(self) -> None:
        self.phase = 0
        self._phase_steps = 0
        self._target: np.ndarray | None = None
        self._descend_z: float | None = None
        self._rest_z: float | None = None

    @property
    def phase_name(self) -> str:
        return PHASES[self.phase]

    # ------------------------------------------------------------------------------ IK
    def _goal_rotation(self, cube_quat: np.ndarray, pan: float) -> np.ndarray:
        """(3, 3) site orientation: z down, x along the cube face direction nearest ``pan + pi``."""
        w, x, y, z = cube_quat
        cube_yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
        natural = pan + math.pi
        k = round((natural - cube_yaw) / (math.pi / 2))
        psi = cube_yaw + k * math.pi / 2
        xa = np.array([math.cos(psi), math.sin(psi), 0.0])
        za = np.array([0.0, 0.0, -1.0])
        return np.column_stack([xa, np.cross(za, xa), za])

    def solve(self, q_start: np.ndarray, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """(6,) joints (rad) putting the site at ``pos`` (3,) with orientation ``rot`` (3, 3), from ``q_start``
        (6,); the gripper joint is kept. Damped least squares on the arm's five joints."""
        mj, m, d, c = self._mj, self.model, self._scratch, self.config
        q = np.array(q_start, dtype=np.float64)
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        for _ in range(c.ik_iterations):
            d.qpos[:6] = q
            mj.mj_kinematics(m, d)
            mj.mj_comPos(m, d)
            cur_p = d.site_xpos[self._site]
            cur_r = d.site_xmat[self._site].reshape(3, 3)
            e_pos = pos - cur_p
            e_rot = 0.5 * sum(np.cross(cur_r[:, i], rot[:, i]) for i in range(3))
            if np.linalg.norm(e_pos) < 2e-4 and np.linalg.norm(e_rot) < 2e-3:
                break
            mj.mj_jacSite(m, d, jacp, jacr, self._site)
            jac = np.vstack([jacp[:, ARM], c.orientation_weight * jacr[:, ARM]])
            err = np.concatenate([e_pos, c.orientation_weight * e_rot])
            dq = jac.T @ np.linalg.solve(jac @ jac.T + c.ik_damping ** 2 * np.eye(6), err)
            q[ARM] = np.clip(q[ARM] + dq, self._lo[ARM], self._hi[ARM])
        return q

    # ------------------------------------------------------------------------------ policy
    def act(self, qpos: np.ndarray, cube_pose: np.ndarray, tcp_pos: np.ndarray) -> np.ndarray:
        """(6,) joint-position target (MuJoCo rad) for this step.

        Args:
            qpos: (6,) measured joints (rad). cube_pose: (7,) cube centre and quaternion (w, x, y, z).
            tcp_pos: (3,) measured site position (m).
        """
        c = self.config
        if self._target is None:
            self._target = np.array(qpos, dtype=np.float64)
            self._rest_z = float(cube_pose[2])
        cube = np.asarray(cube_pose[:3], dtype=np.float64)
        rot = self._goal_rotation(cube_pose[3:7], math.atan2(cube[1], cube[0]))
        name = self.phase_name
        gripper = c.gripper_open_rad
        if name == "approach":
            goal = cube + [0, 0, c.hover_m]
            if np.linalg.norm(tcp_pos - goal) < c.reach_tol_m * 2:
                self._advance()
                self._descend_z = float(goal[2])
        elif name == "descend":
            low = float(cube[2] + c.grasp_m)
            self._descend_z = max(low, self._descend_z - c.descend_speed_m_s / 30.0)
            goal = np.array([cube[0], cube[1], self._descend_z])
            if self._descend_z <= low and abs(tcp_pos[2] - low) < c.reach_tol_m:
                self._advance()
        elif name == "close":
            goal = np.array([cube[0], cube[1], cube[2] + c.grasp_m])
            gripper = c.gripper_closed_rad
            if self._phase_steps >= c.close_steps:
                self._advance()
                self._descend_z = float(goal[2])
        else:  # lift / hold
            self._descend_z = min(self._rest_z + c.lift_m, self._descend_z + c.descend_speed_m_s / 30.0)
            goal = np.array([self._target_xy[0], self._target_xy[1], self._descend_z])
            gripper = c.gripper_closed_rad
            if name == "lift" and self._descend_z >= self._rest_z + c.lift_m:
                self._advance()
        if name in ("approach", "descend", "close"):
            self._target_xy = goal[:2].copy()
        q = self.solve(self._target, goal, rot)
        step = np.clip(q[ARM] - self._target[ARM], -c.max_step_rad, c.max_step_rad)
        self._target[ARM] = self._target[ARM] + step
        self._target[5] += float(np.clip(gripper - self._target[5], -c.gripper_step_rad, c.gripper_step_rad))
        self._phase_steps += 1
        return self._target.copy()

    def _advance(self) -> None:
        self.phase = min(self.phase + 1, len(PHASES) - 1)
        self._phase_steps = 0
