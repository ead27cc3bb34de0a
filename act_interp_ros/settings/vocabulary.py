"""The words the parameters accept, each listed once (torch-free; the engine, the contract and the
validation use these lists)."""
from __future__ import annotations

import re

__all__ = [
    "AGGREGATE_FNS",
    "INFERENCE_MODES",
    "ACTION_TYPES",
    "CAMERA_KEY_PREFIX",
    "CAMERA_TRANSPORTS",
    "ENV_STATE_TYPES",
    "GRADCAM_TARGET_KINDS",
    "INPUT_QOS",
    "JOINT_CONVENTION_NAMES",
    "JOINT_TARGET_KINDS",
    "OUT_OF_RANGE_POLICIES",
    "OVERLAY_SCALES",
    "SCALAR_TARGET_KINDS",
    "SIDE_METHODS",
    "TARGET_KINDS",
    "camera_name",
]

#: LeRobot's camera feature prefix (``lerobot.utils.constants.OBS_IMAGES`` + "."; not imported: it loads torch).
CAMERA_KEY_PREFIX = "observation.images."
CAMERA_TRANSPORTS = ("raw", "compressed")
#: action_type values (their message types: :data:`act_interp_ros.pipeline.contract.ACTION_MESSAGE_TYPES`).
ACTION_TYPES = ("joint_state", "float64_multi_array", "joint_trajectory")
INPUT_QOS = ("sensor_data", "reliable")
ENV_STATE_TYPES = ("point_stamped", "float64_multi_array")
#: What an attribution explains (:class:`act_interp_ros.core.action_targets.ActionTarget`);
#: ``executed``: each method's default readout of the executed chunk.
TARGET_KINDS = ("executed", "executed_joints", "executed_l2", "executed_sum", "executed_joint", "first_action_sum",
                "joint", "chunk_sum", "chunk_l2")
#: kinds that take a joint index
JOINT_TARGET_KINDS = ("joint", "executed_joint")
#: kinds with one scalar output (usable where one scalar is needed, e.g. GradCAM)
SCALAR_TARGET_KINDS = tuple(k for k in TARGET_KINDS if k not in ("executed", "executed_joints"))
#: gradcam_target values (``joint`` as ``joint:<name or index>``).
GRADCAM_TARGET_KINDS = ("first_action_sum", "chunk_sum", "chunk_l2", "joint")
#: Attribution methods the node's side timer can compute (each has its own overlay topic).
SIDE_METHODS = ("gradcam", "gradient_x_input", "integrated_gradients")
OVERLAY_SCALES = ("global", "per_camera")
#: What a tick does when an observation is outside the training range.
OUT_OF_RANGE_POLICIES = ("warn", "skip")
INFERENCE_MODES = ("sync", "async")
#: LeRobot async inference's aggregate functions (lerobot.async_inference.configs.AGGREGATE_FUNCTIONS)
AGGREGATE_FNS = ("weighted_average", "latest_only", "average", "conservative")
#: joint_convention values (what each means: :data:`act_interp_ros.inputs.calibration.JOINT_CONVENTIONS`).
JOINT_CONVENTION_NAMES = ("lerobot_radians", "urdf_range")


def camera_name(key: str) -> str:
    """Short camera name for topic names: ``observation.images.front`` -> ``front``.

    Characters not allowed in ROS topic name tokens become '_' (``front-left`` -> ``front_left``), and a
    name starting with a digit gets a ``cam_`` prefix.
    """
    name = key[len(CAMERA_KEY_PREFIX):] if key.startswith(CAMERA_KEY_PREFIX) else key
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not name or name[0].isdigit():
        name = "cam_" + name
    return name
