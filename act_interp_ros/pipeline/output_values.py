"""Which value goes on which output, for one tick (ROS-free).

The contract (:mod:`.contract`) names every output, its topic and its type; this module says what each
carries. Two thin serialisers turn the result into messages: rclpy messages in the node
(:mod:`act_interp_ros.ros.messages`) and rosbags messages in the replay's output bag
(:mod:`act_interp_ros.bag.bag_output`). Messages are built through ``make(type_name, **fields)``, so the
structure of the tick status and of each action type is written once, here.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from act_interp_ros.pipeline.contract import ACTION_MESSAGE_TYPES, DIAGNOSTIC_STATUS
from act_interp_ros.pipeline.reasons import SkipReason
from act_interp_ros.pipeline.tick import NS
from act_interp_ros.settings import camera_name

__all__ = ["MakeMessage", "action_message", "scalar_values", "tick_status_message"]

#: ``make(type_name, **fields) -> message``: ``type_name`` is ``package/msg/Type``; every field is given
#: (float sequences as float64 numpy arrays, string sequences as lists, ``level`` as an int).
MakeMessage = Callable[..., Any]
JOINT_STATE, MULTI_ARRAY, TRAJECTORY = (ACTION_MESSAGE_TYPES[k] for k in
                                        ("joint_state", "float64_multi_array", "joint_trajectory"))


def scalar_values(interp: Any | None, camera_keys: Sequence[str],
                  env_sensitivity: float | None = None) -> dict[str, float]:
    """Output key -> value of the Float32 outputs that one interpretation gives.

    Args:
        interp: the tick's :class:`~act_interp_ros.core.Interpretation` (``fractions``/``lifts``: token group
            -> attention share / lift over uniform); ``None`` = no attention outputs.
        camera_keys: the policy's camera keys (``observation.images.front`` ...).
        env_sensitivity: the env-state sensitivity of this tick, when measured.
    Keys without a value (no state, no env state, not measured) are left out.
    """
    fractions = interp.fractions if interp is not None else {}
    lifts = interp.lifts if interp is not None else {}
    values = {"proprio_attention": fractions.get("state"), "proprio_attention_lift": lifts.get("state"),
              "env_state_attention": fractions.get("env_state"), "env_state_attention_lift": lifts.get("env_state"),
              "env_state_sensitivity": env_sensitivity}
    for key in camera_keys:
        values[f"attention_share/{camera_name(key)}"] = fractions.get(key)
        values[f"attention_lift/{camera_name(key)}"] = lifts.get(key)
    return {k: float(v) for k, v in values.items() if v is not None}


def _time(make: MakeMessage, ns: int) -> Any:
    sec, nanosec = divmod(int(ns), NS)
    return make("builtin_interfaces/msg/Time", sec=sec, nanosec=nanosec)


def _header(make: MakeMessage, stamp_ns: int, frame_id: str = "") -> Any:
    return make("std_msgs/msg/Header", stamp=_time(make, stamp_ns), frame_id=frame_id)


def tick_status_message(make: MakeMessage, *, node_name: str, hardware_id: str, tick: int, time_ns: int,
                        stamps_ns: Mapping[str, int | None], reason: SkipReason | str | None) -> Any:
    """``~/tick_status``: level OK (acted) or WARN (skipped, ``message`` = the reason), values ``tick``,
    ``time_ns`` and ``stamp_ns<topic>`` per input (empty when none yet)."""
    kv = [("tick", str(tick)), ("time_ns", str(time_ns))]
    kv += [(f"stamp_ns{topic}", "" if s is None else str(s)) for topic, s in stamps_ns.items()]
    return make(DIAGNOSTIC_STATUS, level=0 if reason is None else 1, name=f"{node_name}: tick",
                message="ok" if reason is None else str(reason), hardware_id=hardware_id,
                values=[make("diagnostic_msgs/msg/KeyValue", key=k, value=v) for k, v in kv])


def action_message(make: MakeMessage, action_type: str, names: Sequence[str], positions: np.ndarray,
                   stamp_ns: int, horizon_s: float) -> Any:
    """One command message of ``action_type``.

    Args:
        action_type: joint_state, float64_multi_array or joint_trajectory.
        names: joint names in policy order.
        positions: (n_joints,) command in ROS units (already limited).
        stamp_ns: ROS time of the tick (``header.stamp``).
        horizon_s: ``time_from_start`` of the single trajectory point (one control period).
    """
    kind = ACTION_MESSAGE_TYPES[action_type]
    values = np.asarray(positions, dtype=np.float64)
    empty = np.zeros(0, dtype=np.float64)
    if kind == JOINT_STATE:
        return make(kind, header=_header(make, stamp_ns), name=list(names), position=values, velocity=empty,
                    effort=empty)
    if kind == MULTI_ARRAY:
        dim = make("std_msgs/msg/MultiArrayDimension", label="joints", size=len(values), stride=len(values))
        return make(kind, layout=make("std_msgs/msg/MultiArrayLayout", dim=[dim], data_offset=0), data=values)
    nanos = int(round(horizon_s * 1e9))
    point = make("trajectory_msgs/msg/JointTrajectoryPoint", positions=values, velocities=empty,
                 accelerations=empty, effort=empty,
                 time_from_start=make("builtin_interfaces/msg/Duration", sec=nanos // NS, nanosec=nanos % NS))
    return make(kind, header=_header(make, stamp_ns), joint_names=list(names), points=[point])
