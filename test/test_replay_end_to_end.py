"""Offline replay end to end on synthetic SO-101 bags of every storage / image transport kind.

Checks the output bag (read back with rosbags: topics, counts, stamps lining up with the inputs), the
videos (decoded frame count = ticks), the per-tick table (one row per tick), the plot and summary.json.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from act_interp_ros.offline.outputs import STAGING_PREFIX, read_table
from act_interp_ros.bag.reader import open_bag
from act_interp_ros.bag.replay import ReplayOptions, replay_bag
from act_interp_ros.core import InterpretableACT
from act_interp_ros.settings import load_settings_yaml
from replay_helpers import count_video_frames, rerun_column, rerun_entities

NODE = "/act_interp_node"
CAMS = ("front", "wrist")
N_FRAMES = 30  # 1 s at 30 Hz
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def policy(so101_checkpoint):
    wrapped = InterpretableACT.from_pretrained(str(so101_checkpoint), device="cpu")
    yield wrapped
    wrapped.close()


def settings_for(repo_root, checkpoint, compressed: bool, **overrides):
    if compressed:
        overrides.setdefault("camera_topics", [f"/camera/{c}/image_raw/compressed" for c in CAMS])
        overrides.setdefault("camera_transports", ["compressed", "compressed"])
    return load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(checkpoint), **overrides})


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def read_bag(path):
    """topic -> list of (log_ns, message) in log order, and topic -> msgtype."""
    with open_bag(path) as reader:
        out: dict[str, list] = {t: [] for t in reader.topics}
        for raw in reader.messages():
            out[raw.topic].append((raw.log_ns, reader.deserialize(raw)))
        return out, {t: info.msgtype for t, info in reader.topics.items()}


@pytest.mark.parametrize(
    "storage,compressed",
    [("mcap", False), ("mcap", True), ("sqlite3", False), ("sqlite3", True)],
    ids=["mcap-raw", "mcap-compressed", "sqlite3-raw", "sqlite3-compressed"],
)
def test_replay_end_to_end(tmp_path, repo_root, so101_checkpoint, policy, storage, compressed):
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "bag", storage=storage, compressed=compressed, n_frames=N_FRAMES,
                              image_size=(96, 128), seed=1)
    settings = settings_for(repo_root, so101_checkpoint, compressed)
    out = tmp_path / "out"
    summary = replay_bag(bag, policy, settings, out, ReplayOptions(side_every=4))

    # --- table: one row per tick, every tick has outputs or a reason
    table = read_table(out / "ticks.csv")
    assert len(table) == summary.ticks >= N_FRAMES - 1
    assert table["tick"].tolist() == list(range(summary.ticks))
    assert (table["skipped"] == (table["skip_reason"] != "")).all()
    done = table[~table["skipped"]]
    assert len(done) == summary.processed > 0
    assert summary.processed + summary.skipped == summary.ticks
    assert done[["attn_proprio", "attn_front", "attn_wrist", "action_gripper"]].notna().all().all()
    fractions = done[["attn_proprio", "attn_latent", "attn_front", "attn_wrist"]].sum(axis=1)
    np.testing.assert_allclose(fractions, 1.0, atol=1e-5)
    side_ticks = table[table["maps"] != ""]
    assert len(side_ticks) == summary.side_ticks > 0
    assert (side_ticks["tick"] % 4 == 0).all()
    assert (side_ticks["maps"] == "gradcam,gradient_x_input").all(), "the config's side_methods"
    # faithfulness of every map on sampled side ticks, in the table and the summary
    faith = table[table["faith_attention"].notna()]
    assert 0 < len(faith) <= 8 and set(faith["tick"]) <= set(side_ticks["tick"])
    assert faith[["faith_gradcam", "faith_gradient_x_input"]].notna().all().all()
    for method in ("attention", "gradcam", "gradient_x_input"):
        for cam in ("observation.images.front", "observation.images.wrist"):
            f = summary.faithfulness[method][cam]
            assert f["n"] == len(faith) and len(f["curve_top"]) == len(f["fractions"]) == 4

    # --- output bag: inputs copied, outputs stamped to line up with them
    msgs, types = read_bag(out / "interp_bag")
    src, _ = read_bag(bag)
    for topic, items in src.items():
        assert len(msgs[topic]) == len(items), topic
    cam_topics = settings.camera_topics
    for cam, topic in zip(CAMS, cam_topics):
        overlays = msgs[f"{NODE}/attention/{cam}/overlay"]
        assert types[f"{NODE}/attention/{cam}/overlay"] == "sensor_msgs/msg/Image"
        assert len(overlays) == summary.processed
        input_stamps = {_stamp(m) for _, m in src[topic]}
        overlay_stamps = [_stamp(m) for _, m in overlays]
        assert set(overlay_stamps) <= input_stamps
        assert overlay_stamps == done[f"stamp_{cam}_ns"].tolist()  # header = the source image's header
        assert [log for log, _ in overlays] == done["stamp_ns"].tolist()  # recorded at the tick time
        first = overlays[0][1]
        assert (first.height, first.width, first.encoding) == (96, 128, "rgb8")
        assert first.header.frame_id == src[topic][0][1].header.frame_id
        for method in ("gradcam", "gradient_x_input"):
            maps = msgs[f"{NODE}/{method}/{cam}/overlay"]
            assert len(maps) == summary.side_ticks
            assert {_stamp(m) for _, m in maps} <= input_stamps
        plans = msgs[f"{NODE}/attention_plan/{cam}/overlay"]
        assert len(plans) == int(done["new_plan"].sum()) > 0, "one plan overlay per queue refill"
    proprio = msgs[f"{NODE}/proprio_attention"]
    assert types[f"{NODE}/proprio_attention"] == "std_msgs/msg/Float32"
    np.testing.assert_allclose([m.data for _, m in proprio], done["attn_proprio"], rtol=1e-6)
    for cam in CAMS:  # the node's per-camera shares and lifts, one per computed tick
        shares = [m.data for _, m in msgs[f"{NODE}/attention/{cam}/share"]]
        np.testing.assert_allclose(shares, done[f"attn_{cam}"], rtol=1e-6)
        lifts = [m.data for _, m in msgs[f"{NODE}/attention/{cam}/lift"]]
        np.testing.assert_allclose(lifts, done[f"lift_{cam}"], rtol=1e-6)
    status = msgs[f"{NODE}/tick_status"]  # every tick, with its skip reason like the live node's ~/tick_status
    assert [m.message for _, m in status] == [r or "ok" for r in table["skip_reason"]]
    commands = msgs[f"{NODE}/joint_command"]
    assert types[f"{NODE}/joint_command"] == "sensor_msgs/msg/JointState"
    assert [_stamp(m) for _, m in commands] == done["stamp_ns"].tolist()
    assert list(commands[0][1].name) == settings.joint_names
    logs = [log for items in msgs.values() for log, _ in items]
    assert len(logs) == sum(summary.output_counts.values()) + sum(len(v) for v in src.values())
    with open_bag(out / "interp_bag") as reader:  # written in log-time order
        order = [m.log_ns for m in reader.messages()]
        assert order == sorted(order)

    # --- videos: one frame per tick
    for cam in CAMS:
        assert count_video_frames(out / f"attention_{cam}.mp4") == summary.ticks
    assert count_video_frames(out / "grid.mp4") == summary.ticks

    # --- plot and summary
    assert (out / "attention_plot.png").read_bytes()[:8] == PNG_MAGIC
    data = json.loads((out / "summary.json").read_text())
    assert data["ticks"] == summary.ticks and data["processed"] == summary.processed
    assert set(data["outputs"]) == {"interp_bag", "attention_front.mp4", "attention_wrist.mp4", "grid.mp4",
                                    "ticks.csv", "attention_plot.png", "summary.json"}
    assert data["timings"]["ticks_per_s"] > 0
    assert not list(out.glob(f"{STAGING_PREFIX}*"))


def test_start_end_and_rate_select_ticks(tmp_path, repo_root, so101_checkpoint, policy):
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "bag", storage="mcap", compressed=False, n_frames=N_FRAMES,
                              image_size=(96, 128), seed=2)
    settings = settings_for(repo_root, so101_checkpoint, False)
    out = tmp_path / "out"
    opts = ReplayOptions(start_s=0.2, end_s=0.6, rate_hz=10.0, side_every=0, write_video=False, write_plot=False)
    summary = replay_bag(bag, policy, settings, out, opts)
    table = read_table(out / "ticks.csv")
    assert summary.ticks == len(table) == 5  # 0.2, 0.3, 0.4, 0.5, 0.6 s
    np.testing.assert_allclose(table["time_s"], [0.2, 0.3, 0.4, 0.5, 0.6], atol=1e-6)
    assert (table["maps"] == "").all()
    msgs, _ = read_bag(out / "interp_bag")
    assert not any(t.startswith(f"{NODE}/gradcam") for t in msgs)
    assert len(msgs[f"{NODE}/joint_command"]) == summary.processed
    # inputs copied only around the replayed range (from max_input_age_s before the first tick)
    first_tick, last_tick = table["stamp_ns"].iloc[0], table["stamp_ns"].iloc[-1]
    copied = [log for log, _ in msgs["/joint_states"]]
    assert copied and min(copied) >= first_tick - settings.max_input_age_s * 1e9 and max(copied) <= last_tick
    assert not (out / "grid.mp4").exists() and not (out / "attention_plot.png").exists()


def test_compressed_bag_with_raw_config_falls_back_with_a_warning(tmp_path, repo_root, so101_checkpoint, policy, caplog):
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "bag", storage="mcap", compressed=True, n_frames=6, image_size=(96, 128), seed=3)
    settings = settings_for(repo_root, so101_checkpoint, False)  # raw topics configured
    opts = ReplayOptions(side_every=0, write_bag=False, write_video=False, write_plot=False)
    summary = replay_bag(bag, policy, settings, tmp_path / "out", opts)
    assert summary.input_topics["observation.images.front"] == "/camera/front/image_raw/compressed"
    assert any("using '/camera/front/image_raw/compressed'" in r.getMessage() for r in caplog.records)
    assert summary.warnings


def test_header_clock_matches_log_clock_when_stamps_equal_log_times(tmp_path, repo_root, so101_checkpoint, policy):
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "bag", storage="mcap", compressed=False, n_frames=8, image_size=(96, 128), seed=4)
    settings = settings_for(repo_root, so101_checkpoint, False)
    with open_bag(bag) as reader:
        same = all(m.log_ns == _stamp(reader.deserialize(m)) for m in reader.messages(["/joint_states"]))
    if not same:
        pytest.skip("this synthetic bag records log times different from its header stamps")
    tables = []
    for clock in ("log", "header"):
        opts = ReplayOptions(clock=clock, side_every=0, write_bag=False, write_video=False, write_plot=False)
        replay_bag(bag, policy, settings, tmp_path / clock, opts)
        tables.append((tmp_path / clock / "ticks.csv").read_bytes())
    assert tables[0] == tables[1]


def test_rerun_recording_of_a_bag(tmp_path, repo_root, so101_checkpoint, policy):
    """--rerun for a bag: the bag is episode 0 on the bag's time axis; read back with Rerun's own API."""
    rdf = pytest.importorskip("rerun.dataframe")
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    bag = write_synthetic_bag(tmp_path / "bag", storage="mcap", compressed=False, n_frames=10, image_size=(96, 128),
                              seed=5)
    settings = settings_for(repo_root, so101_checkpoint, False)
    out = tmp_path / "out"
    rrd = tmp_path / "elsewhere" / "bag.rrd"
    opts = ReplayOptions(side_every=3, faithfulness_samples=2, rerun_path=rrd, write_bag=False, write_video=False,
                         write_plot=False)
    summary = replay_bag(bag, policy, settings, out, opts)
    assert summary.outputs["bag.rrd"] == str(rrd) and rrd.is_file()
    assert sorted(p.name for p in rrd.parent.iterdir()) == ["bag.rrd"]
    table = read_table(out / "ticks.csv")
    done = table[~table["skipped"]]
    recording = rdf.load_recording(rrd)
    entities = rerun_entities(recording)
    assert not any("/recorded" in e for e in entities) and all(e.startswith("/episode_000/") for e in entities)
    for cam in CAMS:
        base = f"/episode_000/camera/{cam}"
        frames, _ = rerun_column(recording, f"{base}/image", "EncodedImage:blob")
        assert frames == table["tick"].tolist()  # every tick shows its camera frame, skipped or not
        frames, _ = rerun_column(recording, f"{base}/overlay/attention", "EncodedImage:blob")
        assert frames == done["tick"].tolist()
        for method in ("gradcam", "gradient_x_input"):
            frames, _ = rerun_column(recording, f"{base}/overlay/{method}", "EncodedImage:blob")
            assert frames == done[done["maps"] != ""]["tick"].tolist() and frames
        frames, _ = rerun_column(recording, f"{base}/overlay/attention_plan", "EncodedImage:blob")
        assert frames == done[done["new_plan"]]["tick"].tolist()
        frames, values = rerun_column(recording, f"/episode_000/scalar/attention/{cam}", "Scalars:scalars")
        np.testing.assert_allclose([v[0] for v in values], done[f"attn_{cam}"], rtol=1e-6)
    for joint in settings.joint_names:
        frames, values = rerun_column(recording, f"/episode_000/action/{joint}/predicted", "Scalars:scalars")
        assert frames == done["tick"].tolist()
        np.testing.assert_allclose([v[0] for v in values], done[f"action_{joint}"], rtol=1e-6)
    frames, values = rerun_column(recording, "/episode_000/scalar/faithfulness/gradcam", "Scalars:scalars")
    faith = table[table["faith_gradcam"].notna()]
    assert frames == faith["tick"].tolist() and len(frames) >= 1
    view = recording.view(index="time", contents="/episode_000/scalar/attention/proprio").select().read_all()
    np.testing.assert_allclose([t.total_seconds() for t in view.column("time").to_pylist()], done["time_s"], atol=1e-6)
