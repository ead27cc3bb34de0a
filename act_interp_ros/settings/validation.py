"""Validation of `NodeSettings`: the first bad parameter becomes one `SettingsError` line naming it.

Also parses the structured string parameters (`gradcam_target`) and lists non-fatal warnings. These
checks need no policy; checks against a loaded policy (cameras, joint count, attention options in range)
live in :mod:`act_interp_ros.pipeline.policy_setup`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from act_interp_ros.settings.errors import Raw, SettingsError, fmt
from act_interp_ros.settings.vocabulary import (
    ACTION_TYPES,
    AGGREGATE_FNS,
    CAMERA_KEY_PREFIX,
    CAMERA_TRANSPORTS,
    ENV_STATE_TYPES,
    GRADCAM_TARGET_KINDS,
    INFERENCE_MODES,
    INPUT_QOS,
    JOINT_CONVENTION_NAMES,
    JOINT_TARGET_KINDS,
    OUT_OF_RANGE_POLICIES,
    OVERLAY_SCALES,
    SIDE_METHODS,
    TARGET_KINDS,
    camera_name,
)

if TYPE_CHECKING:
    from act_interp_ros.settings.schema import NodeSettings

__all__ = [
    "AttributionTargetSpec",
    "GradCAMTargetSpec",
    "parse_attribution_target",
    "parse_gradcam_target",
    "validate",
    "warnings",
]

DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?|mps)$")
_HUB_REPO_RE = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LAYER_RE = re.compile(r"^[A-Za-z_][\w]*(\.[\w]+)*$")


def validate(s: NodeSettings) -> None:
    """Check every parameter of `s`; raise SettingsError naming the first bad one."""
    _check_policy_path(s.policy_path)
    device = _require_str("device", s.device)
    if not DEVICE_RE.match(device):
        raise SettingsError("device", "be one of cpu, cuda, cuda:N (N = GPU index) or mps", device)
    threads = _require_int("torch_threads", s.torch_threads)
    if threads < 0:
        raise SettingsError("torch_threads", "be >= 0 (0 = automatic)", threads)
    nice = _require_int("worker_nice", s.worker_nice)
    if not 0 <= nice <= 19:
        raise SettingsError("worker_nice", "be within 0..19 (0 = the workers run at the control thread's priority)",
                            nice)
    _require_float("control_rate_hz", s.control_rate_hz, minimum=0.0, inclusive=False)

    keys = _require_str_list("camera_keys", s.camera_keys, allow_empty=False)
    for key in keys:
        if not key.startswith(CAMERA_KEY_PREFIX) or len(key) == len(CAMERA_KEY_PREFIX):
            raise SettingsError(
                "camera_keys", "contain policy image keys of the form 'observation.images.<name>'", key)
    _require_unique("camera_keys", keys)
    names = [camera_name(k) for k in keys]
    if len(set(names)) != len(names):
        raise SettingsError(
            "camera_keys", "give distinct short camera names (used in topic names)", Raw(f"{fmt(keys)} -> {fmt(names)}"))
    n_cam = len(keys)
    topics = _require_str_list("camera_topics", s.camera_topics)
    _require_len("camera_topics", topics, n_cam, "camera key")
    for t in topics:
        _check_topic("camera_topics", t)
    _require_unique("camera_topics", topics)
    transports = _require_str_list("camera_transports", s.camera_transports)
    _require_len("camera_transports", transports, n_cam, "camera key")
    for t in transports:
        _require_choice("camera_transports", t, CAMERA_TRANSPORTS, what="contain only")

    _check_topic("joint_state_topic", _require_str("joint_state_topic", s.joint_state_topic))
    joints = _require_str_list("joint_names", s.joint_names, allow_empty=False)
    _require_unique("joint_names", joints)
    n_j = len(joints)
    scale = _require_float_list("joint_scale", s.joint_scale, n_j)
    if any(v == 0.0 for v in scale):
        raise SettingsError("joint_scale", "contain non-zero factors (policy = ros * scale + offset)", s.joint_scale)
    _require_float_list("joint_offset", s.joint_offset, n_j)
    if s.command_offset:  # empty: 0 for every joint
        _require_float_list("command_offset", s.command_offset, n_j)
    lower = _require_float_list("joint_lower_limits", s.joint_lower_limits, n_j)
    upper = _require_float_list("joint_upper_limits", s.joint_upper_limits, n_j)
    for j, (lo, hi) in enumerate(zip(lower, upper)):
        if not lo < hi:
            raise SettingsError("joint_upper_limits", f"be greater than joint_lower_limits for joint '{joints[j]}'",
                                Raw(f"lower={lo!r} upper={hi!r}"))
    _require_float("joint_limit_tolerance", s.joint_limit_tolerance, minimum=0.0)
    steps = _require_float_list("max_joint_step", s.max_joint_step, n_j)
    for j, v in enumerate(steps):
        if v <= 0.0:
            raise SettingsError(
                "max_joint_step", f"be > 0 for every joint (ROS units per tick; use a large value such as 10.0 to "
                f"effectively disable it), joint '{joints[j]}'", v)

    for name in ("joint_convention", "calibration_file"):
        if not isinstance(getattr(s, name), str):
            raise SettingsError(name, "be a string (empty = none)", getattr(s, name))
    if s.joint_convention:
        _require_choice("joint_convention", s.joint_convention, JOINT_CONVENTION_NAMES, what="be empty or one of")
    if s.calibration_file and not s.joint_convention:
        raise SettingsError("joint_convention", "name the ROS driver's convention (lerobot_radians or urdf_range) when "
                            "calibration_file is set", s.joint_convention)
    _require_choice("policy_joint_units", _require_str("policy_joint_units", s.policy_joint_units),
                    ("degrees", "range_m100_100"))
    _require_float("training_range_margin", s.training_range_margin, minimum=0.0)
    _require_choice("out_of_range_policy", _require_str("out_of_range_policy", s.out_of_range_policy),
                    OUT_OF_RANGE_POLICIES)
    _require_float("image_stats_tolerance", s.image_stats_tolerance, minimum=0.0)

    if s.env_state_topic:
        _check_topic("env_state_topic", s.env_state_topic)
        if s.env_state_topic in topics or s.env_state_topic == s.joint_state_topic:
            raise SettingsError("env_state_topic", "differ from the camera and joint-state topics", s.env_state_topic)
    _require_choice("env_state_type", _require_str("env_state_type", s.env_state_type), ENV_STATE_TYPES)
    for name in ("env_state_scale", "env_state_offset", "env_sensitivity_deltas"):
        values = getattr(s, name)
        if not isinstance(values, list) or any(not _is_number(v) or not math.isfinite(v) for v in values):
            raise SettingsError(name, "be a list of finite numbers, one per env-state value (empty = default)", values)
    if any(v == 0 for v in s.env_state_scale):
        raise SettingsError("env_state_scale", "contain non-zero factors", s.env_state_scale)
    if any(v == 0 for v in s.env_sensitivity_deltas):
        raise SettingsError("env_sensitivity_deltas", "contain non-zero perturbations", s.env_sensitivity_deltas)
    _require_float("max_input_age_s", s.max_input_age_s, minimum=0.0, inclusive=False)
    _require_float("max_camera_skew_s", s.max_camera_skew_s, minimum=0.0)
    _require_float("plan_survives_gap_s", s.plan_survives_gap_s, minimum=0.0)
    _require_bool("fresh_frames_every_tick", s.fresh_frames_every_tick)
    _require_bool("image_resize", s.image_resize)
    _check_topic("action_topic", _require_str("action_topic", s.action_topic))
    _require_choice("action_type", _require_str("action_type", s.action_type), ACTION_TYPES)
    _require_bool("publish_actions", s.publish_actions)
    if _require_int("max_consecutive_tick_errors", s.max_consecutive_tick_errors) < 1:
        raise SettingsError("max_consecutive_tick_errors", "be an integer >= 1", s.max_consecutive_tick_errors)
    methods = _require_str_list("side_methods", s.side_methods)
    for m in methods:
        _require_choice("side_methods", m, SIDE_METHODS, what="contain only")
    _require_unique("side_methods", methods)
    if s.side_rate_hz != "auto":
        rate = s.side_rate_hz
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate) or rate < 0:
            raise SettingsError("side_rate_hz", "be auto (from the measured forward times) or a rate in Hz >= 0 "
                                "(0 = off)", rate)
    _require_float("occlusion_rate_hz", s.occlusion_rate_hz, minimum=0.0)
    _require_choice("inference", _require_str("inference", s.inference), INFERENCE_MODES)
    _require_float("chunk_size_threshold", s.chunk_size_threshold, minimum=0.0, maximum=1.0)
    _require_choice("aggregate_fn", _require_str("aggregate_fn", s.aggregate_fn), AGGREGATE_FNS)
    parse_attribution_target(_require_str("attribution_target", s.attribution_target), joints)
    for name in ("smoothgrad_samples", "occlusion_patch_px", "occlusion_stride_px"):
        if _require_int(name, getattr(s, name)) < 0:
            raise SettingsError(name, "be an integer >= 0 (0 = default)", getattr(s, name))
    parse_gradcam_target(_require_str("gradcam_target", s.gradcam_target), joints)
    layer = _require_str("gradcam_layer", s.gradcam_layer)
    if not _LAYER_RE.match(layer):
        raise SettingsError("gradcam_layer", "be a backbone module name such as 'layer4'", layer)
    _require_float("overlay_alpha", s.overlay_alpha, minimum=0.0, maximum=1.0)
    _require_choice("overlay_scale", _require_str("overlay_scale", s.overlay_scale), OVERLAY_SCALES)
    _require_choice("input_qos", _require_str("input_qos", s.input_qos), INPUT_QOS)
    _require_int("attention_decoder_layer", s.attention_decoder_layer)
    heads = s.attention_heads
    if not isinstance(heads, list) or any(isinstance(h, bool) or not isinstance(h, int) or h < 0 for h in heads):
        raise SettingsError("attention_heads", "be a list of head indices >= 0 (empty = all heads)", Raw(fmt(heads)))
    _require_unique("attention_heads", heads)
    q = s.attention_query
    if not (q == "executed" or (isinstance(q, int) and not isinstance(q, bool) and q >= -1)):
        raise SettingsError("attention_query", "be executed, -1 (all queries) or a decoder query index >= 0", q)
    _require_float("diagnostics_period_s", s.diagnostics_period_s, minimum=0.0, inclusive=False)


def warnings(s: NodeSettings) -> list[str]:
    """Non-fatal hints worth logging once (valid but probably not what was meant)."""
    out: list[str] = []
    for key, topic, transport in zip(s.camera_keys, s.camera_topics, s.camera_transports):
        if transport == "compressed" and not topic.rstrip("/").endswith("compressed"):
            out.append(f"camera '{key}' uses transport 'compressed' but its topic '{topic}' does not end "
                       f"in '/compressed'; camera_topics must be the exact CompressedImage topic")
        if transport == "raw" and topic.rstrip("/").endswith("/compressed"):
            out.append(f"camera '{key}' topic '{topic}' looks like a CompressedImage topic; set its "
                       f"camera_transports entry to 'compressed'")
    if s.side_rate_hz != "auto" and s.side_rate_hz > s.control_rate_hz:
        out.append(f"side_rate_hz ({s.side_rate_hz}) > control_rate_hz ({s.control_rate_hz}); "
                   f"the side methods run at most once per control tick")
    if not s.publish_actions:
        out.append("publish_actions is false: observe-only, no actions are published")
    return out


# --------------------------------------------------------------------------------------------------
# Structured string parameters


@dataclass(frozen=True)
class GradCAMTargetSpec:
    """Parsed gradcam_target: `kind` in GRADCAM_TARGET_KINDS; `joint_index` (policy order) for 'joint'."""

    kind: str
    joint_index: int | None = None


@dataclass(frozen=True)
class AttributionTargetSpec:
    """Parsed attribution_target: `kind` in TARGET_KINDS; `joint_index` for the joint kinds."""

    kind: str
    joint_index: int | None = None


def parse_attribution_target(value: str, joint_names: Sequence[str]) -> AttributionTargetSpec:
    """Parse `executed | executed_joints | ... | executed_joint:<joint> | joint:<joint>` (name or index)."""
    expected = (f"be one of {', '.join(k for k in TARGET_KINDS if 'joint' not in k or k.endswith('s'))}, "
                f"executed_joint:<joint> or joint:<joint> with a joint from joint_names {fmt(list(joint_names))}")
    if not isinstance(value, str):
        raise SettingsError("attribution_target", expected, value)
    v = value.strip()
    kind, sep, ref = v.partition(":")
    if not sep and kind in TARGET_KINDS and kind not in JOINT_TARGET_KINDS:
        return AttributionTargetSpec(kind)
    if sep and kind in JOINT_TARGET_KINDS:
        ref = ref.strip()
        if ref in joint_names:
            return AttributionTargetSpec(kind, list(joint_names).index(ref))
        if re.fullmatch(r"\d+", ref) and int(ref) < len(joint_names):
            return AttributionTargetSpec(kind, int(ref))
    raise SettingsError("attribution_target", expected, value)


def parse_gradcam_target(value: str, joint_names: Sequence[str]) -> GradCAMTargetSpec:
    """Parse `first_action_sum | chunk_sum | chunk_l2 | joint:<name or index>`."""
    whole = [k for k in GRADCAM_TARGET_KINDS if k not in JOINT_TARGET_KINDS]
    expected = (f"be {', '.join(whole)} or joint:<name or index> with a joint from joint_names "
                f"{fmt(list(joint_names))}")
    if not isinstance(value, str):
        raise SettingsError("gradcam_target", expected, value)
    v = value.strip()
    if v in whole:
        return GradCAMTargetSpec(v)
    if v.startswith("joint:"):
        ref = v[len("joint:"):].strip()
        if ref in joint_names:
            return GradCAMTargetSpec("joint", list(joint_names).index(ref))
        if re.fullmatch(r"\d+", ref) and int(ref) < len(joint_names):
            return GradCAMTargetSpec("joint", int(ref))
    raise SettingsError("gradcam_target", expected, value)


# --------------------------------------------------------------------------------------------------
# Helpers


def _check_policy_path(value: Any) -> None:
    expected = ("be a LeRobot pretrained_model directory or a Hugging Face repo id like 'user/act_so101' "
                "(required: pass policy_path:=<dir or repo id>)")
    if not isinstance(value, str) or not value.strip():
        raise SettingsError("policy_path", expected, value)
    if Path(value).expanduser().is_dir():
        return
    if value.startswith(("/", ".", "~")) or not _HUB_REPO_RE.match(value):
        raise SettingsError("policy_path", expected, Raw(f"{value!r} (no such directory)"))


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
        raise SettingsError(name, "have at least one entry", Raw("an empty list"))
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
            raise SettingsError(name, "have distinct entries", Raw(f"{fmt(v)} twice in {fmt(value)}"))
        seen.add(v)


def _require_choice(name: str, value: str, choices: Sequence[str], *, what: str = "be one of") -> None:
    if value not in choices:
        raise SettingsError(name, f"{what} {', '.join(choices)}", value)


def _check_topic(name: str, topic: str) -> None:
    if not re.fullmatch(r"~?/?[A-Za-z_{][\w{}/]*", topic) or topic.endswith("/") or "//" in topic:
        raise SettingsError(
            name, "be a valid ROS topic name (letters, digits, '_' and '/', e.g. '/camera/front/image_raw')", topic)
