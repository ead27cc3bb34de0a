"""act_interp_play: real rclpy publishers/subscribers, timing, /clock, loop, CLI errors."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# ROS traffic stays on loopback, on a domain of its own (test/conftest.py may have chosen one already)
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))

import numpy as np  # noqa: E402
import pytest  # noqa: E402

rclpy = pytest.importorskip("rclpy")

from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from rosbags.rosbag2 import Reader, StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402
from rosgraph_msgs.msg import Clock  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image, JointState  # noqa: E402

from act_interp_ros.bag.play import BagPlayer, BagPlayError, inspect_bag, resolve_message_type  # noqa: E402
from act_interp_ros.cli.play import main  # noqa: E402
from act_interp_ros.bag.reader import BagError  # noqa: E402
from act_interp_ros.bag.synthetic_bag import write_synthetic_bag  # noqa: E402

N = 30  # 1 s at 30 Hz
FRONT, WRIST, JOINTS = "/camera/front/image_raw", "/camera/wrist/image_raw", "/joint_states"
# a random epoch: messages from other test runs that share the domain are recognised and ignored
START_NS = (1_600_000_000 + random.SystemRandom().randint(0, 10**8)) * 10**9


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.fixture(scope="module")
def bag(tmp_path_factory) -> Path:
    return write_synthetic_bag(tmp_path_factory.mktemp("play") / "bag", storage="mcap", n_frames=N,
                               image_size=(24, 32), seed=1, start_time_ns=START_NS)


@pytest.fixture(scope="module")
def bag_contents(bag) -> dict[str, list[tuple[int, bytes]]]:
    """topic -> [(receive time ns, raw CDR)] as stored."""
    out: dict[str, list[tuple[int, bytes]]] = {}
    with Reader(bag) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, bytes(raw)))
    return out


class Ros:
    """An rclpy context with a spinning subscriber node and a publisher node for the player."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self.sub_node = rclpy.create_node("play_test_sub", context=self.context)
        self.pub_node = rclpy.create_node("play_test_player", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.sub_node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()
        self.lock = threading.Lock()
        self.received: dict[str, list[tuple[float, object]]] = {}
        self._subs = []

    def subscribe(self, msg_type, topic: str, filter_own: bool = True) -> None:
        def callback(msg) -> None:
            if filter_own and not START_NS <= _stamp(msg) < START_NS + 10**10:
                return  # not from our bag
            with self.lock:
                self.received.setdefault(topic, []).append((time.monotonic(), msg))

        qos = QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE)
        self._subs.append(self.sub_node.create_subscription(msg_type, topic, callback, qos))

    def clear(self) -> None:
        with self.lock:
            self.received = {}
        for sub in self._subs:
            self.sub_node.destroy_subscription(sub)
        self._subs = []

    def wait_for(self, topic: str, n: int, timeout: float = 5.0) -> list[tuple[float, object]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.received.get(topic, []))
            if len(got) >= n:
                return got
            time.sleep(0.02)
        return got

    def close(self) -> None:
        self.executor.shutdown()
        self.thread.join(5)
        self.sub_node.destroy_node()
        self.pub_node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def ros():
    r = Ros()
    yield r
    r.close()


@pytest.fixture
def fresh(ros):
    ros.clear()
    yield ros
    ros.clear()


def test_inspect_and_type_resolution(bag):
    info = inspect_bag(bag)
    assert set(info.topics) == {FRONT, WRIST, JOINTS}
    assert {t.count for t in info.topics.values()} == {N} and info.message_count == 3 * N
    assert info.duration_s == pytest.approx((N - 1) / 30 + 0.002, abs=1e-6)
    assert resolve_message_type("sensor_msgs/msg/Image") is Image
    assert resolve_message_type("sensor_msgs/JointState") is JointState
    with pytest.raises(BagPlayError, match="not importable"):
        resolve_message_type("no_such_msgs_pkg/msg/Foo")


def test_all_messages_arrive_with_content_and_timing(fresh, bag, bag_contents):
    for msg_type, topic in ((Image, FRONT), (Image, WRIST), (JointState, JOINTS)):
        fresh.subscribe(msg_type, topic)
    player = BagPlayer(bag, wait_for_subscribers=1, wait_timeout=10.0, delay=0.3)
    summary = player.run(fresh.pub_node)
    assert summary.published == {FRONT: N, WRIST: N, JOINTS: N} and not summary.dropped
    assert summary.loops_completed == 1 and not summary.stopped_early
    assert summary.publish_mode == "serialized bytes"
    for topic in (FRONT, WRIST, JOINTS):
        got = fresh.wait_for(topic, N)
        assert len(got) == N, topic
        stamps = [_stamp(m) for _, m in got]
        assert stamps == [t for t, _ in bag_contents[topic]]  # all, in order, header stamps == bag times
    front = fresh.wait_for(FRONT, N)
    ts = get_typestore(Stores.ROS2_HUMBLE)
    for k in (0, N // 2, N - 1):
        expected = ts.deserialize_cdr(bag_contents[FRONT][k][1], "sensor_msgs/msg/Image")
        msg = front[k][1]
        assert (msg.height, msg.width, msg.encoding) == (24, 32, "rgb8")
        assert bytes(msg.data) == bytes(expected.data)
    js = fresh.wait_for(JOINTS, N)[5][1]
    assert list(js.name)[5] == "gripper" and len(js.position) == 6
    # original timing at rate 1: 29 frame periods from first to last image
    arrivals = np.array([t for t, _ in front])
    assert arrivals[-1] - arrivals[0] == pytest.approx((N - 1) / 30, abs=0.25)
    assert np.median(np.diff(arrivals)) == pytest.approx(1 / 30, abs=0.015)


@pytest.fixture(scope="module")
def compressed_sqlite_bag(tmp_path_factory) -> Path:
    return write_synthetic_bag(tmp_path_factory.mktemp("play_c") / "bag", storage="sqlite3", compressed=True,
                               n_frames=N, image_size=(24, 32), seed=2, start_time_ns=START_NS)


@pytest.mark.parametrize("kind", ["mcap_raw", "sqlite3_jpeg"])
def test_rate_four_is_faster(fresh, kind, request):
    if kind == "mcap_raw":
        bag, topic, msg_type = request.getfixturevalue("bag"), FRONT, Image
    else:
        bag, topic, msg_type = request.getfixturevalue("compressed_sqlite_bag"), FRONT + "/compressed", CompressedImage
    fresh.subscribe(msg_type, topic)
    summary = BagPlayer(bag, rate=4.0, topics=[topic], wait_for_subscribers=1, delay=0.3).run(fresh.pub_node)
    assert summary.published == {topic: N}
    got = fresh.wait_for(topic, N)
    assert len(got) == N
    if msg_type is CompressedImage:
        assert got[0][1].format.startswith("rgb8; jpeg") and bytes(got[0][1].data[:2]) == b"\xff\xd8"
    span = got[-1][0] - got[0][0]
    assert 0.12 < span < 0.6, span  # (N-1)/30/4 = 0.24 s
    assert summary.wall_time_s < 0.8


def test_clock_follows_bag_time(fresh, bag, bag_contents):
    fresh.subscribe(Image, FRONT)
    clocks: list[int] = []
    qos = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE)
    sub = fresh.sub_node.create_subscription(
        Clock, "/clock", lambda m: clocks.append(m.clock.sec * 10**9 + m.clock.nanosec), qos)
    try:
        player = BagPlayer(bag, rate=2.0, clock=True, clock_hz=100.0, topics=[FRONT], wait_for_subscribers=1,
                           delay=0.3)
        summary = player.run(fresh.pub_node)
        assert len(fresh.wait_for(FRONT, N)) == N
        time.sleep(0.2)
        ours = [c for c in clocks if START_NS <= c < START_NS + 10**10]
        # ~0.5 s at 100 Hz plus one per message
        assert summary.clock_messages >= N + 30
        assert len(ours) >= N + 20
        assert all(b >= a for a, b in zip(ours, ours[1:]))  # never goes back within a pass
        assert ours[0] == bag_contents[FRONT][0][0] and ours[-1] == bag_contents[FRONT][-1][0]
        assert set(t for t, _ in bag_contents[FRONT]) <= set(ours)  # the clock hits every message time
    finally:
        fresh.sub_node.destroy_subscription(sub)


def test_loop_start_offset_and_stop_from_thread(fresh, bag, bag_contents):
    fresh.subscribe(Image, WRIST)
    player = BagPlayer(bag, rate=4.0, loop=True, topics=[WRIST], start_offset=0.5, wait_for_subscribers=1, delay=0.3)
    thread = player.start(fresh.pub_node)
    per_pass = sum(1 for t, _ in bag_contents[WRIST] if t >= START_NS + 500_000_000)
    assert 13 <= per_pass <= 16
    got = fresh.wait_for(WRIST, 2 * per_pass + 1, timeout=8.0)
    player.stop()
    assert player.join(5.0) and not thread.is_alive()
    assert player.error is None
    assert len(got) >= 2 * per_pass + 1
    stamps = [_stamp(m) for _, m in got]
    assert min(stamps) >= START_NS + 500_000_000  # start offset respected
    assert stamps[per_pass] == stamps[0]  # second pass starts over
    s = player.summary
    assert s.loops_completed >= 2 and s.stopped_early


def test_wait_for_subscribers_times_out(ros, tmp_path):
    # a topic nobody subscribes to
    ts = get_typestore(Stores.ROS2_HUMBLE)
    path = tmp_path / "lonely"
    topic = f"/act_interp_play_test_{random.SystemRandom().randint(0, 10**9)}"
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as w:
        conn = w.add_connection(topic, "std_msgs/msg/String", typestore=ts)
        w.write(conn, 1, ts.serialize_cdr(ts.types["std_msgs/msg/String"](data="x"), "std_msgs/msg/String"))
    player = BagPlayer(path, wait_for_subscribers=1, wait_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(BagPlayError, match="timed out"):
        player.run(ros.pub_node)
    assert time.monotonic() - t0 < 3.0


def _write_bag(path: Path, topic: str, msgtype: str, msgdef: str | None = None, n: int = 1) -> Path:
    ts = get_typestore(Stores.ROS2_HUMBLE)
    with Writer(path, version=9, storage_plugin=StoragePlugin.SQLITE3) as w:
        if msgdef is None:
            conn = w.add_connection(topic, msgtype, typestore=ts)
        else:  # a type only this bag knows: register it so the bag carries its real definition and hash
            from rosbags.typesys import get_types_from_msg

            ts.register(get_types_from_msg(msgdef, msgtype))
            conn = w.add_connection(topic, msgtype, typestore=ts)
        for k in range(n):
            w.write(conn, k + 1, b"\x00\x01\x00\x00" + b"\x00" * 8)
    return path


def test_errors(tmp_path, bag):
    with pytest.raises(BagError, match="does not exist"):
        BagPlayer(tmp_path / "missing")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(BagError, match="is not a ROS 2 bag"):
        BagPlayer(tmp_path / "empty_dir")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BagError, match="is not a ROS 2 bag"):
        BagPlayer(tmp_path / "notes.txt")
    with pytest.raises(BagError, match="is empty: it has no messages"):
        BagPlayer(_write_bag(tmp_path / "empty", "/a", "std_msgs/msg/String", n=0))
    with pytest.raises(BagPlayError, match="no_such_msgs.*not importable"):
        BagPlayer(_write_bag(tmp_path / "foreign", "/b", "no_such_msgs/msg/Foo", msgdef="int32 x"))
    with pytest.raises(BagPlayError, match="not in bag"):
        BagPlayer(bag, topics=["/nope"])
    with pytest.raises(BagPlayError, match="past the end"):
        BagPlayer(bag, start_offset=5.0)
    with pytest.raises(BagPlayError, match="rate"):
        BagPlayer(bag, rate=0.0)


def test_cli_exit_codes(tmp_path, bag, caplog):
    assert main([str(tmp_path / "missing")]) == 1
    assert "does not exist" in caplog.text
    (tmp_path / "notabag").mkdir()
    assert main([str(tmp_path / "notabag")]) == 1
    assert "is not a ROS 2 bag" in caplog.text
    with pytest.raises(SystemExit) as exc:
        main([str(bag), "--rate", "fast"])
    assert exc.value.code == 2
    # a real run in its own rclpy context, fast, one topic
    caplog.clear()
    caplog.set_level(logging.INFO, logger="act_interp_ros.bag.play")
    assert main([str(bag), "--rate", "10", "--topics", JOINTS]) == 0
    assert f"{JOINTS}: {N} published, 0 dropped" in caplog.text


def test_cli_sigint_stops_loop(bag):
    proc = subprocess.Popen(
        [sys.executable, "-m", "act_interp_ros.cli.play", str(bag), "--loop", "--topics", JOINTS],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ),
    )
    try:
        deadline = time.monotonic() + 20
        lines = []
        while time.monotonic() < deadline:  # wait until playback has started
            line = proc.stdout.readline()
            lines.append(line)
            if "playing" in line or not line:
                break
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = "".join(lines) + out
    assert proc.returncode == 130, text
    assert "published" in text
