"""live.launch.py never overrides the user's params file: a launch argument reaches the node only when given.

``ros2 launch`` itself cannot run here (launch/launch_ros are not on PyPI; test_launch_live.py runs on a ROS
install). What the launch file hands launch_ros is built by act_interp_ros.ros.launch_params.node_parameters,
tested here directly; the precedence of the resulting ``--params-file`` list is then checked with real rclpy:
in-process (rcl's own params-file merging) and on the real act_interp_node over DDS (observe-only survives).
"""

from __future__ import annotations

import ast
import itertools

import pytest
import rclpy
import yaml
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.context import Context
from rclpy.node import Node
from sensor_msgs.msg import Image, JointState

from act_interp_ros.ros.launch_params import LAUNCH_ARGUMENTS, node_parameters, params_file_dict, wants_rviz
from act_interp_ros.ros.node_process import NodeProcess, node_command
from act_interp_ros.settings.errors import SettingsFileError
from node_harness import Peer, write_params

NODE = "act_interp_node"
PARAMETER_ARGS = [a.name for a in LAUNCH_ARGUMENTS if a.parameter]


def launch_files(tmp_path, parameters: list) -> list[str]:
    """The ``--params-file`` list launch_ros makes of a Node's ``parameters``: a path as it is, a dict written
    to its own file as ``{/<node>: {ros__parameters: ...}}`` (launch_ros' Node._create_params_file_from_dict)."""
    files = []
    for i, entry in enumerate(parameters):
        if isinstance(entry, dict):
            path = tmp_path / f"launch_params_{i}.yaml"
            path.write_text(yaml.safe_dump(params_file_dict(entry, NODE)))
            entry = str(path)
        files.append(str(entry))
    return files


def read_back(files: list[str], names: list[str]) -> dict:
    """Parameter values of a node named act_interp_node started with these params files, as rcl applies them."""
    context = Context()
    args = ["launch", "--ros-args", "-r", f"__node:={NODE}"]
    for f in files:
        args += ["--params-file", f]
    rclpy.init(args=args, context=context)
    try:
        node = Node("probe", context=context)
        dynamic = ParameterDescriptor(dynamic_typing=True)
        values = {n: (node.get_parameter(n) if node.has_parameter(n) else node.declare_parameter(n, None, dynamic)).value
                  for n in names}
        node.destroy_node()
        return values
    finally:
        rclpy.shutdown(context=context)


@pytest.fixture
def user_file(tmp_path):
    """A user's params file: observe-only, on a GPU, with sim time and a policy."""
    return write_params(tmp_path / "mine.yaml", publish_actions=False, device="cuda:1", use_sim_time=True,
                        policy_path="/models/mine")


def test_params_file_alone_passes_nothing_else(user_file):
    assert node_parameters(str(user_file), {"config": str(user_file), "rviz": "false"}) == [str(user_file)]
    # launch's "not given" is the empty string for every node-parameter argument
    assert node_parameters(str(user_file), {name: "" for name in PARAMETER_ARGS}) == [str(user_file)]
    assert all(a.default == "" for a in LAUNCH_ARGUMENTS if a.parameter)


@pytest.mark.parametrize("name,value,typed", [
    ("publish_actions", "false", False), ("publish_actions", "True", True), ("device", "cpu", "cpu"),
    ("use_sim_time", "false", False), ("policy_path", "/models/other", "/models/other")])
def test_each_given_argument_and_only_it_follows_the_file(user_file, name, value, typed):
    assert node_parameters(str(user_file), {name: value}) == [str(user_file), {name: typed}]


def test_no_params_file_passes_only_the_given_arguments():
    assert node_parameters("", {"policy_path": "/m", "publish_actions": "false"}) == [
        {"policy_path": "/m", "publish_actions": False}]
    assert node_parameters("", {}) == []


def test_a_bad_boolean_is_one_clear_line():
    with pytest.raises(SettingsFileError, match=r"publish_actions:='nope' is not a boolean; expected true or false"):
        node_parameters("x.yaml", {"publish_actions": "nope"})
    with pytest.raises(SettingsFileError, match="rviz"):
        wants_rviz({"rviz": "maybe"})
    assert wants_rviz({}) is False and wants_rviz({"rviz": "true"}) is True


def test_rcl_applies_the_file_unless_an_argument_is_given(tmp_path, user_file):
    names = ["publish_actions", "device", "use_sim_time", "policy_path"]
    from_file = {"publish_actions": False, "device": "cuda:1", "use_sim_time": True, "policy_path": "/models/mine"}
    # the params file alone: everything the user wrote survives
    assert read_back(launch_files(tmp_path, node_parameters(str(user_file), {})), names) == from_file
    # each argument given: that one wins, the rest stay the file's
    given_values = {"publish_actions": ("true", True), "device": ("cpu", "cpu"), "use_sim_time": ("false", False),
                    "policy_path": ("/models/other", "/models/other")}
    for name, (text, typed) in given_values.items():
        got = read_back(launch_files(tmp_path, node_parameters(str(user_file), {name: text})), names)
        assert got == {**from_file, name: typed}, name
    # every pair given at once: both win
    for a, b in itertools.combinations(given_values, 2):
        given = {a: given_values[a][0], b: given_values[b][0]}
        got = read_back(launch_files(tmp_path, node_parameters(str(user_file), given)), names)
        assert got == {**from_file, a: given_values[a][1], b: given_values[b][1]}


def test_the_old_launch_order_would_have_overridden_the_file(tmp_path, user_file):
    """The defect this module fixes, reproduced with rcl: the launch's defaults after the file win."""
    old = [str(user_file), {"device": "cpu", "publish_actions": True, "use_sim_time": False}]
    got = read_back(launch_files(tmp_path, old), ["publish_actions", "device"])
    assert got == {"publish_actions": True, "device": "cpu"}


def test_an_observe_only_params_file_launched_stays_observe_only(tmp_path, node_checkpoint):
    """The README's first live step: the user's file says publish_actions: false, the launch gives only the
    policy. The real node, started with the files in launch_ros' order, commands nothing."""
    params = write_params(tmp_path / "observe.yaml", publish_actions=False, side_rate_hz=0.0, input_qos="reliable")
    files = launch_files(tmp_path, node_parameters(str(params), {"policy_path": str(node_checkpoint)}))
    assert len(files) == 2
    node = NodeProcess(node_command(files, None, ["-r", f"__node:={NODE}"]))
    peer = Peer("launch_params_peer")
    action = f"/{NODE}/joint_command"
    try:
        peer.subscribe(JointState, action)
        peer.subscribe(Image, f"/{NODE}/attention/front/overlay")
        from diagnostic_msgs.msg import DiagnosticArray

        peer.subscribe(DiagnosticArray, "/diagnostics")
        assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
        assert peer.get_parameter(f"/{NODE}", "publish_actions") is False
        assert peer.get_parameter(f"/{NODE}", "policy_path") == str(node_checkpoint)
        peer.stream(1.5, joints=[0.0, 0.0, 0.0, 0.0, 0.0, 0.5])
        assert peer.wait_for(f"/{NODE}/attention/front/overlay", 1, timeout=10), node.output
        assert peer.received[action] == [] and peer.node.count_publishers(action) == 0
    finally:
        peer.close()
        node.cleanup()


def test_the_launch_file_builds_its_parameters_with_node_parameters(repo_root):
    tree = ast.parse((repo_root / "launch" / "live.launch.py").read_text())
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "Node"]
    ours = [n for n in nodes if any(k.arg == "executable" and getattr(k.value, "value", None) == "act_interp_node"
                                    for k in n.keywords)]
    assert len(ours) == 1
    parameters = {k.arg: k.value for k in ours[0].keywords}["parameters"]
    assert isinstance(parameters, ast.Call) and parameters.func.id == "node_parameters"
    # no argument with a literal default other than config (a path) and rviz (not a node parameter)
    declared = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None)
                == "DeclareLaunchArgument"]
    literal = {n.args[0].value for n in declared if isinstance(n.args[0], ast.Constant)}
    assert literal == {"config"}
