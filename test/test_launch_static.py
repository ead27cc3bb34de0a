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
    declared = {strings(c.args[0])[0] for c in calls(tree, "DeclareLaunchArgument")}
    assert {"policy_path", "config", "device", "use_sim_time", "rviz", "publish_actions"} <= declared
    # rviz2 only when asked, with the shipped config
    rviz = [k for k in nodes if strings(k["package"]) == ["rviz2"]][0]
    assert "condition" in rviz and {"rviz", "act_interp.rviz"} <= set(strings(rviz["arguments"]))


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
