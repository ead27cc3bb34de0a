"""Joint units of the simulated SO-101 (ROS-free): MuJoCo radians, LeRobot's policy units, the ROS driver's radians.

The simulated arm is treated as a LeRobot ``SO101Follower`` calibrated to the MJCF's zero (MuJoCo Menagerie's
SO-101 follows the new calibration's URDF: every body joint's zero is the middle of its range):

* body joints: LeRobot degrees (``use_degrees=True``) = ``degrees(q)`` of the MuJoCo joint angle ``q``;
* gripper: LeRobot 0..100 = the MJCF's gripper range ``[GRIPPER_RANGE_RAD]`` mapped linearly (0 closed, 100 open).

On ROS the bridge publishes ``/joint_states`` as the ``lerobot_radians`` driver does (a bridge around LeRobot's
SO101Follower, nimiCurtis/so101_ros2; :data:`act_interp_ros.inputs.calibration.JOINT_CONVENTIONS`): body
``radians(p)`` of LeRobot's degrees (= ``q``), gripper ``p / 100 * pi``. The node maps it back with
``joint_convention: lerobot_radians`` exactly as it does on the robot.

Arrays are (..., 6) in :data:`JOINT_NAMES` order.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["GRIPPER_RANGE_RAD", "JOINT_NAMES", "MOTOR_FEATURE_NAMES", "SIM_JOINT_CONVENTION", "mujoco_to_policy",
           "policy_to_mujoco", "policy_to_ros", "ros_to_policy"]

#: LeRobot's SO-101 motor names, also the MJCF joint and actuator names.
JOINT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")
#: LeRobot's feature names of observation.state / action.
MOTOR_FEATURE_NAMES = tuple(f"{j}.pos" for j in JOINT_NAMES)
#: the MJCF gripper joint range (rad): LeRobot's 0 (closed) .. 100 (open).
GRIPPER_RANGE_RAD = (-0.174533, 1.7453292)
#: the driver convention the bridge speaks (a value of the node's joint_convention).
SIM_JOINT_CONVENTION = "lerobot_radians"
_G = 5
_GSPAN = GRIPPER_RANGE_RAD[1] - GRIPPER_RANGE_RAD[0]


def mujoco_to_policy(q: np.ndarray) -> np.ndarray:
    """MuJoCo joint angles (rad) -> LeRobot policy units (deg; gripper 0..100)."""
    q = np.asarray(q, dtype=np.float64)
    p = np.degrees(q)
    p[..., _G] = (q[..., _G] - GRIPPER_RANGE_RAD[0]) / _GSPAN * 100.0
    return p


def policy_to_mujoco(p: np.ndarray) -> np.ndarray:
    """LeRobot policy units -> MuJoCo joint angles (rad)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.radians(p)
    q[..., _G] = GRIPPER_RANGE_RAD[0] + p[..., _G] / 100.0 * _GSPAN
    return q


def policy_to_ros(p: np.ndarray) -> np.ndarray:
    """LeRobot policy units -> the ``lerobot_radians`` driver's JointState radians (gripper 0..pi)."""
    p = np.asarray(p, dtype=np.float64)
    r = np.radians(p)
    r[..., _G] = p[..., _G] / 100.0 * math.pi
    return r


def ros_to_policy(r: np.ndarray) -> np.ndarray:
    """The ``lerobot_radians`` driver's radians -> LeRobot policy units."""
    r = np.asarray(r, dtype=np.float64)
    p = np.degrees(r)
    p[..., _G] = r[..., _G] / math.pi * 100.0
    return p
