"""Offline replay of LeRobotDataset episodes end to end (issue 14).

Two tiny synthetic SO-101 datasets written with LeRobot (2 episodes of 12 and 7 frames, front + wrist):
AV1 video at the policy's 48x64, and PNG images at 96x128 (resized to the policy's size, like the node).
The policy is the session's small real ACT checkpoint (48x64 cameras, 6-joint state and action). Every
output is checked: per-episode tables (one row per frame, recorded actions, errors), videos (one frame per
tick), plots, per-episode and overall summaries, the Rerun recording read back with Rerun's own API; and
the predicted actions must equal LeRobot's own ``ACTPolicy.select_action`` run over the same frames read
with LeRobot's own ``LeRobotDataset``, with the policy reset at each episode start.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
from act_interp_ros.dataset.synthetic import build_synthetic_dataset
from act_interp_ros.offline.outputs import STAGING_PREFIX, read_table
from act_interp_ros.settings import load_settings_yaml
from act_interp_ros.synthetic import JOINT_NAMES
from replay_helpers import count_video_frames, rerun_column, rerun_entities

pytestmark = pytest.mark.timeout(600)

STEPS = [12, 7]
CAMS = ("front", "wrist")
KEYS = tuple(f"observation.images.{c}" for c in CAMS)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIDE_EVERY = 4
METHODS = ("gradcam", "gradient_x_input")  # the config's side_methods


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """storage -> SyntheticDataset: video at the policy's size, PNG at twice it (resized by the replay)."""
    root = tmp_path_factory.mktemp("datasets")
    return {
        "video": build_synthetic_dataset(root / "video", n_episodes=2, episode_steps=STEPS, image_size=(48, 64),
                                         cameras=CAMS, use_videos=True, seed=11),
        "image": build_synthetic_dataset(root / "image", n_episodes=2, episode_steps=STEPS, image_size=(96, 128),
                                         cameras=CAMS, use_videos=False, seed=11),
    }


@pytest.fixture(scope="module")
def runs(datasets, node_checkpoint, repo_root, tmp_path_factory):
    """storage -> (out dir, summary, rrd path): each dataset replayed once (the image one with batched forwards)."""
    settings = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(node_checkpoint)})
    done = {}
    for storage, ds in datasets.items():
        out = tmp_path_factory.mktemp(f"replay_{storage}") / "out"
        rrd = out / "replay.rrd"
        opts = DatasetReplayOptions(side_every=SIDE_EVERY, faithfulness_samples=2, rerun_path=rrd,
                                    batch_size=1 if storage == "video" else 3)
        summary = replay_dataset(ds.root, str(node_checkpoint), settings, out, opts)
        done[storage] = (out, summary, rrd)
    return done


def direct_actions(ds, checkpoint, backend: str | None) -> dict[int, np.ndarray]:
    """episode -> (T, 6) actions of LeRobot's own ACTPolicy.select_action over LeRobotDataset frames, reset per episode.

    Images go through the node's ObservationBuilder (uint8 RGB -> the policy's size) like any live frame.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    from act_interp_ros.core import ObservationBuilder, load_act_policy

    loaded = load_act_policy(str(checkpoint), device="cpu")
    builder = ObservationBuilder(loaded.policy.config)
    out = {}
    for ep in range(len(STEPS)):
        with warnings.catch_warnings():  # torchvision's deprecation notice for its video reader (pyav backend)
            warnings.simplefilter("ignore", UserWarning)
            data = LeRobotDataset(ds.repo_id, root=ds.root, episodes=[ep], video_backend=backend or "pyav")
            items = [data[i] for i in range(len(data))]
        loaded.policy.reset()
        actions = []
        for item in items:
            images = {k: (item[k] * 255).round().clamp(0, 255).byte().permute(1, 2, 0).numpy() for k in KEYS}
            obs = builder.build(images, state=item["observation.state"].numpy())
            with torch.inference_mode():
                action = loaded.policy.select_action(loaded.preprocessor(obs))
            actions.append(loaded.postprocessor(action)[0].numpy())
        out[ep] = np.stack(actions)
    return out


@pytest.mark.parametrize("storage", ["video", "image"])
def test_outputs_per_episode_and_overall(runs, datasets, storage):
    out, summary, _ = runs[storage]
    ds = datasets[storage]
    assert sorted(p.name for p in out.iterdir()) == ["episode_000", "episode_001", "replay.rrd", "summary.json"]
    assert not list(out.rglob(f"{STAGING_PREFIX}*"))
    data = json.loads((out / "summary.json").read_text())
    assert data["ticks"] == summary.ticks == sum(STEPS) and data["processed"] == sum(STEPS) and data["skipped"] == 0
    assert set(data["outputs"]) == {"episode_000", "episode_001", "replay.rrd", "summary.json"}
    assert data["fps"] == 30 and data["methods"] == list(METHODS) and data["side_every"] == SIDE_EVERY
    assert data["camera_map"] == {k: k for k in KEYS}
    assert data["joint_names"] == list(JOINT_NAMES)
    # the test checkpoint's normaliser has mean/std only: the training-range guard says once that it is off
    no_range = ["the checkpoint's normaliser has no min/max for observation.state: the training-range guard is off "
                "for it"]
    if storage == "image":
        assert data["resized"] == {k: "96x128 -> 48x64" for k in KEYS}
        assert len(data["warnings"]) == 3 and data["warnings"][2:] == no_range
    else:
        assert data["resized"] == {} and data["warnings"] == no_range
    pooled = []
    for ep, n in enumerate(STEPS):
        d = out / f"episode_{ep:03d}"
        assert sorted(p.name for p in d.iterdir()) == sorted(
            ["attention_front.mp4", "attention_wrist.mp4", "grid.mp4", "ticks.csv", "attention_plot.png",
             "action_plot.png", "summary.json"])
        table = read_table(d / "ticks.csv")
        # one row per frame, on the dataset's timestamps
        assert table["tick"].tolist() == list(range(n))
        np.testing.assert_allclose(table["time_s"], np.arange(n) / 30.0, atol=1e-6)
        assert not table["skipped"].any()
        shares = table[["attn_proprio", "attn_latent", "attn_front", "attn_wrist"]].sum(axis=1)
        np.testing.assert_allclose(shares, 1.0, atol=1e-5)
        # recorded actions are the dataset's; errors are predicted - recorded
        recorded = ds.episodes[ep].action.astype(np.float32)
        for j, joint in enumerate(JOINT_NAMES):
            np.testing.assert_allclose(table[f"recorded_{joint}"], recorded[:, j], rtol=1e-6)
            np.testing.assert_allclose(table[f"error_{joint}"], table[f"action_{joint}"] - table[f"recorded_{joint}"],
                                       atol=1e-4)
        pooled.append(table)
        # the bag replay's schedule: side methods every 4 frames, faithfulness on <= 2 of those ticks
        side = table[table["maps"] != ""]
        assert side["tick"].tolist() == list(range(0, n, SIDE_EVERY))
        assert (side["maps"] == ",".join(METHODS)).all()
        faith = table[table["faith_attention"].notna()]
        assert 1 <= len(faith) <= 2 and set(faith["tick"]) <= set(side["tick"])
        assert faith[["faith_gradcam", "faith_gradient_x_input"]].notna().all().all()
        # videos: one frame per tick; plots are PNGs
        for name in ("attention_front.mp4", "attention_wrist.mp4", "grid.mp4"):
            assert count_video_frames(d / name) == n, name
        for name in ("attention_plot.png", "action_plot.png"):
            assert (d / name).read_bytes()[:8] == PNG_MAGIC
        # the episode's summary: counts, per-joint error recomputed from the table, faithfulness
        es = json.loads((d / "summary.json").read_text())
        assert (es["episode"], es["ticks"], es["length"], es["processed"]) == (ep, n, n, n)
        assert es["side_ticks"] == len(side) and es["plan_resets"] == 1
        for joint in JOINT_NAMES:
            err = table[f"error_{joint}"].to_numpy()
            stats = es["action_error"]["joints"][joint]
            assert stats["n"] == n
            assert stats["mae"] == pytest.approx(np.abs(err).mean(), rel=1e-5)
            assert stats["bias"] == pytest.approx(err.mean(), rel=1e-5, abs=1e-6)
            assert stats["max_abs_at"]["tick"] == int(np.argmax(np.abs(err)))
        assert set(es["faithfulness"]) == {"attention", *METHODS}
        assert es["faithfulness"]["attention"][KEYS[0]]["n"] == len(faith)
        assert es["attention_mean"]["proprio"] == pytest.approx(table["attn_proprio"].mean(), rel=1e-5)
        assert data["episodes"][ep] == es
        assert set(es["outputs"]) == {p.name for p in d.iterdir()}
    # overall numbers pool both episodes
    both = np.concatenate([t[[f"error_{j}" for j in JOINT_NAMES]].to_numpy() for t in pooled])
    assert data["action_error"]["all"]["n"] == both.size
    assert data["action_error"]["all"]["mae"] == pytest.approx(np.abs(both).mean(), rel=1e-5)
    assert data["faithfulness"]["attention"][KEYS[0]]["n"] == sum(
        e["faithfulness"]["attention"][KEYS[0]]["n"] for e in data["episodes"])
    assert data["plan_resets"] == 2 and data["timings"]["ticks_per_s"] > 0


@pytest.mark.parametrize("storage", ["video", "image"])
def test_actions_equal_lerobots_own_policy_run(runs, datasets, node_checkpoint, storage):
    out, summary, _ = runs[storage]
    want = direct_actions(datasets[storage], node_checkpoint, summary.video_backend)
    for ep in range(len(STEPS)):
        table = read_table(out / f"episode_{ep:03d}" / "ticks.csv")
        got = table[[f"action_{j}" for j in JOINT_NAMES]].to_numpy()
        if storage == "video":  # sequential forwards: exactly LeRobot's actions
            np.testing.assert_array_equal(got, want[ep].astype(np.float64))
        else:  # batched forwards (batch 3) differ from sequential ones by float rounding only (~1e-6 here)
            np.testing.assert_allclose(got, want[ep], rtol=0, atol=1e-5)
        assert table["new_plan"].tolist() == [i % 5 == 0 for i in range(len(table))]  # n_action_steps 5, reset at 0


def test_rerun_recording_read_back(runs):
    rdf = pytest.importorskip("rerun.dataframe")
    out, _, rrd = runs["video"]
    recording = rdf.load_recording(rrd)
    entities = rerun_entities(recording)
    for ep, n in enumerate(STEPS):
        base = f"/episode_{ep:03d}"
        table = read_table(out / f"episode_{ep:03d}" / "ticks.csv")
        assert f"{base}/task" in entities
        for cam in CAMS:
            for name in ("image", "overlay/attention", "overlay/attention_plan", *(f"overlay/{m}" for m in METHODS)):
                assert f"{base}/camera/{cam}/{name}" in entities, name
            frames, media = rerun_column(recording, f"{base}/camera/{cam}/overlay/attention", "EncodedImage:media_type")
            assert frames == list(range(n)) and media[0] == ["image/jpeg"]
            frames, _ = rerun_column(recording, f"{base}/camera/{cam}/overlay/gradcam", "EncodedImage:blob")
            assert frames == list(range(0, n, SIDE_EVERY))
            frames, values = rerun_column(recording, f"{base}/scalar/attention/{cam}", "Scalars:scalars")
            assert frames == list(range(n))
            np.testing.assert_allclose([v[0] for v in values], table[f"attn_{cam}"], rtol=1e-6)
        for joint in JOINT_NAMES:
            for kind, col in (("predicted", "action"), ("recorded", "recorded")):
                frames, values = rerun_column(recording, f"{base}/action/{joint}/{kind}", "Scalars:scalars")
                assert frames == list(range(n))
                np.testing.assert_allclose([v[0] for v in values], table[f"{col}_{joint}"], rtol=1e-6)
        frames, values = rerun_column(recording, f"{base}/scalar/faithfulness/attention", "Scalars:scalars")
        faith = table[table["faith_attention"].notna()]
        assert frames == faith["tick"].tolist()
        np.testing.assert_allclose([v[0] for v in values], faith["faith_attention"], rtol=1e-6)
        view = recording.view(index="time", contents=f"{base}/scalar/attention/proprio").select().read_all()
        seconds = [t.total_seconds() for t in view.column("time").to_pylist()]
        np.testing.assert_allclose(seconds, table["time_s"], atol=1e-6)
        assert {f"{base}/scalar/lift/proprio", f"{base}/scalar/attention/latent"} <= entities


def test_rerun_off_and_stale_outputs_removed(runs, datasets, node_checkpoint, repo_root, tmp_path):
    """A later run into the same directory writing one episode, no Rerun, no video removes the rest (also when
    the earlier run wrote the folder under another path: here a copy, whose summary lists the original paths)."""
    import shutil

    first_out, _, _ = runs["video"]
    out = tmp_path / "out"
    shutil.copytree(first_out, out)
    settings = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(node_checkpoint)})
    opts = DatasetReplayOptions(episodes=[1], methods=[], write_video=False, faithfulness_samples=0,
                                camera_map={"front": "front"})
    summary = replay_dataset(datasets["video"].root, str(node_checkpoint), settings, out, opts)
    assert sorted(p.name for p in out.iterdir()) == ["episode_001", "summary.json"]
    assert sorted(p.name for p in (out / "episode_001").iterdir()) == [
        "action_plot.png", "attention_plot.png", "summary.json", "ticks.csv"]
    assert summary.ticks == STEPS[1] and summary.methods == [] and summary.faithfulness == {}
    table = read_table(out / "episode_001" / "ticks.csv")
    assert (table["maps"] == "").all() and table["faith_attention"].isna().all()


def test_policy_with_environment_state(tmp_path, repo_root):
    """observation.environment_state feeds the policy's env-state token (the node has no such input)."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    ckpt = build_act_checkpoint(tmp_path / "ckpt", SmallACTSpec(cameras={"observation.images.front": (48, 64)},
                                                                env_state_dim=6))
    ds = build_synthetic_dataset(tmp_path / "ds", n_episodes=1, episode_steps=4, image_size=(48, 64),
                                 cameras=("front",), use_videos=False, env_state=True, keep_images=False)
    settings = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(ckpt)})
    out = tmp_path / "out"
    summary = replay_dataset(ds.root, str(ckpt), settings, out,
                             DatasetReplayOptions(methods=[], faithfulness_samples=0, write_video=False))
    table = read_table(out / "episode_000" / "ticks.csv")
    assert summary.processed == len(table) == 4
    assert table["attn_env_state"].between(0, 1).all() and table["attn_env_state"].gt(0).all()
    np.testing.assert_allclose(table[["attn_proprio", "attn_env_state", "attn_latent", "attn_front"]].sum(axis=1), 1.0,
                               atol=1e-5)
    assert set(summary.attention_mean) == {"proprio", "env_state", "latent", "front"}


@pytest.fixture(scope="module")
def narrow_range_checkpoint(tmp_path_factory):
    """A 48x64 SO-101 checkpoint trained (per its normaliser) with shoulder_pan in [1000, 1001] deg only."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint, default_stats, make_act_config

    spec = SmallACTSpec(cameras={k: (48, 64) for k in KEYS})
    stats = default_stats(make_act_config(spec))
    lo, hi = torch.full((6,), -1000.0), torch.full((6,), 1000.0)
    lo[0], hi[0] = 1000.0, 1001.0
    for key in ("observation.state", "action"):
        stats[key] = {"min": lo, "max": hi, "mean": torch.zeros(6), "std": torch.full((6,), 100.0)}
    spec.stats = stats
    return build_act_checkpoint(tmp_path_factory.mktemp("narrow") / "pretrained_model", spec)


def test_training_range_guard_flags_dataset_frames_and_skips_on_request(datasets, narrow_range_checkpoint, repo_root,
                                                                         tmp_path):
    """Issue 21 offline on a dataset: every frame's shoulder_pan is outside the checkpoint's training range."""
    from act_interp_ros.offline.options import NoActionError

    ds, ckpt = datasets["video"], str(narrow_range_checkpoint)
    opts = DatasetReplayOptions(side_every=0, write_video=False, write_plot=False)
    warn = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": ckpt})
    summary = replay_dataset(ds.root, ckpt, warn, tmp_path / "warn", opts)
    assert summary.skipped == 0  # warn (the default): flagged, still acted on
    assert summary.outside_training_range == {"state_outside_training_range.shoulder_pan": sum(STEPS)}
    assert "shoulder_pan" in summary.range_line()
    table = read_table(tmp_path / "warn" / "episode_000" / "ticks.csv")
    assert (table["outside_training_range"] == "shoulder_pan").all()

    skip = load_settings_yaml(repo_root / "config" / "so101.yaml",
                              overrides={"policy_path": ckpt, "out_of_range_policy": "skip"})
    with pytest.raises(NoActionError) as err:
        replay_dataset(ds.root, ckpt, skip, tmp_path / "skip", opts)
    assert "training_range" in str(err.value) and "shoulder_pan" in str(err.value)
    assert not (tmp_path / "skip").exists()
