"""Build the action message of the configured type from a command in ROS units."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

ACTION_MESSAGE_TYPES = {
    "joint_state": JointState,  # position targets, e.g. for a LeRobot/feetech bridge
    "float64_multi_array": Float64MultiArray,  # ros2_control forward_command_controller
    "joint_trajectory": JointTrajectory,  # ros2_control joint_trajectory_controller
}


def build_action_message(kind: str, names: Sequence[str], positions: np.ndarray, stamp, horizon_s: float):
    """One command message.

    Args:
        kind: key of ACTION_MESSAGE_TYPES.
        names: joint names in policy order.
        positions: (n_joints,) command in ROS units (already limited).
        stamp: builtin_interfaces/Time of the tick.
        horizon_s: time_from_start of the single trajectory point (one control period).
    """
    values = [float(v) for v in positions]
    if kind == "joint_state":
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = list(names)
        msg.position = values
        return msg
    if kind == "float64_multi_array":
        msg = Float64MultiArray()
        msg.layout.dim = [MultiArrayDimension(label="joints", size=len(values), stride=len(values))]
        msg.data = values
        return msg
    if kind == "joint_trajectory":
        msg = JointTrajectory()
        msg.header.stamp = stamp
        msg.joint_names = list(names)
        nanos = int(round(horizon_s * 1e9))
        msg.points = [
            JointTrajectoryPoint(positions=values, time_from_start=Duration(sec=nanos // 10**9, nanosec=nanos % 10**9))
        ]
        return msg
    raise ValueError(f"action_type '{kind}' unknown; expected one of {', '.join(ACTION_MESSAGE_TYPES)}")
