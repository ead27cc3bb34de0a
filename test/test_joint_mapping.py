"""JointMapping: ROS (rad) <-> policy (deg, gripper 0..100) units, JointState lookup, command limiting."""
from __future__ import annotations

import array
import math

import numpy as np
import pytest

from act_interp_ros.inputs.joint_mapping import ActionError, JointLimitError, JointMapping, JointStateError
from act_interp_ros.settings import NodeSettings

NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


@pytest.fixture()
def mapping() -> JointMapping:
    return JointMapping.from_settings(NodeSettings(policy_path="user/act"))


def test_so101_units(mapping):
    ros = np.array([math.pi / 2, 0.0, -math.pi / 4, 0.1, -0.2, 1.745])
    policy = mapping.ros_to_policy(ros)
    np.testing.assert_allclose(policy[:3], [90.0, 0.0, -45.0])
    assert policy[5] == pytest.approx(100.0, abs=0.02)  # gripper fully open: 1.745 rad -> 100


def test_round_trip_ros_policy_ros_with_offsets():
    m = JointMapping(NAMES, [57.3, -57.3, 2.0, 1.0, 10.0, 57.3], [1.0, -2.0, 0.5, 0.0, 3.0, 50.0],
                     [-2.0] * 6, [2.0] * 6, [0.1] * 6)
    ros = np.random.default_rng(0).uniform(-2, 2, size=6)
    np.testing.assert_allclose(m.policy_to_ros(m.ros_to_policy(ros)), ros, rtol=0, atol=1e-12)
    # an action chunk (chunk, joints) converts in one call
    chunk = np.random.default_rng(1).uniform(-90, 90, size=(100, 6)).astype(np.float32)
    back = m.ros_to_policy(m.policy_to_ros(chunk))
    assert back.shape == (100, 6)
    np.testing.assert_allclose(back, chunk, atol=1e-4)
    with pytest.raises(ValueError, match=r"last dimension of 6"):
        m.ros_to_policy([1.0, 2.0])


def test_from_joint_state_reorders_by_name_and_ignores_extra_joints(mapping):
    names = ["gripper", "extra", "wrist_roll", "wrist_flex", "elbow_flex", "shoulder_lift", "shoulder_pan"]
    pos = array.array("d", [6.0, 99.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # rclpy gives array.array('d')
    out = mapping.from_joint_state(names, pos)
    np.testing.assert_array_equal(out, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    # same names again (cached index) and a different order
    np.testing.assert_array_equal(mapping.from_joint_state(names, pos), out)
    np.testing.assert_array_equal(mapping.from_joint_state(NAMES, [1, 2, 3, 4, 5, 6]), out)


def test_from_joint_state_errors_name_the_joint(mapping):
    with pytest.raises(JointStateError) as info:
        mapping.from_joint_state(NAMES[:5], [0.0] * 5)
    assert str(info.value).startswith("JointState is missing joint 'gripper'; expected joints")
    with pytest.raises(JointStateError, match=r"missing joint 'elbow_flex' \(and \['gripper'\]\)"):
        mapping.from_joint_state(NAMES[:2] + NAMES[3:5], [0.0] * 4)
    with pytest.raises(JointStateError, match=r"JointState position for joint 'elbow_flex' is nan; expected a "
                                              r"finite value"):
        mapping.from_joint_state(NAMES, [0.0, 0.0, float("nan"), 0.0, 0.0, 0.0])
    with pytest.raises(JointStateError, match=r"joint 'gripper' is inf"):
        mapping.from_joint_state(NAMES, [0.0] * 5 + [float("inf")])
    with pytest.raises(JointStateError, match=r"JointState has 6 names but 0 positions"):
        mapping.from_joint_state(NAMES, [])
    with pytest.raises(JointStateError, match=r"lists joint 'gripper' twice"):
        mapping.from_joint_state(NAMES + ["gripper"], [0.0] * 7)


def test_limit_clamps_to_joint_limits_and_max_step(mapping):
    current = np.zeros(6)
    cmd, clamped = mapping.limit([0.05, -0.05, 0.0, 0.09, -0.1, 0.02], current)
    assert not clamped
    np.testing.assert_array_equal(cmd, [0.05, -0.05, 0.0, 0.09, -0.1, 0.02])
    # too big a step: each joint moves at most 0.1 rad toward its target
    cmd, clamped = mapping.limit([1.0, -1.0, 0.3, 0.0, 0.0, 0.0], current)
    assert clamped
    np.testing.assert_allclose(cmd, [0.1, -0.1, 0.1, 0.0, 0.0, 0.0])
    assert mapping.clamped_joints([1.0, -1.0, 0.3, 0.0, 0.0, 0.0], cmd) == ["shoulder_pan", "shoulder_lift",
                                                                            "elbow_flex"]
    # beyond the joint limits, near the limit: the limit wins
    near = np.array([1.9, 0.0, 0.0, 0.0, 2.7, 1.7])
    cmd, clamped = mapping.limit([2.5, 0.0, 0.0, 0.0, 3.0, 2.0], near)
    assert clamped
    np.testing.assert_allclose(cmd, [1.92, 0.0, 0.0, 0.0, 2.74, 1.745])
    # gripper cannot go below closed
    cmd, _ = mapping.limit([0.0] * 5 + [-0.05], np.zeros(6))
    assert cmd[5] == 0.0


def test_every_command_is_inside_the_limits_whatever_the_reported_position(mapping):
    """Issue 11.1: a joint state of 5 rad or 1e6 rad (limit +-1.92) once produced commands of 4.9 / 999999.9 rad."""
    for reported in (5.0, 1e6, -1e6, 2.2):
        current = np.array([reported, 0.0, 0.0, 0.0, 0.0, 0.5])
        cmd, clamped = mapping.limit(current.copy(), current)
        assert clamped
        assert np.all(cmd >= mapping.lower) and np.all(cmd <= mapping.upper), (reported, cmd)
    rng = np.random.default_rng(0)
    for _ in range(2000):
        current = rng.uniform(-4, 4, 6)
        action = rng.uniform(-10, 10, 6)
        cmd, _ = mapping.limit(action, current)
        assert np.all(cmd >= mapping.lower) and np.all(cmd <= mapping.upper)
        inside = (current >= mapping.lower) & (current <= mapping.upper)
        assert np.all(np.abs(cmd - current)[inside] <= mapping.max_step[inside] + 1e-12)


def test_joint_state_outside_its_limits_beyond_the_tolerance_is_rejected(mapping):
    mapping.check_within_limits(np.array([1.95, 0.0, 0.0, 0.0, 0.0, 0.0]), tolerance=0.05)  # 0.03 outside: ok
    with pytest.raises(JointLimitError, match=r"joint 'shoulder_pan' is at 5 \(ROS units\), outside its limits "
                                              r"\[-1.92, 1.92\] by more than joint_limit_tolerance 0.05"):
        mapping.check_within_limits(np.array([5.0, 0.0, 0.0, 0.0, 0.0, 0.0]), tolerance=0.05)
    with pytest.raises(JointLimitError, match="joint 'gripper'"):
        mapping.check_within_limits(np.array([0.0] * 5 + [-0.2]), tolerance=0.05)


def test_limit_rejects_bad_inputs_naming_the_joint(mapping):
    with pytest.raises(ActionError, match=r"action for joint 'wrist_roll' is nan; refusing"):
        mapping.limit([0.0, 0.0, 0.0, 0.0, float("nan"), 0.0], np.zeros(6))
    with pytest.raises(ActionError, match=r"one value per joint \(6"):
        mapping.limit([0.0] * 5, np.zeros(6))
    with pytest.raises(JointStateError, match=r"current position of joint 'shoulder_pan' is nan"):
        mapping.limit(np.zeros(6), [float("nan")] + [0.0] * 5)


def test_constructor_validation():
    ok = dict(names=NAMES, scale=[1.0] * 6, offset=[0.0] * 6, lower=[-1.0] * 6, upper=[1.0] * 6, max_step=[0.1] * 6)
    JointMapping(**ok)
    with pytest.raises(ValueError, match=r"'scale' must have one value per joint \(6\)"):
        JointMapping(**{**ok, "scale": [1.0] * 5})
    with pytest.raises(ValueError, match=r"'scale' must be non-zero"):
        JointMapping(**{**ok, "scale": [0.0] + [1.0] * 5})
    with pytest.raises(ValueError, match=r"lower limit must be < upper limit for joint 'elbow_flex'"):
        JointMapping(**{**ok, "lower": [-1.0, -1.0, 1.0, -1.0, -1.0, -1.0]})
    with pytest.raises(ValueError, match=r"'max_step' must be > 0"):
        JointMapping(**{**ok, "max_step": [0.0] * 6})
