"""Node parameters: the single source of truth shared by the live node, the offline replay and the demo.

* :mod:`.schema`      every parameter (default, description, ROS type, whether it may change at runtime);
* :mod:`.validation`  one-line errors naming the parameter; parsing of structured string parameters;
* :mod:`.params_file` ROS 2 params files and `-p name:=value` overrides read like rcl reads them;
* :mod:`.vocabulary`  the words parameters accept (action types, target kinds, ...), each listed once;
* :mod:`.docs`        the README's parameter table.
"""
from act_interp_ros.settings.docs import parameters_markdown
from act_interp_ros.settings.errors import SettingsError, SettingsFileError
from act_interp_ros.settings.params_file import (
    default_config,
    load_settings_yaml,
    parse_param_assignments,
    read_params_file,
)
from act_interp_ros.settings.schema import (
    DEFAULT_NODE_NAME,
    NodeSettings,
    ParameterSpec,
    coerce_value,
    parameter_defaults,
    parameter_descriptions,
    parameter_names,
    parameter_specs,
)
from act_interp_ros.settings.validation import GradCAMTargetSpec, parse_gradcam_target
from act_interp_ros.settings.vocabulary import (
    ACTION_TYPES,
    CAMERA_KEY_PREFIX,
    GRADCAM_TARGET_KINDS,
    SIDE_METHODS,
    camera_name,
)

__all__ = [
    "ACTION_TYPES",
    "CAMERA_KEY_PREFIX",
    "DEFAULT_NODE_NAME",
    "GRADCAM_TARGET_KINDS",
    "GradCAMTargetSpec",
    "NodeSettings",
    "ParameterSpec",
    "SIDE_METHODS",
    "SettingsError",
    "SettingsFileError",
    "camera_name",
    "coerce_value",
    "default_config",
    "load_settings_yaml",
    "parameter_defaults",
    "parameter_descriptions",
    "parameter_names",
    "parameter_specs",
    "parameters_markdown",
    "parse_gradcam_target",
    "parse_param_assignments",
    "read_params_file",
]
