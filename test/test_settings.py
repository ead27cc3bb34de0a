"""NodeSettings: defaults, one-line errors naming the parameter, ROS 2 params files (PyYAML and rcl)."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from act_interp_ros.settings import (
    GradCAMTargetSpec,
    NodeSettings,
    SettingsError,
    SettingsFileError,
    camera_name,
    load_settings_yaml,
    parameter_defaults,
    parameter_descriptions,
    parameter_names,
    parameter_specs,
    parameters_markdown,
    parse_param_assignments,
    read_params_file,
)

REPO = Path(__file__).resolve().parents[1]
SO101_YAML = REPO / "config" / "so101.yaml"
POLICY = "user/act_so101"  # a hub repo id: valid without touching the filesystem


def make(**changes) -> NodeSettings:
    return NodeSettings.from_mapping({"policy_path": POLICY, **changes})


def error_for(**changes) -> str:
    with pytest.raises(SettingsError) as info:
        make(**changes)
    return str(info.value)


def test_defaults_are_the_so101_setup_and_valid_once_policy_given():
    s = make()
    assert s.camera_keys == ["observation.images.front", "observation.images.wrist"]
    assert s.camera_topics == ["/camera/front/image_raw", "/camera/wrist/image_raw"]
    assert s.camera_names == ["front", "wrist"]
    assert s.joint_names == ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    assert s.joint_scale == [pytest.approx(57.29577951308232)] * 6
    assert s.gradcam_target_spec() == GradCAMTargetSpec("first_action_sum")
    assert s.warnings() == []
    # list defaults are not shared between instances
    a, b = NodeSettings(), NodeSettings()
    a.joint_offset[0] = 5.0
    assert b.joint_offset[0] == 0.0


def test_every_parameter_has_description_type_and_docs():
    specs = parameter_specs()
    names = [s.name for s in specs]
    assert names == parameter_names() and len(set(names)) == len(names)
    for s in specs:
        assert s.description and "\n" not in s.description, s.name
        assert s.ros_type in {"STRING", "DOUBLE", "INTEGER", "BOOL", "STRING_ARRAY", "DOUBLE_ARRAY",
                              "INTEGER_ARRAY"}, s.name
    assert set(parameter_descriptions()) == set(names) == set(parameter_defaults())
    table = parameters_markdown()
    assert all(f"`{n}`" in table for n in names)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"policy_path": ""}, "parameter 'policy_path' must be a LeRobot pretrained_model directory or a "
                              "Hugging Face repo id like 'user/act_so101' (required: pass "
                              "policy_path:=<dir or repo id>), got ''"),
        ({"device": "gpu"}, "parameter 'device' must be one of cpu, cuda, cuda:N (N = GPU index) or mps, "
                            "got 'gpu'"),
        ({"control_rate_hz": 0.0}, "parameter 'control_rate_hz' must be a finite number > 0, got 0.0"),
        ({"control_rate_hz": "fast"}, "parameter 'control_rate_hz' must be a finite number > 0, got 'fast'"),
        ({"camera_topics": ["/camera/front/image_raw"]},
         "parameter 'camera_topics' must have one entry per camera key (2), got 1"),
        ({"camera_transports": ["raw", "jpeg"]},
         "parameter 'camera_transports' must contain only raw, compressed, got 'jpeg'"),
        ({"camera_keys": ["front", "observation.images.wrist"]},
         "parameter 'camera_keys' must contain policy image keys of the form 'observation.images.<name>', "
         "got 'front'"),
        ({"joint_scale": [1.0] * 5}, "parameter 'joint_scale' must have one entry per joint in joint_names (6), "
                                     "got 5"),
        ({"joint_offset": [0.0] * 5 + [float("nan")]},
         "parameter 'joint_offset' must be a list of finite numbers, one per joint in joint_names"),
        ({"joint_lower_limits": [0.0] * 6, "joint_upper_limits": [1.0] * 5 + [0.0]},
         "parameter 'joint_upper_limits' must be greater than joint_lower_limits for joint 'gripper', "
         "got lower=0.0 upper=0.0"),
        ({"max_joint_step": [0.1] * 5 + [0.0]}, "parameter 'max_joint_step' must be > 0 for every joint"),
        ({"max_input_age_s": -1.0}, "parameter 'max_input_age_s' must be a finite number > 0, got -1.0"),
        ({"max_camera_skew_s": -0.1}, "parameter 'max_camera_skew_s' must be a finite number >= 0, got -0.1"),
        ({"image_resize": "yes"}, "parameter 'image_resize' must be true or false, got 'yes'"),
        ({"action_type": "twist"}, "parameter 'action_type' must be one of joint_state, float64_multi_array, "
                                   "joint_trajectory, got 'twist'"),
        ({"publish_actions": 1}, "parameter 'publish_actions' must be true or false, got 1"),
        ({"side_rate_hz": -2.0}, "parameter 'side_rate_hz' must be auto (from the measured forward times) or a rate "
                                 "in Hz >= 0 (0 = off), got -2.0"),
        ({"side_rate_hz": "fast"}, "parameter 'side_rate_hz' must be auto (from the measured forward times) or a "
                                   "rate in Hz >= 0 (0 = off), got 'fast'"),
        ({"gradcam_target": "joint:elbow"}, "parameter 'gradcam_target' must be first_action_sum, chunk_sum, "
                                            "chunk_l2 or joint:<name or index>"),
        ({"gradcam_target": "joint:6"}, "got 'joint:6'"),
        ({"gradcam_layer": ""}, "parameter 'gradcam_layer' must be a non-empty string, got ''"),
        ({"overlay_alpha": 1.5}, "parameter 'overlay_alpha' must be a finite number >= 0 and <= 1, got 1.5"),
        ({"input_qos": "best_effort"}, "parameter 'input_qos' must be one of sensor_data, reliable, "
                                       "got 'best_effort'"),
        ({"attention_decoder_layer": 0.5}, "parameter 'attention_decoder_layer' must be an integer, got 0.5"),
        ({"attention_heads": [0, -1]}, "parameter 'attention_heads' must be a list of head indices >= 0"),
        ({"attention_query": -2}, "parameter 'attention_query' must be executed, -1 (all queries) or a decoder query index >= 0"),
        ({"diagnostics_period_s": 0.0}, "parameter 'diagnostics_period_s' must be a finite number > 0"),
        ({"joint_state_topic": "joint states"}, "parameter 'joint_state_topic' must be a valid ROS topic name"),
        ({"action_topic": ""}, "parameter 'action_topic' must be a non-empty string, got ''"),
        ({"joint_names": ["a", "a", "b", "c", "d", "e"]}, "parameter 'joint_names' must have distinct entries"),
    ],
)
def test_each_bad_value_gives_one_line_naming_the_parameter(changes, message):
    text = error_for(**changes)
    assert "\n" not in text
    assert text.startswith(f"parameter '{next(iter(changes))}' must ") or "upper_limits" in text, text
    assert message in text, text


def test_settings_error_fields_and_missing_policy_directory(tmp_path):
    with pytest.raises(SettingsError) as info:
        make(camera_topics=["/a"])
    err = info.value
    assert (err.parameter, err.expected, err.got) == ("camera_topics", "have one entry per camera key (2)", "1")
    # a local path must exist; a hub id is accepted as is
    assert "(no such directory)" in error_for(policy_path=str(tmp_path / "nope"))
    assert make(policy_path=str(tmp_path)).policy_path == str(tmp_path)


def test_unknown_parameter_lists_valid_names_and_suggests():
    with pytest.raises(SettingsError) as info:
        NodeSettings.from_mapping({"policy_path": POLICY, "camera_topic": []})
    text = str(info.value)
    assert text.startswith("parameter 'camera_topic' must be a known parameter (did you mean 'camera_topics'?)")
    assert "policy_path" in text and "diagnostics_period_s" in text


def test_from_mapping_accepts_rclpy_value_types_and_none_keeps_default():
    import array

    s = NodeSettings.from_mapping({
        "policy_path": POLICY,
        "control_rate_hz": 15,  # int for a float: fine programmatically
        "joint_offset": array.array("d", [1.0] * 6),  # what rclpy returns for double arrays
        "attention_heads": None,  # declared but unset (rcl turns `[]` into this)
        "camera_topics": ("/a/image", "/b/image"),
    })
    assert s.control_rate_hz == 15.0 and isinstance(s.control_rate_hz, float)
    assert s.joint_offset == [1.0] * 6 and s.attention_heads == [] and s.camera_topics == ["/a/image", "/b/image"]


def test_gradcam_target_joint_by_name_or_index():
    assert make(gradcam_target="joint:gripper").gradcam_target_spec() == GradCAMTargetSpec("joint", 5)
    assert make(gradcam_target="joint:1").gradcam_target_spec() == GradCAMTargetSpec("joint", 1)
    assert make(gradcam_target="chunk_l2").gradcam_target_spec() == GradCAMTargetSpec("chunk_l2")


def test_camera_name_and_sanitising():
    assert camera_name("observation.images.front") == "front"
    assert camera_name("observation.images.cam_high") == "cam_high"
    assert camera_name("observation.images.front-left") == "front_left"
    assert camera_name("observation.images.0") == "cam_0"
    text = error_for(camera_keys=["observation.images.a-b", "observation.images.a_b"])
    assert text.startswith("parameter 'camera_keys' must give distinct short camera names")


def test_warnings_for_suspicious_but_valid_values():
    s = make(camera_transports=["compressed", "raw"], camera_topics=["/cam/front", "/cam/wrist/compressed"],
             side_rate_hz=60.0, publish_actions=False)
    text = "\n".join(s.warnings())
    assert "does not end in '/compressed'" in text
    assert "set its camera_transports entry to 'compressed'" in text
    assert "the side methods run at most once per control tick" in text
    assert "observe-only" in text


# ----------------------------------------------------------------------------- params files


def test_shipped_config_loads_validates_and_lists_every_parameter():
    raw = read_params_file(SO101_YAML)
    assert set(raw) == set(parameter_names()), "config/so101.yaml must list every parameter"
    # policy_path is deliberately empty in the file: loading without it names the parameter
    with pytest.raises(SettingsError) as info:
        load_settings_yaml(SO101_YAML)
    assert "parameter 'policy_path' must be" in str(info.value) and str(SO101_YAML) in str(info.value)
    s = load_settings_yaml(SO101_YAML, overrides={"policy_path": POLICY})
    defaults = NodeSettings(policy_path=POLICY)
    assert s == defaults, "the shipped config must match the documented defaults"
    # every parameter is commented in the file
    text = SO101_YAML.read_text()
    lines = text.splitlines()
    for name in parameter_names():
        i = next(k for k, line in enumerate(lines) if line.strip().startswith(f"{name}:"))
        assert lines[i - 1].strip().startswith("#") or name in ("joint_upper_limits", "joint_state_topic"), name


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_wildcard_and_node_sections_merge_in_file_order(tmp_path):
    p = write(tmp_path, """
        /**:
          ros__parameters:
            use_sim_time: true
            control_rate_hz: 10.0
            device: cuda
        act_interp_node:
          ros__parameters:
            control_rate_hz: 20.0
            policy_path: user/other
        other_node:
          ros__parameters:
            device: mps
        """)
    s = load_settings_yaml(p)
    assert (s.control_rate_hz, s.device, s.policy_path) == (20.0, "cuda", "user/other")
    s = load_settings_yaml(p, overrides={"device": "cpu", "policy_path": None})
    assert (s.device, s.policy_path) == ("cpu", "user/other")  # None override = not given


def test_namespaced_node_sections(tmp_path):
    p = write(tmp_path, """
        robot:
          act_interp_node:
            ros__parameters:
              policy_path: user/ns
        /**/act_interp_node:
          ros__parameters:
            device: cuda:1
        """)
    s = load_settings_yaml(p, node_name="/robot/act_interp_node")
    assert (s.policy_path, s.device) == ("user/ns", "cuda:1")
    assert read_params_file(p, node_name="/other/act_interp_node") == {"device": "cuda:1"}  # `/**/` matches
    p = write(tmp_path, """
        robot:
          act_interp_node:
            ros__parameters:
              policy_path: user/ns
        """)
    with pytest.raises(SettingsFileError) as info:
        read_params_file(p, node_name="/other/act_interp_node")
    assert "no parameters for node '/other/act_interp_node'" in str(info.value)


def test_integers_where_floats_are_expected_are_accepted_like_the_node_does(tmp_path):
    """Issue 11.3: `control_rate_hz: 30` is what ROS users write; node and replay both accept it."""
    p = write(tmp_path, """
        act_interp_node:
          ros__parameters:
            policy_path: user/x
            control_rate_hz: 30
            joint_offset: [0, 0, 0, 0, 0, 1]
            overlay_alpha: 1
        """)
    s = load_settings_yaml(p)
    assert s.control_rate_hz == 30.0 and isinstance(s.control_rate_hz, float)
    assert s.joint_offset == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0] and all(isinstance(v, float) for v in s.joint_offset)
    assert s.overlay_alpha == 1.0
    p = write(tmp_path, """
        act_interp_node:
          ros__parameters:
            policy_path: user/x
            max_consecutive_tick_errors: 2.5
        """)
    with pytest.raises(SettingsError, match=r"parameter 'max_consecutive_tick_errors' must be an integer, got 2.5"):
        load_settings_yaml(p)


def test_only_documented_parameters_are_dynamic():
    """Issue 11.5: the rest are read-only, so a runtime set is refused instead of accepted and ignored."""
    dynamic = {s.name for s in parameter_specs() if s.dynamic}
    assert dynamic == {"publish_actions", "side_rate_hz", "occlusion_rate_hz", "overlay_alpha", "overlay_scale"}
    for s in parameter_specs():
        assert ("dynamic" in s.description.lower()) == s.dynamic, s.name


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a ROS 2 params file"),
        ("foo: [\n", "not valid YAML"),
        ("some_node:\n  ros__parameters:\n    x: 1\n", "no parameters for node '/act_interp_node'"),
        ("act_interp_node:\n  ros__parameters:\n    control_rate: 1.0\n",
         "parameter 'control_rate' must be a known parameter (did you mean 'control_rate_hz'?)"),
    ],
)
def test_bad_params_files(tmp_path, text, message):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_settings_yaml(p)
    assert str(info.value).startswith(f"{p}: ") and message in str(info.value)


def test_missing_file():
    with pytest.raises(SettingsFileError, match="params file not found"):
        load_settings_yaml("/nonexistent/so101.yaml")


def test_parse_param_assignments():
    assert parse_param_assignments(["policy_path:=user/x", "control_rate_hz:=15.0", "attention_heads:=[0, 2]",
                                    "publish_actions:=false"]) == {
        "policy_path": "user/x", "control_rate_hz": 15.0, "attention_heads": [0, 2], "publish_actions": False}
    with pytest.raises(SettingsFileError, match="must look like name:=value"):
        parse_param_assignments(["policy_path=user/x"])


def test_shipped_config_through_rcl_params_parser_matches_pyyaml_loader():
    """The live node gets the file through rcl's C parser: declare every parameter like the node does
    (typed, empty-list defaults declared by type) and compare with load_settings_yaml."""
    import rclpy
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.context import Context
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    ctx = Context()
    rclpy.init(args=["--ros-args", "--params-file", str(SO101_YAML), "-p", f"policy_path:={POLICY}"], context=ctx)
    try:
        node = Node("act_interp_node", context=ctx, enable_rosout=False, start_parameter_services=False)
        try:
            values = {}
            for spec in parameter_specs():
                default = spec.default if spec.default != [] else Parameter.Type[spec.ros_type]
                param = node.declare_parameter(spec.name, default, ParameterDescriptor(description=spec.description))
                values[spec.name] = param.value
            live = NodeSettings.from_mapping(values)
        finally:
            node.destroy_node()
    finally:
        rclpy.shutdown(context=ctx)
    offline = load_settings_yaml(SO101_YAML, overrides={"policy_path": POLICY})
    assert live == offline
