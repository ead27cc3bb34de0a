"""The replay's output bag: the input topics plus what the live node would have published, in one mcap bag.

Topics (``<node>`` = ``/act_interp_node``, ``<cam>`` = short camera name)::

    <input topics>                           copied byte for byte, at their original log times
    <node>/attention/<cam>/overlay           sensor_msgs/Image rgb8, header = the source image's header
    <node>/gradcam/<cam>/overlay             sensor_msgs/Image rgb8, header = the source image's header
    <node>/proprio_attention                 std_msgs/Float32 (share of attention on the joint-state token)
    <node>/env_state_attention               std_msgs/Float32 (policies with an environment state only)
    <node>/joint_command                     sensor_msgs/JointState, ROS units, header.stamp = tick time

Per-tick outputs are recorded at the tick's log time, so the bag plays back (``ros2 bag play``, Foxglove)
with overlays next to the frames they explain. Messages are written in log-time order: input messages
and tick outputs are merged through a small heap that only releases what no later message can precede.
Skipped ticks publish nothing, like the node.
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

from act_interp_ros.bag.outputs import TickRecord
from act_interp_ros.bag.reader import BagReader, RawMessage

logger = logging.getLogger(__name__)

IMAGE = "sensor_msgs/msg/Image"
FLOAT32 = "std_msgs/msg/Float32"
JOINT_STATE = "sensor_msgs/msg/JointState"
BAG_VERSION = 8  # readable by Humble..Jazzy tooling (rosbags writes 8 or 9)


def output_topics(node: str, camera_names: Sequence[str], has_state: bool, has_env_state: bool,
                  gradcam: bool, actions: bool) -> dict[str, str]:
    """Output topic -> message type, for a node named ``node`` (fully qualified, e.g. ``/act_interp_node``)."""
    topics: dict[str, str] = {}
    for cam in camera_names:
        topics[f"{node}/attention/{cam}/overlay"] = IMAGE
    if gradcam:
        for cam in camera_names:
            topics[f"{node}/gradcam/{cam}/overlay"] = IMAGE
    if has_state:
        topics[f"{node}/proprio_attention"] = FLOAT32
    if has_env_state:
        topics[f"{node}/env_state_attention"] = FLOAT32
    if actions:
        topics[f"{node}/joint_command"] = JOINT_STATE
    return topics


class OutputBagWriter:
    """Streams input copies and per-tick outputs into a rosbag2 directory with mcap storage.

    Args:
        path: the bag directory to create (must not exist).
        reader: the input bag (for the copied topics' types, definitions and QoS).
        copy_topics: input topics to copy.
        node: fully qualified node name used as the output namespace.
        camera_keys / camera_names: policy camera keys and their short names (same order).
        joint_names: names in the joint_command messages (policy order).
        has_state / has_env_state / gradcam / actions: which output topics exist.
    """

    def __init__(self, path: Path, reader: BagReader, copy_topics: Sequence[str], *, node: str,
                 camera_keys: Sequence[str], camera_names: Sequence[str], joint_names: Sequence[str],
                 has_state: bool, has_env_state: bool, gradcam: bool, actions: bool) -> None:
        self.path = Path(path)
        self.ts = get_typestore(Stores.ROS2_HUMBLE)
        self.camera = dict(zip(camera_keys, camera_names))
        self.joint_names = list(joint_names)
        self.node = node
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._open = True
        self._conns: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        for topic in copy_topics:
            msgtype, msgdef, digest, qos = reader.connection_info(topic)
            if msgdef is not None and digest is not None:
                conn = self._writer.add_connection(topic, msgtype, msgdef=msgdef, rihs01=digest,
                                                   offered_qos_profiles=qos)
            else:
                conn = self._writer.add_connection(topic, msgtype, typestore=reader.typestore,
                                                   offered_qos_profiles=qos)
            self._conns[topic] = conn
        self.topics = output_topics(node, camera_names, has_state, has_env_state, gradcam, actions)
        for topic, msgtype in self.topics.items():
            self._conns[topic] = self._writer.add_connection(topic, msgtype, typestore=self.ts)
        self.counts = {t: 0 for t in self._conns}
        self._heap: list[tuple[int, int, str, bytes | memoryview]] = []
        self._seq = itertools.count()
        self._input_mark = -(2**63)
        self._tick_mark = -(2**63)
        T = self.ts.types
        self._Time, self._Header = T["builtin_interfaces/msg/Time"], T["std_msgs/msg/Header"]
        self._Image, self._Float32, self._JointState = T[IMAGE], T[FLOAT32], T[JOINT_STATE]

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
        """Record one tick's outputs (call in tick order); skipped ticks publish nothing."""
        self._tick_mark = rec.log_ns
        if not rec.skipped:
            for key, overlay in rec.overlays.items():
                frame = rec.frames[key]
                self._push(rec.log_ns, f"{self.node}/attention/{self.camera[key]}/overlay",
                           self._image(overlay, frame.stamp_ns, frame.frame_id))
            for key, overlay in rec.gradcam_overlays.items():
                frame = rec.frames[key]
                self._push(rec.log_ns, f"{self.node}/gradcam/{self.camera[key]}/overlay",
                           self._image(overlay, frame.stamp_ns, frame.frame_id))
            fractions = rec.interpretation.fractions if rec.interpretation is not None else {}
            for name, topic in (("state", "proprio_attention"), ("env_state", "env_state_attention")):
                full = f"{self.node}/{topic}"
                if full in self._conns and name in fractions:
                    data = self.ts.serialize_cdr(self._Float32(data=float(fractions[name])), FLOAT32)
                    self._push(rec.log_ns, full, data)
            full = f"{self.node}/joint_command"
            if full in self._conns and rec.command_ros is not None:
                msg = self._JointState(
                    header=self._header(rec.time_ns, ""),
                    name=list(self.joint_names),
                    position=np.asarray(rec.command_ros, dtype=np.float64),
                    velocity=np.zeros(0, dtype=np.float64),
                    effort=np.zeros(0, dtype=np.float64),
                )
                self._push(rec.log_ns, full, self.ts.serialize_cdr(msg, JOINT_STATE))
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

    def _header(self, stamp_ns: int, frame_id: str):
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self._Header(stamp=self._Time(sec=sec, nanosec=nanosec), frame_id=frame_id)

    def _image(self, rgb: np.ndarray, stamp_ns: int, frame_id: str) -> bytes | memoryview:
        h, w = rgb.shape[:2]
        msg = self._Image(header=self._header(stamp_ns, frame_id), height=h, width=w, encoding="rgb8",
                          is_bigendian=0, step=w * 3, data=np.ascontiguousarray(rgb).reshape(-1))
        return self.ts.serialize_cdr(msg, IMAGE)
