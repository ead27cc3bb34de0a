"""Every parameter of `act_interp_node` (and of the offline replay): default, description, ROS type.

`NodeSettings` is the single source of truth: the node declares its ROS parameters from
`parameter_specs()`, the replay reads the same ROS 2 params file (`params_file.load_settings_yaml`), and
both validate with `validation.validate()`, so a bad value fails the same way offline and live.

ROS 2 parameters cannot hold lists of dicts, so per-camera and per-joint values are parallel arrays
(`camera_keys[i]` / `camera_topics[i]` / `camera_transports[i]`, `joint_names[j]` / `joint_scale[j]` ...).

Only the parameters marked `dynamic` may change while the node runs (`ros2 param set`); every other
parameter is declared read-only, so a set is refused with a reason instead of being accepted and ignored.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from act_interp_ros.settings import validation
from act_interp_ros.settings.errors import Raw, SettingsError
from act_interp_ros.settings.vocabulary import CAMERA_KEY_PREFIX, camera_name

__all__ = [
    "CAMERA_KEY_PREFIX",
    "DEFAULT_NODE_NAME",
    "NodeSettings",
    "ParameterSpec",
    "camera_name",
    "coerce_value",
    "parameter_defaults",
    "parameter_descriptions",
    "parameter_names",
    "parameter_specs",
]

DEFAULT_NODE_NAME = "act_interp_node"

SO101_JOINT_NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
RAD_TO_DEG = 57.29577951308232  # 180 / pi: radians (ROS) -> degrees (LeRobot SO-101)


def _param(default: Any, description: str, ros_type: str, *, dynamic: bool = False, any_type: bool = False) -> Any:
    """``any_type``: the ROS parameter takes values of several types (e.g. an integer or ``"executed"``)."""
    meta = {"description": description, "ros_type": ros_type, "dynamic": dynamic, "any_type": any_type}
    if isinstance(default, list):
        return field(default_factory=lambda d=tuple(default): list(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class NodeSettings:
    """All parameters of `act_interp_node` (and of the offline replay, which reads the same file).

    Units: joint values on ROS topics are radians (`sensor_msgs/JointState`); the policy sees
    `policy = ros * joint_scale + joint_offset` (degrees for the SO-101 arm joints, 0..100 gripper).
    Limits, the limit tolerance and max steps are in ROS units.
    """

    policy_path: str = _param(
        "", "LeRobot ACT pretrained_model directory or Hugging Face hub repo id (required).", "STRING")
    device: str = _param("cpu", "Torch device for the policy: cpu, cuda, cuda:N or mps.", "STRING")
    torch_threads: int = _param(
        0, "Torch intra-op threads for the policy (0 = automatic: OMP_NUM_THREADS if set, else half the usable CPUs, "
           "at least 1).", "INTEGER")
    worker_nice: int = _param(
        10, "Nice value added to the map and side-method worker threads (0-19; 0 = same priority as control), so "
            "interpretation yields the CPU to control and to the robot's other processes.", "INTEGER")
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
    command_offset: list[float] = _param(
        [], "Per joint, policy units the driver's command path adds beyond the inverse of its joint states; "
        "subtracted from every command; empty = 0 for every joint (nimiCurtis/so101_ros2 so101_ros2_bridge: 10 on the "
        "gripper).", "DOUBLE_ARRAY")
    joint_convention: str = _param(
        "", "Convention of the ROS driver's joint radians, to derive joint_scale/joint_offset: lerobot_radians (a "
        "bridge around LeRobot's SO101Follower) or urdf_range (calibrated ticks onto the URDF limits); empty = use "
        "joint_scale/joint_offset as given.", "STRING")
    calibration_file: str = _param(
        "", "LeRobot follower calibration JSON (calibration/robots/so101_follower/<id>.json) for joint_convention "
        "(empty = none; urdf_range needs it).", "STRING")
    policy_joint_units: str = _param(
        "degrees", "Units of the policy's body joints for joint_convention: degrees (LeRobot use_degrees, 0 at the "
        "middle of the calibrated range) or range_m100_100 (older datasets); the gripper is 0..100.", "STRING")
    joint_lower_limits: list[float] = _param(
        [-1.92, -1.92, -1.92, -1.92, -2.74, 0.0],
        "Per joint lower command limit in ROS units (rad).", "DOUBLE_ARRAY")
    joint_upper_limits: list[float] = _param(
        [1.92, 1.92, 1.92, 1.92, 2.74, 1.745],
        "Per joint upper command limit in ROS units (rad).", "DOUBLE_ARRAY")
    joint_limit_tolerance: float = _param(
        0.05, "A joint state further than this outside its limits is bad input: no action that tick (ROS units, "
        ">= 0).", "DOUBLE")
    max_joint_step: list[float] = _param(
        [0.1] * 6, "Per joint max command change from the current position per tick, ROS units (> 0).",
        "DOUBLE_ARRAY")
    training_range_margin: float = _param(
        0.1, "Training-range guard: each joint / env-state value (policy units) is compared with the checkpoint's "
        "training min/max widened by this fraction of the range on each side (>= 0).", "DOUBLE")
    out_of_range_policy: str = _param(
        "warn", "A tick whose joint or env state is outside the training range: warn (count, /diagnostics WARN, act) "
        "or skip (bad input: no action).", "STRING")
    image_stats_tolerance: float = _param(
        1.0, "Flag (never skip) a camera whose per-channel frame mean is more than this many training stds from "
        "the checkpoint's training mean (0 = off).", "DOUBLE")
    env_state_topic: str = _param(
        "", "Environment-state topic (e.g. pickup coordinates) for policies with observation.environment_state "
        "(empty = none).", "STRING")
    env_state_type: str = _param(
        "point_stamped", "Environment-state message: point_stamped (geometry_msgs/PointStamped: x, y, z) or "
        "float64_multi_array (std_msgs/Float64MultiArray: data; unstamped, judged by arrival time).", "STRING")
    env_state_scale: list[float] = _param(
        [], "Per env-state value: policy = ros * scale + offset (empty = 1 for every value).", "DOUBLE_ARRAY")
    env_state_offset: list[float] = _param(
        [], "Per env-state value offset in policy units (empty = 0 for every value).", "DOUBLE_ARRAY")
    env_sensitivity_deltas: list[float] = _param(
        [], "Perturbation per env-state value, policy units, for ~/env_state_sensitivity (empty = 0.01 each).",
        "DOUBLE_ARRAY")
    max_input_age_s: float = _param(
        0.25, "Skip a tick when any input header stamp is older than this (s, ROS time).", "DOUBLE")
    max_camera_skew_s: float = _param(
        0.1, "Skip a tick when camera header stamps differ by more than this (s).", "DOUBLE")
    plan_survives_gap_s: float = _param(
        0.1, "A plan (action queue) survives ticks skipped as stale or skew for at most this long in a row; the "
        "actions planned for them are dropped (LeRobot's async rule). Longer gaps and any other skip start a fresh "
        "plan; 0 = every skipped tick does (s).", "DOUBLE")
    fresh_frames_every_tick: bool = _param(
        False, "true: every tick needs fresh, in-step camera frames. false (LeRobot's rule): only a tick that runs "
        "the policy's forward does; a tick whose action comes from the queue reads no frame, needs only a fresh, "
        "valid joint state (the limits' reference) and acts when its frames are late (counted as "
        "acted_on_late_frames).", "BOOL")
    image_resize: bool = _param(
        True, "true: resize images to the policy's size (warn once); false: reject them as bad input.", "BOOL")
    action_topic: str = _param("~/joint_command", "Topic for the commanded joint positions.", "STRING")
    action_type: str = _param(
        "joint_state", "Action message: joint_state, float64_multi_array or joint_trajectory.", "STRING")
    publish_actions: bool = _param(
        True, "false = observe-only: run the policy but publish no actions (dynamic; true again starts a fresh "
        "plan).", "BOOL", dynamic=True)
    inference: str = _param(
        "sync", "sync: a forward on the control thread when the action queue is empty (actions bit-identical to "
        "the unwrapped policy's); async: LeRobot's async inference, the next chunk computed on a worker when the "
        "queue falls to chunk_size_threshold, overlaps merged with aggregate_fn (action-queue policies only; "
        "live only, replays are sync).", "STRING")
    chunk_size_threshold: float = _param(
        0.5, "inference async: request the next chunk when the queue holds at most this fraction of a chunk "
        "(0..1; LeRobot's default 0.5).", "DOUBLE")
    aggregate_fn: str = _param(
        "weighted_average", "inference async: how an action of a new chunk merges with the queued action of the "
        "same timestep (LeRobot's names): weighted_average (0.3 old + 0.7 new), latest_only, average, "
        "conservative (0.7 old + 0.3 new).", "STRING")
    max_consecutive_tick_errors: int = _param(
        5, "After this many consecutive failed ticks commands stop until a clean tick and /diagnostics says ERROR "
        "(>= 1).", "INTEGER")
    side_methods: list[str] = _param(
        ["gradcam", "gradient_x_input"], "Attribution methods the side timer computes, each published as its own "
        "overlay: gradcam, gradient_x_input, integrated_gradients.", "STRING_ARRAY")
    side_rate_hz: float | str = _param(
        "auto", "Side timer rate for side_methods: auto (the highest of 2, 1, 0.5, 0.2, 0.1, 0.05 Hz using at most half "
        "the CPU left by control and maps, from the forward times measured at start; 0 when a side method is longer "
        "than the gap between control forwards; docs/realtime.md) or Hz (0 = off; at most control_rate_hz); "
        "dynamic.", "DOUBLE", dynamic=True, any_type=True)
    occlusion_rate_hz: float = _param(
        0.0, "Rate in Hz of pixel occlusion maps, its own timer (0 = off; hundreds of forwards per map; dynamic).",
        "DOUBLE", dynamic=True)
    attribution_target: str = _param(
        "executed", "What the pixel methods explain: executed (the executed part of the action chunk), "
        "executed_joints, executed_sum, executed_joint:<joint>, first_action_sum, joint:<joint>, chunk_sum, chunk_l2.",
        "STRING")
    smoothgrad_samples: int = _param(
        0, "Noisy copies gradient_x_input averages (SmoothGrad; 0 = plain gradient x input).", "INTEGER")
    occlusion_patch_px: int = _param(
        0, "Occlusion patch side in pixels of the policy's image (0 = an eighth of the shorter side).", "INTEGER")
    occlusion_stride_px: int = _param(0, "Occlusion stride in pixels (0 = half the patch).", "INTEGER")
    gradcam_target: str = _param(
        "first_action_sum",
        "GradCAM target: first_action_sum, chunk_sum, chunk_l2 or joint:<name or index>.", "STRING")
    gradcam_layer: str = _param("layer4", "Backbone layer GradCAM hooks (ResNet: layer1..layer4).", "STRING")
    overlay_alpha: float = _param(0.5, "Heatmap opacity in the overlays, 0..1 (dynamic).", "DOUBLE", dynamic=True)
    overlay_scale: str = _param(
        "global", "Attention overlay scale: global (one scale for every camera) or per_camera (each map to its own "
        "peak; dynamic).", "STRING", dynamic=True)
    input_qos: str = _param(
        "sensor_data", "Input subscription QoS: sensor_data (best effort) or reliable.", "STRING")
    attention_decoder_layer: int = _param(
        -1, "ACT decoder layer whose cross-attention is shown (-1 = last).", "INTEGER")
    attention_heads: list[int] = _param(
        [], "Attention heads to average (empty = all heads).", "INTEGER_ARRAY")
    attention_query: int | str = _param(
        -1, "Decoder queries to average: -1 (all queries of the chunk), executed (the n_action_steps whose "
        "actions the robot executes) or one query index.", "INTEGER", any_type=True)
    diagnostics_period_s: float = _param(1.0, "Period of /diagnostics messages in seconds (> 0).", "DOUBLE")

    # ------------------------------------------------------------------ construction

    @classmethod
    def from_mapping(
        cls,
        values: Mapping[str, Any],
        *,
        validate: bool = True,
        source: str | None = None,
    ) -> NodeSettings:
        """Build settings from `{parameter: value}`; missing parameters keep their defaults.

        A value of None (a ROS parameter declared but not set, e.g. `[]` in a params file) keeps the
        default. Sequences (tuple, array.array from rclpy) become lists; integers are accepted where a
        float is expected (`control_rate_hz: 30`, `joint_offset: [0, 0, 0, 0, 0, 0]`), as ROS users write.
        Raises SettingsError for unknown names or bad values (after `validate()` when asked).
        """
        specs = {s.name: s for s in parameter_specs()}
        unknown = [k for k in values if k not in specs]
        if unknown:
            name = str(unknown[0])
            close = difflib.get_close_matches(name, list(specs), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SettingsError(
                name, f"be a known parameter{hint}; valid names: {', '.join(specs)}", Raw("an unknown name"),
                source=source)
        kwargs = {name: coerce_value(specs[name], value) for name, value in values.items() if value is not None}
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

    def validate(self) -> NodeSettings:
        """Check every parameter; raise SettingsError naming the first bad one. Returns self."""
        validation.validate(self)
        return self

    def warnings(self) -> list[str]:
        """Non-fatal hints worth logging once (valid but probably not what was meant)."""
        return validation.warnings(self)

    # ------------------------------------------------------------------ derived values

    @property
    def camera_names(self) -> list[str]:
        """Short camera names used in topic names (`observation.images.front` -> `front`)."""
        return [camera_name(k) for k in self.camera_keys]

    def gradcam_target_spec(self):
        """Parsed `gradcam_target` (joint names resolved to policy indices)."""
        return validation.parse_gradcam_target(self.gradcam_target, self.joint_names)

    def attribution_target_spec(self):
        """Parsed `attribution_target` (joint names resolved to policy indices)."""
        return validation.parse_attribution_target(self.attribution_target, self.joint_names)


# --------------------------------------------------------------------------------------------------
# Parameter metadata


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter: `ros_type` is a `rclpy.Parameter.Type` member name (e.g. "DOUBLE_ARRAY").

    `dynamic`: may change while the node runs; all other parameters are declared read-only.
    """

    name: str
    default: Any
    description: str
    ros_type: str
    dynamic: bool = False
    any_type: bool = False


def parameter_specs() -> list[ParameterSpec]:
    """Every parameter in declaration order, with default, description, ROS type and flags."""
    defaults = NodeSettings()
    return [ParameterSpec(f.name, getattr(defaults, f.name), f.metadata["description"], f.metadata["ros_type"],
                          f.metadata["dynamic"], f.metadata["any_type"])
            for f in dataclasses.fields(NodeSettings)]


def parameter_names() -> list[str]:
    return [f.name for f in dataclasses.fields(NodeSettings)]


def parameter_descriptions() -> dict[str, str]:
    """`{parameter: one-line description}` for ParameterDescriptor(description=...) and docs."""
    return {f.name: f.metadata["description"] for f in dataclasses.fields(NodeSettings)}


def parameter_defaults() -> dict[str, Any]:
    return NodeSettings().to_mapping()


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def coerce_value(spec: ParameterSpec, value: Any) -> Any:
    """Normalise a value for `spec`: containers become lists, integers become floats where a float is due.

    Anything else is returned unchanged for `validate()` to report with the right message.
    """
    t = spec.ros_type
    if t.endswith("_ARRAY"):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence) and not hasattr(
                value, "tolist"):
            return value
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        if t == "DOUBLE_ARRAY":
            items = [float(v) if _is_int(v) else v for v in items]
        return items
    if t == "DOUBLE" and _is_int(value):
        return float(value)
    if spec.any_type and t == "DOUBLE" and isinstance(value, str) and re.fullmatch(
            r"-?(\d+\.?\d*|\.\d+)([eE]-?\d+)?", value.strip()):
        return float(value)  # "0.5" on a command line means 0.5 Hz
    if spec.any_type and isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)  # "3" on a command line means the query index 3
    return value
