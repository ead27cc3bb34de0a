"""Synthetic SO-101 tabletop scene (renderer + scripted expert); no ROS and no torch imports."""

from __future__ import annotations

from act_interp_ros.synthetic.arm import (
    HOME_POSE,
    JOINT_NAMES,
    POLICY_OFFSET,
    POLICY_SCALE,
    ArmGeometry,
    ArmPose,
    forward_kinematics,
    inverse_kinematics,
    policy_to_radians,
    radians_to_policy,
)
from act_interp_ros.synthetic.expert import (
    FPS,
    PHASES,
    Episode,
    ExpertConfig,
    ScriptedExpert,
    generate_episode,
    render_episode,
    sample_cube_positions,
    simulate_episode,
)
from act_interp_ros.synthetic.cameras import CameraModel
from act_interp_ros.synthetic.scene import SyntheticScene
from act_interp_ros.synthetic.scene_state import CAMERA_NAMES, OBJECT_NAMES, CubeState, SceneConfig, SceneState

__all__ = [
    "CAMERA_NAMES",
    "FPS",
    "HOME_POSE",
    "JOINT_NAMES",
    "OBJECT_NAMES",
    "PHASES",
    "POLICY_OFFSET",
    "POLICY_SCALE",
    "ArmGeometry",
    "ArmPose",
    "CameraModel",
    "CubeState",
    "Episode",
    "ExpertConfig",
    "SceneConfig",
    "SceneState",
    "ScriptedExpert",
    "SyntheticScene",
    "forward_kinematics",
    "generate_episode",
    "inverse_kinematics",
    "policy_to_radians",
    "radians_to_policy",
    "render_episode",
    "sample_cube_positions",
    "simulate_episode",
]
