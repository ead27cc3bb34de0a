"""Issue 15 live: a coordinate-conditioned ACT on the node (its own process) over DDS - the env-state topic
(geometry_msgs/PointStamped, or std_msgs/Float64MultiArray judged by arrival time), its attention and
sensitivity topics, and bad env-state input (missing, stale, wrong length, NaN) skipped and counted."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32, Float64MultiArray

from node_harness import Peer, latest_diagnostics, start_node, write_params

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])


@pytest.fixture(scope="module")
def env_checkpoint(tmp_path_factory):
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    cameras = {key: (48, 64) for key in SmallACTSpec().cameras}
    return build_act_checkpoint(tmp_path_factory.mktemp("env") / "pretrained_model",
                                SmallACTSpec(cameras=cameras, env_state_dim=2))


def stream(peer: Peer, pub, seconds: float, make_env, rate_hz: float = 30.0) -> None:
    start, i = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        peer.publish_frame(i, joints=CURRENT)
        msg = make_env(peer.node.get_clock().now())
        if msg is not None:
            pub.publish(msg)
        i += 1
        time.sleep(max(0.0, start + i / rate_hz - time.monotonic()))


def point(x: float, y: float, age_s: float = 0.0):
    def make(now):
        msg = PointStamped()
        msg.header.stamp = rclpy.time.Time(nanoseconds=now.nanoseconds - int(age_s * 1e9)).to_msg()
        msg.point.x, msg.point.y = x, y
        return msg
    return make


def test_point_stamped_env_state(tmp_path, env_checkpoint):
    params = write_params(tmp_path / "p.yaml", input_qos="reliable", side_methods=[], side_rate_hz=4.0,
                          env_state_topic="/target", env_state_type="point_stamped")
    node = start_node(params, env_checkpoint)
    peer = Peer("env_peer")
    try:
        pub = peer.node.create_publisher(PointStamped, "/target", 10)
        for topic, kind in ((ACTION, JointState), (f"{NODE}/env_state_attention", Float32),
                            (f"{NODE}/env_state_sensitivity", Float32), ("/diagnostics", DiagnosticArray)):
            peer.subscribe(kind, topic)
        assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
        stream(peer, pub, 1.5, point(0.2, -0.05))
        assert len(peer.wait_for(ACTION, 5)) >= 5, node.output[-2000:]
        shares = [m.data for m in peer.received[f"{NODE}/env_state_attention"]]
        assert shares and all(0.0 <= v <= 1.0 for v in shares)
        sens = [m.data for m in peer.wait_for(f"{NODE}/env_state_sensitivity", 2)]
        assert len(sens) >= 2 and all(math.isfinite(v) and v >= 0 for v in sens)
        for make, counter in ((lambda now: None, "skipped.missing"),  # env state stops: missing, then stale
                              (point(0.2, -0.05, age_s=1.0), "skipped.stale"),
                              (point(float("nan"), 0.0), "skipped.bad_input.env_state")):
            time.sleep(0.5)
            before = latest_diagnostics(peer)
            peer.clear()
            stream(peer, pub, 1.0, make)
            time.sleep(0.2)
            assert peer.received[ACTION] == [], counter
            after = latest_diagnostics(peer)
            if counter == "skipped.missing":  # the last good message goes stale: never acted on
                counter = "skipped.stale"
            assert int(after.get(counter, 0)) > int(before.get(counter, 0)), counter
        assert node.alive()
    finally:
        peer.close()
        node.cleanup()


def test_float64_multi_array_env_state_by_arrival_time(tmp_path, env_checkpoint):
    params = write_params(tmp_path / "p.yaml", input_qos="reliable", side_methods=[], side_rate_hz=0.0,
                          env_state_topic="/target", env_state_type="float64_multi_array")
    node = start_node(params, env_checkpoint)
    peer = Peer("env_array_peer")
    try:
        pub = peer.node.create_publisher(Float64MultiArray, "/target", 10)
        peer.subscribe(JointState, ACTION)
        peer.subscribe(DiagnosticArray, "/diagnostics")
        assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
        stream(peer, pub, 1.5, lambda now: Float64MultiArray(data=[0.2, -0.05]))
        assert len(peer.wait_for(ACTION, 5)) >= 5, node.output[-2000:]
        time.sleep(0.5)
        before = int(latest_diagnostics(peer).get("skipped.bad_input.env_state", 0))
        peer.clear()
        stream(peer, pub, 1.0, lambda now: Float64MultiArray(data=[0.2, -0.05, 0.3]))  # 3 values for 2
        time.sleep(0.2)
        assert peer.received[ACTION] == []
        assert int(latest_diagnostics(peer).get("skipped.bad_input.env_state", 0)) > before
        assert "Float64MultiArray holds 3 values; the policy's environment state has 2" in node.output
    finally:
        peer.close()
        node.cleanup()


def test_env_state_policy_without_a_topic_stops_start_up(tmp_path, env_checkpoint):
    node = start_node(write_params(tmp_path / "p.yaml"), env_checkpoint)
    assert node.wait_exit(timeout=60) == 2
    assert "parameter 'env_state_topic' must name the topic of the policy's 2-value" in node.output
    node.cleanup()
