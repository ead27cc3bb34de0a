"""Static checks of the launch file and RViz config (`ros2 launch`/`rviz2` cannot run here: no
launch/launch_ros/rviz2 on PyPI). The live launch test is test_launch_live.py (ROS machines only)."""

from __future__ import annotations

import ast
import re

import yaml

from act_interp_ros.pipeline import output_contract
from act_interp_ros.ros.rviz_config import default_rviz_config
from node_harness import default_settings


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == name]


def kwargs(call: ast.Call) -> dict[str, ast.AST]:
    return {k.arg: k.value for k in call.keywords}


def strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_launch_file_parses_and_starts_the_installed_executable(repo_root):
    source = (repo_root / "launch" / "live.launch.py").read_text()
    tree = ast.parse(source)
    assert any(isinstance(n, ast.FunctionDef) and n.name == "generate_launch_description" for n in tree.body)
    nodes = [kwargs(c) for c in calls(tree, "Node")]
    ours = [k for k in nodes if strings(k["package"]) == ["act_interp_ros"]]
    assert len(ours) == 1
    executable = ours[0]["executable"].value
    setup = (repo_root / "setup.py").read_text()
    assert re.search(rf'"{executable} = ', setup) or re.search(rf"f\"{executable} = ", setup), \
        f"{executable} is not a console script in setup.py"
    # parameters: the installed config (share/act_interp_ros/config/so101.yaml) + the launch arguments
    assert {"config", "so101.yaml"} <= set(strings(tree))
    assert (repo_root / "config" / "so101.yaml").is_file()
    assert "config/*.yaml" in setup and "launch/*.launch.py" in setup and "rviz/*.rviz" in setup
    from act_interp_ros.ros.launch_params import LAUNCH_ARGUMENTS

    declared = {a.name for a in LAUNCH_ARGUMENTS} | {strings(c.args[0])[0] for c in calls(tree, "DeclareLaunchArgument")
                                                      if strings(c.args[0])}
    assert {"policy_path", "config", "device", "use_sim_time", "rviz", "publish_actions"} <= declared
    # rviz2 only when asked (wants_rviz), with a layout generated for the configuration's cameras
    rviz = [k for k in nodes if strings(k["package"]) == ["rviz2"]][0]
    assert "-d" in strings(rviz["arguments"])
    assert any(getattr(c.func, "id", None) == "wants_rviz" for c in ast.walk(tree) if isinstance(c, ast.Call))
    assert any(getattr(c.func, "id", None) == "rviz_config_for" for c in ast.walk(tree) if isinstance(c, ast.Call))


def test_every_rviz_topic_is_published_by_the_node_with_the_default_config(repo_root):
    text = (repo_root / "rviz" / "act_interp.rviz").read_text()
    assert text == default_rviz_config(repo_root), "regenerate: python -m act_interp_ros.ros.rviz_config"
    config = yaml.safe_load(text)
    displays = config["Visualization Manager"]["Displays"]
    topics = [d["Topic"]["Value"] for d in displays if "Topic" in d]
    contract = output_contract(default_settings())
    published = set(contract.topics().values())
    assert topics, "the RViz config shows no topic"
    for topic in topics:
        assert topic in published, f"RViz shows {topic}, which the node does not publish"
    # and it shows every overlay the node publishes (the default side methods enabled)
    assert {o.topic() for o in contract.overlays()} == set(topics)
    enabled = {d["Topic"]["Value"] for d in displays if d["Enabled"]}
    assert {o.topic() for o in contract.overlays("gradient_x_input")} <= enabled
    assert all(d["Class"] == "rviz_default_plugins/Image" for d in displays)


def test_rviz_layout_for_a_checkpoints_cameras(tmp_path, repo_root):
    """act_interp_rviz_config writes a layout for any camera set: a checkpoint's, or a params file's."""
    import json
    import subprocess
    import sys

    from act_interp_ros.ros.rviz_config import main, rviz_config_for

    policy = tmp_path / "pretrained_model"
    policy.mkdir()
    keys = ["observation.images.top", "observation.images.side", "observation.images.gripper"]
    (policy / "config.json").write_text(json.dumps({"input_features": {
        **{k: {"type": "VISUAL", "shape": [3, 96, 128]} for k in keys},
        "observation.state": {"type": "STATE", "shape": [6]}}}))
    topics = lambda text: [d["Topic"]["Value"] for d in  # noqa: E731
                           yaml.safe_load(text)["Visualization Manager"]["Displays"]]
    shown = topics(rviz_config_for(policy_path=policy))
    for cam in ("top", "side", "gripper"):
        assert f"/act_interp_node/attention/{cam}/overlay" in shown
        assert f"/act_interp_node/gradient_x_input/{cam}/overlay" in shown
    assert not any("/front/" in t or "/wrist/" in t for t in shown)
    # a params file's cameras
    params = yaml.safe_load((repo_root / "config" / "so101.yaml").read_text())
    params["act_interp_node"]["ros__parameters"].update(
        camera_keys=keys, camera_topics=["/a", "/b", "/c"], camera_transports=["raw"] * 3)
    params_file = tmp_path / "three.yaml"
    params_file.write_text(yaml.safe_dump(params))
    assert topics(rviz_config_for(params_file)) == shown
    assert topics(rviz_config_for(params_file, policy)) == shown
    # a mismatch between the two is one line naming both, and exit 2
    out = tmp_path / "x.rviz"
    assert main(["--params", str(repo_root / "config" / "so101.yaml"), "--policy", str(policy), "-o", str(out)]) == 2
    assert not out.exists()
    assert main(["--policy", str(policy), "-o", str(out)]) == 0
    assert topics(out.read_text()) == shown
    # the console script is installed
    exe = __import__("pathlib").Path(sys.executable).with_name("act_interp_rviz_config")
    run = subprocess.run([str(exe), "--params", str(params_file)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert topics(run.stdout) == shown
