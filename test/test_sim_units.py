"""The simulated arm's joint units: MuJoCo radians <-> LeRobot policy units <-> the lerobot_radians driver.

The bridge claims to speak the ``lerobot_radians`` convention; the node's own calibration code
(:func:`derive_mapping`) must map the bridge's /joint_states back to exactly the policy units the simulator
records. Pure numpy: runs at every LeRobot end.
"""
from __future__ import annotations

import math

import numpy as np

from act_interp_ros.inputs.calibration import derive_mapping
from act_interp_ros.sim.units import (
    GRIPPER_RANGE_RAD,
    JOINT_NAMES,
    SIM_JOINT_CONVENTION,
    mujoco_to_policy,
    policy_to_mujoco,
    policy_to_ros,
    ros_to_policy,
)


def test_the_node_maps_the_bridges_joint_states_to_the_recorded_policy_units():
    q = np.array([0.3, -1.2, 1.0, 0.5, -2.0, 0.9])  # MuJoCo radians
    recorded = mujoco_to_policy(q)  # what a demonstration stores
    ros = policy_to_ros(recorded)  # what the bridge publishes
    m = derive_mapping(SIM_JOINT_CONVENTION, JOINT_NAMES, None, "degrees")
    node_sees = ros * np.array(m.scale) + np.array(m.offset)
    np.testing.assert_allclose(node_sees, recorded, atol=1e-9)
    # and the node's command (policy -> ros with the inverse map) lands on the same MuJoCo target
    command_ros = (recorded - np.array(m.offset)) / np.array(m.scale)
    np.testing.assert_allclose(policy_to_mujoco(ros_to_policy(command_ros)), q, atol=1e-9)


def test_units_of_each_joint():
    q = np.array([math.pi / 2, 0.0, -math.pi / 4, 0.0, 0.0, GRIPPER_RANGE_RAD[1]])
    p = mujoco_to_policy(q)
    np.testing.assert_allclose(p[:5], [90.0, 0.0, -45.0, 0.0, 0.0], atol=1e-9)  # LeRobot degrees
    assert p[5] == 100.0  # gripper fully open
    assert mujoco_to_policy(np.array([0, 0, 0, 0, 0, GRIPPER_RANGE_RAD[0]]))[5] == 0.0  # closed
    r = policy_to_ros(p)
    np.testing.assert_allclose(r[:5], q[:5])  # body: the driver's radians are the MJCF's
    assert math.isclose(r[5], math.pi)  # gripper 0..100 -> 0..pi
    batch = np.random.default_rng(0).uniform(-1.5, 1.5, (4, 6))
    np.testing.assert_allclose(policy_to_mujoco(mujoco_to_policy(batch)), batch, atol=1e-12)
    np.testing.assert_allclose(ros_to_policy(policy_to_ros(batch)), batch, atol=1e-12)
