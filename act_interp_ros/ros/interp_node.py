"""``act_interp_node``: runs a LeRobot ACT policy each control tick and publishes what it looks at.

Callback groups (spun by a MultiThreadedExecutor, see ``main.py``):
  * control (reentrant + non-blocking lock): the control tick timer. A tick that fires while the
    previous one still runs is dropped and counted (``skipped.overrun``) instead of queued. (A busy
    mutually exclusive group would leave the timer "ready but not takeable", and rclpy's
    MultiThreadedExecutor then spins on it, starving the tick of the GIL: measured 2-10x slower.)
  * inputs (reentrant): subscriptions only store the latest message;
  * gradcam (reentrant + non-blocking lock): a run still going when the timer fires is skipped and
    counted, so GradCAM never piles up and never delays a tick beyond CPU contention;
  * diagnostics (mutually exclusive): /diagnostics.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import ParameterUninitializedException
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32
from std_srvs.srv import SetBool

from act_interp_ros.core import (
    AttentionOptions,
    GradCAM,
    GradCAMTarget,
    InterpretableACT,
    ObservationBuilder,
    ObservationError,
    PolicyLoadError,
    render_overlay,
)
from act_interp_ros.freshness import InputGate
from act_interp_ros.joint_mapping import JointMapping, JointMappingError
from act_interp_ros.ros.action_messages import ACTION_MESSAGE_TYPES, build_action_message
from act_interp_ros.ros.image_conversion import ImageDecodeError, backend_name, decode_image, encode_rgb_image
from act_interp_ros.ros.node_stats import NodeStats
from act_interp_ros.settings import NodeSettings, SettingsError, camera_name, parameter_specs

try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

NODE_NAME = "act_interp_node"
GRADCAM_FAIL_ENV = "ACT_INTERP_TEST_GRADCAM_FAIL"  # test hook: GradCAM raises, to prove control continues


def _stamp_s(msg) -> float | None:
    """Header stamp in seconds, None when nothing was received yet."""
    return None if msg is None else msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


class StartupError(RuntimeError):
    """Configuration that cannot work; the message names the parameter and the expected value."""


def output_topics(settings: NodeSettings, node_name: str = NODE_NAME) -> dict[str, str]:
    """Fully qualified topics the node publishes with ``settings`` (used by tests and the RViz check)."""
    base = f"/{node_name}"
    topics = {"proprio_attention": f"{base}/proprio_attention", "diagnostics": "/diagnostics"}
    for name in settings.camera_names:
        topics[f"attention/{name}"] = f"{base}/attention/{name}/overlay"
        topics[f"attention_share/{name}"] = f"{base}/attention/{name}/share"
        topics[f"gradcam/{name}"] = f"{base}/gradcam/{name}/overlay"
    action = settings.action_topic
    topics["action"] = f"{base}/{action[2:]}" if action.startswith("~/") else action
    return topics


@dataclass
class _Snapshot:
    """What GradCAM needs from the last tick that computed an action."""

    tick: int
    batch: dict
    frames: dict[str, np.ndarray]
    headers: dict[str, Any]


def read_settings(node: Node) -> NodeSettings:
    """Declare every NodeSettings field as a described ROS parameter, then read and validate them."""
    for spec in parameter_specs():
        # An empty-list default must be declared by type: rclpy would infer BYTE_ARRAY from [].
        default = spec.default if spec.default != [] else Parameter.Type[spec.ros_type]
        node.declare_parameter(spec.name, default, ParameterDescriptor(description=spec.description))
    values: dict[str, Any] = {}
    for spec in parameter_specs():
        try:
            values[spec.name] = node.get_parameter(spec.name).value
        except ParameterUninitializedException:  # declared by type and not set (e.g. `[]` in a file)
            values[spec.name] = None
    try:
        return NodeSettings.from_mapping(values)
    except SettingsError as exc:
        raise StartupError(str(exc)) from exc


def check_policy_matches(settings: NodeSettings, policy: InterpretableACT) -> None:
    """Camera keys and joint count must match the policy, else a StartupError naming the parameter."""
    if sorted(settings.camera_keys) != sorted(policy.camera_keys):
        raise StartupError(
            f"parameter 'camera_keys' must list the policy's cameras {list(policy.camera_keys)}, "
            f"got {settings.camera_keys}"
        )
    n = len(settings.joint_names)
    if policy.state_dim and n != policy.state_dim:
        raise StartupError(
            f"parameter 'joint_names' must have {policy.state_dim} joints (the policy's observation.state "
            f"size), got {n}: {settings.joint_names}"
        )
    if n != policy.action_dim:
        raise StartupError(
            f"parameter 'joint_names' must have {policy.action_dim} joints (the policy's action size), got {n}"
        )
    if policy.env_state_dim:
        raise StartupError(
            "the policy needs observation.environment_state, for which act_interp_node has no input topic; "
            "use act_interp_ros.core directly for such policies"
        )


class ActInterpNode(Node):
    """See the module docstring. Raises :class:`StartupError` for configuration that cannot work."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self.settings = s = read_settings(self)
        for warning in s.warnings():
            self.get_logger().warning(warning)
        try:
            target = s.gradcam_target_spec()
            attention = AttentionOptions(
                decoder_layer=s.attention_decoder_layer,
                heads=tuple(s.attention_heads) or None,
                query=None if s.attention_query < 0 else s.attention_query,
            )
        except SettingsError as exc:
            raise StartupError(str(exc)) from exc
        try:
            self.policy = InterpretableACT.from_pretrained(s.policy_path, device=s.device, attention=attention)
        except PolicyLoadError as exc:
            raise StartupError(f"parameter 'policy_path': {exc}") from exc
        except ValueError as exc:  # attention options out of range for this model
            raise StartupError(f"attention parameters: {exc}") from exc
        check_policy_matches(s, self.policy)
        self.gradcam_target = GradCAMTarget(target.kind, target.joint_index)
        try:
            self.gradcam = GradCAM(self.policy.policy, s.gradcam_layer) if s.gradcam_rate_hz > 0 else None
        except ValueError as exc:
            raise StartupError(f"parameter 'gradcam_layer': {exc}") from exc
        self.builder = ObservationBuilder(self.policy.config, resize=s.image_resize)
        self.mapping = JointMapping.from_settings(s)
        self.gate = InputGate.from_settings(s)
        self.stats = NodeStats(1.0 / s.control_rate_hz)
        self.topics = output_topics(s, self.get_name())
        self.commands_enabled = True
        # Newest message per input topic (written by subscription callbacks, read once per tick) and the
        # control thread's decode cache {topic: (msg, rgb)} so a frame reused by two ticks is decoded once.
        self._latest: dict[str, Any] = {t: None for t in [*s.camera_topics, s.joint_state_topic]}
        self._decoded: dict[str, tuple[Any, np.ndarray]] = {}
        self._snapshot: _Snapshot | None = None
        self._gradcam_lock = threading.Lock()
        self._tick_lock = threading.Lock()
        self._last_gradcam_tick = -1
        self._tick_index = 0
        self._warned_at: dict[str, float] = {}
        self._create_interfaces()
        self.get_logger().info(
            f"ACT policy from {s.policy_path} on {s.device}; cameras {dict(zip(s.camera_keys, s.camera_topics))}; "
            f"control {s.control_rate_hz:g} Hz; GradCAM {s.gradcam_rate_hz:g} Hz; image conversion: "
            f"{backend_name()}; actions: {'observe-only' if not s.publish_actions else s.action_type + ' on ' + self.topics['action']}"
        )

    # ------------------------------------------------------------------------------------ set-up
    def _create_interfaces(self) -> None:
        s = self.settings
        inputs, control = ReentrantCallbackGroup(), ReentrantCallbackGroup()
        qos = qos_profile_sensor_data if s.input_qos == "sensor_data" else QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE)
        for key, topic, transport in zip(s.camera_keys, s.camera_topics, s.camera_transports):
            msg_type = CompressedImage if transport == "compressed" else Image
            self._subscribe(msg_type, topic, qos, inputs)
        self._subscribe(JointState, s.joint_state_topic, qos, inputs)

        self.pub_proprio = self.create_publisher(Float32, "~/proprio_attention", 10)
        self.pub_attention = {
            key: self.create_publisher(Image, f"~/attention/{camera_name(key)}/overlay", 2) for key in s.camera_keys
        }
        self.pub_share = {
            key: self.create_publisher(Float32, f"~/attention/{camera_name(key)}/share", 10) for key in s.camera_keys
        }
        self.pub_gradcam = {
            key: self.create_publisher(Image, f"~/gradcam/{camera_name(key)}/overlay", 2) for key in s.camera_keys
        }
        self.pub_action = (
            self.create_publisher(ACTION_MESSAGE_TYPES[s.action_type], s.action_topic, 10) if s.publish_actions else None
        )
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(SetBool, "~/enable_commands", self._on_enable_commands)

        self.create_timer(1.0 / s.control_rate_hz, self._on_tick, callback_group=control)
        if self.gradcam is not None:
            self.create_timer(1.0 / s.gradcam_rate_hz, self._on_gradcam, callback_group=ReentrantCallbackGroup())
        self.create_timer(s.diagnostics_period_s, self._publish_diagnostics,
                          callback_group=MutuallyExclusiveCallbackGroup())

    def _subscribe(self, msg_type, topic: str, qos, group) -> None:
        def on_message(msg, topic=topic) -> None:
            self._latest[topic] = msg

        def on_incompatible_qos(event, topic=topic) -> None:
            self.stats.count(self.stats.qos_incompatible, topic)
            self.get_logger().warning(
                f"incompatible QoS on {topic}: a publisher offers a policy this subscription "
                f"({self.settings.input_qos}) cannot match (policy id {event.last_policy_kind}); "
                "set input_qos (sensor_data = best effort, reliable) to match your driver"
            )

        self.create_subscription(
            msg_type, topic, on_message, qos, callback_group=group,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=on_incompatible_qos),
        )

    # ------------------------------------------------------------------------------- control tick
    def _on_tick(self) -> None:
        if not self._tick_lock.acquire(blocking=False):
            self.stats.count(self.stats.skipped, "overrun")  # the previous tick is still running
            return
        try:
            self._tick()
        finally:
            self._tick_lock.release()

    def _tick(self) -> None:
        stats, s = self.stats, self.settings
        stats.tick_started()
        started = time.perf_counter()
        now = self.get_clock().now()
        self._tick_index += 1
        msgs = dict(self._latest)  # one consistent set of inputs for this tick
        stamps = {topic: _stamp_s(msg) for topic, msg in msgs.items()}
        decision = self.gate.check(now.nanoseconds * 1e-9, stamps, s.camera_topics)
        if not decision.ok:
            stats.count(stats.skipped, decision.kind)
            self._warn_throttled(decision.kind, f"no action this tick: {decision.reason}")
            return
        try:
            frames = {key: self._frame(topic, msgs[topic]) for key, topic in zip(s.camera_keys, s.camera_topics)}
            joint_msg = msgs[s.joint_state_topic]
            joints_ros = self.mapping.from_joint_state(joint_msg.name, joint_msg.position)
            observation = self.builder.build(frames, self.mapping.ros_to_policy(joints_ros))
        except (ImageDecodeError, JointMappingError, ObservationError) as exc:
            kind = {ImageDecodeError: "image", ObservationError: "observation"}.get(type(exc), "joint_state")
            stats.count(stats.bad_input, kind)
            stats.count(stats.skipped, "bad_input")
            self._warn_throttled(kind, f"bad input, no action this tick: {exc}")
            return
        t_inf = time.perf_counter()
        step = self.policy.step(observation, force_model_run=True)
        stats.inference.add(time.perf_counter() - t_inf)
        if not np.all(np.isfinite(step.action)):
            stats.count(stats.skipped, "nonfinite_action")
            self._warn_throttled("nonfinite_action", f"policy produced a non-finite action {step.action}; not sent")
            return
        with stats.lock:
            stats.ticks_ok += 1
        headers = {key: msgs[t].header for key, t in zip(s.camera_keys, s.camera_topics)}
        self._snapshot = _Snapshot(self._tick_index, step.batch, frames, headers)
        self._command(step.action, joints_ros, now)
        self._publish_interpretation(step.interpretation, frames, headers)
        stats.tick_work.add(time.perf_counter() - started)

    def _command(self, action_policy: np.ndarray, joints_ros: np.ndarray, now) -> None:
        stats = self.stats
        if self.pub_action is None or not self.commands_enabled:
            with stats.lock:
                stats.actions_held += 1
            return
        limited, clamped = self.mapping.limit(self.mapping.policy_to_ros(action_policy), joints_ros)
        msg = build_action_message(
            self.settings.action_type, self.settings.joint_names, limited, now.to_msg(), 1.0 / self.settings.control_rate_hz
        )
        self.pub_action.publish(msg)
        with stats.lock:
            stats.actions_published += 1
            stats.actions_clamped += int(clamped)

    def _publish_interpretation(self, interp, frames, headers) -> None:
        proprio = interp.fractions.get("state", 0.0)
        self.pub_proprio.publish(Float32(data=float(proprio)))
        for key, pub in self.pub_share.items():
            pub.publish(Float32(data=float(interp.fractions[key])))
        for key, pub in self.pub_attention.items():
            if pub.get_subscription_count() == 0:
                continue  # rendering costs ~ms per camera: only while someone watches
            label = f"{camera_name(key)} attn {100 * interp.fractions[key]:.0f}% | proprio {100 * proprio:.0f}%"
            overlay = render_overlay(
                frames[key], interp.camera_maps[key], alpha=self.settings.overlay_alpha,
                border=interp.proprio, label=label,
            )
            pub.publish(encode_rgb_image(overlay, headers[key]))

    # ------------------------------------------------------------------------------------ GradCAM
    def _on_gradcam(self) -> None:
        stats = self.stats
        if not self._gradcam_lock.acquire(blocking=False):
            with stats.lock:
                stats.gradcam_skipped_busy += 1
            return
        try:
            snap = self._snapshot
            if snap is None or snap.tick == self._last_gradcam_tick:
                with stats.lock:
                    stats.gradcam_skipped_no_data += 1
                return
            self._last_gradcam_tick = snap.tick
            started = time.perf_counter()
            if os.environ.get(GRADCAM_FAIL_ENV):
                raise RuntimeError(f"GradCAM failure injected by {GRADCAM_FAIL_ENV} (test hook)")
            maps = self.gradcam.attribute(snap.batch, self.gradcam_target)[0]
            with stats.lock:
                stats.gradcam_runs += 1
            stats.gradcam_latency.add(time.perf_counter() - started)
            for key, pub in self.pub_gradcam.items():
                if pub.get_subscription_count() == 0:
                    continue
                overlay = render_overlay(snap.frames[key], maps[key], alpha=self.settings.overlay_alpha,
                                         label=f"{camera_name(key)} GradCAM")
                pub.publish(encode_rgb_image(overlay, snap.headers[key]))
        except Exception as exc:  # noqa: BLE001 - a GradCAM failure must never stop control
            with stats.lock:
                stats.gradcam_failures += 1
            self._warn_throttled("gradcam", f"GradCAM failed (control continues): {type(exc).__name__}: {exc}")
        finally:
            self._gradcam_lock.release()

    # ----------------------------------------------------------------------------- service, diag
    def _on_enable_commands(self, request, response):
        if request.data and not self.commands_enabled:
            self.policy.reset()  # queued actions were planned before the pause: never replay them
        self.commands_enabled = bool(request.data)
        response.success = True
        response.message = "commanding enabled" if request.data else "commanding paused: no actions are published"
        self.get_logger().info(response.message)
        return response

    def _publish_diagnostics(self) -> None:
        extra = {
            "device": self.settings.device,
            "image_backend": backend_name(),
            "commands_enabled": str(self.commands_enabled).lower(),
            "publish_actions": str(self.settings.publish_actions).lower(),
        }
        status = self.stats.status(f"{self.get_name()}: control", self.settings.policy_path, extra)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(msg)

    # ---------------------------------------------------------------------------------- helpers
    def _frame(self, topic: str, msg) -> np.ndarray:
        cached = self._decoded.get(topic)
        if cached is not None and cached[0] is msg:
            return cached[1]
        frame = decode_image(msg)
        self._decoded[topic] = (msg, frame)
        return frame

    def _warn_throttled(self, key: str, text: str, period_s: float = 2.0) -> None:
        now = time.monotonic()
        if now - self._warned_at.get(key, -1e9) >= period_s:
            self._warned_at[key] = now
            self.get_logger().warning(text)
