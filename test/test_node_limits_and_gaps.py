"""Issue 11: commands stay inside the joint limits whatever the arm reports, and a plan made before an
input gap is never executed after it (the node as its own process, over real DDS)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from node_harness import latest_diagnostics, write_params, node_and_peer

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
WIDE_CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])


@pytest.fixture(scope="module")
def wide(tmp_path_factory, node_checkpoint):
    """Default limits, a max step so large it never binds: commands show the policy's actions as they are."""
    params = write_params(tmp_path_factory.mktemp("params_wide") / "p.yaml", side_rate_hz=0.0, input_qos="reliable",
                          max_joint_step=[10.0] * 6)
    with node_and_peer(params, node_checkpoint, "safety_wide_peer", [(JointState, ACTION)]) as running:
        yield running


@pytest.mark.parametrize("reported", [5.0, 1e6, -1e6])
def test_joint_state_far_outside_its_limits_is_bad_input(wide, reported):
    """Issue 11.1: shoulder_pan reported at 5 rad (limit +-1.92) once made the node command 4.9 rad."""
    node, peer = wide
    time.sleep(0.5)
    before = int(latest_diagnostics(peer).get("skipped.bad_input.joint_limits", 0))
    peer.clear()
    joints = WIDE_CURRENT.copy()
    joints[0] = reported
    peer.stream(1.0, joints=joints)
    time.sleep(0.3)
    assert peer.received[ACTION] == [], "no command may be computed from a joint state outside the limits"
    assert int(latest_diagnostics(peer).get("skipped.bad_input.joint_limits", 0)) > before
    assert "bad_input.joint_limits:/joint_states joint 'shoulder_pan' is at" in node.output


def test_every_command_is_inside_the_limits(wide):
    """A joint state just outside a limit (within joint_limit_tolerance) still gets commands inside the limits."""
    _, peer = wide
    time.sleep(0.5)
    peer.clear()
    joints = WIDE_CURRENT.copy()
    joints[0] = 1.95  # 0.03 rad past the upper limit 1.92, inside the 0.05 tolerance
    peer.stream(1.0, joints=joints)
    actions = peer.wait_for(ACTION, 5)
    assert len(actions) >= 5
    pos = np.array([m.position for m in actions])
    assert np.all(pos <= np.array([1.92, 1.92, 1.92, 1.92, 2.74, 1.745]) + 1e-12)
    assert np.all(pos >= np.array([-1.92, -1.92, -1.92, -1.92, -2.74, 0.0]) - 1e-12)


def _fresh_plan_commands(checkpoint, seed: int, joints_ros: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` commands a freshly reset policy gives for a constant observation (what the node must send)."""
    from act_interp_ros.core import InterpretableACT, ObservationBuilder
    from act_interp_ros.inputs.joint_mapping import JointMapping
    from node_harness import default_settings

    mapping = JointMapping.from_settings(default_settings().replace(policy_path=str(checkpoint),
                                                                    max_joint_step=[10.0] * 6))
    policy = InterpretableACT.from_pretrained(str(checkpoint), device="cpu")
    try:
        rgb = np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)
        obs = ObservationBuilder(policy.config).build(
            {"observation.images.front": rgb, "observation.images.wrist": rgb}, mapping.ros_to_policy(joints_ros))
        policy.reset()
        out = []
        for _ in range(n):
            out.append(mapping.limit(mapping.policy_to_ros(policy.step(obs, force_model_run=False).action),
                                     joints_ros)[0])
        return np.array(out)
    finally:
        policy.close()


def test_after_an_input_gap_the_next_action_comes_from_a_fresh_plan(wide, node_checkpoint):
    """Issue 11.2: after a 1 s dropout the first actions came from the chunk planned before the gap."""
    _, peer = wide
    expected = _fresh_plan_commands(node_checkpoint, seed=777, joints_ros=WIDE_CURRENT, n=3)
    for gap in range(2):  # a queued (stale) action would survive a gap 4 times out of 5 (n_action_steps 5)
        peer.stream(1.0, joints=WIDE_CURRENT)  # a new random picture every frame: the plan before the gap
        resets = int(latest_diagnostics(peer)["plan_resets"])
        time.sleep(1.0)  # every input drops out
        peer.clear()
        peer.stream(1.0, joints=WIDE_CURRENT, seed=777)  # one constant observation after the gap
        after = np.array([m.position for m in peer.wait_for(ACTION, 3)])
        assert len(after) >= 3
        np.testing.assert_allclose(after[:3], expected, atol=1e-5, err_msg=f"gap {gap}: not a fresh plan")
        assert int(latest_diagnostics(peer)["plan_resets"]) > resets

