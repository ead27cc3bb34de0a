"""Live interpretability for an ACT policy on an SO-101 arm.

    ros2 launch act_interp_ros live.launch.py config:=/path/to/your_params.yaml \
        [policy_path:=/path/to/pretrained_model] [publish_actions:=false] [device:=cuda] [use_sim_time:=true] \
        [rviz:=true]

The params file (``config:=``, default: the shipped config/so101.yaml) decides every parameter. A launch
argument overrides it only when you give it: ``publish_actions:=false`` is observe-only (the policy and the
overlays run, no command is published), whatever the file says. ``rviz:=true`` starts RViz with a layout for
the configuration's cameras. The node exits (and takes the launch down) with one clear message if the
configuration cannot work. The parameter building lives in act_interp_ros.ros.launch_params (tested without
``ros2 launch``).
"""

import tempfile

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from act_interp_ros.ros.launch_params import LAUNCH_ARGUMENTS, node_parameters, wants_rviz
from act_interp_ros.ros.rviz_config import rviz_config_for


def _nodes(context):
    given = dict(context.launch_configurations)
    config = given.get("config", "")
    nodes = [Node(
        package="act_interp_ros",
        executable="act_interp_node",
        name="act_interp_node",
        output="screen",
        emulate_tty=True,
        parameters=node_parameters(config, given),
        on_exit=Shutdown(reason="act_interp_node exited"),
    )]
    if wants_rviz(given):
        layout = tempfile.NamedTemporaryFile("w", prefix="act_interp_", suffix=".rviz", delete=False)
        with layout:
            layout.write(rviz_config_for(config or None, given.get("policy_path") or None))
        sim_time = node_parameters("", {"use_sim_time": given.get("use_sim_time", "")})
        nodes.append(Node(package="rviz2", executable="rviz2", name="act_interp_rviz",
                          arguments=["-d", layout.name], parameters=sim_time))
    return nodes


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("act_interp_ros")
    arguments = [
        DeclareLaunchArgument(
            "config", default_value=PathJoinSubstitution([share, "config", "so101.yaml"]),
            description="ROS 2 params file for act_interp_node (your copy of config/so101.yaml)",
        ),
        *(DeclareLaunchArgument(a.name, default_value=a.default, description=a.description)
          for a in LAUNCH_ARGUMENTS),
    ]
    return LaunchDescription([*arguments, OpaqueFunction(function=_nodes)])
