"""What ``live.launch.py`` hands the node: the params file first, then only the launch arguments the user gave.

launch_ros writes each entry of a Node's ``parameters`` list as its own ``--params-file`` (a dict becomes a
temporary file ``{/<node name>: {ros__parameters: {...}}}``), in list order, and rcl lets a later file win.
A launch argument with a default would therefore always override the user's params file (``publish_actions``
defaulting to ``true`` turned an observe-only params file into a commanding node). Here every overriding
argument defaults to the empty string, meaning "not given", and only given ones are passed on.

This module imports neither ``launch`` nor rclpy, so the precedence is testable where ``ros2 launch`` is not
installed (``test/test_launch_params.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from act_interp_ros.settings.errors import SettingsFileError

__all__ = ["LAUNCH_ARGUMENTS", "NOT_GIVEN", "LaunchArgument", "node_parameters", "params_file_dict", "wants_rviz"]

#: The value of a launch argument the user did not give.
NOT_GIVEN = ""


@dataclass(frozen=True)
class LaunchArgument:
    """One ``name:=value`` argument of ``live.launch.py``.

    Attributes:
        name: the argument and (for node parameters) the parameter name.
        description: shown by ``ros2 launch act_interp_ros live.launch.py --show-args``.
        kind: ``str`` or ``bool`` (a bool accepts true/false/1/0/yes/no, any case).
        parameter: True when it is a node parameter (passed on only when given).
        default: the launch default (parameters: always :data:`NOT_GIVEN`).
    """

    name: str
    description: str
    kind: str = "str"
    parameter: bool = True
    default: str = NOT_GIVEN


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("policy_path", "LeRobot ACT pretrained_model directory or hub repo id (default: the params file's)"),
    LaunchArgument("device", "cpu, cuda, cuda:N or mps (default: the params file's device)"),
    LaunchArgument("publish_actions", "false = observe-only: the policy and overlays run, no command is published "
                   "(default: the params file's publish_actions)", kind="bool"),
    LaunchArgument("use_sim_time", "true for bag replay with --clock or the simulator (default: the params file's, "
                   "else false)", kind="bool"),
    LaunchArgument("rviz", "true = start RViz with a layout for this configuration's cameras", kind="bool",
                   parameter=False, default="false"),
)

_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


def _parse_bool(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise SettingsFileError(f"launch argument {name}:={value!r} is not a boolean; expected true or false")


def node_parameters(config: str, given: Mapping[str, str]) -> list[Any]:
    """The Node's ``parameters`` list: ``[config, {given overrides}]`` (or ``[config]`` when none was given).

    Args:
        config: the params file (the user's ``config:=`` or the shipped ``config/so101.yaml``); empty = none.
        given: launch configurations by name; a node-parameter argument equal to :data:`NOT_GIVEN` (or absent)
            is left to the params file.

    Raises:
        SettingsFileError: a boolean argument that is not true/false (one line naming it).
    """
    overrides: dict[str, Any] = {}
    for arg in LAUNCH_ARGUMENTS:
        value = given.get(arg.name, NOT_GIVEN)
        if not arg.parameter or value is None or str(value).strip() == NOT_GIVEN:
            continue
        overrides[arg.name] = _parse_bool(arg.name, str(value)) if arg.kind == "bool" else str(value).strip()
    params: list[Any] = [config] if config else []
    if overrides:
        params.append(overrides)
    return params


def wants_rviz(given: Mapping[str, str]) -> bool:
    """Whether ``rviz:=`` asks for RViz (default false)."""
    return _parse_bool("rviz", str(given.get("rviz", "false")))


def params_file_dict(overrides: Mapping[str, Any], node_name: str = "act_interp_node") -> dict[str, Any]:
    """The document launch_ros writes for a parameters dict of a node named ``node_name`` (no namespace)."""
    return {f"/{node_name}": {"ros__parameters": dict(overrides)}}
