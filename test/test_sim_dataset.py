"""Expert demonstrations in the simulator, written with LeRobot's writer and read back by LeRobotDataset."""
from __future__ import annotations

import numpy as np

from sim_helpers import needs_sim

pytestmark = needs_sim


def test_expert_demonstration_is_a_readable_so101_lerobot_dataset(tmp_path):
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from act_interp_ros.sim.recording import SIM_TASK, record_expert_dataset
    from act_interp_ros.sim.units import MOTOR_FEATURE_NAMES

    ds = record_expert_dataset(tmp_path / "demos", 1, seed=7, steps=100, tail_steps=5)
    ep = ds.episodes[0]
    assert ep.succeeded and len(ep) == ep.first_success_step + 6  # cut 5 steps after the first success
    read = LeRobotDataset(ds.repo_id, root=ds.root, video_backend="pyav")
    assert read.fps == 30 and read.meta.robot_type == "so101_follower"
    assert read.num_episodes == 1 and read.num_frames == len(ep)
    for key in ("observation.state", "action"):
        assert tuple(read.features[key]["names"]) == MOTOR_FEATURE_NAMES
    assert read.features["observation.images.front"]["shape"] == (96, 128, 3)
    frame = read[20]
    np.testing.assert_allclose(frame["observation.state"].numpy(), ep.state[20], atol=1e-4)
    np.testing.assert_allclose(frame["action"].numpy(), ep.action[20], atol=1e-4)
    assert frame["task"] == SIM_TASK
    assert frame["observation.images.wrist"].shape == (3, 96, 128) and frame["observation.images.wrist"].std() > 0.02
    # the gripper opens, then closes on the cube: the demonstration carries the grasp
    grip = ep.action[:, 5]
    assert grip.max() > 40 and grip[-1] < 5
