"""End to end over real DDS: the installed act_interp_node process, fed by a test publisher."""

from __future__ import annotations

import math

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32

from node_harness import JOINTS, Peer, latest_diagnostics, start_node, write_params

NODE = "/act_interp_node"
SOURCE_SIZE = (120, 160)  # not the policy's 96x128: exercises image_resize; overlays keep the source size


@pytest.fixture(scope="module")
def running(tmp_path_factory, node_checkpoint):
    params = write_params(tmp_path_factory.mktemp("params") / "p.yaml", side_rate_hz=2.0, input_qos="reliable")
    node = start_node(params, node_checkpoint)
    peer = Peer()
    for topic, msg_type in [
        (f"{NODE}/joint_command", JointState),
        (f"{NODE}/proprio_attention", Float32),
        (f"{NODE}/attention/front/share", Float32),
        (f"{NODE}/attention/wrist/share", Float32),
        (f"{NODE}/attention/front/overlay", Image),
        (f"{NODE}/attention/wrist/overlay", Image),
        (f"{NODE}/gradcam/front/overlay", Image),
        ("/diagnostics", DiagnosticArray),
    ]:
        peer.subscribe(msg_type, topic)
    assert peer.wait_for("/diagnostics", 1, timeout=60), f"node did not come up:\n{node.output}"
    stamps = peer.stream(4.0, size=SOURCE_SIZE, joints=np.array([0.1, -0.2, 0.3, 0.0, 0.5, 0.8]))
    yield node, peer, stamps
    peer.close()
    node.cleanup()


def test_actions_have_joint_names_ros_units_and_finite_values(running):
    node, peer, _ = running
    actions = peer.received[f"{NODE}/joint_command"]
    assert len(actions) >= 15, f"expected ~40 actions in 4 s at 10 Hz, got {len(actions)}\n{node.output[-2000:]}"
    current = np.array([0.1, -0.2, 0.3, 0.0, 0.5, 0.8])
    for msg in actions:
        assert list(msg.name) == JOINTS
        pos = np.array(msg.position)
        assert pos.shape == (6,) and np.all(np.isfinite(pos))
        # ROS units (rad), within one max_joint_step (0.1 rad) of the current joint state
        assert np.all(np.abs(pos - current) <= 0.1 + 1e-9)


def test_overlays_carry_the_source_stamp_frame_and_size(running):
    _, peer, stamps = running
    for cam in ("front", "wrist"):
        overlays = peer.received[f"{NODE}/attention/{cam}/overlay"]
        assert len(overlays) >= 15, cam
        sent = set(stamps)
        for msg in overlays:
            assert msg.encoding == "rgb8" and (msg.height, msg.width) == SOURCE_SIZE
            assert msg.header.frame_id == f"{cam}_optical_frame"
            assert msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec in sent


def test_proprio_attention_is_a_fraction(running):
    _, peer, _ = running
    values = [m.data for m in peer.received[f"{NODE}/proprio_attention"]]
    assert len(values) >= 15
    assert all(0.0 <= v <= 1.0 and math.isfinite(v) for v in values)


def test_attention_shares_partition_the_decoder_attention(running):
    _, peer, _ = running
    proprio = [m.data for m in peer.received[f"{NODE}/proprio_attention"]]
    front = [m.data for m in peer.received[f"{NODE}/attention/front/share"]]
    wrist = [m.data for m in peer.received[f"{NODE}/attention/wrist/share"]]
    assert len(front) == len(wrist) == len(proprio) >= 15, "one share per camera per computed tick"
    for p, f, w in zip(proprio, front, wrist):
        assert 0.0 < f < 1.0 and 0.0 < w < 1.0
        assert p + f + w <= 1.0 + 1e-5, "the rest is the latent token's share"


def test_gradcam_overlays_arrive_at_about_the_throttle_rate(running):
    _, peer, _ = running
    arrivals = peer.arrival[f"{NODE}/gradcam/front/overlay"]
    assert 3 <= len(arrivals) <= 12, f"2 Hz over ~4 s, got {len(arrivals)}"
    msg = peer.received[f"{NODE}/gradcam/front/overlay"][-1]
    assert (msg.height, msg.width) == SOURCE_SIZE


def test_diagnostics_report_rates_latency_and_counters(running):
    _, peer, _ = running
    diag = latest_diagnostics(peer)
    for key in ["tick_rate_hz", "inference_p50_ms", "inference_p99_ms", "map_inference_p50_ms", "late_ticks",
                "skipped_ticks", "side.gradcam.runs", "side.gradcam.latency_p50_ms", "maps_published", "device",
                "image_backend"]:
        assert key in diag, key
    assert diag["device"] == "cpu" and diag["image_backend"] == "rosbags-image"
    assert int(diag["side.gradcam.runs"]) >= 3
    assert int(diag["actions_published"]) >= 15
    # the control window: what each background job is expected to take, and the count of control forwards that
    # started beside one (maps skipped so that none does: maps_yielded_to_control, when any)
    for key in ["expected_ms.control", "expected_ms.maps", "expected_ms.gradcam"]:
        assert float(diag[key]) > 0, (key, diag[key])
    assert int(diag["background_overlapped_control_forward"]) >= 0
