"""Issue 20.3: the replay keeps the README's promises on bags from an independent writer.

A run in which no tick computes an action (wrong image size with --strict-size, every header stamp 0 on
either clock, only the camera stamps 0, every stamp 10 s ahead; a dataset whose every frame is bad) exits 2
with one line that says why and that no outputs were written, and writes nothing into --out: a fresh --out is
not even created, and an earlier successful run's files there stay exactly as they were. A run that succeeds
removes the files of an earlier run that it does not write, whatever the camera set and wherever the earlier
run was started from.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest

from act_interp_ros.cli import replay as replay_cli
from act_interp_ros.offline.outputs import read_table
from replay_helpers import write_minimal_bag

CAMERAS = ("/camera/front/image_raw", "/camera/wrist/image_raw")
ALL_TOPICS = (*CAMERAS, "/joint_states")
FRONT_ONLY = ["-p", "camera_keys:=[observation.images.front]", "-p", "camera_topics:=[/camera/front/image_raw]",
              "-p", "camera_transports:=[raw]"]


def run_cli(capsys, *args) -> tuple[int, str]:
    rc = replay_cli.main([str(a) for a in args])
    return rc, capsys.readouterr().err


def error_line(rc: int, err: str) -> str:
    """The one error line of a run that exited 2 (no traceback, no second error)."""
    assert rc == replay_cli.EXIT_BAD_INPUT, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("act_interp_replay: error:")]
    assert len(lines) == 1, err
    return lines[0]


def snapshot(directory) -> dict[str, tuple]:
    """Every entry under ``directory``: relative path -> (content hash or 'dir', mtime in ns)."""
    return {str(p.relative_to(directory)): ("dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest(),
                                            p.stat().st_mtime_ns)
            for p in sorted(directory.rglob("*"))}


@pytest.fixture(scope="module")
def earlier_run(tmp_path_factory, so101_checkpoint, repo_root):
    """The output folder of a successful replay (every output: bag, videos, table, plot, summary)."""
    tmp = tmp_path_factory.mktemp("earlier")
    bag = write_minimal_bag(tmp / "good", n=6, hw=(96, 128))
    out = tmp / "out"
    rc = replay_cli.main([str(bag), "--policy", str(so101_checkpoint), "--out", str(out), "-q",
                          "--config", str(repo_root / "config" / "so101.yaml")])
    assert rc == 0
    assert {"interp_bag", "attention_front.mp4", "attention_wrist.mp4", "ticks.csv", "summary.json"} <= {
        p.name for p in out.iterdir()}
    return out


# case -> (bag writer arguments, replay arguments, what the line says, what it must not say)
FAILED_RUNS = {
    "wrong size with --strict-size": (
        dict(hw=(120, 160)), ["--strict-size"],
        ["no tick computed an action", "bad_input.observation:/camera/front/image_raw",
         "image is 160x120 but the policy expects 128x96"], []),
    "every stamp 0, --clock log": (
        dict(zero_stamp_topics=ALL_TOPICS), ["--clock", "log"],
        ["every header stamp in the bag is 0", "the publisher does not stamp its messages", "unstamped"], []),
    "every stamp 0, --clock header": (
        dict(zero_stamp_topics=ALL_TOPICS), ["--clock", "header"],
        ["every header stamp in the bag is 0", "the publisher does not stamp its messages", "use --clock log"],
        ["clock:not_started"]),
    "only the camera stamps 0, --clock log": (
        dict(zero_stamp_topics=CAMERAS), [],
        ["the header stamps of /camera/front/image_raw, /camera/wrist/image_raw are all 0", "does not stamp"],
        ["/joint_states", "every header stamp"]),
    "only the camera stamps 0, --clock header": (
        dict(zero_stamp_topics=CAMERAS), ["--clock", "header"],
        ["the header stamps of /camera/front/image_raw, /camera/wrist/image_raw are all 0", "does not stamp"],
        ["/joint_states", "clock:not_started"]),
    "every stamp 10 s in the future": (
        dict(stamp_offset_ns=10 * 10**9), [],
        ["no tick computed an action", "future:", "replay with --clock header"], []),
}


@pytest.mark.parametrize("case", list(FAILED_RUNS))
def test_a_run_without_any_action_writes_nothing(capsys, tmp_path, so101_checkpoint, repo_root, earlier_run, case):
    bag_args, args, needles, absent = FAILED_RUNS[case]
    bag = write_minimal_bag(tmp_path / "bag", n=6, **{"hw": (96, 128), **bag_args})
    common = ["--policy", so101_checkpoint, "--config", repo_root / "config" / "so101.yaml", "-q", *args]

    fresh = tmp_path / "fresh"
    line = error_line(*run_cli(capsys, bag, "--out", fresh, *common))
    for needle in (*needles, "no outputs were written"):
        assert needle in line, line
    for needle in absent:
        assert needle not in line, line
    assert not fresh.exists(), sorted(p.name for p in fresh.iterdir())

    out = tmp_path / "out"  # a folder holding an earlier successful run
    shutil.copytree(earlier_run, out)
    before = snapshot(out)
    assert error_line(*run_cli(capsys, bag, "--out", out, *common)) == line
    assert snapshot(out) == before  # nothing new, nothing removed, nothing rewritten


def test_a_dataset_run_without_any_action_writes_nothing(capsys, tmp_path, repo_root):
    """--dataset: every frame's state is NaN (bad_input.observation), so no frame computes an action."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset

    ckpt = build_act_checkpoint(tmp_path / "ckpt" / "pretrained_model",
                                SmallACTSpec(cameras={"observation.images.front": (48, 64)}))
    good = build_synthetic_dataset(tmp_path / "good", n_episodes=1, episode_steps=4, image_size=(48, 64),
                                   cameras=("front",), use_videos=False, keep_images=False).root
    common = ["--policy", ckpt, "--config", repo_root / "config" / "so101.yaml", "-q", "--faithfulness-samples", "0"]
    out = tmp_path / "out"
    rc, err = run_cli(capsys, "--dataset", good, "--out", out, *common)
    assert rc == 0, err
    assert (out / "episode_000" / "ticks.csv").is_file() and (out / "summary.json").is_file()

    bad = tmp_path / "bad"  # the same dataset with a NaN state in every frame
    shutil.copytree(good, bad)
    (data,) = bad.glob("data/*/*.parquet")
    table = pq.read_table(data)
    column = table.schema.get_field_index("observation.state")
    nan = pa.array([[np.nan] * 6] * table.num_rows, type=table.schema.field(column).type)
    pq.write_table(table.set_column(column, "observation.state", nan), data)

    before = snapshot(out)
    line = error_line(*run_cli(capsys, "--dataset", bad, "--out", out, *common))
    for needle in ("no tick computed an action", "bad_input.observation", "non-finite", "no outputs were written"):
        assert needle in line, line
    assert snapshot(out) == before
    error_line(*run_cli(capsys, "--dataset", bad, "--out", tmp_path / "fresh", *common))
    assert not (tmp_path / "fresh").exists()


@pytest.mark.parametrize("where", ["relative --out from another working directory", "output folder moved since"])
def test_a_one_camera_run_removes_the_wrist_outputs_of_a_two_camera_run(capsys, tmp_path, monkeypatch, repo_root,
                                                                         so101_checkpoint, where):
    """The earlier summary.json lists its outputs by the path that run was given; a relative --out from
    another directory (or a renamed folder) did not match this run's path, and attention_wrist.mp4 stayed."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    front_only = build_act_checkpoint(tmp_path / "ckpt1" / "pretrained_model",
                                      SmallACTSpec(cameras={"observation.images.front": (96, 128)}))
    bag = write_minimal_bag(tmp_path / "bag", n=6, hw=(96, 128))
    config = ["--config", repo_root / "config" / "so101.yaml", "-q"]
    (tmp_path / "elsewhere").mkdir()
    if where.startswith("relative"):
        monkeypatch.chdir(tmp_path / "elsewhere")
        rc, err = run_cli(capsys, bag, "--policy", so101_checkpoint, "--out", os.path.join("..", "out"), *config)
        monkeypatch.chdir(tmp_path)
    else:
        rc, err = run_cli(capsys, bag, "--policy", so101_checkpoint, "--out", tmp_path / "first", *config)
        (tmp_path / "first").rename(tmp_path / "out")
    assert rc == 0, err
    out = tmp_path / "out"
    assert (out / "attention_wrist.mp4").is_file()
    (out / "notes.txt").write_text("mine")  # not an output: never touched

    rc, err = run_cli(capsys, bag, "--policy", front_only, "--out", out, *config, *FRONT_ONLY)
    assert rc == 0, err
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if "wrist" in n], names
    listed = set(json.loads((out / "summary.json").read_text())["outputs"])
    assert names == listed | {"notes.txt"}
    columns = read_table(out / "ticks.csv").columns
    assert "attn_front" in columns and not [c for c in columns if c.endswith(("_wrist", "_wrist_ns"))]
