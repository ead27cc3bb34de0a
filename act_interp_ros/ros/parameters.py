"""Declare, read and update the node's ROS parameters from the settings schema.

* Every parameter is declared with its description; those not marked ``dynamic`` in the schema are
  ``read_only``, so ``ros2 param set`` on them is refused with a reason (never accepted and ignored).
* Float parameters (and float arrays) are declared with ``dynamic_typing``: rclpy would otherwise reject
  ``-p control_rate_hz:=10`` or ``control_rate_hz: 30`` in a params file with a traceback. The value is
  converted and validated by :class:`~act_interp_ros.settings.NodeSettings` like any other.
* A runtime set of a dynamic parameter is validated against the whole configuration first; a bad value is
  refused with the one-line reason, a good one is applied by the node at once (``on_change``).

Every start-up problem becomes a :class:`StartupError`: one line naming the parameter (exit code 2).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.exceptions import InvalidParameterTypeException, ParameterUninitializedException
from rclpy.node import Node
from rclpy.parameter import Parameter

from act_interp_ros.runtime.startup import StartupError
from act_interp_ros.settings import NodeSettings, SettingsError, parameter_specs
from act_interp_ros.settings.params_file import ROS_BUILTIN_PARAMETERS

__all__ = ["DynamicParameters", "StartupError", "declare_and_read"]

_EXPECTED = {
    "STRING": "a string", "BOOL": "true or false", "INTEGER": "an integer", "DOUBLE": "a number",
    "STRING_ARRAY": "a list of strings", "INTEGER_ARRAY": "a list of integers", "DOUBLE_ARRAY": "a list of numbers",
}


def _descriptor(spec) -> ParameterDescriptor:
    flexible = spec.ros_type in ("DOUBLE", "DOUBLE_ARRAY") or spec.any_type
    return ParameterDescriptor(description=spec.description, read_only=not spec.dynamic, dynamic_typing=flexible)


def check_unknown_overrides(node: Node) -> None:
    """A ``-p``/params-file value for a name this node does not have is an error, not silently ignored.

    rclpy keeps the overrides for a node in ``Node._parameter_overrides`` (Humble..Kilted); without it there
    is nothing to check.
    """
    overrides = getattr(node, "_parameter_overrides", None) or {}
    known = {s.name for s in parameter_specs()}
    for name in sorted(overrides):
        if name in known or name in ROS_BUILTIN_PARAMETERS or name.startswith("qos_overrides."):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise StartupError(f"parameter '{name}' is not a parameter of {node.get_name()}{hint}; see "
                           f"`ros2 param list` or config/so101.yaml for the valid names")


def declare_and_read(node: Node) -> NodeSettings:
    """Declare every NodeSettings field as a described ROS parameter, then read and validate them."""
    check_unknown_overrides(node)
    for spec in parameter_specs():
        descriptor = _descriptor(spec)
        # An empty-list default must be declared by type (rclpy would infer BYTE_ARRAY from []) - unless the
        # parameter is dynamically typed anyway (float lists: integers are accepted too).
        default = spec.default if spec.default != [] or descriptor.dynamic_typing else Parameter.Type[spec.ros_type]
        try:
            node.declare_parameter(spec.name, default, descriptor)
        except InvalidParameterTypeException as exc:
            got = re.search(r"to '(.*)' of type '(\w+)'", str(exc))
            given = f"{got.group(1)} ({got.group(2).lower()})" if got else "a value of another type"
            raise StartupError(f"parameter '{spec.name}' must be {_EXPECTED[spec.ros_type]}, got {given}") from None
    values: dict[str, Any] = {}
    for spec in parameter_specs():
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:  # declared by type and not set (e.g. `[]` in a file)
            values[spec.name] = None
    try:
        return NodeSettings.from_mapping(values)
    except SettingsError as exc:
        raise StartupError(str(exc)) from None


class DynamicParameters:
    """Validates runtime sets of the dynamic parameters and hands accepted changes to ``on_change``.

    Args:
        node: the node whose parameters are watched.
        current: returns the node's current settings.
        on_change: called with (new settings, names changed) after a set was accepted.
    """

    def __init__(self, node: Node, current: Callable[[], NodeSettings],
                 on_change: Callable[[NodeSettings, list[str]], None]) -> None:
        self._current = current
        self._on_change = on_change
        self._dynamic = {s.name for s in parameter_specs() if s.dynamic}
        self._names = {s.name for s in parameter_specs()}
        node.add_on_set_parameters_callback(self._on_set)

    def _on_set(self, params: list[Parameter]) -> SetParametersResult:
        changes: dict[str, Any] = {}
        for p in params:
            if p.name not in self._names:
                continue  # ROS's own parameters (use_sim_time, qos overrides)
            if p.name not in self._dynamic:  # rclpy refuses read-only ones first; belt and braces
                return SetParametersResult(successful=False, reason=f"parameter '{p.name}' is read-only: it cannot "
                                                                    "change while the node runs; restart the node")
            changes[p.name] = p.value
        if not changes:
            return SetParametersResult(successful=True)
        try:
            new = self._current().replace(**changes)
        except SettingsError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self._on_change(new, sorted(changes))
        return SetParametersResult(successful=True)
