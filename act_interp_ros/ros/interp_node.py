"""``act_interp_node``: runs a LeRobot ACT policy at the control rate and publishes what it looks at.

This module only wires ROS to the ROS-free live loop (:mod:`act_interp_ros.runtime.live_loop`, which holds
the threads, the control tick and its safety rules): parameters, subscriptions (the newest message per
input), timers (control, side methods, occlusion, diagnostics), publishers, the pause service. The
executor's callbacks only hand work over; it never waits for torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, Float64MultiArray
from std_srvs.srv import SetBool

from act_interp_ros.inputs.env_state import EnvStateInput, has_header
from act_interp_ros.inputs.image_decoding import backend_name
from act_interp_ros.pipeline import SkipReason, TickSnapshot, header_stamp_ns, output_contract
from act_interp_ros.pipeline.contract import FLOAT32, IMAGE
from act_interp_ros.pipeline.output_values import action_message, tick_status_message
from act_interp_ros.ros.diagnostics import diagnostic_status
from act_interp_ros.ros.image_encoding import encode_rgb_image
from act_interp_ros.ros.messages import make_message, message_class
from act_interp_ros.ros.parameters import DynamicParameters, StartupError, declare_and_read
from act_interp_ros.ros.ros_logging import route_package_logging, unroute_package_logging
from act_interp_ros.runtime.live_loop import LiveLoop
from act_interp_ros.runtime.sink import LoopHooks
from act_interp_ros.settings import NodeSettings

try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

__all__ = ["NODE_NAME", "ActInterpNode", "StartupError"]

NODE_NAME = "act_interp_node"
ENV_STATE_CLASSES = {"point_stamped": PointStamped, "float64_multi_array": Float64MultiArray}


class ActInterpNode(Node):
    """See the module docstring. Raises :class:`StartupError` for configuration that cannot work.

    Args:
        hooks: test hooks for the live loop (tests inject faults here; production passes none).
    """

    def __init__(self, hooks: LoopHooks = LoopHooks(), **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._log_handler = route_package_logging(self.get_logger())
        self.loop = LiveLoop(declare_and_read(self), self, hooks)
        s, policy = self.settings, self.loop.policy
        self.contract = output_contract(s, has_state=policy.state_dim > 0, has_env_state=policy.env_state_dim > 0)
        self._latest: dict[str, Any] = {t: None for t in self.loop.pipeline.input_topics}
        self._cam_topics = dict(zip(s.camera_keys, s.camera_topics))
        self.pub_action = None
        self._create_interfaces()
        self._dynamic = DynamicParameters(self, lambda: self.settings, self._apply_settings)
        actions = (f"{s.action_type} on {self.contract.get('action').topic(self.get_fully_qualified_name())}"
                   if s.publish_actions else "observe-only")
        self.get_logger().info(
            f"ACT policy from {s.policy_path} on {s.device} ({self.loop.torch_threads} torch threads); cameras "
            f"{self._cam_topics}; control {s.control_rate_hz:g} Hz; side methods {s.side_methods} at "
            f"{self.loop.side_rate.hz:g} Hz, occlusion at {s.occlusion_rate_hz:g} Hz; image conversion: {backend_name()}; "
            f"warm-up {self.loop.warm_up_s:.2f} s; inference {s.inference}"
            + (f" (chunk_size_threshold {s.chunk_size_threshold:g}, aggregate_fn {s.aggregate_fn})"
               if s.inference == "async" else "") + f"; actions: {actions}")

    @property
    def settings(self) -> NodeSettings:
        return self.loop.settings

    # ------------------------------------------------------------------------------ interfaces
    def _create_interfaces(self) -> None:
        s = self.settings
        # Depth 1: the node uses the newest message of each input, so a reader keeps only that one. Under load
        # (the executor falling behind) a deeper queue makes it take and deserialise every older frame first,
        # and the inputs it sees fall further behind (stale / skew ticks).
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT if s.input_qos == "sensor_data" else
                         ReliabilityPolicy.RELIABLE)
        for topic, transport in zip(s.camera_topics, s.camera_transports):
            self._subscribe(CompressedImage if transport == "compressed" else Image, topic, qos)
        self._subscribe(JointState, s.joint_state_topic, qos)
        env_topic = self.loop.pipeline.env_topic
        if env_topic:
            self._subscribe(ENV_STATE_CLASSES[s.env_state_type], env_topic, qos, env_state=True)
        outputs = list(self.contract)
        self.pub_status = self.create_publisher(DiagnosticStatus, self.contract.get("tick_status").name, 10)
        self.pub_scalar = {o.key: self.create_publisher(Float32, o.name, 10) for o in outputs if o.msg_type == FLOAT32}
        self.pub_overlay = {o.key: self.create_publisher(Image, o.name, 2) for o in outputs if o.msg_type == IMAGE}
        if s.publish_actions:
            self._create_action_publisher()
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, self.contract.get("diagnostics").name, 10)
        self.create_service(SetBool, "~/enable_commands", self._on_enable_commands)
        self.create_timer(1.0 / s.control_rate_hz, self._on_control_timer)
        self.timers_side: dict[str, Any] = {"side": None, "occlusion": None}
        self._make_side_timer("side", self.loop.side_rate.hz)
        self._make_side_timer("occlusion", s.occlusion_rate_hz)
        self.create_timer(s.diagnostics_period_s, self._publish_diagnostics)

    def _create_action_publisher(self) -> None:
        if self.pub_action is None:
            self.pub_action = self.create_publisher(message_class(self.settings.action_type),
                                                    self.contract.get("action").name, 10)

    def _make_side_timer(self, which: str, rate_hz: float) -> None:
        """(Re)create the ``side`` or ``occlusion`` timer at ``rate_hz`` (0 = none)."""
        if self.timers_side[which] is not None:
            self.destroy_timer(self.timers_side[which])
            self.timers_side[which] = None
        if rate_hz > 0:
            self.timers_side[which] = self.create_timer(1.0 / rate_hz, lambda: self.loop.live_maps.side_timer(which))

    def _subscribe(self, msg_type, topic: str, qos, env_state: bool = False) -> None:
        stamped = has_header(self.settings.env_state_type)

        def on_message(msg, topic=topic) -> None:
            if not env_state:
                self._latest[topic] = msg
                stamp = header_stamp_ns(msg)
                if stamp:  # how late inputs reach the node (DDS delivery + executor): input_delay_* in diagnostics
                    self.loop.stats.input_delay.add((self.now_ns() - stamp) / 1e9)
            else:  # with its stamp: the header's, or the arrival time for an unstamped type
                self._latest[topic] = EnvStateInput(msg, header_stamp_ns(msg) if stamped else self.now_ns())

        def on_incompatible_qos(event, topic=topic) -> None:
            self.loop.stats.problem(f"qos_incompatible.{topic}", self.now_ns())
            self.get_logger().warning(
                f"incompatible QoS on {topic}: a publisher offers a policy this subscription "
                f"({self.settings.input_qos}) cannot match (policy id {event.last_policy_kind}); "
                "set input_qos (sensor_data = best effort, reliable) to match your driver")

        self.create_subscription(msg_type, topic, on_message, qos,
                                 event_callbacks=SubscriptionEventCallbacks(incompatible_qos=on_incompatible_qos))

    def _on_control_timer(self) -> None:
        # The snapshot is taken now, with the tick's time: a message arriving while the worker starts is not in it.
        env = self.loop.pipeline.env_topic
        self.loop.submit_tick(TickSnapshot(self.now_ns(), {k: self._latest[t] for k, t in self._cam_topics.items()},
                                           self._latest[self.settings.joint_state_topic],
                                           self._latest[env] if env else None))

    # ------------------------------------------------------------------ the live loop's sink
    def now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def watched(self, key: str) -> bool:
        pub = self.pub_overlay.get(key)
        return pub is not None and pub.get_subscription_count() > 0

    def scalar(self, key: str, value: float) -> None:
        if key in self.pub_scalar:
            self.pub_scalar[key].publish(Float32(data=value))

    def overlay(self, key: str, rgb: np.ndarray, source_header: Any) -> None:
        self.pub_overlay[key].publish(encode_rgb_image(rgb, source_header))

    def tick_status(self, tick: int, time_ns: int, reason: SkipReason | None,
                    stamps_ns: Mapping[str, int | None]) -> None:
        self.pub_status.publish(tick_status_message(make_message, node_name=self.get_name(), tick=tick,
                                                    hardware_id=self.settings.policy_path, time_ns=time_ns,
                                                    stamps_ns=stamps_ns, reason=reason))

    def action(self, command: np.ndarray, time_ns: int) -> None:
        s = self.settings
        self.pub_action.publish(action_message(make_message, s.action_type, s.joint_names, command, time_ns,
                                               1.0 / s.control_rate_hz))

    def diagnostics_now(self) -> None:
        self._publish_diagnostics()

    # ----------------------------------------------------------------- service, parameters, diag
    def _on_enable_commands(self, request, response):
        response.success, response.message = self.loop.enable_commands(bool(request.data))
        if response.success:  # separate call sites: rclpy's logger refuses two severities from one line
            self.get_logger().info(response.message)
        else:
            self.get_logger().warning(response.message)
        return response

    def _apply_settings(self, new: NodeSettings, changed: list[str]) -> None:
        if "publish_actions" in changed and new.publish_actions != self.settings.publish_actions:
            if new.publish_actions:
                self._create_action_publisher()
            self.get_logger().info(
                f"publish_actions is now {'true: commanding' if new.publish_actions else 'false: observe-only'}")
        self.loop.apply_settings(new, changed)
        if "side_rate_hz" in changed:
            self._make_side_timer("side", self.loop.side_rate.hz)
            self.get_logger().info(f"side_rate_hz is now {new.side_rate_hz}: side methods at {self.loop.side_rate.hz:g} "
                                   f"Hz ({self.loop.side_rate.reason})")
        if "occlusion_rate_hz" in changed:
            self._make_side_timer("occlusion", new.occlusion_rate_hz)
            self.get_logger().info(f"occlusion_rate_hz is now {new.occlusion_rate_hz:g}")
        for name in ("overlay_alpha", "overlay_scale"):
            if name in changed:
                self.get_logger().info(f"{name} is now {getattr(new, name)}")

    def _publish_diagnostics(self) -> None:
        s, loop = self.settings, self.loop
        extra = {
            "plan_resets": str(loop.step.plan_resets),
            "plan_gap_actions_dropped": str(loop.step.gap_actions_dropped + (
                loop.async_inference.gap_actions_dropped if loop.async_inference is not None else 0)),
            "device": s.device, "torch_threads": str(loop.torch_threads),
            "image_backend": backend_name(), "commands_enabled": str(loop.commands_enabled).lower(),
            "publish_actions": str(s.publish_actions).lower(),
            "side_rate_hz": f"{loop.side_rate.hz:g}",
            "maps_superseded_by_newer_tick": str(loop.live_maps.maps.dropped),
            **loop.window.values(),
            "inference": s.inference,
            **(loop.async_inference.values() if loop.async_inference is not None else {}),
        }
        status = diagnostic_status(loop.stats, f"{self.get_name()}: control", s.policy_path, self.now_ns(),
                                   loop.commanding, extra)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(msg)

    def destroy_node(self) -> None:
        if getattr(self, "loop", None) is not None:
            self.loop.close()
        unroute_package_logging(self._log_handler)
        super().destroy_node()
