"""Kinematics of the synthetic SO-101-like arm (ROS-free, torch-free).

Joint convention of the synthetic arm, in LeRobot SO-101 *policy units* (degrees, gripper 0..100):

* ``shoulder_pan``  rotation about the world z axis; 0 = arm points along +x (towards the front camera).
* ``shoulder_lift`` pitch of the upper arm measured from vertical-up, positive leaning forward.
* ``elbow_flex``    pitch of the forearm relative to the upper arm (positive bends forward/down).
* ``wrist_flex``    pitch of the gripper relative to the forearm.
  The cumulative pitch ``lift + elbow + wrist`` is the gripper direction from vertical-up:
  180 deg means the gripper points straight down.
* ``wrist_roll``    rotation of the gripper about its own axis.
* ``gripper``       0 = closed, 100 = fully open (finger separation ``ArmGeometry.max_opening``).

World frame: metres, z up, table top at z = 0, robot base at the origin.
This is a *synthetic* convention chosen to produce plausible motion; it is not the calibration of a
real SO-101.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "shoulder_pan",
    "shoulder_lift",
    "elbow_flex",
    "wrist_flex",
    "wrist_roll",
    "gripper",
)

#: policy = ros * POLICY_SCALE + 0 for all six joints (docs/CONVENTIONS.md); gripper 0..100 <-> 0..1.745 rad.
POLICY_SCALE: float = 57.29577951308232
POLICY_OFFSET: float = 0.0

#: A relaxed "ready" pose (policy units): upper arm up, forearm horizontal, gripper pointing forward-down.
HOME_POSE: np.ndarray = np.array([0.0, -10.0, 100.0, 60.0, 0.0, 10.0])
HOME_POSE.setflags(write=False)


def policy_to_radians(q: np.ndarray) -> np.ndarray:
    """Policy units (deg / gripper 0..100) -> ROS radians, elementwise: ``(q - offset) / scale``."""
    return (np.asarray(q, dtype=np.float64) - POLICY_OFFSET) / POLICY_SCALE


def radians_to_policy(q: np.ndarray) -> np.ndarray:
    """ROS radians -> policy units, elementwise: ``q * scale + offset``."""
    return np.asarray(q, dtype=np.float64) * POLICY_SCALE + POLICY_OFFSET


@dataclass(frozen=True)
class ArmGeometry:
    """Link lengths (metres) of the synthetic arm; roughly SO-101 sized."""

    base_height: float = 0.05
    shoulder_height: float = 0.10
    upper_arm: float = 0.116
    forearm: float = 0.135
    palm: float = 0.055
    finger: float = 0.045
    max_opening: float = 0.08
    link_radius: float = 0.016
    finger_radius: float = 0.006

    @property
    def tcp_offset(self) -> float:
        """Distance wrist -> tool centre point (the grasp point, 15 mm above the finger tips)."""
        return self.palm + self.finger - 0.015


@dataclass(frozen=True)
class ArmPose:
    """3D points (world, metres) and gripper frame produced by :func:`forward_kinematics`.

    ``axis`` points from the wrist along the gripper; ``lateral`` is the closing direction of the
    fingers; ``normal = axis x lateral``. The three form a right-handed orthonormal frame.
    """

    base: np.ndarray  # (3,)
    base_top: np.ndarray  # (3,)
    shoulder: np.ndarray  # (3,)
    elbow: np.ndarray  # (3,)
    wrist: np.ndarray  # (3,)
    palm: np.ndarray  # (3,) centre of the palm bar (finger roots)
    tcp: np.ndarray  # (3,) tool centre point between the fingers
    axis: np.ndarray  # (3,)
    lateral: np.ndarray  # (3,)
    normal: np.ndarray  # (3,)
    finger_roots: np.ndarray  # (2, 3)
    finger_tips: np.ndarray  # (2, 3)
    opening: float  # finger separation in metres

    @property
    def gripper_frame(self) -> np.ndarray:
        """(3, 3) rotation whose columns are (lateral, normal, axis)."""
        return np.stack([self.lateral, self.normal, self.axis], axis=1)


def forward_kinematics(q: np.ndarray, geom: ArmGeometry | None = None) -> ArmPose:
    """Forward kinematics from the 6 joints in policy units (see module docstring)."""
    geom = geom or ArmGeometry()
    q = np.asarray(q, dtype=np.float64)
    pan, phi1 = math.radians(q[0]), math.radians(q[1])
    phi2 = phi1 + math.radians(q[2])
    phi3 = phi2 + math.radians(q[3])
    roll = math.radians(q[4])
    opening = float(np.clip(q[5], 0.0, 100.0)) / 100.0 * geom.max_opening

    h = np.array([math.cos(pan), math.sin(pan), 0.0])
    up = np.array([0.0, 0.0, 1.0])

    def direction(phi: float) -> np.ndarray:
        return math.sin(phi) * h + math.cos(phi) * up

    base = np.zeros(3)
    base_top = np.array([0.0, 0.0, geom.base_height])
    shoulder = np.array([0.0, 0.0, geom.shoulder_height])
    elbow = shoulder + geom.upper_arm * direction(phi1)
    wrist = elbow + geom.forearm * direction(phi2)
    axis = direction(phi3)
    perp = np.array([-math.sin(pan), math.cos(pan), 0.0])
    n0 = np.cross(axis, perp)
    lateral = math.cos(roll) * perp + math.sin(roll) * n0
    normal = np.cross(axis, lateral)
    palm = wrist + geom.palm * axis
    tcp = wrist + geom.tcp_offset * axis
    half = 0.5 * opening * lateral
    roots = np.stack([palm + half, palm - half])
    tips = roots + geom.finger * axis
    return ArmPose(base, base_top, shoulder, elbow, wrist, palm, tcp, axis, lateral, normal, roots, tips, opening)


def inverse_kinematics(
    tcp: np.ndarray,
    grasp_yaw_deg: float = 0.0,
    geom: ArmGeometry | None = None,
) -> np.ndarray:
    """Arm joints (policy degrees, shape (5,)) that put the TCP at ``tcp`` with the gripper pointing down.

    ``grasp_yaw_deg`` is the world yaw of the cube to grasp; the wrist roll aligns the finger closing
    direction with a cube face (the result is wrapped to [-45, 45) deg). Unreachable points are
    clamped to the workspace boundary (elbow-up solution).
    """
    geom = geom or ArmGeometry()
    x, y, z = (float(v) for v in tcp)
    pan = math.atan2(y, x)
    r = math.hypot(x, y)
    dr = r
    dz = z + geom.tcp_offset - geom.shoulder_height
    l1, l2 = geom.upper_arm, geom.forearm
    d = math.hypot(dr, dz)
    d = min(max(d, abs(l1 - l2) + 1e-6), l1 + l2 - 1e-6)
    cos_e = (d * d - l1 * l1 - l2 * l2) / (2.0 * l1 * l2)
    e = math.acos(max(-1.0, min(1.0, cos_e)))
    beta = math.atan2(dr, dz)
    gamma = math.atan2(l2 * math.sin(e), l1 + l2 * math.cos(e))
    phi1 = beta - gamma
    wrist = math.pi - phi1 - e
    pan_deg = math.degrees(pan)
    roll = (pan_deg + 90.0 - grasp_yaw_deg + 45.0) % 90.0 - 45.0
    return np.array([pan_deg, math.degrees(phi1), math.degrees(e), math.degrees(wrist), roll])
