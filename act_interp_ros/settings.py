"""Node parameters: the single source of truth shared by the live node and the offline replay.

`NodeSettings` lists every parameter of `act_interp_node` with its default, a one-line description
and its ROS 2 parameter type. The node declares its parameters from `parameter_specs()`; the replay
tool reads the same ROS 2 params file with `load_settings_yaml()`. Both call `NodeSettings.validate()`
so a bad value fails the same way offline and live, with one clear line naming the parameter.

ROS 2 parameters cannot hold lists of dicts, so per-camera and per-joint values are parallel arrays
(`camera_keys[i]` / `camera_topics[i]` / `camera_transports[i]`, `joint_names[j]` / `joint_scale[j]` ...).

Notes for code that declares these as ROS parameters (see `ParameterSpec`):
  * Declare an empty-list default by type (`Parameter.Type[spec.ros_type]`), not by `[]`: rclpy infers
    BYTE_ARRAY from `[]` and then rejects `[0, 1]` from a params file.
  * The rcl params-file parser turns `[]` into an unset parameter (value None); `from_mapping()` treats
    None as "keep the default".
  * ROS rejects an integer for a double parameter (`control_rate_hz: 30`); `load_settings_yaml()`
    applies the same rule to the file so offline and live agree.
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "CAMERA_KEY_PREFIX",
    "GRADCAM_TARGET_KINDS",
    "GradCAMTargetSpec",
    "NodeSettings",
    "ParameterSpec",
    "SettingsError",
    "SettingsFileError",
    "camera_name",
    "load_settings_yaml",
    "parameter_defaults",
    "parameter_descriptions",
    "parameter_names",
    "parameter_specs",
    "parameters_markdown",
    "parse_gradcam_target",
    "parse_param_assignments",
    "read_params_file",
]

CAMERA_KEY_PREFIX = "observation.images."
DEFAULT_NODE_NAME = "act_interp_node"

SO101_JOINT_NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
RAD_TO_DEG = 57.29577951308232  # 180 / pi: radians (ROS) -> degrees (LeRobot SO-101)

DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")
CAMERA_TRANSPORTS = ("raw", "compressed")
ACTION_TYPES = ("joint_state", "float64_multi_array", "joint_trajectory")
INPUT_QOS = ("sensor_data", "reliable")
GRADCAM_TARGET_KINDS = ("first_action_sum", "chunk_sum", "chunk_l2", "joint")
_HUB_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LAYER_RE = re.compile(r"^[A-Za-z_][\w]*(\.[\w]+)*$")


# --------------------------------------------------------------------------------------------------
# Errors


class SettingsError(ValueError):
    """A parameter has a bad value. `str()` is one line: "parameter 'x' must <expected>, got <got>"."""

    def __init__(self, parameter: str, expected: str, got: Any, *, source: str | None = None):
        self.parameter = parameter
        self.expected = expected
        self.got = str(got) if isinstance(got, _Raw) else _fmt(got)
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}parameter '{self.parameter}' must {self.expected}, got {self.got}"

    def with_source(self, source: str) -> SettingsError:
        """Same error, prefixed with where the value came from (e.g. the params file path)."""
        return SettingsError(self.parameter, self.expected, _Raw(self.got), source=source)


class SettingsFileError(SettingsError):
    """The params file itself is unusable (missing, not YAML, no section for the node)."""

    def __init__(self, message: str, *, source: str | None = None):
        self.parameter = None  # type: ignore[assignment]
        self.expected = ""
        self.got = ""
        self.source = source
        self.message = message
        ValueError.__init__(self, f"{source}: {message}" if source else message)

    def _message(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message

    def with_source(self, source: str) -> SettingsFileError:
        return SettingsFileError(self.message, source=source)


class _Raw(str):
    """Already formatted `got` text for SettingsError (not quoted again)."""


def _fmt(value: Any) -> str:
    """Short, unambiguous rendering of a user-supplied value for error messages."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (list, tuple)):
        text = "[" + ", ".join(_fmt(v) for v in value) + "]"
        return text if len(text) <= 200 else text[:197] + "...]"
    if value is None:
        return "nothing (None)"
    return repr(value)


# --------------------------------------------------------------------------------------------------
# Parameter declarations


def _param(default: Any, description: str, ros_type: str) -> Any:
    meta = {"description": description, "ros_type": ros_type}
    if isinstance(default, list):
        return field(default_factory=lambda d=tuple(default): list(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class NodeSettings:
    """All parameters of `act_interp_node` (and of the offline replay, which reads the same file).

    Units: joint values on ROS topics are radians (`sensor_msgs/JointState`); the policy sees
    `policy = ros * joint_scale + joint_offset` (degrees for the SO-101 arm joints, 0..100 gripper).
    Limits and max steps are in ROS units.
    """

    policy_path: str = _param(
        "", "LeRobot ACT pretrained_model directory or Hugging Face hub repo id (required).", "STRING")
    device: str = _param("cpu", "Torch device for the policy: cpu, cuda, cuda:N or mps.", "STRING")
    control_rate_hz: float = _param(30.0, "Control loop rate in Hz (> 0); one policy step per tick.", "DOUBLE")
    camera_keys: list[str] = _param(
        ["observation.images.front", "observation.images.wrist"],
        "Policy camera keys (observation.images.<name>), one per camera.", "STRING_ARRAY")
    camera_topics: list[str] = _param(
        ["/camera/front/image_raw", "/camera/wrist/image_raw"],
        "Exact image topic per camera key (same order and length as camera_keys).", "STRING_ARRAY")
    camera_transports: list[str] = _param(
        ["raw", "raw"],
        "Per camera: raw (sensor_msgs/Image) or compressed (sensor_msgs/CompressedImage).", "STRING_ARRAY")
    joint_state_topic: str = _param("/joint_states", "sensor_msgs/JointState topic (ROS units).", "STRING")
    joint_names: list[str] = _param(
        SO101_JOINT_NAMES, "Joint names in policy order (looked up by name in JointState).", "STRING_ARRAY")
    joint_scale: list[float] = _param(
        [RAD_TO_DEG] * 6, "Per joint: policy = ros * scale + offset (57.2958 = rad -> deg).", "DOUBLE_ARRAY")
    joint_offset: list[float] = _param(
        [0.0] * 6, "Per joint offset in policy units: policy = ros * scale + offset.", "DOUBLE_ARRAY")
    joint_lower_limits: list[float] = _param(
        [-1.92, -1.92, -1.92, -1.92, -2.74, 0.0],
        "Per joint lower command limit in ROS units (rad).", "DOUBLE_ARRAY")
    joint_upper_limits: list[float] = _param(
        [1.92, 1.92, 1.92, 1.92, 2.74, 1.745],
        "Per joint upper command limit in ROS units (rad).", "DOUBLE_ARRAY")
    max_joint_step: list[float] = _param(
        [0.1] * 6, "Per joint max command change from the current position per tick, ROS units (> 0).",
        "DOUBLE_ARRAY")
    max_input_age_s: float = _param(
        0.25, "Skip a tick when any input header stamp is older than this (s, ROS time).", "DOUBLE")
    max_camera_skew_s: float = _param(
        0.1, "Skip a tick when camera header stamps differ by more than this (s).", "DOUBLE")
    image_resize: bool = _param(
        True, "true: resize images to the policy's size (warn once); false: reject them as bad input.", "BOOL")
    action_topic: str = _param("~/joint_command", "Topic for the commanded joint positions.", "STRING")
    action_type: str = _param(
        "joint_state", "Action message: joint_state, float64_multi_array or joint_trajectory.", "STRING")
    publish_actions: bool = _param(True, "false = observe-only: run the policy but publish no actions.", "BOOL")
    gradcam_rate_hz: float = _param(
        2.0, "GradCAM overlay rate in Hz (0 = off; at most control_rate_hz).", "DOUBLE")
    gradcam_target: str = _param(
        "first_action_sum",
        "GradCAM target: first_action_sum, chunk_sum, chunk_l2 or joint:<name or index>.", "STRING")
    gradcam_layer: str = _param("layer4", "Backbone layer GradCAM hooks (ResNet: layer1..layer4).", "STRING")
    overlay_alpha: float = _param(0.5, "Heatmap opacity in the overlays, 0..1.", "DOUBLE")
    input_qos: str = _param(
        "sensor_data", "Input subscription QoS: sensor_data (best effort) or reliable.", "STRING")
    attention_decoder_layer: int = _param(
        -1, "ACT decoder layer whose cross-attention is shown (-1 = last).", "INTEGER")
    attention_heads: list[int] = _param(
        [], "Attention heads to average (empty = all heads).", "INTEGER_ARRAY")
    attention_query: int = _param(
        -1, "Decoder query (action step) to show (-1 = mean over all queries).", "INTEGER")
    diagnostics_period_s: float = _param(1.0, "Period of /diagnostics messages in seconds (> 0).", "DOUBLE")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        validate: bool = True,
        strict_types: bool = False,
        source: str | None = None,
    ) -> NodeSettings:
        """Build settings from `{parameter: value}`; missing parameters keep their defaults.

        A value of None (a ROS parameter declared but not set, e.g. `[]` in a params file) keeps the
        default. Sequences (tuple, array.array from rclpy) become lists; ints are accepted for float
        parameters unless `strict_types` (the ROS 2 rule, used for params files).
        Raises SettingsError for unknown names or bad values (after `validate()` when asked).
        """
        specs = {s.name: s for s in parameter_specs()}
        unknown = [k for k in values if k not in specs]
        if unknown:
            name = str(unknown[0])
            close = difflib.get_close_matches(name, list(specs), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SettingsError(
                name, f"be a known parameter{hint}; valid names: {', '.join(specs)}", _Raw("an unknown name"),
                source=source)
        kwargs: dict[str, Any] = {}
        for name, value in values.items():
            if value is None:
                continue
            try:
                kwargs[name] = _coerce(specs[name], value, strict=strict_types)
            except SettingsError as err:
                raise err.with_source(source) if source else err
        settings = cls(**kwargs)
        if validate:
            try:
                settings.validate()
            except SettingsError as err:
                raise err.with_source(source) if source else err
        return settings

    def to_mapping(self) -> dict[str, Any]:
        """`{parameter: value}` (lists copied)."""
        return {f.name: (list(v) if isinstance(v := getattr(self, f.name), list) else v)
                for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> NodeSettings:
        """Copy with some parameters changed (validated)."""
        return NodeSettings.from_mapping({**self.to_mapping(), **changes})

    # ------------------------------------------------------------------ derived values

    @property
    def camera_names(self) -> list[str]:
        """Short camera names used in topic names (`observation.images.front` -> `front`)."""
        return [camera_name(k) for k in self.camera_keys]

    def gradcam_target_spec(self) -> GradCAMTargetSpec:
        """Parsed `gradcam_target` (joint names resolved to policy indices)."""
        return parse_gradcam_target(self.gradcam_target, self.joint_names)

    # ------------------------------------------------------------------ validation

    def validate(self) -> NodeSettings:
        """Check every parameter; raise SettingsError naming the first bad one. Returns self."""
        _check_policy_path(self.policy_path)
        s = _require_str("device", self.device)
        if not DEVICE_RE.match(s):
            raise SettingsError("device", "be one of cpu, cuda, cuda:N (N = GPU index) or mps", s)
        _require_float("control_rate_hz", self.control_rate_hz, minimum=0.0, inclusive=False)

        keys = _require_str_list("camera_keys", self.camera_keys, allow_empty=False)
        for key in keys:
            if not key.startswith(CAMERA_KEY_PREFIX) or len(key) == len(CAMERA_KEY_PREFIX):
                raise SettingsError(
                    "camera_keys", "contain policy image keys of the form 'observation.images.<name>'", key)
        _require_unique("camera_keys", keys)
        names = [camera_name(k) for k in keys]
        if len(set(names)) != len(names):
            raise SettingsError(
                "camera_keys", "give distinct short camera names (used in topic names)",
                _Raw(f"{_fmt(keys)} -> {_fmt(names)}"))
        n_cam = len(keys)
        topics = _require_str_list("camera_topics", self.camera_topics)
        _require_len("camera_topics", topics, n_cam, "camera key")
        for t in topics:
            _check_topic("camera_topics", t)
        _require_unique("camera_topics", topics)
        transports = _require_str_list("camera_transports", self.camera_transports)
        _require_len("camera_transports", transports, n_cam, "camera key")
        for t in transports:
            _require_choice("camera_transports", t, CAMERA_TRANSPORTS, what="contain only")

        _check_topic("joint_state_topic", _require_str("joint_state_topic", self.joint_state_topic))
        joints = _require_str_list("joint_names", self.joint_names, allow_empty=False)
        _require_unique("joint_names", joints)
        n_j = len(joints)
        scale = _require_float_list("joint_scale", self.joint_scale, n_j)
        for v in scale:
            if v == 0.0:
                raise SettingsError("joint_scale", "contain non-zero factors (policy = ros * scale + offset)",
                                    self.joint_scale)
        _require_float_list("joint_offset", self.joint_offset, n_j)
        lower = _require_float_list("joint_lower_limits", self.joint_lower_limits, n_j)
        upper = _require_float_list("joint_upper_limits", self.joint_upper_limits, n_j)
        for j, (lo, hi) in enumerate(zip(lower, upper)):
            if not lo < hi:
                raise SettingsError(
                    "joint_upper_limits", f"be greater than joint_lower_limits for joint '{joints[j]}'",
                    _Raw(f"lower={lo!r} upper={hi!r}"))
        steps = _require_float_list("max_joint_step", self.max_joint_step, n_j)
        for j, v in enumerate(steps):
            if v <= 0.0:
                raise SettingsError(
                    "max_joint_step",
                    f"be > 0 for every joint (ROS units per tick; use a large value such as 10.0 to "
                    f"effectively disable it), joint '{joints[j]}'", v)

        _require_float("max_input_age_s", self.max_input_age_s, minimum=0.0, inclusive=False)
        _require_float("max_camera_skew_s", self.max_camera_skew_s, minimum=0.0)
        _require_bool("image_resize", self.image_resize)
        _check_topic("action_topic", _require_str("action_topic", self.action_topic))
        _require_choice("action_type", _require_str("action_type", self.action_type), ACTION_TYPES)
        _require_bool("publish_actions", self.publish_actions)
        _require_float("gradcam_rate_hz", self.gradcam_rate_hz, minimum=0.0)
        parse_gradcam_target(_require_str("gradcam_target", self.gradcam_target), joints)
        layer = _require_str("gradcam_layer", self.gradcam_layer)
        if not _LAYER_RE.match(layer):
            raise SettingsError("gradcam_layer", "be a backbone module name such as 'layer4'", layer)
        _require_float("overlay_alpha", self.overlay_alpha, minimum=0.0, maximum=1.0)
        _require_choice("input_qos", _require_str("input_qos", self.input_qos), INPUT_QOS)
        _require_int("attention_decoder_layer", self.attention_decoder_layer)
        heads = self.attention_heads
        if not isinstance(heads, list) or any(
                isinstance(h, bool) or not isinstance(h, int) or h < 0 for h in heads):
            raise SettingsError(
                "attention_heads", "be a list of head indices >= 0 (empty = all heads)", _fmt(heads))
        _require_unique("attention_heads", heads)
        q = _require_int("attention_query", self.attention_query)
        if q < -1:
            raise SettingsError("attention_query", "be a decoder query index >= 0, or -1 for the mean", q)
        _require_float("diagnostics_period_s", self.diagnostics_period_s, minimum=0.0, inclusive=False)
        return self

    def warnings(self) -> list[str]:
        """Non-fatal hints worth logging once (valid but probably not what was meant)."""
        out: list[str] = []
        for key, topic, transport in zip(self.camera_keys, self.camera_topics, self.camera_transports):
            if transport == "compressed" and not topic.rstrip("/").endswith("compressed"):
                out.append(f"camera '{key}' uses transport 'compressed' but its topic '{topic}' does not end "
                           f"in '/compressed'; camera_topics must be the exact CompressedImage topic")
            if transport == "raw" and topic.rstrip("/").endswith("/compressed"):
                out.append(f"camera '{key}' topic '{topic}' looks like a CompressedImage topic; set its "
                           f"camera_transports entry to 'compressed'")
        if self.gradcam_rate_hz > self.control_rate_hz:
            out.append(f"gradcam_rate_hz ({self.gradcam_rate_hz}) > control_rate_hz ({self.control_rate_hz}); "
                       f"GradCAM runs at most once per control tick")
        if not self.publish_actions:
            out.append("publish_actions is false: observe-only, no actions are published")
        return out


# --------------------------------------------------------------------------------------------------
# Parameter metadata


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: `ros_type` is a `rclpy.Parameter.Type` member name (e.g. "DOUBLE_ARRAY")."""

    name: str
    default: Any
    description: str
    ros_type: str


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter in declaration order, with default, description and ROS type."""
    defaults = NodeSettings()
    return [ParameterSpec(f.name, getattr(defaults, f.name), f.metadata["description"], f.metadata["ros_type"])
            for f in dataclasses.fields(NodeSettings)]


def parameter_names() -> list[str]:
    return [f.name for f in dataclasses.fields(NodeSettings)]


def parameter_descriptions() -> dict[str, str]:
    """`{parameter: one-line description}` for ParameterDescriptor(description=...) and docs."""
    return {f.name: f.metadata["description"] for f in dataclasses.fields(NodeSettings)}


def parameter_defaults() -> dict[str, Any]:
    return NodeSettings().to_mapping()


def parameters_markdown() -> str:
    """A Markdown table of all parameters (name, type, default, description) for the README."""
    rows = ["| Parameter | Type | Default | Description |", "|---|---|---|---|"]
    for s in parameter_specs():
        default = json.dumps(s.default).replace("|", "\\|")
        rows.append(f"| `{s.name}` | {s.ros_type.lower()} | `{default}` | {s.description} |")
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------------
# Helpers


def camera_name(key: str) -> str:
    """Short camera name for topic names: `observation.images.front` -> `front`.

    Characters not allowed in ROS topic name tokens become '_' (`front-left` -> `front_left`), and a
    name starting with a digit gets a `cam_` prefix.
    """
    name = key[len(CAMERA_KEY_PREFIX):] if key.startswith(CAMERA_KEY_PREFIX) else key
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not name or name[0].isdigit():
        name = "cam_" + name
    return name


@dataclass(frozen=True)
class GradCAMTargetSpec:
    """Parsed gradcam_target: `kind` in GRADCAM_TARGET_KINDS; `joint_index` (policy order) for 'joint'."""

    kind: str
    joint_index: int | None = None


def parse_gradcam_target(value: str, joint_names: Sequence[str]) -> GradCAMTargetSpec:
    """Parse `first_action_sum | chunk_sum | chunk_l2 | joint:<name or index>`."""
    expected = ("be first_action_sum, chunk_sum, chunk_l2 or joint:<name or index> with a joint from "
                f"joint_names {_fmt(list(joint_names))}")
    if not isinstance(value, str):
        raise SettingsError("gradcam_target", expected, value)
    v = value.strip()
    if v in ("first_action_sum", "chunk_sum", "chunk_l2"):
        return GradCAMTargetSpec(v)
    if v.startswith("joint:"):
        ref = v[len("joint:"):].strip()
        if ref in joint_names:
            return GradCAMTargetSpec("joint", list(joint_names).index(ref))
        if re.fullmatch(r"\d+", ref) and int(ref) < len(joint_names):
            return GradCAMTargetSpec("joint", int(ref))
    raise SettingsError("gradcam_target", expected, value)


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


def _check_policy_path(value: Any) -> None:
    expected = ("be a LeRobot pretrained_model directory or a Hugging Face repo id like 'user/act_so101' "
                "(required: pass policy_path:=<dir or repo id>)")
    if not isinstance(value, str) or not value.strip():
        raise SettingsError("policy_path", expected, value)
    if Path(value).expanduser().is_dir():
        return
    if value.startswith(("/", ".", "~")) or not _HUB_REPO_RE.match(value):
        raise SettingsError("policy_path", expected, _Raw(f"{value!r} (no such directory)"))


def _require_str(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise SettingsError(name, "be a non-empty string", value)
    return value


def _require_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(name, "be true or false", value)
    return value


def _require_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(name, "be an integer", value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _require_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                   inclusive: bool = True) -> float:
    parts = []
    if minimum is not None:
        parts.append(f"{'>=' if inclusive else '>'} {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    expected = "be a finite number" + (" " + " and ".join(parts) if parts else "")
    if not _is_number(value) or not math.isfinite(value):
        raise SettingsError(name, expected, value)
    if minimum is not None and (value < minimum or (not inclusive and value == minimum)):
        raise SettingsError(name, expected, value)
    if maximum is not None and value > maximum:
        raise SettingsError(name, expected, value)
    return float(value)


def _require_str_list(name: str, value: Any, *, allow_empty: bool = True) -> list[str]:
    if not isinstance(value, list) or any(not isinstance(v, str) or not v for v in value):
        raise SettingsError(name, "be a list of non-empty strings", value)
    if not allow_empty and not value:
        raise SettingsError(name, "have at least one entry", _Raw("an empty list"))
    return value


def _require_float_list(name: str, value: Any, n: int) -> list[float]:
    if not isinstance(value, list) or any(not _is_number(v) or not math.isfinite(v) for v in value):
        raise SettingsError(name, "be a list of finite numbers, one per joint in joint_names", value)
    _require_len(name, value, n, "joint in joint_names")
    return [float(v) for v in value]


def _require_len(name: str, value: list, n: int, per: str) -> None:
    if len(value) != n:
        raise SettingsError(name, f"have one entry per {per} ({n})", len(value))


def _require_unique(name: str, value: list) -> None:
    seen = set()
    for v in value:
        if v in seen:
            raise SettingsError(name, "have distinct entries", _Raw(f"{_fmt(v)} twice in {_fmt(value)}"))
        seen.add(v)


def _require_choice(name: str, value: str, choices: Sequence[str], *, what: str = "be one of") -> None:
    if value not in choices:
        raise SettingsError(name, f"{what} {', '.join(choices)}", value)


def _check_topic(name: str, topic: str) -> None:
    if not re.fullmatch(r"~?/?[A-Za-z_{][\w{}/]*", topic) or topic.endswith("/") or "//" in topic:
        raise SettingsError(
            name, "be a valid ROS topic name (letters, digits, '_' and '/', e.g. '/camera/front/image_raw')",
            topic)


def _coerce(spec: ParameterSpec, value: Any, *, strict: bool) -> Any:
    """Normalise container types; with `strict`, apply ROS 2 typing (no int for a double)."""
    t = spec.ros_type
    if t.endswith("_ARRAY"):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) and not hasattr(
                value, "tolist"):
            return value  # validate() reports it with the right message
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        if t == "DOUBLE_ARRAY":
            if strict and any(isinstance(v, int) and not isinstance(v, bool) for v in items):
                raise SettingsError(
                    spec.name, "be a list of floats written with a decimal point (ROS 2 reads [0, 1] as "
                    "integers and rejects them for a double array: write [0.0, 1.0])", items)
            items = [float(v) if _is_number(v) else v for v in items]
        return items
    if t == "DOUBLE" and isinstance(value, int) and not isinstance(value, bool):
        if strict:
            raise SettingsError(
                spec.name, f"be a float written with a decimal point (ROS 2 rejects an integer for a double "
                f"parameter: write {value}.0)", value)
        return float(value)
    return value


# --------------------------------------------------------------------------------------------------
# ROS 2 params files


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

    Sections whose key matches the node (`act_interp_node`, `/act_interp_node`, `/**`, `/**/act_...`,
    nested namespaces) are merged in file order, later values winning. `node_name` may be fully
    qualified (`/robot/act_interp_node`).
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


ROS_BUILTIN_PARAMETERS = ("use_sim_time", "start_type_description_service")


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

    ROS built-in parameters in the file (use_sim_time, qos_overrides.*) are ignored here; overrides
    that are None are skipped (handy for optional CLI flags).

    File values follow ROS 2 typing strictly (an integer where a double is expected is an error, as it
    is for the live node); overrides are programmatic and may use ints for floats.
    """
    src = str(path)
    values = {k: v for k, v in read_params_file(path, node_name).items() if not _is_ros_builtin(k)}
    # Type-check the file's own values with ROS rules (and report unknown names) before overriding.
    NodeSettings.from_mapping(values, validate=False, strict_types=True, source=src)
    merged = {**values, **{k: v for k, v in dict(overrides or {}).items() if v is not None}}
    return NodeSettings.from_mapping(merged, validate=validate, source=src)
