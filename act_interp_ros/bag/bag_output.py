"""The replay's output bag: the input topics plus what the live node would have published, in one mcap bag.

The output topics are the node's output contract (:mod:`act_interp_ros.pipeline.contract`) without the
live-only ones (``/diagnostics``): attention overlays and shares, proprio (and env-state) attention, the
side-method overlays on side ticks, ``~/tick_status`` for every tick (skipped ones with their reason) and
the action in the configured ``action_type`` (when ``publish_actions``). Input topics are copied byte for
byte at their original log times.

Per-tick outputs are recorded at the tick's log time, so the bag plays back (``ros2 bag play``, Foxglove)
with overlays next to the frames they explain. Messages are written in log-time order: input messages
and tick outputs are merged through a small heap that only releases what no later message can precede.
"""

from __future__ import annotations

import heapq
import itertools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from act_interp_ros.offline.outputs import TickRecord
from act_interp_ros.bag.reader import BagReader, RawMessage
from act_interp_ros.pipeline.contract import ACTION_MESSAGE_TYPES, DIAGNOSTIC_STATUS, FLOAT32, IMAGE, OutputContract
from act_interp_ros.pipeline.output_values import action_message, scalar_values, tick_status_message
from act_interp_ros.settings import NodeSettings, camera_name

logger = logging.getLogger(__name__)

BAG_VERSION = 8  # readable by Humble..Jazzy tooling (rosbags writes 8 or 9)


class OutputBagWriter:
    """Streams input copies and per-tick outputs into a rosbag2 directory with mcap storage.

    Args:
        path: the bag directory to create (must not exist).
        reader: the input bag (for the copied topics' types, definitions and QoS).
        copy_topics: input topics to copy.
        contract: the node's outputs for this configuration and policy.
        node: fully qualified node name used as the output namespace.
        settings: the node's settings (joint names, action type, publish_actions, control rate).
        methods: the side methods computed (their overlay topics exist only for those).
    """

    def __init__(self, path: Path, reader: BagReader, copy_topics: Sequence[str], contract: OutputContract, *,
                 node: str, settings: NodeSettings, methods: Sequence[str]) -> None:
        self.path = Path(path)
        self.ts = get_typestore(Stores.ROS2_HUMBLE)
        self.settings = settings
        self.joint_names = list(settings.joint_names)
        self.node = node
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._open = True
        self._conns: dict[str, Any] = {}
        for topic in copy_topics:
            msgtype, msgdef, digest, qos = reader.connection_info(topic)
            if msgdef is not None and digest is not None:
                conn = self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=digest,
                                                   offered_qos_profiles=qos)
            else:
                conn = self._writer.add_connection(topic, msgtype, typestore=reader.typestore,
                                                   offered_qos_profiles=qos)
            self._conns[topic] = conn
        self.outputs = {}
        for o in contract:
            if o.live_only or (o.key == "action" and not settings.publish_actions):
                continue
            if o.method not in (None, "attention", "attention_plan") and o.method not in methods:
                continue
            self.outputs[o.key] = o.topic(node)
        self.topics = {self.outputs[o.key]: o.msg_type for o in contract if o.key in self.outputs}
        for topic, msgtype in self.topics.items():
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self.ts)
        self.counts = {t: 0 for t in self._conns}
        self._heap: list[tuple[int, int, str, bytes | memoryview]] = []
        self._seq = itertools.count()
        self._input_mark = -(2**63)
        self._tick_mark = -(2**63)
        self.T = self.ts.types

    # --------------------------------------------------------------------------------- streaming
    def on_input(self, msg: RawMessage) -> None:
        """Copy one input message (call in log-time order)."""
        if msg.topic not in self._conns:
            return
        self._push(msg.log_ns, msg.topic, msg.data)
        self._input_mark = msg.log_ns
        self._flush(min(self._input_mark, self._tick_mark))

    def input_done(self) -> None:
        """No more input messages will come."""
        self._input_mark = 2**63 - 1
        self._flush(self._tick_mark)

    def on_tick(self, rec: TickRecord) -> None:
        """Record one tick's outputs (call in tick order); a skipped tick records only its tick status."""
        self._tick_mark = rec.log_ns
        self._put(rec.log_ns, "tick_status", self._status(rec))
        if not rec.skipped:
            for key, overlay in rec.overlays.items():
                frame = rec.frames[key]
                self._put(rec.log_ns, f"attention_overlay/{camera_name(key)}",
                          self._image(overlay, frame.stamp_ns, frame.frame_id))
            for key, overlay in rec.plan_overlays.items():  # the map of the chunk the policy starts executing now
                frame = rec.frames[key]
                self._put(rec.log_ns, f"plan_overlay/{camera_name(key)}", self._image(overlay, frame.stamp_ns,
                                                                                      frame.frame_id))
            for method, overlays in rec.side_overlays.items():
                for key, overlay in overlays.items():
                    frame = rec.frames[key]
                    self._put(rec.log_ns, f"{method}_overlay/{camera_name(key)}",
                              self._image(overlay, frame.stamp_ns, frame.frame_id))
            scalars = scalar_values(rec.interpretation, list(rec.frames), rec.env_sensitivity)
            for key, value in scalars.items():
                self._put(rec.log_ns, key, self.ts.serialize_cdr(self.T[FLOAT32](data=value), FLOAT32))
            if rec.command_ros is not None:
                self._put(rec.log_ns, "action", self._action(rec))
        self._flush(min(self._input_mark, self._tick_mark))

    def close(self) -> None:
        """Write everything still buffered and finish the bag (metadata.yaml)."""
        if not self._open:
            return
        self._flush(2**63 - 1)
        self._open = False
        self._writer.close()

    def abort(self) -> None:
        """Stop writing after an error (the partial bag is deleted with the staging directory)."""
        if self._open:
            self._open = False
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - best effort while another error propagates
                logger.debug("closing the partial output bag failed", exc_info=True)

    # --------------------------------------------------------------------------------- internals
    def _push(self, log_ns: int, topic: str, data: bytes | memoryview) -> None:
        heapq.heappush(self._heap, (log_ns, next(self._seq), topic, data))

    def _flush(self, upto: int) -> None:
        heap = self._heap
        while heap and heap[0][0] <= upto:
            log_ns, _, topic, data = heapq.heappop(heap)
            self._writer.write(self._conns[topic], log_ns, data)
            self.counts[topic] += 1

    def _put(self, log_ns: int, key: str, data: bytes | memoryview) -> None:
        topic = self.outputs.get(key)
        if topic is not None:
            self._push(log_ns, topic, data)

    def _header(self, stamp_ns: int, frame_id: str):
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.T["std_msgs/msg/Header"](stamp=self.T["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec),
                                             frame_id=frame_id)

    def _image(self, rgb: np.ndarray, stamp_ns: int, frame_id: str) -> bytes | memoryview:
        h, w = rgb.shape[:2]
        msg = self.T[IMAGE](header=self._header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                            is_bigendian=0, step=w * 3, data=np.ascontiguousarray(rgb).reshape(-1))
        return self.ts.serialize_cdr(msg, IMAGE)

    def _make(self, type_name: str, **fields):
        """``output_values``' ``make`` for rosbags."""
        return self.T[type_name](**fields)

    def _status(self, rec: TickRecord) -> bytes | memoryview:
        msg = tick_status_message(self._make, node_name=self.node.strip("/").split("/")[-1],
                                  hardware_id=self.settings.policy_path, tick=rec.index, time_ns=rec.time_ns,
                                  stamps_ns=rec.input_stamps_ns, reason=rec.skip)
        return self.ts.serialize_cdr(msg, DIAGNOSTIC_STATUS)

    def _action(self, rec: TickRecord) -> bytes | memoryview:
        """The command in the configured action_type (the same message the node publishes)."""
        s = self.settings
        msg = action_message(self._make, s.action_type, self.joint_names, rec.command_ros, rec.time_ns,
                             1.0 / s.control_rate_hz)
        return self.ts.serialize_cdr(msg, ACTION_MESSAGE_TYPES[s.action_type])
