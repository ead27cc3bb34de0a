"""ROS 2 params files (and `-p name:=value` overrides) read the way rcl reads them, without ROS.

The offline replay and the demo read the node's params file with :func:`load_settings_yaml`, so offline
and live get the same values. Notes on how rcl treats a file:

* a top-level key is a node pattern (`act_interp_node`, `/act_interp_node`, `/**`, `/**/act_interp_node`,
  nested namespaces); matching sections are merged in file order, later values winning;
* `[]` becomes an unset parameter (the default is kept);
* an integer where a float is declared is accepted by the node (its float parameters are declared with
  dynamic typing and converted), so `control_rate_hz: 30` works live and offline alike.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from act_interp_ros.settings.errors import SettingsFileError
from act_interp_ros.settings.schema import DEFAULT_NODE_NAME, NodeSettings

__all__ = [
    "ROS_BUILTIN_PARAMETERS",
    "default_config",
    "load_settings_yaml",
    "parse_param_assignments",
    "read_params_file",
]

ROS_BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")
PACKAGE = "act_interp_ros"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def default_config(name: str = "so101.yaml") -> Path:
    """The package's `config/<name>`: the installed share directory (ament index, then this Python's
    prefix), else the source tree. Raises SettingsFileError naming every place looked in."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory  # noqa: PLC0415

        candidates.append(Path(get_package_share_directory(PACKAGE)) / "config" / name)
    except Exception:  # noqa: BLE001 - pip install without an ament index: fall through
        pass
    candidates.append(Path(sys.prefix) / "share" / PACKAGE / "config" / name)
    candidates.append(_PACKAGE_DIR.parent / "config" / name)
    for c in candidates:
        if c.is_file():
            return c
    raise SettingsFileError(f"config/{name} not found (looked in {', '.join(map(str, candidates))}); reinstall "
                            "the package or pass the params file explicitly")


def _node_pattern_regex(pattern: str) -> re.Pattern[str]:
    """ROS params-file node pattern -> regex (`**` any number of tokens, `*` one token)."""
    if not pattern.startswith("/"):
        pattern = "/" + pattern
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("/**", i):
            out += r"(/[^/]+)*"
            i += 3
        elif pattern[i] == "*":
            out += r"[^/]*"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(out + r"/?")


def _node_sections(doc: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(node pattern, ros__parameters) pairs in file order, following namespace nesting."""
    out: list[tuple[str, Any]] = []
    for key, value in doc.items():
        path = f"{prefix}/{str(key).strip('/')}" if prefix else str(key)
        if isinstance(value, Mapping):
            if "ros__parameters" in value:
                out.append((path, value["ros__parameters"]))
            else:
                out.extend(_node_sections(value, path))
    return out


def _flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, name + "."))
        else:
            out[name] = value
    return out


def read_params_file(path: str | os.PathLike[str], node_name: str = DEFAULT_NODE_NAME) -> dict[str, Any]:
    """Parameters for `node_name` from a ROS 2 params file, like rcl applies them.

    `node_name` may be fully qualified (`/robot/act_interp_node`).
    """
    src = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsFileError("params file not found (expected a ROS 2 params YAML such as "
                                "config/so101.yaml)", source=src) from None
    except OSError as err:
        raise SettingsFileError(f"cannot read params file: {err}", source=src) from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SettingsFileError(f"not valid YAML: {err}", source=src) from None
    if not isinstance(doc, Mapping):
        raise SettingsFileError(
            f"expected a ROS 2 params file ('{node_name.strip('/').split('/')[-1]}:' or '/**:' with "
            f"'ros__parameters:' under it), got {type(doc).__name__}", source=src)
    fq_name = node_name if node_name.startswith("/") else "/" + node_name
    merged: dict[str, Any] = {}
    matched = False
    sections = _node_sections(doc)
    for pattern, params in sections:
        if not _node_pattern_regex(pattern).fullmatch(fq_name):
            continue
        matched = True
        if params is None:
            continue
        if not isinstance(params, Mapping):
            raise SettingsFileError(f"'{pattern}: ros__parameters:' must be a mapping of parameters", source=src)
        merged.update(_flatten(params))
    if not matched:
        found = ", ".join(p for p, _ in sections) or ", ".join(map(str, doc)) or "nothing"
        raise SettingsFileError(
            f"no parameters for node '{fq_name}': expected a top-level '{fq_name.split('/')[-1]}:' or '/**:' "
            f"section with 'ros__parameters:' (found: {found})", source=src)
    return merged


def _is_ros_builtin(name: str) -> bool:
    """Parameters every rclpy node has (allowed in the file, not NodeSettings fields)."""
    return name in ROS_BUILTIN_PARAMETERS or name.startswith("qos_overrides.")


def load_settings_yaml(
    path: str | os.PathLike[str],
    node_name: str = DEFAULT_NODE_NAME,
    overrides: Mapping[str, Any] | None = None,
    *,
    validate: bool = True,
) -> NodeSettings:
    """Read NodeSettings from a ROS 2 params file, then apply `overrides` (e.g. policy_path).

    ROS built-in parameters in the file (use_sim_time, qos_overrides.*) are ignored here; overrides that
    are None are skipped (handy for optional CLI flags). Errors name the file and the parameter.
    """
    src = str(path)
    values = {k: v for k, v in read_params_file(path, node_name).items() if not _is_ros_builtin(k)}
    NodeSettings.from_mapping(values, validate=False, source=src)  # unknown names in the file, with its path
    merged = {**values, **{k: v for k, v in dict(overrides or {}).items() if v is not None}}
    return NodeSettings.from_mapping(merged, validate=validate, source=src)


def parse_param_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """Parse ROS-style `name:=value` strings (value read as YAML, like `ros2 run ... -p`)."""
    out: dict[str, Any] = {}
    for item in assignments:
        name, sep, raw = item.partition(":=")
        if not sep or not name.strip():
            raise SettingsFileError(f"parameter override {item!r} must look like name:=value")
        try:
            out[name.strip()] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            raise SettingsFileError(f"parameter override {item!r}: value is not valid YAML ({err})") from None
    return out
