"""rclpy messages for the node's outputs: the serialiser of :mod:`act_interp_ros.pipeline.output_values`.

The structure of each message is written once, in ``output_values``; this module only maps a type name to
its rclpy class. The replay's output bag does the same with rosbags (:mod:`act_interp_ros.bag.bag_output`).
"""

from __future__ import annotations

import array
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, Header, MultiArrayDimension, MultiArrayLayout
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from act_interp_ros.pipeline.contract import ACTION_MESSAGE_TYPES

__all__ = ["make_message", "message_class"]

_CLASSES = {cls.__module__.split(".")[0] + "/msg/" + cls.__name__: cls for cls in (
    Duration, Time, DiagnosticStatus, KeyValue, JointState, Float64MultiArray, Header, MultiArrayDimension,
    MultiArrayLayout, JointTrajectory, JointTrajectoryPoint)}


def message_class(action_type: str):
    """The rclpy message class of ``action_type``."""
    try:
        return _CLASSES[ACTION_MESSAGE_TYPES[action_type]]
    except KeyError:
        raise ValueError(f"action_type '{action_type}' unknown; expected one of "
                         f"{', '.join(ACTION_MESSAGE_TYPES)}") from None


def make_message(type_name: str, **fields: Any) -> Any:
    """``output_values``' ``make`` for rclpy: float64 arrays become ``array('d')``, ``level`` a byte."""
    for name, value in fields.items():
        if isinstance(value, np.ndarray):
            fields[name] = array.array("d", value.astype(np.float64, copy=False).tobytes())
    if type_name == "diagnostic_msgs/msg/DiagnosticStatus":
        fields["level"] = bytes([fields["level"]])
    return _CLASSES[type_name](**fields)
