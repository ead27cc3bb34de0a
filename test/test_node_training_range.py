"""The node as its own process over DDS (joint_convention lerobot_radians), fed joint states in the wrong units
(degrees published as radians):
``/diagnostics`` names every joint outside the checkpoint's training range within one second, WARN, and with
``out_of_range_policy: skip`` no command is published until the units are right again."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from node_harness import JOINTS, latest_diagnostics, node_and_peer, write_params

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
#: A pose inside the ranged checkpoint's training range (rad; the gripper 0.87 rad = 50 policy units).
POSE_RAD = np.array([-0.5, 0.35, 0.87, 1.4, -0.17, 0.87])


def _diag_with(peer, counter: str, timeout: float):
    """The first /diagnostics message (values) whose ``counter`` is > 0, and the time it arrived."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        msgs = peer.received["/diagnostics"]
        for i in range(seen, len(msgs)):
            values = {kv.key: kv.value for kv in msgs[i].status[0].values}
            if int(values.get(counter, 0)) > 0:
                return values, msgs[i].status[0], peer.arrival["/diagnostics"][i]
        seen = len(msgs)
        time.sleep(0.01)
    return None, None, None


@pytest.fixture(scope="module")
def skipping(tmp_path_factory, ranged_checkpoint):
    params = write_params(tmp_path_factory.mktemp("params") / "p.yaml", side_rate_hz=0.0, input_qos="reliable",
                          out_of_range_policy="skip", joint_convention="lerobot_radians")
    with node_and_peer(params, ranged_checkpoint, "range_peer", [(JointState, ACTION)]) as running:
        yield running


def test_wrong_units_are_reported_by_joint_within_a_second_and_skip_publishes_nothing(skipping):
    node, peer = skipping
    peer.clear()
    peer.stream(1.0, joints=POSE_RAD)  # right units: commands flow, nothing flagged
    assert peer.wait_for(ACTION, 3, timeout=10), node.output
    diag = latest_diagnostics(peer)
    assert not any(k.startswith("state_outside_training_range.") for k in diag), diag
    assert "training-range guard (margin 10%): state: shoulder_pan [-90, 40]" in node.output
    # the mapping derived from joint_convention is printed at start (no calibration needed for this one)
    assert "joint mapping from joint_convention 'lerobot_radians'" in node.output
    assert [ln for ln in node.output.splitlines() if " gripper " in ln and "31.831" in ln], node.output

    time.sleep(0.3)
    peer.clear()
    started = time.monotonic()
    with peer.streaming(joints=np.degrees(POSE_RAD)):  # degrees published as radians
        values, status, arrived = _diag_with(peer, "state_outside_training_range.elbow_flex", timeout=5.0)
        time.sleep(1.0)
    assert values is not None, node.output
    assert arrived - started < 1.0, f"reported after {arrived - started:.2f} s"
    for joint in JOINTS:
        assert int(values.get(f"state_outside_training_range.{joint}", 0)) > 0, (joint, values)
    # WARN at least (ERROR once no action was computed for longer than max_input_age_s while commanding)
    assert status.level[0] >= 1, status
    assert peer.received[ACTION] == [], "out_of_range_policy skip: no command from out-of-range states"
    diag = latest_diagnostics(peer)
    assert int(diag["skipped.bad_input.training_range"]) > 0 and "bad_input.joint_limits" not in str(diag.keys())
    line = next((ln for ln in node.output.splitlines() if "joint 'shoulder_pan' is" in ln), "")
    assert "in policy units, outside the training range [-90, 40]" in line and "units" in line, node.output

    peer.clear()
    peer.stream(1.0, joints=POSE_RAD)  # fixed: commands again
    assert peer.wait_for(ACTION, 3, timeout=10), node.output
