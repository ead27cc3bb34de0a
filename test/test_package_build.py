"""The package builds with colcon (from PyPI) like on a ROS machine, and installs where ROS expects:
console scripts under lib/act_interp_ros/ (what `ros2 run` looks in), launch/config/rviz under share/."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

EXECUTABLES = ["act_interp_node", "act_interp_play", "act_interp_replay", "act_interp_make_bag", "act_interp_demo",
               "act_interp_sim"]


def colcon() -> str:
    exe = shutil.which("colcon") or str(Path(sys.executable).with_name("colcon"))
    if not Path(exe).exists():
        pytest.fail("colcon is not installed: install the test extra (pip install -e '.[test]')")
    return exe


@pytest.fixture(scope="module")
def install_dir(tmp_path_factory, repo_root) -> Path:
    ws = tmp_path_factory.mktemp("colcon_ws")
    src = ws / "src" / "act_interp_ros"
    shutil.copytree(
        repo_root, src,
        ignore=shutil.ignore_patterns(".venv*", ".git", "build", "install", "log", "__pycache__", "*.egg-info", "out*"),
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(
        [colcon(), "build", "--base-paths", "src", "--event-handlers", "console_direct-"],
        cwd=ws, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, f"colcon build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return ws / "install" / "act_interp_ros"


def test_console_scripts_land_in_lib(install_dir):
    lib = install_dir / "lib" / "act_interp_ros"
    for exe in EXECUTABLES:
        assert (lib / exe).is_file() and os.access(lib / exe, os.X_OK), f"{exe} missing from {lib}"


def test_launch_config_and_rviz_land_in_share(install_dir, repo_root):
    share = install_dir / "share" / "act_interp_ros"
    assert (share / "package.xml").is_file()
    assert (share / "launch" / "live.launch.py").is_file()
    assert (share / "config" / "so101.yaml").is_file()
    assert (share / "rviz" / "act_interp.rviz").is_file()
    assert (install_dir / "share" / "ament_index" / "resource_index" / "packages" / "act_interp_ros").is_file()


def test_package_xml_declares_runtime_dependencies(repo_root):
    root = ET.parse(repo_root / "package.xml").getroot()
    assert root.get("format") == "3"
    exec_deps = {e.text for e in root.findall("exec_depend")}
    for dep in ["rclpy", "sensor_msgs", "std_msgs", "std_srvs", "diagnostic_msgs", "trajectory_msgs"]:
        assert dep in exec_deps, f"package.xml lacks <exec_depend>{dep}</exec_depend>"
    assert root.find("export/build_type").text == "ament_python"
