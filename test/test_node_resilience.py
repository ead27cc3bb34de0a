"""Bad runtime input keeps the node alive and counted; GradCAM failures never stop control; start-up
configuration errors exit non-zero with one message naming the parameter."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from node_harness import JOINTS, latest_diagnostics, start_node, write_params, node_and_peer

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"


@pytest.fixture(scope="module")
def strict(tmp_path_factory, node_checkpoint):
    """image_resize false (wrong sizes are bad input) and a GradCAM failure injected via the test hook."""
    params = write_params(tmp_path_factory.mktemp("params") / "p.yaml", image_resize=False, side_rate_hz=5.0,
                          input_qos="reliable")
    with node_and_peer(params, node_checkpoint, "resilience_peer", [(JointState, ACTION)],
                       faults=("--fail-side-method", "gradcam")) as running:
        yield running


def test_gradcam_failure_is_counted_and_control_continues(strict):
    node, peer = strict
    peer.clear()
    peer.stream(2.0)
    assert len(peer.wait_for(ACTION, 10)) >= 10
    diag = latest_diagnostics(peer)
    assert int(diag["side.gradcam.failures"]) >= 2 and int(diag.get("side.gradcam.runs", 0)) == 0
    assert node.alive()


@pytest.mark.parametrize(
    "kwargs,counter",
    [
        (dict(encoding="bayer_rggb8"), "skipped.bad_input.image"),
        (dict(size=(60, 80)), "skipped.bad_input.observation"),
        (dict(joint_names=JOINTS[:-1]), "skipped.bad_input.joint_state"),
    ],
    ids=["unknown_encoding", "wrong_size", "missing_joint"],
)
def test_bad_input_is_counted_and_the_node_stays_alive(strict, kwargs, counter):
    node, peer = strict
    time.sleep(0.5)  # let the previous test's good frames age out (max_input_age_s 0.25)
    before = int(latest_diagnostics(peer).get(counter, 0))
    peer.clear()
    joints = np.zeros(len(kwargs.get("joint_names", JOINTS)))
    peer.stream(1.0, joints=joints, **kwargs)
    assert peer.received[ACTION] == []
    assert int(latest_diagnostics(peer).get(counter, 0)) > before
    assert node.alive()
    peer.stream(0.7)  # good input again -> actions again
    assert peer.wait_for(ACTION, 3, timeout=10)


@pytest.mark.parametrize(
    "overrides,policy,message",
    [
        ({}, "/nonexistent/pretrained_model", "policy_path"),
        ({"camera_keys": ["observation.images.front", "observation.images.top"]}, None,
         "parameter 'camera_keys' must list the policy's cameras"),
        ({"joint_names": ["a", "b", "c"], "joint_scale": [1.0] * 3, "joint_offset": [0.0] * 3,
          "joint_lower_limits": [-1.0] * 3, "joint_upper_limits": [1.0] * 3, "max_joint_step": [0.1] * 3}, None,
         "parameter 'joint_names' must have 6 joints"),
        ({"control_rate_hz": -5.0}, None, "parameter 'control_rate_hz'"),
        ({"action_type": "twist"}, None, "parameter 'action_type'"),
    ],
    ids=["missing_policy", "camera_keys", "joint_count", "bad_rate", "bad_action_type"],
)
def test_startup_errors_exit_nonzero_naming_the_parameter(tmp_path, node_checkpoint, overrides, policy, message):
    params = write_params(tmp_path / "p.yaml", **overrides)
    node = start_node(params, policy or node_checkpoint)
    code = node.wait_exit(timeout=60)
    assert code == 2, node.output
    assert message in node.output
    assert "Traceback" not in node.output
