"""launch_testing test of live.launch.py. It needs a ROS 2 install (launch, launch_ros, launch_testing
are not on PyPI): run it on a ROS machine with `colcon test --packages-select act_interp_ros` or
`launch_test test/test_launch_live.py`. Here (pip-only) it is skipped with that reason; the launch file
and RViz config are checked statically in test_launch_static.py."""

from __future__ import annotations

import os
import tempfile
import time
import unittest

import pytest

launch_testing = pytest.importorskip(
    "launch_testing", reason="launch_testing is only available with a ROS 2 install (not installable from PyPI)"
)
launch_ros = pytest.importorskip("launch_ros", reason="launch_ros is only available with a ROS 2 install")

import launch  # noqa: E402
import launch_testing.actions  # noqa: E402
import launch_testing.asserts  # noqa: E402
import rclpy  # noqa: E402
from ament_index_python.packages import get_package_share_directory  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from launch.launch_description_sources import PythonLaunchDescriptionSource  # noqa: E402

from act_interp_ros.core.checkpoints import build_act_checkpoint  # noqa: E402


@pytest.mark.launch_test
def generate_test_description():
    policy = build_act_checkpoint(os.path.join(tempfile.mkdtemp(), "pretrained_model"))
    live = launch.actions.IncludeLaunchDescription(
        PythonLaunchDescriptionSource(os.path.join(get_package_share_directory("act_interp_ros"), "launch", "live.launch.py")),
        launch_arguments={"policy_path": str(policy), "publish_actions": "false"}.items(),
    )
    return launch.LaunchDescription([live, launch_testing.actions.ReadyToTest()])


class TestLiveLaunch(unittest.TestCase):
    def test_node_comes_up_and_publishes_diagnostics(self):
        rclpy.init()
        node = rclpy.create_node("launch_probe")
        received = []
        node.create_subscription(DiagnosticArray, "/diagnostics", received.append, 10)
        deadline = time.monotonic() + 60
        while not received and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        node.destroy_node()
        rclpy.shutdown()
        self.assertTrue(received, "act_interp_node published no /diagnostics within 60 s")
        self.assertIn("act_interp_node", received[0].status[0].name)


@launch_testing.post_shutdown_test()
class TestShutdown(unittest.TestCase):
    def test_exit_codes(self, proc_info):
        launch_testing.asserts.assertExitCodes(proc_info, allowable_exit_codes=[0, -2, -15])
