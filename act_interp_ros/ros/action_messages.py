"""Build the configured action message (rclpy) from a command in ROS units.

The message types per ``action_type`` are part of the output contract
(:data:`act_interp_ros.pipeline.contract.ACTION_MESSAGE_TYPES`); the replay's output bag builds the same
content with rosbags (:mod:`act_interp_ros.bag.bag_output`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from act_interp_ros.pipeline.contract import ACTION_MESSAGE_TYPES

__all__ = ["build_action_message", "message_class"]

_CLASSES = {
    "sensor_msgs/msg/JointState": JointState,
    "std_msgs/msg/Float64MultiArray": Float64MultiArray,
    "trajectory_msgs/msg/JointTrajectory": JointTrajectory,
}


def message_class(kind: str):
    """The rclpy message class of ``action_type`` ``kind``."""
    try:
        return _CLASSES[ACTION_MESSAGE_TYPES[kind]]
    except KeyError:
        raise ValueError(f"action_type '{kind}' unknown; expected one of {', '.join(ACTION_MESSAGE_TYPES)}") from None


def _time(ns: int) -> Time:
    sec, nanosec = divmod(int(ns), 1_000_000_000)
    return Time(sec=sec, nanosec=nanosec)


def build_action_message(kind: str, names: Sequence[str], positions: np.ndarray, stamp_ns: int, horizon_s: float):
    """One command message.

    Args:
        kind: ``action_type`` (joint_state, float64_multi_array, joint_trajectory).
        names: joint names in policy order.
        positions: (n_joints,) command in ROS units (already limited).
        stamp_ns: ROS time of the tick (header.stamp).
        horizon_s: time_from_start of the single trajectory point (one control period).
    """
    values = [float(v) for v in positions]
    cls = message_class(kind)
    if cls is JointState:
        msg = JointState()
        msg.header.stamp = _time(stamp_ns)
        msg.name = list(names)
        msg.position = values
        return msg
    if cls is Float64MultiArray:
        msg = Float64MultiArray()
        msg.layout.dim = [MultiArrayDimension(label="joints", size=len(values), stride=len(values))]
        msg.data = values
        return msg
    msg = JointTrajectory()
    msg.header.stamp = _time(stamp_ns)
    msg.joint_names = list(names)
    nanos = int(round(horizon_s * 1e9))
    msg.points = [JointTrajectoryPoint(positions=values, time_from_start=Duration(sec=nanos // 10**9,
                                                                                  nanosec=nanos % 10**9))]
    return msg
