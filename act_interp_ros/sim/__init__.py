"""A simulated SO-101 in MuJoCo behind ROS 2, for closed-loop runs of the node (issue 27).

ROS-free core: :mod:`.scene` (so101-nexus's pick scene, cameras, rates), :mod:`.units` (MuJoCo / LeRobot /
driver joint units), :mod:`.simulator` (reset, render, step one control period in simulated time),
:mod:`.expert` (scripted IK pick), :mod:`.recording` (demonstrations as a LeRobotDataset). The rclpy bridge
(:mod:`.bridge`) talks like a real arm's driver; ``act_interp_sim`` (:mod:`act_interp_ros.cli.sim`) runs it.

Importing this package selects MuJoCo's headless EGL renderer (``MUJOCO_GL=egl``) unless ``MUJOCO_GL`` is set:
MuJoCo reads it when it is first imported. Needs Python >= 3.12 with the ``sim`` extra (``mujoco``,
``so101-nexus``); :func:`~.scene.sim_unavailable_reason` says what is missing.
"""
from act_interp_ros.sim.scene import configure_headless_gl

configure_headless_gl()
