"""Run the real act_interp_node as a subprocess (its installed console script, as `ros2 run` would) and
talk to it over real rclpy/Fast DDS on loopback from the test process."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from contextlib import contextmanager
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState

from act_interp_ros.ros.node_process import NodeProcess, node_command
from act_interp_ros.settings import load_settings_yaml

REPO = Path(__file__).resolve().parents[1]
FRONT, WRIST = "/camera/front/image_raw", "/camera/wrist/image_raw"
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


# The shipped 30 Hz needs a forward well under 33 ms. The small test checkpoint's ResNet-18 takes ~40 ms per
# tick on one core of this 2-core machine (small inputs hit torch's slow conv path), so node tests run the
# control loop at 10 Hz; everything they check (gating, stamps, limits, counters) is rate-independent.
TEST_CONTROL_RATE_HZ = 10.0


def write_params(path: Path, **overrides: Any) -> Path:
    """The shipped config/so101.yaml with overrides (control at TEST_CONTROL_RATE_HZ unless overridden)."""
    doc = yaml.safe_load((REPO / "config" / "so101.yaml").read_text())
    doc["act_interp_node"]["ros__parameters"].update({"control_rate_hz": TEST_CONTROL_RATE_HZ, **overrides})
    path.write_text(yaml.safe_dump(doc))
    return path


def start_node(params_file: Path, policy_path: Path | str, *extra_ros_args: str, env: dict | None = None,
               faults: Sequence[str] = ()) -> NodeProcess:
    """The installed act_interp_node console script (as `ros2 run` starts it) with a params file.

    ``faults``: arguments of test/fault_injecting_node.py (a test entry point, named as such), which runs the
    same node with faults injected through its constructor, e.g. ``("--tick-fault-file", path)``.
    """
    command = node_command([params_file], {"policy_path": str(policy_path)}, extra_ros_args)
    if faults:
        command = [sys.executable, str(REPO / "test" / "fault_injecting_node.py"), *faults, *command[1:]]
    return NodeProcess(command, env=env)


@contextmanager
def node_and_peer(params_file: Path, policy_path: Path | str, peer_name: str, subscriptions=(),
                  *extra_ros_args: str, env: dict | None = None, faults: Sequence[str] = ()):
    """A running node and a peer subscribed to ``subscriptions`` ((msg type, topic) pairs) and /diagnostics,
    once the node is up; both stopped after the block."""
    from diagnostic_msgs.msg import DiagnosticArray

    node = start_node(params_file, policy_path, *extra_ros_args, env=env, faults=faults)
    peer = Peer(peer_name)
    try:
        for msg_type, topic in subscriptions:
            peer.subscribe(msg_type, topic)
        peer.subscribe(DiagnosticArray, "/diagnostics")
        assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
        yield node, peer
    finally:
        peer.close()
        node.cleanup()


class Peer:
    """Test-side ROS node: publishes camera images and joint states, records everything it receives."""

    def __init__(self, name: str = "test_peer") -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.received: dict[str, list] = defaultdict(list)
        self.arrival: dict[str, list[float]] = defaultdict(list)
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_images = {t: self.node.create_publisher(Image, t, reliable) for t in (FRONT, WRIST)}
        self.pub_joints = self.node.create_publisher(JointState, "/joint_states", reliable)
        self._spin = True
        self._thread = threading.Thread(target=self._spin_loop, daemon=True)
        self._thread.start()

    def _spin_loop(self) -> None:
        while self._spin and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def subscribe(self, msg_type, topic: str, depth: int = 50, transient_local: bool = False) -> None:
        def store(msg, topic=topic):
            self.received[topic].append(msg)
            self.arrival[topic].append(time.monotonic())

        qos = QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL if transient_local else DurabilityPolicy.VOLATILE)
        self.node.create_subscription(msg_type, topic, store, qos)

    def image(self, h: int, w: int, seed: int, encoding: str = "rgb8", frame_id: str = "cam") -> Image:
        rng = np.random.default_rng(seed)
        msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * 3)
        msg.data.frombytes(rng.integers(0, 256, (h, w, 3), dtype=np.uint8).tobytes())
        msg.header.frame_id = frame_id
        return msg

    def publish_frame(self, i: int, *, size=(48, 64), joints=None, stamp_offset_s: float = 0.0,
                      skip_cameras=(), encoding: str = "rgb8", joint_names=None, seed: int | None = None) -> int:
        """Publish one front+wrist frame and a joint state stamped now (+offset); returns the stamp in ns.

        The images are random with seed ``i`` (a new picture every frame), or ``seed`` for a fixed picture.
        """
        now = self.node.get_clock().now()
        stamp = (now.nanoseconds + int(stamp_offset_s * 1e9))
        stamp_msg = rclpy.time.Time(nanoseconds=stamp).to_msg()
        for topic, pub in self.pub_images.items():
            if topic in skip_cameras:
                continue
            msg = self.image(*size, seed=i if seed is None else seed, encoding=encoding, frame_id=topic.split("/")[2] + "_optical_frame")
            msg.header.stamp = stamp_msg
            pub.publish(msg)
        js = JointState(name=list(joint_names or JOINTS), position=[float(v) for v in (joints if joints is not None else np.zeros(6))])
        js.header.stamp = now.to_msg()
        self.pub_joints.publish(js)
        return stamp

    def stream(self, seconds: float, rate_hz: float = 30.0, **kwargs) -> list[int]:
        stamps, start, i = [], time.monotonic(), 0
        while time.monotonic() - start < seconds:
            stamps.append(self.publish_frame(i, **kwargs))
            i += 1
            time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))
        return stamps

    @contextmanager
    def streaming(self, rate_hz: float = 30.0, **kwargs):
        """Publish frames continuously in a background thread for the duration of the block."""
        stop = threading.Event()

        def run() -> None:
            start, i = time.monotonic(), 0
            while not stop.is_set():
                self.publish_frame(i, **kwargs)
                i += 1
                stop.wait(max(0.0, start + i / rate_hz - time.monotonic()))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        """Call a service of the node under test and return the response (asserts it answered)."""
        client = self.node.create_client(srv_type, name)
        try:
            assert client.wait_for_service(timeout_sec=timeout), f"service {name} not available"
            future = client.call_async(request)
            deadline = time.monotonic() + timeout
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            assert future.done(), f"service {name} did not answer within {timeout} s"
            return future.result()
        finally:
            self.node.destroy_client(client)

    def set_parameter(self, node: str, name: str, value):
        """``ros2 param set`` through the node's real parameter service; returns the SetParametersResult."""
        from rcl_interfaces.srv import SetParameters
        from rclpy.parameter import Parameter

        request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
        return self.call(SetParameters, f"{node}/set_parameters", request).results[0]

    def get_parameter(self, node: str, name: str):
        from rcl_interfaces.srv import GetParameters
        from rclpy.parameter import parameter_value_to_python

        response = self.call(GetParameters, f"{node}/get_parameters", GetParameters.Request(names=[name]))
        return parameter_value_to_python(response.values[0])

    def wait_for(self, topic: str, count: int = 1, timeout: float = 30.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.received[topic]) < count:
            time.sleep(0.02)
        return self.received[topic]

    def clear(self) -> None:
        self.received.clear()
        self.arrival.clear()

    def close(self) -> None:
        self._spin = False
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def diagnostics_values(msg) -> dict[str, str]:
    return {kv.key: kv.value for kv in msg.status[0].values}


def latest_diagnostics(peer: Peer, timeout: float = 10.0) -> dict[str, str]:
    """The values of the next /diagnostics message, plus its level (``_level``, 0/1/2) and ``_message``."""
    n = len(peer.received["/diagnostics"])
    msgs = peer.wait_for("/diagnostics", n + 1, timeout)
    assert msgs, "no /diagnostics received"
    status = msgs[-1].status[0]
    return {**diagnostics_values(msgs[-1]), "_level": str(status.level[0]), "_message": status.message}


def default_settings():
    return load_settings_yaml(REPO / "config" / "so101.yaml", overrides={"policy_path": str(REPO)}, validate=False)
