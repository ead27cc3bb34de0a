"""In-process rclpy recorder of what the live ``act_interp_node`` publishes during the demo.

It subscribes to the node's outputs as the output contract names them (attention and side-method
overlays per camera, attention shares, proprio attention, every tick's status, ``/diagnostics``), keeps
them in memory with their header stamps, and answers "is the node up?" from the ROS graph. It runs with
``use_sim_time`` so times taken at receipt are bag time (``/clock``).

Memory: overlays are kept as decoded (H, W, 3) uint8 RGB arrays (about 0.9 MB per 640x480 frame; a
12 s demo with two cameras at 30 Hz holds about 0.7 GB). Encoding video while the bag plays would
compete with the node for the CPU, so it is done afterwards.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from act_interp_ros.inputs.image_decoding import decode_image
from act_interp_ros.pipeline import OutputContract
from act_interp_ros.settings import NodeSettings

logger = logging.getLogger(__name__)

DIAGNOSTICS_TOPIC = "/diagnostics"


@dataclass
class StampedFrame:
    """One overlay image: ``stamp_ns`` = its header stamp (= the source camera image's stamp)."""

    stamp_ns: int
    rgb: np.ndarray
    received_ns: int  # recorder's ROS (sim) time at receipt


@dataclass
class ScalarSample:
    """A Float32 value with the recorder's ROS (sim) time at receipt (the message has no header)."""

    received_ns: int
    value: float


@dataclass
class Recording:
    """Everything recorded, by camera short name; ``side[method][camera]`` for each side method."""

    attention: dict[str, list[StampedFrame]] = field(default_factory=lambda: defaultdict(list))
    side: dict[str, dict[str, list[StampedFrame]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    proprio: list[ScalarSample] = field(default_factory=list)
    camera_share: dict[str, list[ScalarSample]] = field(default_factory=lambda: defaultdict(list))
    ticks: list[tuple[int, int, str]] = field(default_factory=list)  # (tick, ROS time ns, "ok" or skip reason)
    diagnostics: list[tuple[int, dict[str, dict[str, str]]]] = field(default_factory=list)
    decode_errors: int = 0

    def overlay_counts(self) -> dict[str, dict[str, int]]:
        """{"attention": {camera: n}, <side method>: {camera: n}, ...}."""
        return {"attention": {c: len(v) for c, v in self.attention.items()},
                **{m: {c: len(v) for c, v in per_cam.items()} for m, per_cam in self.side.items()}}


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class DemoRecorder:
    """Subscribes to ``/<node_name>/...`` outputs on its own rclpy node (in ``context``).

    Args:
        context: an initialised rclpy Context (the demo's own, loopback-only).
        settings: the node's settings (its input topics).
        contract: the node's output contract (what to subscribe to).
        node_name: the live node's name (its private namespace holds the outputs).
        side: subscribe to the side-method overlays (``settings.side_methods``).
    """

    def __init__(self, context, settings: NodeSettings, contract: OutputContract, node_name: str = "act_interp_node",
                 side: bool = True) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter

        self.context = context
        self.settings = settings
        self.contract = contract
        self.cameras = list(settings.camera_names)
        self.node_name = node_name.strip("/").split("/")[-1]
        self.topics = contract.topics(node_name)
        self.side_methods = list(settings.side_methods) if side else []
        self.rec = Recording()
        self._lock = threading.Lock()
        self.node = rclpy.create_node(
            "act_interp_demo_recorder", context=context,
            parameter_overrides=[Parameter("use_sim_time", Parameter.Type.BOOL, True)],
        )
        self._subs: list[Any] = []
        self._executor = SingleThreadedExecutor(context=context)
        self._executor.add_node(self.node)
        self._thread: threading.Thread | None = None
        self._spinning = False

    # ------------------------------------------------------------------ topics
    def attention_topic(self, cam: str) -> str:
        return self.topics[f"attention_overlay/{cam}"]

    def side_topic(self, method: str, cam: str) -> str:
        return self.topics[f"{method}_overlay/{cam}"]

    @property
    def proprio_topic(self) -> str:
        return self.topics["proprio_attention"]

    @property
    def input_topics(self) -> list[str]:
        return [*self.settings.camera_topics, self.settings.joint_state_topic]

    def output_topics(self) -> list[str]:
        topics = [self.attention_topic(c) for c in self.cameras] + [self.proprio_topic, self.topics["tick_status"]]
        topics += [self.side_topic(m, c) for m in self.side_methods for c in self.cameras]
        return topics

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start spinning in a daemon thread (subscriptions are created by :meth:`subscribe`)."""
        self._spinning = True

        def spin() -> None:
            while self._spinning and self.context.ok():
                try:
                    self._executor.spin_once(timeout_sec=0.1)
                except Exception as exc:  # noqa: BLE001 - shutdown races end the loop
                    if self._spinning and self.context.ok():
                        logger.warning("recorder executor: %s", exc)
                    break

        self._thread = threading.Thread(target=spin, name="act_interp_demo_recorder", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop spinning and destroy the node (idempotent)."""
        self._spinning = False
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        try:
            self._executor.shutdown(timeout_sec=1.0)
        except Exception:  # noqa: BLE001
            pass
        if self.node is not None:
            try:
                self.node.destroy_node()
            except Exception:  # noqa: BLE001
                pass
            self.node = None

    # ------------------------------------------------------------------ readiness
    def graph_state(self) -> dict[str, int]:
        """Subscriber counts on the node's inputs and publisher counts on its outputs."""
        state = {t: self.node.count_subscribers(t) for t in self.input_topics}
        state.update({t: self.node.count_publishers(t) for t in self.output_topics()})
        return state

    def node_ready(self) -> bool:
        """The node subscribes to every input and publishes every output we record."""
        return all(v >= 1 for v in self.graph_state().values())

    def _output_qos(self, topic: str, depth: int):
        """Reliable when every publisher of ``topic`` is reliable (no loss), else best effort."""
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        infos = self.node.get_publishers_info_by_topic(topic)
        reliable = bool(infos) and all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                          reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                          durability=DurabilityPolicy.VOLATILE)

    def subscribe(self) -> None:
        """Create the subscriptions, matching each output's publisher QoS (call once the node is up)."""
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
        from sensor_msgs.msg import Image
        from std_msgs.msg import Float32

        node = self.node
        for cam in self.cameras:
            topic = self.attention_topic(cam)
            self._subs.append(node.create_subscription(
                Image, topic, self._image_cb(self.rec.attention, cam), self._output_qos(topic, 60)))
            for method in self.side_methods:
                topic = self.side_topic(method, cam)
                self._subs.append(node.create_subscription(
                    Image, topic, self._image_cb(self.rec.side[method], cam), self._output_qos(topic, 20)))
        self._subs.append(node.create_subscription(
            Float32, self.proprio_topic, self._on_proprio, self._output_qos(self.proprio_topic, 100)))
        for cam in self.cameras:
            topic = self.topics[f"attention_share/{cam}"]
            self._subs.append(node.create_subscription(
                Float32, topic, self._share_cb(cam), self._output_qos(topic, 100)))
        topic = self.topics["tick_status"]
        self._subs.append(node.create_subscription(
            DiagnosticStatus, topic, self._on_tick_status, self._output_qos(topic, 200)))
        self._subs.append(node.create_subscription(DiagnosticArray, DIAGNOSTICS_TOPIC, self._on_diagnostics, 50))

    def subscriptions_matched(self) -> bool:
        """Every recorder subscription sees at least one publisher."""
        return all(s.get_publisher_count() >= 1 for s in self._subs if s.topic_name != DIAGNOSTICS_TOPIC)

    # ------------------------------------------------------------------ callbacks
    def _now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def _image_cb(self, store: dict[str, list[StampedFrame]], cam: str):
        def cb(msg) -> None:
            try:
                rgb = decode_image(msg)
            except Exception as exc:  # noqa: BLE001 - count it, keep recording
                with self._lock:
                    self.rec.decode_errors += 1
                logger.debug("cannot decode an overlay on %s: %s", cam, exc)
                return
            frame = StampedFrame(stamp_to_ns(msg.header.stamp), rgb, self._now_ns())
            with self._lock:
                store[cam].append(frame)
        return cb

    def _share_cb(self, cam: str):
        def cb(msg) -> None:
            with self._lock:
                self.rec.camera_share[cam].append(ScalarSample(self._now_ns(), float(msg.data)))
        return cb

    def _on_proprio(self, msg) -> None:
        with self._lock:
            self.rec.proprio.append(ScalarSample(self._now_ns(), float(msg.data)))

    def _on_tick_status(self, msg) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        with self._lock:
            self.rec.ticks.append((int(values.get("tick", -1)), int(values.get("time_ns", -1)), msg.message))

    def _on_diagnostics(self, msg) -> None:
        statuses: dict[str, dict[str, str]] = {}
        for status in msg.status:
            if self.node_name not in status.name:
                continue
            values = {kv.key: kv.value for kv in status.values}
            values["_level"] = str(int.from_bytes(status.level, "little") if isinstance(status.level, bytes)
                                   else int(status.level))
            values["_message"] = status.message
            statuses[status.name] = values
        if statuses:
            with self._lock:
                self.rec.diagnostics.append((self._now_ns(), statuses))

    # ------------------------------------------------------------------ access
    def counts(self) -> dict[str, int]:
        """Totals so far (for progress bars)."""
        with self._lock:
            return {
                "attention": sum(len(v) for v in self.rec.attention.values()),
                "side": sum(len(v) for per_cam in self.rec.side.values() for v in per_cam.values()),
                "proprio": len(self.rec.proprio),
                "ticks": len(self.rec.ticks),
                "diagnostics": len(self.rec.diagnostics),
            }

    def wait_idle(self, quiet_s: float = 1.0, timeout_s: float = 15.0) -> None:
        """Return once no new output has arrived for ``quiet_s`` wall seconds (or after ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        last = self.counts()
        last_change = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.counts()
            if now != last:
                last, last_change = now, time.monotonic()
            elif time.monotonic() - last_change >= quiet_s:
                return
