"""act_interp_ros: live interpretability for LeRobot ACT policies on ROS 2.

The ROS-free engine lives in :mod:`act_interp_ros.core`; the rclpy layer in :mod:`act_interp_ros.ros`;
the rosbags-based tools in :mod:`act_interp_ros.bag`.
"""

__version__ = "0.1.0"
