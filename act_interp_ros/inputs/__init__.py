"""What comes in from the robot, checked before the policy sees it (ROS-free).

* :mod:`.freshness`      the input gate: every input present, stamped, fresh and in step;
* :mod:`.image_decoding` sensor_msgs Image / CompressedImage -> RGB frames;
* :mod:`.joint_mapping`  JointState -> policy units and back, joint limits, step limits;
* :mod:`.calibration`    joint conventions of SO-101 drivers and LeRobot calibration files -> joint mapping;
* :mod:`.units_fit`      which scale/offset maps recorded joint states onto the training range;
* :mod:`.env_state`      environment-state messages (PointStamped, Float64MultiArray) -> policy vector.
"""
