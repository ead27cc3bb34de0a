"""The output contract: every topic the node publishes (and the replay records), its type and content.

One list, used by the node's publishers, the replay's output bag, the demo's recorder, the RViz-config
check and the README's topic table (a test keeps the README equal to :meth:`OutputContract.markdown`).
Names starting with ``~/`` live in the node's private namespace (``/act_interp_node/...``).

Stamping rules (what each carries):
* overlays: ``header`` = the source camera image's header (stamp and frame_id), rgb8 at the source size,
  so RViz and bag players show each overlay next to the frame it explains;
* the action: ``header.stamp`` = the tick's ROS time (joint_state, joint_trajectory);
* ``~/tick_status``: one DiagnosticStatus per control tick - level OK (an action was computed) or WARN
  (skipped), message ``ok`` or the skip reason (``stale:/joint_states age=...``), values ``tick``,
  ``time_ns`` (the tick's ROS time) and ``stamp_ns<topic>`` (header stamp of each input the tick used, empty
  when none yet) - so a user (and the parity test) sees why each tick did or did not act, and on what.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from act_interp_ros.pipeline.side_methods import LABELS
from act_interp_ros.settings import DEFAULT_NODE_NAME, NodeSettings

__all__ = [
    "ACTION_MESSAGE_TYPES",
    "DIAGNOSTIC_ARRAY",
    "DIAGNOSTIC_STATUS",
    "FLOAT32",
    "IMAGE",
    "Output",
    "OutputContract",
    "output_contract",
]

IMAGE = "sensor_msgs/msg/Image"
FLOAT32 = "std_msgs/msg/Float32"
DIAGNOSTIC_STATUS = "diagnostic_msgs/msg/DiagnosticStatus"
DIAGNOSTIC_ARRAY = "diagnostic_msgs/msg/DiagnosticArray"
#: action_type -> message type of the command.
ACTION_MESSAGE_TYPES = {
    "joint_state": "sensor_msgs/msg/JointState",  # position targets, e.g. for a LeRobot/feetech bridge
    "float64_multi_array": "std_msgs/msg/Float64MultiArray",  # ros2_control forward_command_controller
    "joint_trajectory": "trajectory_msgs/msg/JointTrajectory",  # ros2_control joint_trajectory_controller
}


@dataclass(frozen=True)
class Output:
    """One published topic.

    Attributes:
        key: stable identifier (``attention_overlay/front``, ``proprio_attention``, ``action`` ...).
        name: topic name, ``~/...`` (node-private) or absolute (``/diagnostics``).
        msg_type: ``package/msg/Type``.
        description: what it carries (one line, README table).
        camera: short camera name for per-camera outputs.
        method: the map's method for overlays (``attention``, ``gradcam`` ...).
        live_only: published by the node only (the replay's output bag has no such topic).
    """

    key: str
    name: str
    msg_type: str
    description: str
    camera: str | None = None
    method: str | None = None
    live_only: bool = False

    def topic(self, node_name: str = DEFAULT_NODE_NAME) -> str:
        """Fully qualified topic for a node named ``node_name`` (may include a namespace)."""
        if not self.name.startswith("~/"):
            return self.name
        return f"/{node_name.strip('/')}/{self.name[2:]}"


@dataclass(frozen=True)
class OutputContract:
    """The outputs of one configuration (cameras, state token, side methods, action type)."""

    outputs: tuple[Output, ...]

    def __iter__(self) -> Iterator[Output]:
        return iter(self.outputs)

    def get(self, key: str) -> Output:
        for o in self.outputs:
            if o.key == key:
                return o
        raise KeyError(f"no output '{key}'; have {[o.key for o in self.outputs]}")

    def __contains__(self, key: str) -> bool:
        return any(o.key == key for o in self.outputs)

    def topics(self, node_name: str = DEFAULT_NODE_NAME, *, offline: bool = False) -> dict[str, str]:
        """``{key: fully qualified topic}`` (``offline``: without the live-only outputs)."""
        return {o.key: o.topic(node_name) for o in self.outputs if not (offline and o.live_only)}

    def overlays(self, method: str | None = None) -> list[Output]:
        """Image outputs, optionally of one method, in camera order."""
        return [o for o in self.outputs if o.msg_type == IMAGE and (method is None or o.method == method)]

    def markdown(self) -> str:
        """README topic table: direction, topic, type, what."""
        rows = ["| Topic | Type | What |", "|---|---|---|"]
        for o in self.outputs:
            rows.append(f"| `{o.name}` | `{o.msg_type.replace('/msg/', '/')}` | {o.description} |")
        return "\n".join(rows)


def output_contract(
    settings: NodeSettings,
    *,
    has_state: bool = True,
    has_env_state: bool = False,
    camera_names: Sequence[str] | None = None,
) -> OutputContract:
    """The outputs for ``settings`` and a policy with/without the state and env-state tokens.

    ``camera_names`` replaces the per-camera names by placeholders for documentation (``["<cam>"]``).
    """
    cams = list(camera_names) if camera_names is not None else settings.camera_names
    out: list[Output] = []
    action = settings.action_topic
    out.append(Output("action", action, ACTION_MESSAGE_TYPES[settings.action_type],
                      "the policy's action in ROS units, inside the joint limits and max_joint_step of the current "
                      "position; header.stamp = tick time; absent while publish_actions is false"))
    out.append(Output("tick_status", "~/tick_status", DIAGNOSTIC_STATUS,
                      "every control tick: OK with message `ok` when an action was computed, else WARN with the skip "
                      "reason (`stale:/joint_states age=0.41s>0.25s`); values `tick`, `time_ns`, `stamp_ns<input topic>`"))
    if has_state:
        out.append(Output("proprio_attention", "~/proprio_attention", FLOAT32,
                          "share of the decoder's cross-attention on the joint-state token (0..1), every map"))
        out.append(Output("proprio_attention_lift", "~/proprio_attention/lift", FLOAT32,
                          "that share over a uniform distribution's (1.0 = uniform, 5.0 = five times)"))
    if has_env_state:
        out.append(Output("env_state_attention", "~/env_state_attention", FLOAT32,
                          "share of the decoder's cross-attention on the environment-state token (0..1)"))
        out.append(Output("env_state_attention_lift", "~/env_state_attention/lift", FLOAT32,
                          "that share over a uniform distribution's"))
        out.append(Output("env_state_sensitivity", "~/env_state_sensitivity", FLOAT32,
                          "change of the executed action chunk per unit of env-state change (action units per "
                          "env-state unit; side timer): ~0 = the coordinates are ignored, whatever the attention"))
    for cam in cams:
        out.append(Output(f"attention_share/{cam}", f"~/attention/{cam}/share", FLOAT32,
                          f"share of the decoder's cross-attention on camera {cam}'s tokens (with the other shares "
                          "sums to 1)", camera=cam))
        out.append(Output(f"attention_lift/{cam}", f"~/attention/{cam}/lift", FLOAT32,
                          f"camera {cam}'s share over its share of the tokens (raw shares mostly track token counts)",
                          camera=cam))
    for cam in cams:
        out.append(Output(f"attention_overlay/{cam}", f"~/attention/{cam}/overlay", IMAGE,
                          f"decoder cross-attention over camera {cam}'s frame, newest observation (rgb8, source "
                          "header and size); magenta border = proprio share", camera=cam, method="attention"))
    for cam in cams:
        out.append(Output(f"plan_overlay/{cam}", f"~/attention_plan/{cam}/overlay", IMAGE,
                          "attention of the forward pass whose chunk the robot is executing, over the frame it saw "
                          "(published when a new plan is made)", camera=cam, method="attention_plan"))
    for method in [*settings.side_methods, "occlusion"]:
        rate = "occlusion_rate_hz" if method == "occlusion" else "side_rate_hz"
        for cam in cams:
            out.append(Output(f"{method}_overlay/{cam}", f"~/{method}/{cam}/overlay", IMAGE,
                              f"{LABELS[method]} over camera {cam}'s frame ({rate})", camera=cam, method=method))
    out.append(Output("diagnostics", "/diagnostics", DIAGNOSTIC_ARRAY,
                      "rates, inference latency, skipped ticks by reason, bad input, actions published and "
                      "clamped, map and side-method counters; level from the recent window", live_only=True))
    return OutputContract(tuple(out))
