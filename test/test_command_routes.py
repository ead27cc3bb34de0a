"""The node's commands reach an arm by the two common routes (docs/commanding_the_arm.md).

1. A SO-101 ROS 2 driver's command topic: nimiCurtis/so101_ros2's so101_ros2_bridge subscribes
   std_msgs/Float64MultiArray on ``joint_commands`` (six radians in its JOINT_NAMES order) and decodes the gripper
   as ``rad / pi * 100 + 10`` while it publishes ``p / 100 * pi``: ``action_type: float64_multi_array``, the
   node's ``~/joint_command`` remapped onto ``/joint_commands``, ``command_offset`` 10 on the gripper.
2. ros2_control: a ``forward_command_controller`` (``/forward_position_controller/commands``,
   Float64MultiArray in the controller's joint order) or a ``joint_trajectory_controller``
   (``/<controller>/joint_trajectory``, trajectory_msgs/JointTrajectory with joint names).

The drivers themselves cannot run here (no hardware, no ros2_control from PyPI): a peer subscribes with each
driver's message type on its topic, and the bridge's command decoding is its formula transcribed from its source.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from act_interp_ros.inputs.joint_mapping import JointMapping
from act_interp_ros.settings import load_settings_yaml
from node_harness import JOINTS, TEST_CONTROL_RATE_HZ, node_and_peer, write_params

CURRENT = [0.0, 0.3, -0.3, 0.2, 0.0, 0.8]


def bridge_command_decode(rad: np.ndarray) -> np.ndarray:
    """so101_ros2_bridge FollowerBridge.radians_to_normalized: what LeRobot's send_action receives."""
    return np.array([r / math.pi * 100.0 + 10.0 if j == "gripper" else math.degrees(r) for j, r in zip(JOINTS, rad)])


def bridge_state_encode(p: np.ndarray) -> np.ndarray:
    """so101_ros2_bridge publish_joint_states: LeRobot's observation -> joint_states_raw radians."""
    return np.array([v / 100.0 * math.pi if j == "gripper" else math.radians(v) for j, v in zip(JOINTS, p)])


def bridge_settings(repo_root, tmp_path, **extra):
    params = write_params(tmp_path / "bridge.yaml", joint_convention="lerobot_radians",
                          command_offset=[0.0, 0.0, 0.0, 0.0, 0.0, 10.0], **extra)
    return load_settings_yaml(params, overrides={"policy_path": str(repo_root)}, validate=False)


def test_the_bridge_executes_the_policys_action_with_command_offset(repo_root, tmp_path):
    from act_interp_ros.inputs.calibration import resolve_joint_mapping

    settings, _ = resolve_joint_mapping(bridge_settings(repo_root, tmp_path))
    mapping = JointMapping.from_settings(settings)
    observed = np.array([10.0, -35.0, 40.0, 5.0, -20.0, 30.0])  # LeRobot units: degrees, gripper 0..100
    # the state path: the bridge's radians -> the node's policy units is the identity on LeRobot's values
    np.testing.assert_allclose(mapping.ros_to_policy(bridge_state_encode(observed)), observed, atol=1e-9)
    action = np.array([12.0, -30.0, 35.0, 0.0, -25.0, 45.0])
    executed = bridge_command_decode(mapping.command_to_ros(action))
    np.testing.assert_allclose(executed, action, atol=1e-9)
    # without command_offset the bridge opens the gripper 10 units further than the policy asked
    plain = JointMapping.from_settings(settings.replace(command_offset=[0.0] * 6))
    np.testing.assert_allclose(bridge_command_decode(plain.command_to_ros(action)) - action, [0, 0, 0, 0, 0, 10],
                               atol=1e-9)
    # limits apply after the offset: a closed-gripper action cannot command below the lower limit
    limited, clamped = mapping.limit(mapping.command_to_ros(np.array([0, 0, 0, 0, 0, 2.0])),
                                     bridge_state_encode(np.array([0, 0, 0, 0, 0, 2.0])))
    assert clamped and limited[-1] == settings.joint_lower_limits[-1]


def test_bad_command_offset_is_one_clear_line(repo_root, tmp_path):
    from act_interp_ros.settings.errors import SettingsError

    with pytest.raises(SettingsError, match="command_offset"):
        bridge_settings(repo_root, tmp_path).replace(command_offset=[0.0, 10.0])


ROUTES = {
    # route: (params, extra ROS args, topic the driver listens on, message type)
    "so101_ros2_bridge": ({"action_type": "float64_multi_array", "joint_convention": "lerobot_radians",
                           "command_offset": [0.0, 0.0, 0.0, 0.0, 0.0, 10.0]},
                          ("-r", "/act_interp_node/joint_command:=/joint_commands"), "/joint_commands",
                          Float64MultiArray),
    "forward_position_controller": ({"action_type": "float64_multi_array",
                                     "action_topic": "/forward_position_controller/commands"}, (),
                                    "/forward_position_controller/commands", Float64MultiArray),
    "joint_trajectory_controller": ({"action_type": "joint_trajectory",
                                     "action_topic": "/arm_controller/joint_trajectory"}, (),
                                    "/arm_controller/joint_trajectory", JointTrajectory),
}


@pytest.mark.parametrize("route", list(ROUTES))
def test_commands_arrive_on_the_drivers_topic_in_its_message_type(route, tmp_path, node_checkpoint):
    overrides, ros_args, topic, msg_type = ROUTES[route]
    params = write_params(tmp_path / f"{route}.yaml", side_rate_hz=0.0, input_qos="reliable", **overrides)
    settings = load_settings_yaml(params, overrides={"policy_path": str(node_checkpoint)})
    with node_and_peer(params, node_checkpoint, f"route_{route}", [(msg_type, topic)], *ros_args) as (node, peer):
        peer.stream(2.0, joints=CURRENT)
        got = peer.wait_for(topic, 3, timeout=15)
        assert len(got) >= 3, f"no commands on {topic} ({route}):\n{node.output}"
    lower, upper = np.array(settings.joint_lower_limits), np.array(settings.joint_upper_limits)
    for msg in got:
        if msg_type is Float64MultiArray:
            values = np.array(msg.data)
            assert msg.layout.dim[0].size == 6
        else:
            assert list(msg.joint_names) == JOINTS and len(msg.points) == 1
            point = msg.points[0]
            values = np.array(point.positions)
            horizon = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
            assert horizon == pytest.approx(1.0 / TEST_CONTROL_RATE_HZ)
            assert msg.header.stamp.sec > 0
        assert values.shape == (6,) and np.all(np.isfinite(values))
        assert np.all(values >= lower - 1e-9) and np.all(values <= upper + 1e-9)
        assert np.all(np.abs(values - CURRENT) <= np.array(settings.max_joint_step) + 1e-9)
