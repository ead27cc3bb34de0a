"""Run the real act_interp_node as a subprocess (its installed console script, as `ros2 run` would) and
talk to it over real rclpy/Fast DDS on loopback from the test process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
import yaml
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, JointState

from act_interp_ros.settings import load_settings_yaml

REPO = Path(__file__).resolve().parents[1]
FRONT, WRIST = "/camera/front/image_raw", "/camera/wrist/image_raw"
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def node_executable() -> str:
    exe = Path(sys.executable).with_name("act_interp_node")
    assert exe.exists(), f"console script not installed at {exe}: run pip install -e ."
    return str(exe)


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


class NodeProcess:
    """act_interp_node in its own process; output captured for assertions."""

    def __init__(self, params_file: Path, policy_path: Path | str, *extra: str, env: dict | None = None) -> None:
        cmd = [node_executable(), "--ros-args", "--params-file", str(params_file), "-p", f"policy_path:={policy_path}", *extra]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_exit(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


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

    def subscribe(self, msg_type, topic: str, depth: int = 50) -> None:
        def store(msg, topic=topic):
            self.received[topic].append(msg)
            self.arrival[topic].append(time.monotonic())

        self.node.create_subscription(msg_type, topic, store, QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE))

    def image(self, h: int, w: int, seed: int, encoding: str = "rgb8", frame_id: str = "cam") -> Image:
        rng = np.random.default_rng(seed)
        msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * 3)
        msg.data.frombytes(rng.integers(0, 256, (h, w, 3), dtype=np.uint8).tobytes())
        msg.header.frame_id = frame_id
        return msg

    def publish_frame(self, i: int, *, size=(48, 64), joints=None, stamp_offset_s: float = 0.0,
                      skip_cameras=(), encoding: str = "rgb8", joint_names=None) -> int:
        """Publish one front+wrist frame and a joint state stamped now (+offset); returns the stamp in ns."""
        now = self.node.get_clock().now()
        stamp = (now.nanoseconds + int(stamp_offset_s * 1e9))
        stamp_msg = rclpy.time.Time(nanoseconds=stamp).to_msg()
        for topic, pub in self.pub_images.items():
            if topic in skip_cameras:
                continue
            msg = self.image(*size, seed=i, encoding=encoding, frame_id=topic.split("/")[2] + "_optical_frame")
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
    n = len(peer.received["/diagnostics"])
    msgs = peer.wait_for("/diagnostics", n + 1, timeout)
    assert msgs, "no /diagnostics received"
    return diagnostics_values(msgs[-1])


def default_settings():
    return load_settings_yaml(REPO / "config" / "so101.yaml", overrides={"policy_path": str(REPO)}, validate=False)
