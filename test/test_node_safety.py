"""Gating and safety: never an action from stale, missing or invalid input; observe-only; pause; limits."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32
from std_srvs.srv import SetBool

from node_harness import FRONT, latest_diagnostics, write_params, node_and_peer

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])


@pytest.fixture(scope="module")
def tight(tmp_path_factory, node_checkpoint):
    """A node with tight limits (so clamping is visible) and GradCAM off."""
    params = write_params(
        tmp_path_factory.mktemp("params") / "p.yaml", side_rate_hz=0.0, input_qos="reliable",
        joint_lower_limits=[-0.01, -1.92, -1.92, -1.92, -2.74, 0.0],
        joint_upper_limits=[0.01, 1.92, 1.92, 1.92, 2.74, 1.745],
        max_joint_step=[0.1, 0.002, 0.002, 0.002, 0.002, 0.002],
    )
    with node_and_peer(params, node_checkpoint, "safety_peer",
                       [(JointState, ACTION), (Float32, f"{NODE}/proprio_attention")]) as running:
        yield running


def test_limits_and_max_step_hold(tight):
    _, peer = tight
    peer.clear()
    peer.stream(1.5, joints=CURRENT)
    actions = peer.wait_for(ACTION, 8)
    assert len(actions) >= 8
    pos = np.array([m.position for m in actions])
    assert np.all(np.abs(pos[:, 0]) <= 0.01 + 1e-12), "shoulder_pan clamped to its ±0.01 rad limits"
    assert np.all(np.abs(pos[:, 1:] - CURRENT[1:]) <= 0.002 + 1e-12), "max step of 0.002 rad from the current state"
    assert int(latest_diagnostics(peer)["actions_clamped"]) > 0


def test_stale_camera_gives_no_action(tight):
    _, peer = tight
    peer.clear()
    peer.stream(1.0, joints=CURRENT, stamp_offset_s=-1.0)  # camera stamps 1 s old (> max_input_age_s)
    time.sleep(0.3)
    assert peer.received[ACTION] == []
    diag = latest_diagnostics(peer)
    assert int(diag.get("skipped.stale", 0)) > 0


def test_missing_camera_gives_no_action(tight):
    _, peer = tight
    time.sleep(0.5)  # let the previous frames age out
    peer.clear()
    peer.stream(1.0, joints=CURRENT, skip_cameras=(FRONT,))
    assert peer.received[ACTION] == []
    assert int(latest_diagnostics(peer).get("skipped.stale", 0)) + int(latest_diagnostics(peer).get("skipped.missing", 0)) > 0


def test_nan_joint_gives_no_action_and_is_counted(tight):
    _, peer = tight
    peer.clear()
    peer.stream(1.0, joints=np.array([0.0, np.nan, 0.0, 0.0, 0.0, 0.5]))
    time.sleep(0.2)
    assert peer.received[ACTION] == []
    assert int(latest_diagnostics(peer).get("skipped.bad_input.joint_state", 0)) > 0
    # and it recovers with good input
    peer.stream(0.7, joints=CURRENT)
    assert peer.wait_for(ACTION, 3, timeout=10)


def test_pause_stops_commands_and_resume_restarts_them(tight):
    _, peer = tight
    client = peer.node.create_client(SetBool, f"{NODE}/enable_commands")
    assert client.wait_for_service(timeout_sec=10)

    def call(value: bool):
        future = client.call_async(SetBool.Request(data=value))
        deadline = time.monotonic() + 10
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert future.done() and future.result().success
        return future.result()

    assert "paused" in call(False).message
    time.sleep(0.2)
    peer.clear()
    peer.stream(1.0, joints=CURRENT)
    assert peer.received[ACTION] == [], "paused: nothing may be commanded"
    assert len(peer.received[f"{NODE}/proprio_attention"]) >= 3, "the policy keeps running while paused"
    call(True)
    peer.stream(0.7, joints=CURRENT)
    assert peer.wait_for(ACTION, 3, timeout=10)
