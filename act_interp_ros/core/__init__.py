"""ROS-free interpretability engine for LeRobot ACT: loading, attention, GradCAM, pixel attribution, rendering."""

from act_interp_ros.core.action_targets import (
    DEFAULT_GRADIENT_TARGET,
    DEFAULT_PERTURBATION_TARGET,
    TARGET_KINDS,
    ActionTarget,
)
from act_interp_ros.core.attention import AttentionOptions, Interpretation
from act_interp_ros.core.attribution import PixelGradientXInput, PixelIntegratedGradients
from act_interp_ros.core.occlusion import PixelOcclusion
from act_interp_ros.core.faithfulness import DeletionResult, DeletionTest
from act_interp_ros.core.env_state_sensitivity import (
    EnvStateSensitivity,
    SensitivityConfig,
    SensitivityError,
    SensitivityResult,
    without_env_state,
)
from act_interp_ros.core.gradcam import GradCAM, GradCAMTarget
from act_interp_ros.core.interpretable_policy import ActionWithInterpretation, InterpretableACT, StepResult
from act_interp_ros.core.loading import LoadedPolicy, PolicyLoadError, load_act_policy
from act_interp_ros.core.observation import ObservationBuilder, ObservationError
from act_interp_ros.core.render import colorize, render_overlay
from act_interp_ros.core.token_layout import TokenLayout

__all__ = [
    "DEFAULT_GRADIENT_TARGET",
    "DEFAULT_PERTURBATION_TARGET",
    "TARGET_KINDS",
    "ActionTarget",
    "ActionWithInterpretation",
    "AttentionOptions",
    "DeletionResult",
    "DeletionTest",
    "EnvStateSensitivity",
    "GradCAM",
    "GradCAMTarget",
    "InterpretableACT",
    "Interpretation",
    "LoadedPolicy",
    "ObservationBuilder",
    "ObservationError",
    "PixelGradientXInput",
    "PixelIntegratedGradients",
    "PixelOcclusion",
    "PolicyLoadError",
    "SensitivityConfig",
    "SensitivityError",
    "SensitivityResult",
    "StepResult",
    "TokenLayout",
    "colorize",
    "load_act_policy",
    "render_overlay",
    "without_env_state",
]
