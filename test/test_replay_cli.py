"""``act_interp_replay`` command line: bad input -> one clear line on stderr and a non-zero exit; resize
warnings; atomic outputs when a run fails, is interrupted or is killed. For bags and for LeRobotDatasets
(``--dataset``: missing root, wrong episode, mismatched features, corrupt parquet, hub offline)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from act_interp_ros.cli import replay as replay_cli
from act_interp_ros.offline.outputs import STAGING_PREFIX, read_table
from replay_helpers import run_cli, storage_file, write_cli_bag, write_minimal_bag

FINAL_NAMES = ("interp_bag", "attention_front.mp4", "attention_wrist.mp4", "grid.mp4", "ticks.csv",
               "ticks.parquet", "attention_plot.png", "summary.json")


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    return write_cli_bag(tmp_path_factory.mktemp("cli_bag") / "bag")


def assert_clean_error(rc: int, err: str, *needles: str) -> None:
    assert rc == replay_cli.EXIT_BAD_INPUT, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("act_interp_replay: error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def assert_no_outputs(out_dir) -> None:
    if not out_dir.exists():
        return
    for name in FINAL_NAMES:
        assert not (out_dir / name).exists(), name
    assert not list(out_dir.glob(f"{STAGING_PREFIX}*"))
    assert not list(out_dir.glob("episode_*")) and not list(out_dir.glob("*.rrd"))


# ------------------------------------------------------------------------------------------ bad input
def test_missing_bag(capsys, tmp_path, so101_checkpoint):
    rc, _, err = run_cli(capsys, tmp_path / "nope", "--policy", so101_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "does not exist")
    assert_no_outputs(tmp_path / "o")


def test_not_a_bag(capsys, tmp_path, so101_checkpoint):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a bag")
    rc, _, err = run_cli(capsys, notes, "--policy", so101_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "is not a ROS 2 bag")


def test_corrupt_bag(capsys, tmp_path, so101_checkpoint, small_bag):
    src = storage_file(small_bag)
    broken = tmp_path / "broken.mcap"
    broken.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    rc, _, err = run_cli(capsys, broken, "--policy", so101_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "corrupt", "broken.mcap")


def test_empty_bag(capsys, tmp_path, so101_checkpoint):
    bag = write_minimal_bag(tmp_path / "empty", messages=False)
    rc, _, err = run_cli(capsys, bag, "--policy", so101_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "is empty")


def test_missing_topic_lists_the_bags_topics(capsys, tmp_path, so101_checkpoint):
    bag = write_minimal_bag(tmp_path / "front_only", cameras=("front",))
    rc, _, err = run_cli(capsys, bag, "--policy", so101_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "'/camera/wrist/image_raw'", "not in the bag",
                       "/camera/front/image_raw [sensor_msgs/msg/Image, 5 msgs]",
                       "/joint_states [sensor_msgs/msg/JointState, 5 msgs]")


def test_unsupported_encoding(capsys, tmp_path, so101_checkpoint):
    """Like the node: undecodable images are bad input (skipped ticks); a run without any action says so and
    writes nothing (a failed run's summary.json would look like a success to a script)."""
    bag = write_minimal_bag(tmp_path / "bayer", encoding="bayer_rggb8")
    rc, _, err = run_cli(capsys, bag, "--policy", so101_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "no tick computed an action", "unsupported image encoding 'bayer_rggb8'",
                       "bad_input.image:/camera/front/image_raw", "no outputs were written")
    assert not (tmp_path / "o").exists()


def test_size_mismatch_with_strict_size(capsys, tmp_path, so101_checkpoint):
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "big", storage="mcap", compressed=False, n_frames=4, image_size=(120, 160),
                              seed=8)
    rc, _, err = run_cli(capsys, bag, "--policy", so101_checkpoint, "--out", tmp_path / "o", "--strict-size")
    assert_clean_error(rc, err, "no tick computed an action", "bad_input.observation:/camera/front/image_raw",
                       "image is 160x120 but the policy expects 128x96", "no outputs were written")
    assert_no_outputs(tmp_path / "o")


@pytest.mark.parametrize(
    "extra,needle",
    [
        (["--batch-size", "0"], "batch size must be an integer >= 1"),
        (["--side-every", "-1"], "side-every must be an integer >= 0"),
        (["--start", "5", "--end", "2"], "must be after --start"),
        (["--start", "100"], "past the end"),
        (["--rate", "0"], "rate must be"),
        (["-p", "max_input_age_s:=-1.0"], "parameter 'max_input_age_s'"),
        (["--config", "/nonexistent/so101.yaml"], "params file not found"),
        (["--table-format", "xlsx"], "invalid choice"),
    ],
)
def test_bad_options(capsys, tmp_path, so101_checkpoint, small_bag, extra, needle):
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", tmp_path / "o", *extra)
    assert_clean_error(rc, err, needle)


def test_missing_policy(capsys, tmp_path, small_bag):
    rc, _, err = run_cli(capsys, small_bag, "--policy", tmp_path / "no_policy", "--out", tmp_path / "o")
    assert_clean_error(rc, err, "policy_path")


# ------------------------------------------------------------------------------------------ success
def test_large_images_are_resized_with_one_warning_per_camera(capsys, caplog, tmp_path, so101_checkpoint):
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "vga", storage="mcap", compressed=False, n_frames=9, image_size=(480, 640),
                              seed=9)
    out = tmp_path / "o"
    rc, stdout, err = run_cli(capsys, bag, "--policy", so101_checkpoint, "--out", out, "--side-every", "4",
                              "--no-video", "--table-format", "parquet", "-q")
    assert rc == 0, err
    assert "replayed" in stdout and "ticks.parquet" in stdout
    resize = [r.getMessage() for r in caplog.records if "resizing" in r.getMessage()]
    assert len(resize) == 2 and any("'observation.images.front'" in m for m in resize), resize
    table = read_table(out / "ticks.parquet")
    summary = json.loads((out / "summary.json").read_text())
    assert len(table) == summary["ticks"] and summary["processed"] > 0
    # overlays keep the recorded resolution
    from act_interp_ros.bag.reader import open_bag

    with open_bag(out / "interp_bag") as reader:
        raw = next(reader.messages(["/act_interp_node/attention/front/overlay"]))
        msg = reader.deserialize(raw)
        assert (msg.height, msg.width) == (480, 640)


# ------------------------------------------------------------------------------------------ atomicity
@pytest.mark.parametrize("failure", [RuntimeError("disk on fire"), KeyboardInterrupt()], ids=["error", "interrupt"])
def test_failed_run_leaves_no_complete_looking_output(capsys, tmp_path, so101_checkpoint, small_bag, monkeypatch, failure):
    from act_interp_ros.offline import videos as video_output

    out = tmp_path / "o"
    original = video_output.ReplayVideos.on_tick
    calls = {"n": 0}

    def failing_on_tick(self, rec):
        calls["n"] += 1
        if calls["n"] == 5:
            raise failure
        original(self, rec)

    monkeypatch.setattr(video_output.ReplayVideos, "on_tick", failing_on_tick)
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "-q")
    assert calls["n"] == 5
    if isinstance(failure, KeyboardInterrupt):
        assert rc == replay_cli.EXIT_INTERRUPTED and "interrupted" in err
    else:
        assert rc == replay_cli.EXIT_INTERNAL and "disk on fire" in err and "Traceback" not in err
    assert not out.exists(), list(out.iterdir())  # the run created it, and removed it again when it failed


def test_failed_run_keeps_previous_outputs(capsys, tmp_path, so101_checkpoint, small_bag, monkeypatch):
    out = tmp_path / "o"
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "-q", "--no-video",
                         "--no-bag", "--side-every", "0")
    assert rc == 0, err
    before = (out / "ticks.csv").read_bytes()
    from act_interp_ros.offline import plots

    def broken_plot(*_args, **_kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(plots, "write_attention_plot", broken_plot)
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "-q", "--no-video",
                         "--no-bag", "--rate", "15")
    assert rc != 0 and "No space left on device" in err
    assert (out / "ticks.csv").read_bytes() == before  # the earlier complete table is untouched
    assert not list(out.glob(f"{STAGING_PREFIX}*"))


def test_killed_run_leaves_only_a_partial_staging_directory(tmp_path, so101_checkpoint):
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "bag", storage="mcap", compressed=False, n_frames=90, image_size=(96, 128),
                              seed=10)
    out = tmp_path / "o"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "act_interp_ros.cli.replay", str(bag), "--policy", str(so101_checkpoint),
           "--out", str(out), "--side-every", "1", "-q"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        staged = []
        while time.monotonic() < deadline and proc.poll() is None:
            staged = list(out.glob(f"{STAGING_PREFIX}*/interp_bag/*.mcap")) if out.exists() else []
            if staged and staged[0].stat().st_size > 0:
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the replay finished before it could be killed"
        assert staged, "no staged output appeared"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for name in FINAL_NAMES:
        assert not (out / name).exists(), name
    leftovers = [p.name for p in out.iterdir()]
    assert leftovers and all(n.startswith(STAGING_PREFIX) for n in leftovers), leftovers
    # the next run in that directory removes what the killed one left
    from act_interp_ros.offline.outputs import OutputStage

    OutputStage(out).discard()
    assert not any(out.iterdir())


# ------------------------------------------------------------------------------------------ datasets
@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """2 episodes (5 and 4 frames) of front + wrist PNG frames at 48x64 (the node checkpoint's size)."""
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset

    return build_synthetic_dataset(tmp_path_factory.mktemp("cli_ds") / "ds", n_episodes=2, episode_steps=[5, 4],
                                   image_size=(48, 64), cameras=("front", "wrist"), use_videos=False, seed=2)


def test_dataset_missing_root(capsys, tmp_path, node_checkpoint):
    rc, _, err = run_cli(capsys, "--dataset", tmp_path / "no_dataset", "--policy", node_checkpoint, "--out",
                         tmp_path / "o")
    assert_clean_error(rc, err, "dataset root", "no_dataset", "does not exist")
    assert_no_outputs(tmp_path / "o")


def test_dataset_hub_repo_offline(capsys, tmp_path, node_checkpoint, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc, _, err = run_cli(capsys, "--dataset", "someone/not_cached_anywhere", "--policy", node_checkpoint, "--out",
                         tmp_path / "o")
    assert_clean_error(rc, err, "'someone/not_cached_anywhere'", "offline")
    assert_no_outputs(tmp_path / "o")


def test_dataset_wrong_episode(capsys, tmp_path, node_checkpoint, small_dataset):
    rc, _, err = run_cli(capsys, "--dataset", small_dataset.root, "--episodes", "0", "7", "--policy", node_checkpoint,
                         "--out", tmp_path / "o")
    assert_clean_error(rc, err, "episode 7 does not exist", "it has episodes 0-1")
    assert_no_outputs(tmp_path / "o")


def test_dataset_features_do_not_match_the_policy(capsys, tmp_path, node_checkpoint):
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset

    ds = build_synthetic_dataset(tmp_path / "front_only", n_episodes=1, episode_steps=3, image_size=(48, 64),
                                 cameras=("front",), use_videos=False, keep_images=False)
    rc, _, err = run_cli(capsys, "--dataset", ds.root, "--policy", node_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "dataset features do not match the policy",
                       "camera observation.images.wrist is missing", "dataset cameras: observation.images.front")
    assert_no_outputs(tmp_path / "o")
    rc, _, err = run_cli(capsys, "--dataset", ds.root, "--policy", node_checkpoint, "--out", tmp_path / "o",
                         "--camera-map", "wrist=side")
    assert_clean_error(rc, err, "observation.images.side (mapped from observation.images.wrist) is missing")


def test_dataset_of_another_size_with_strict_size(capsys, tmp_path, so101_checkpoint, small_dataset):
    rc, _, err = run_cli(capsys, "--dataset", small_dataset.root, "--policy", so101_checkpoint, "--out",
                         tmp_path / "o", "--strict-size")
    assert_clean_error(rc, err, "observation.images.front is 48x64, policy expects 96x128 (resizing disabled)")
    assert_no_outputs(tmp_path / "o")


def test_dataset_corrupt_parquet(capsys, tmp_path, node_checkpoint, small_dataset):
    import shutil

    root = tmp_path / "ds"
    shutil.copytree(small_dataset.root, root)
    (data,) = root.glob("data/*/*.parquet")
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    rc, _, err = run_cli(capsys, "--dataset", root, "--policy", node_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, "corrupt data file", data.name)
    assert_no_outputs(tmp_path / "o")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["BAG", "--dataset", "DS"], "give exactly one input"),
        ([], "give exactly one input: a bag (BAG) or a dataset (--dataset ROOT_OR_REPO_ID)"),
        (["--dataset", "DS", "--clock", "header", "--start", "1"], "--start, --clock apply to bag replay only"),
        (["--dataset", "DS", "--no-bag"], "--no-bag applies to bag replay only"),
        (["BAG", "--episodes", "0"], "--episodes applies to dataset replay only"),
        (["--dataset", "DS", "--camera-map", "front"], "--camera-map entries are POLICY=DATASET"),
        (["--dataset", "DS", "--rerun", "out.txt"], "--rerun must name a Rerun recording file ending in .rrd"),
        (["--dataset", "DS", "--episodes", "-1"], "episodes must be indices >= 0"),
    ],
)
def test_dataset_bad_options(capsys, tmp_path, node_checkpoint, small_bag, small_dataset, args, needle):
    args = [{"BAG": small_bag, "DS": small_dataset.root}.get(a, a) for a in args]
    rc, _, err = run_cli(capsys, *args, "--policy", node_checkpoint, "--out", tmp_path / "o")
    assert_clean_error(rc, err, needle)
    assert_no_outputs(tmp_path / "o")


def test_dataset_replay_prints_results(capsys, tmp_path, node_checkpoint, small_dataset):
    out = tmp_path / "o"
    rc, stdout, err = run_cli(capsys, "--dataset", small_dataset.root, "--episodes", "1", "0", "--policy",
                              node_checkpoint, "--out", out, "--rerun", out / "run.rrd", "--side-every", "2",
                              "--faithfulness-samples", "1", "--table-format", "parquet", "-q")
    assert rc == 0, err
    assert "replayed 2 episode(s), 9 frames at 30 fps: 9 with outputs, 0 skipped" in stdout
    assert "episode 1: 4 frames, 0 skipped, action MAE vs recorded" in stdout
    assert f"run.rrd: {out / 'run.rrd'}" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["episode_000", "episode_001", "run.rrd", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert [e["episode"] for e in summary["episodes"]] == [1, 0]
    table = read_table(out / "episode_000" / "ticks.parquet")
    assert len(table) == 5 and table["maps"].tolist() == ["gradcam,gradient_x_input", "", "gradcam,gradient_x_input",
                                                          "", "gradcam,gradient_x_input"]


def test_dataset_failure_in_a_later_episode_leaves_no_output(capsys, tmp_path, node_checkpoint, small_dataset,
                                                             monkeypatch):
    """Every episode and the Rerun file appear together or not at all; an earlier run's outputs stay."""
    out = tmp_path / "o"
    rc, _, err = run_cli(capsys, "--dataset", small_dataset.root, "--episodes", "0", "--policy", node_checkpoint,
                         "--out", out, "--side-every", "0", "--no-video", "-q")
    assert rc == 0, err
    before = (out / "episode_000" / "ticks.csv").read_bytes()
    from act_interp_ros.offline import plots

    original = plots.write_action_plot
    calls = {"n": 0}

    def fail_on_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("No space left on device")
        original(*args, **kwargs)

    monkeypatch.setattr(plots, "write_action_plot", fail_on_second)
    rc, _, err = run_cli(capsys, "--dataset", small_dataset.root, "--policy", node_checkpoint, "--out", out,
                         "--rerun", out / "run.rrd", "--side-every", "0", "--no-video", "-q")
    assert calls["n"] == 2
    assert_clean_error(rc, err, "No space left on device")
    assert sorted(p.name for p in out.iterdir()) == ["episode_000", "summary.json"]
    assert (out / "episode_000" / "ticks.csv").read_bytes() == before
