"""Issue 15 offline: a coordinate-conditioned ACT replayed from a bag - the env-state topic is read like the
node reads it (stamped: header; Float64MultiArray: log time), bad env-state input is skipped and counted,
and the env-state attention and sensitivity are in the outputs."""

from __future__ import annotations

import math

import pytest

from act_interp_ros.bag.reader import open_bag
from act_interp_ros.bag.replay import ReplayError, ReplayOptions, replay_bag
from act_interp_ros.offline.outputs import read_table
from act_interp_ros.settings import load_settings_yaml
from replay_helpers import write_minimal_bag

NODE = "/act_interp_node"


@pytest.fixture(scope="module")
def env_checkpoint(tmp_path_factory):
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    cameras = {key: (96, 128) for key in SmallACTSpec().cameras}
    return build_act_checkpoint(tmp_path_factory.mktemp("env") / "pretrained_model",
                                SmallACTSpec(cameras=cameras, env_state_dim=2))


def settings_for(repo_root, checkpoint, **overrides):
    return load_settings_yaml(repo_root / "config" / "so101.yaml",
                              overrides={"policy_path": str(checkpoint), "side_methods": [], **overrides})


@pytest.mark.parametrize("kind", ["point_stamped", "float64_multi_array"])
def test_env_state_policy_replays_with_attention_sensitivity_and_bad_input(tmp_path, repo_root, env_checkpoint, kind):
    bad = {8, 9, 10}  # frames whose env state is not finite

    def values(k):
        return (math.nan, 0.1) if k in bad else (0.2 + 0.01 * k, -0.05)

    bag = write_minimal_bag(tmp_path / "bag", n=24, hw=(96, 128), env_state=kind, env_values=values)
    settings = settings_for(repo_root, env_checkpoint, env_state_topic="/target", env_state_type=kind)
    summary = replay_bag(bag, str(env_checkpoint), settings, tmp_path / "out",
                         ReplayOptions(side_every=2, write_video=False, faithfulness_samples=0))
    table = read_table(tmp_path / "out" / "ticks.csv")
    assert summary.processed > 10
    assert summary.skipped_by_kind.get("bad_input.env_state", 0) >= 3
    assert "nan" in summary.reason_examples["bad_input.env_state:/target"]
    done = table[~table["skipped"]]
    assert done["attn_env_state"].between(0.0, 1.0).all()
    sens = table["env_sensitivity"].dropna()
    assert len(sens) >= 5 and (sens >= 0).all()
    assert set(table.loc[table["env_sensitivity"].notna(), "tick"] % 2) == {0}
    with open_bag(tmp_path / "out" / "interp_bag") as reader:
        assert reader.topics[f"{NODE}/env_state_attention"].count == summary.processed
        assert reader.topics[f"{NODE}/env_state_sensitivity"].count == len(sens)
        assert reader.topics["/target"].count == 24, "the env-state input is copied like every input"


def test_env_state_policy_without_a_topic_is_refused_with_one_line(tmp_path, repo_root, env_checkpoint):
    bag = write_minimal_bag(tmp_path / "bag", n=6, hw=(96, 128))
    with pytest.raises(ReplayError, match=r"parameter 'env_state_topic' must name the topic of the policy's "
                                          r"2-value observation.environment_state"):
        replay_bag(bag, str(env_checkpoint), settings_for(repo_root, env_checkpoint), tmp_path / "out")
