"""Issue 11 offline: the replay keeps exact stamps, copies every input of the range, leaves no stale
outputs, says when no tick could act, starts a fresh plan after an input gap like the node, and runs
policies without a joint-state token."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from act_interp_ros.cli import replay as replay_cli
from act_interp_ros.offline.outputs import read_table
from act_interp_ros.bag.reader import open_bag
from act_interp_ros.bag.replay import ReplayOptions, replay_bag
from act_interp_ros.bag.synthetic_bag import write_synthetic_bag
from act_interp_ros.settings import load_settings_yaml
from replay_helpers import write_minimal_bag

#: Not representable in float64 (2**53 ~ 9.0e15 < 1.7e18): a float column would round these stamps.
ODD_START_NS = 1_700_000_000_123_456_789


def settings_for(repo_root, checkpoint, **overrides):
    return load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(checkpoint), **overrides})


def bag_stamps(bag, topic: str) -> list[int]:
    with open_bag(bag) as reader:
        return [reader.deserialize(m).header.stamp.sec * 10**9 + reader.deserialize(m).header.stamp.nanosec
                for m in reader.messages([topic])]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_table_stamps_are_exact_nanoseconds_even_with_missing_inputs(tmp_path, repo_root, so101_checkpoint, fmt):
    """Issue 11.9: a stamp column mixing None and ints became float64 and lost ~100 ns."""
    bag = write_synthetic_bag(tmp_path / "bag", n_frames=8, image_size=(96, 128), seed=2, start_time_ns=ODD_START_NS)
    out = tmp_path / "out"
    replay_bag(bag, str(so101_checkpoint), settings_for(repo_root, so101_checkpoint), out,
               ReplayOptions(write_bag=False, write_video=False, write_plot=False, table_format=fmt))
    table = read_table(out / f"ticks.{fmt}")
    assert table["stamp_joint_state_ns"].isna().iloc[0], "the first tick has no joint state yet (2 ms later)"
    for column, topic in (("stamp_front_ns", "/camera/front/image_raw"), ("stamp_joint_state_ns", "/joint_states")):
        assert str(table[column].dtype) == "Int64"
        got = [int(v) for v in table[column].dropna()]
        assert set(got) <= set(bag_stamps(bag, topic)), column
        assert any(int(float(v)) != v for v in got), "these stamps do not survive a float64 column"
    if fmt == "csv":  # the file itself holds the integers, not floats
        raw = pd.read_csv(out / "ticks.csv", dtype=str)
        assert all("." not in v and "e" not in v.lower() for v in raw["stamp_front_ns"].dropna())


def test_end_past_the_bag_copies_every_input_message(tmp_path, repo_root, so101_checkpoint):
    """Issue 11.10: `--end` past the end dropped input messages logged after the last tick (97 of 100 copied)."""
    bag = write_synthetic_bag(tmp_path / "bag", n_frames=20, image_size=(96, 128), seed=3)
    out = tmp_path / "out"
    replay_bag(bag, str(so101_checkpoint), settings_for(repo_root, so101_checkpoint), out,
               ReplayOptions(end_s=100.0, write_video=False, write_plot=False, write_table=False))
    with open_bag(bag) as src, open_bag(out / "interp_bag") as dst:
        for topic, info in src.topics.items():
            assert dst.topics[topic].count == info.count, topic


def test_rerun_into_the_same_folder_leaves_no_outputs_of_the_previous_run(tmp_path, repo_root, so101_checkpoint):
    """Issue 11.11: videos of an earlier run stayed beside the new outputs, unlisted in summary.json."""
    bag = write_synthetic_bag(tmp_path / "bag", n_frames=10, image_size=(96, 128), seed=4)
    out = tmp_path / "out"
    settings = settings_for(repo_root, so101_checkpoint)
    replay_bag(bag, str(so101_checkpoint), settings, out, ReplayOptions())
    assert (out / "attention_front.mp4").is_file() and (out / "interp_bag").is_dir()
    (out / "notes.txt").write_text("mine")  # not an output: never touched
    summary = replay_bag(bag, str(so101_checkpoint), settings, out,
                         ReplayOptions(write_video=False, write_bag=False, table_format="parquet"))
    listed = {p.split("/")[-1] for p in summary.outputs.values()}
    assert {p.name for p in out.iterdir()} == listed | {"notes.txt"}
    assert json.loads((out / "summary.json").read_text())["outputs"] == summary.outputs


def test_a_run_without_any_action_says_so_and_suggests_header_clock(tmp_path, repo_root, so101_checkpoint, capsys):
    """Issue 11.13: a run in which no tick could be computed exited 0 without a word."""
    bag = write_minimal_bag(tmp_path / "ahead", n=6, hw=(96, 128), stamp_offset_ns=10 * 10**9)
    code = replay_cli.main([str(bag), "--policy", str(so101_checkpoint), "--out", str(tmp_path / "o"), "-q",
                            "--config", str(repo_root / "config" / "so101.yaml")])
    err = capsys.readouterr().err
    assert code == replay_cli.EXIT_BAD_INPUT, err
    assert "no tick computed an action" in err and "future:" in err
    assert "replay with --clock header" in err
    code = replay_cli.main([str(bag), "--policy", str(so101_checkpoint), "--out", str(tmp_path / "o2"), "-q",
                            "--clock", "header", "--config", str(repo_root / "config" / "so101.yaml")])
    assert code == 0, capsys.readouterr().err


def test_after_an_input_gap_the_replay_starts_a_fresh_plan(tmp_path, repo_root, so101_checkpoint):
    """Issue 11.2 offline: the first action after a 1 s gap equals a freshly started replay's first action."""
    bag = write_synthetic_bag(tmp_path / "bag", n_frames=14, n_episodes=2, episode_gap_s=1.0, image_size=(96, 128),
                              seed=5)
    settings = settings_for(repo_root, so101_checkpoint)
    opts = dict(write_bag=False, write_video=False, write_plot=False)
    full = replay_bag(bag, str(so101_checkpoint), settings, tmp_path / "full", ReplayOptions(**opts))
    table = read_table(tmp_path / "full" / "ticks.csv")
    assert full.plan_resets == 2, "one plan at the start, one after the gap"
    gap = table.index[table["skipped"] & table["skip_kind"].isin(["stale"])]
    first_after = int(table.loc[(table.index > gap.max()) & ~table["skipped"], "tick"].iloc[0])
    fresh = replay_bag(bag, str(so101_checkpoint), settings, tmp_path / "fresh",
                       ReplayOptions(start_s=float(table.loc[first_after, "time_s"]), **opts))
    fresh_table = read_table(tmp_path / "fresh" / "ticks.csv")
    assert fresh.plan_resets == 1
    actions = [c for c in table.columns if c.startswith("action_")]
    np.testing.assert_allclose(table.loc[first_after:first_after + 2, actions].to_numpy(),
                               fresh_table.loc[0:2, actions].to_numpy(), atol=1e-5)
    before = table.loc[gap.min() - 1, actions].to_numpy(dtype=float)  # a row: object dtype under pandas 2
    assert not np.allclose(before, table.loc[first_after, actions].to_numpy(dtype=float))


def test_policy_without_joint_state_token(tmp_path, repo_root):
    """Issue 11.8: node and replay both run state-less policies, without a proprio output."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    ckpt = build_act_checkpoint(tmp_path / "ckpt" / "pretrained_model", SmallACTSpec(state_dim=0))
    bag = write_synthetic_bag(tmp_path / "bag", n_frames=10, image_size=(96, 128), seed=6)
    out = tmp_path / "out"
    summary = replay_bag(bag, str(ckpt), settings_for(repo_root, ckpt), out, ReplayOptions(write_video=False))
    assert summary.processed > 0
    table = read_table(out / "ticks.csv")
    assert "attn_proprio" not in table.columns and "attn_front" in table.columns
    assert "/act_interp_node/proprio_attention" not in summary.output_topics
    assert "/act_interp_node/attention/front/share" in summary.output_topics


@pytest.mark.parametrize("frames_every_tick, survive_s", [(False, 0.1), (True, 0.1), (True, 0.0)],
                         ids=["queue_acts_on_late_frames", "plan_survives", "every_gap_replans"])
def test_a_short_late_input_gap_keeps_the_plan_on_its_timeline(tmp_path, repo_root, so101_checkpoint,
                                                              frames_every_tick, survive_s):
    """A wrist frame 0.15 s late on ticks 1 and 2 (skew), the joint state on time. By default (LeRobot's rule)
    ticks 1 and 2 act from the queue, which reads no frame: every action equals a replay without the late
    frames, and the table names the late frames. With ``fresh_frames_every_tick`` they are skipped: with
    ``plan_survives_gap_s`` 0.1 (3 ticks) the plan made at tick 0 goes on and ticks 3 and 4 execute its actions 3
    and 4 (the actions planned for ticks 1 and 2 are dropped); with 0, tick 3 starts a fresh plan."""
    hw, n = (96, 128), 10
    clean = write_minimal_bag(tmp_path / "clean", n=n, hw=hw)
    late = write_minimal_bag(tmp_path / "late", n=n, hw=hw, late_wrist={1: 0.15, 2: 0.15})
    settings = settings_for(repo_root, so101_checkpoint, plan_survives_gap_s=survive_s,
                            fresh_frames_every_tick=frames_every_tick)
    opts = dict(write_bag=False, write_video=False, write_plot=False)
    tables, summaries = {}, {}
    for name, bag in (("clean", clean), ("late", late)):
        summaries[name] = replay_bag(bag, str(so101_checkpoint), settings, tmp_path / f"out_{name}", ReplayOptions(**opts))
        tables[name] = read_table(tmp_path / f"out_{name}" / "ticks.csv")
    t = tables["late"]
    actions = [c for c in t.columns if c.startswith("action_")]
    late_frames = t["late_frames"].fillna("").astype(str)
    if not frames_every_tick:
        assert not t["skipped"].any(), "no tick waits for a frame its action does not read"
        assert [i for i, v in late_frames.items() if v] == [1, 2] and all("skew" in v for v in late_frames[1:3])
        assert not tables["clean"]["late_frames"].fillna("").astype(str).any()
        np.testing.assert_allclose(t[actions].to_numpy(dtype=float), tables["clean"][actions].to_numpy(dtype=float),
                                   atol=1e-6, err_msg="the late frames changed an action")
        assert summaries["late"].plan_resets == summaries["clean"].plan_resets == 1
        return
    assert list(t.loc[t["skipped"], "tick"]) == [1, 2] and set(t.loc[t["skipped"], "skip_kind"]) == {"skew"}
    assert not late_frames.any()
    same = np.allclose(t.loc[3:4, actions].to_numpy(dtype=float), tables["clean"].loc[3:4, actions].to_numpy(dtype=float),
                       atol=1e-6)
    if survive_s:
        assert same, "ticks 3-4 execute the plan made at tick 0"
        assert summaries["late"].plan_resets == summaries["clean"].plan_resets == 1
    else:
        assert not same, "a fresh plan from tick 3's frame"
        assert summaries["late"].plan_resets == 2
