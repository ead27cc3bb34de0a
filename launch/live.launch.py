"""Live interpretability for an ACT policy on an SO-101 arm.

    ros2 launch act_interp_ros live.launch.py policy_path:=/path/to/pretrained_model \
        [config:=/path/to/params.yaml] [device:=cuda] [use_sim_time:=true] [rviz:=true] [publish_actions:=false]

The node exits (and takes the launch down) with one clear message if the configuration cannot work.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, Shutdown
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("act_interp_ros")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    arguments = [
        DeclareLaunchArgument("policy_path", description="LeRobot ACT pretrained_model directory or hub repo id"),
        DeclareLaunchArgument(
            "config", default_value=PathJoinSubstitution([share, "config", "so101.yaml"]),
            description="ROS 2 params file for act_interp_node",
        ),
        DeclareLaunchArgument("device", default_value="cpu", description="cpu, cuda, cuda:N or mps"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="true for bag replay with --clock"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with the overlay displays"),
        DeclareLaunchArgument(
            "publish_actions", default_value="true", description="false = observe-only (no action topic)"
        ),
    ]
    node = Node(
        package="act_interp_ros",
        executable="act_interp_node",
        name="act_interp_node",
        output="screen",
        emulate_tty=True,
        parameters=[
            LaunchConfiguration("config"),
            {
                "policy_path": LaunchConfiguration("policy_path"),
                "device": LaunchConfiguration("device"),
                "publish_actions": ParameterValue(LaunchConfiguration("publish_actions"), value_type=bool),
                "use_sim_time": use_sim_time,
            },
        ],
        on_exit=Shutdown(reason="act_interp_node exited"),
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="act_interp_rviz",
        arguments=["-d", PathJoinSubstitution([share, "rviz", "act_interp.rviz"])],
        parameters=[{"use_sim_time": use_sim_time}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return LaunchDescription([*arguments, node, rviz])
