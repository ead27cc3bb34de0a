"""ament_python setup for act_interp_ros.

Python dependencies are declared here, once:
  * install_requires: what the engine, node and bag tools import (LeRobot brings torch/torchvision).
  * extra "ros": the ROS 2 client libraries as PyPI wheels, for machines WITHOUT a ROS install.
    Users with ROS from apt must not install it (it would shadow their rclpy).
  * extra "test": the test runner and colcon (CI builds the package with colcon).
  * extra "sim": the MuJoCo SO-101 simulator (act_interp_sim, act_interp_ros/sim/). so101-nexus ships the SO-101
    MJCF and the pick scene and needs Python >= 3.12: on older Pythons the extra installs nothing (markers) and
    the simulator says so in one line.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "act_interp_ros"

ROS_WHEELS = [
    "ros-rclpy[fastrtps]",
    "ros-sensor-msgs",
    "ros-std-msgs",
    "ros-std-srvs",
    "ros-diagnostic-msgs",
    "ros-trajectory-msgs",
    "ros-geometry-msgs",
    "ros-rosgraph-msgs",
    "ros-builtin-interfaces",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench", "bench.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*.rviz")),
    ],
    python_requires=">=3.10,<3.14",  # LeRobot 0.4.x: 3.10/3.11; 0.5/0.6: >=3.12
    install_requires=[
        "setuptools",
        # Tested: 0.4.4 (Python 3.10/3.11) and 0.6.1 (Python 3.12); capped below the first untested minor.
        # LeRobot brings torch/torchvision (the range it allows) and opencv-python-headless.
        "lerobot[dataset]>=0.4.4,<0.7",  # 0.5+ moved the dataset code's needs into the extra "dataset"
        "numpy>=1.24",
        "opencv-python-headless>=4.8",  # the wheel lerobot already requires; never add opencv-python
        "pyyaml>=6",
        "rosbags==0.11.9",
        "rosbags-image==0.10.4",
        "tqdm>=4.66",
        "matplotlib>=3.7",
        "pandas>=2.0",
        "pyarrow>=14",  # Parquet tick tables
        "av>=12",  # H.264 mp4 writing (also a lerobot dependency)
        # --rerun recordings (LeRobot 0.4 required it; 0.5+ moved it to an extra). Capped at the tested 0.26:
        # 0.33 has no rerun.dataframe, with which the tests read recordings back.
        "rerun-sdk>=0.24,<0.27",
        "captum==0.9.0",  # pixel attribution: InputXGradient, NoiseTunnel, IntegratedGradients, Occlusion
    ],
    extras_require={
        "ros": ROS_WHEELS,
        "sim": [  # tested: mujoco 3.17.0, so101-nexus 0.10.0 (whose API moves between minors: capped)
            "mujoco>=3.3,<4; python_version>='3.12'",
            "so101-nexus>=0.10,<0.11; python_version>='3.12'",
        ],
        "test": ["pytest>=8", "pytest-timeout>=2.3", "colcon-common-extensions>=0.3",
                 # scripts/test.sh: one xdist worker, so a test whose process is stuck (inside C code, or
                 # starved of CPU) is ended by the conftest watchdog and rerun once instead of stalling the run
                 "pytest-xdist>=3.5", "pytest-rerunfailures>=14",
                 # bench/ (run by test/test_bench_smoke.py) reads the machine and memory with psutil; LeRobot
                 # 0.4.4 brought it in, 0.6 does not
                 "psutil>=5.9",
                 # test/test_calibration.py: LeRobot's own SO101Follower writes and normalises the calibration
                 # (its FeetechMotorsBus imports the SDK, pyserial and deepdiff; no hardware is opened)
                 "lerobot[feetech]",
                 # test/test_async_chunks.py runs LeRobot's own async-inference client code (robot_client,
                 # policy_server) beside inference: async; lerobot.async_inference imports grpc
                 "lerobot[async]"],
    },
    zip_safe=True,
    maintainer="act_interp_ros maintainers",
    maintainer_email="maintainers@act-interp-ros.invalid",
    description="Live interpretability (attention, GradCAM, proprio attention) for LeRobot ACT on ROS 2.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            f"act_interp_node = {PACKAGE}.ros.main:main",
            f"act_interp_play = {PACKAGE}.cli.play:main",
            f"act_interp_replay = {PACKAGE}.cli.replay:main",
            f"act_interp_make_bag = {PACKAGE}.cli.make_bag:main",
            f"act_interp_demo = {PACKAGE}.cli.demo:main",
            f"act_interp_rviz_config = {PACKAGE}.ros.rviz_config:main",
            f"act_interp_sim = {PACKAGE}.cli.sim:main",
        ],
    },
)
