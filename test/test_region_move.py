"""``--move``: cut a region out of one camera's frame, paste it shifted, and measure whether the executed chunk
follows it against the opposite shift (issue 29, item 2), for bags and datasets.

The known answer: the known-answer model follows the target cube and ignores the distractor, so moving the
target must make its chunk follow (the move and the opposite move push it apart) far more than moving the
distractor. The shortcut pair's check (the shortcut model's chunk follows a moved shadow, the control model's
does not) is in test_shortcut_pair.py.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from act_interp_ros.cli import replay as replay_cli
from act_interp_ros.core import InterpretableACT
from act_interp_ros.core.region_move import MoveSpec, RegionMove, fill_hole, move_region, moved_frame, scaled_move
from act_interp_ros.offline.outputs import read_table
from replay_helpers import count_video_frames, run_cli, write_cli_bag

pytestmark = [pytest.mark.timeout(900), pytest.mark.trained_models("known_answer")]

FRONT = "observation.images.front"


# ------------------------------------------------------------------------------------------- specs
def test_spec_parses_and_bad_specs_say_what_is_expected():
    spec = MoveSpec.parse("front:40,30,24,20:16,-4")
    assert (spec.camera, spec.box, spec.shift, spec.control_shift) == (FRONT, (40, 30, 24, 20), (16, -4), (-16, 4))
    assert spec.label == "front:40,30,24,20:16,-4"
    assert MoveSpec.parse("observation.images.wrist:0,0,8,8:0,3").label == "wrist:0,0,8,8:0,3"
    for bad, needle in (("front", "expected CAMERA:x,y,w,h:dx,dy"), ("front:1,2,3,4", "expected CAMERA"),
                        ("front:1,2,3:4,5", "4 integers"), ("front:1,2,0,4:1,1", "w,h >= 1"),
                        ("front:1,2,3,4:0,0", "not both 0"), ("front:1,2,3,4:a,1", "2 integers")):
        with pytest.raises(ValueError, match=re.escape(needle)):
            MoveSpec.parse(bad)


def test_box_and_shift_scale_with_the_image():
    spec = MoveSpec.parse("front:64,48,64,96:40,-20")
    assert scaled_move(spec, (480, 640), (48, 64)) == ((6, 4, 13, 15), (4, -2))
    with pytest.raises(ValueError, match="starts outside the 640x480"):
        scaled_move(MoveSpec.parse("front:640,0,4,4:1,0"), (480, 640), (48, 64))


def test_the_hole_is_filled_from_its_surroundings_and_the_region_lands_shifted():
    ramp = np.tile(np.arange(16.0)[None, :, None], (12, 1, 3))  # a horizontal ramp: interpolation is exact
    image = ramp.copy()
    image[4:8, 5:9] = 200.0  # the object
    filled = fill_hole(image, (5, 4, 9, 8))
    np.testing.assert_allclose(filled, ramp)  # rows interpolate the ramp, columns repeat it: the ramp comes back
    moved = move_region(image, (5, 4, 9, 8), (4, 2))
    assert (moved[6:10, 9:13] == 200.0).all()  # the object, shifted
    assert ((moved == 200.0).sum(axis=2) > 0).sum() == 16  # and only there
    np.testing.assert_allclose(moved[4:6, 5:9], ramp[4:6, 5:9])  # where it was: the background
    off = move_region(image, (5, 4, 9, 8), (10, 0))  # pushed partly off the image: clipped
    assert (off[4:8, 15] == 200.0).all() and ((off == 200.0).sum(axis=2) > 0).sum() == 4
    corner = fill_hole(np.full((6, 6, 3), 7.0), (0, 0, 3, 3))  # two sides outside the image: the other two
    assert np.allclose(corner, 7.0)


def test_the_moved_frame_is_what_the_policy_saw():
    rgb = np.full((96, 128, 3), 100, np.uint8)
    rgb[10:20, 30:50] = 250
    out = moved_frame(rgb, MoveSpec.parse("front:30,10,20,10:40,30"))
    assert (out[40:50, 70:90] == 250).all() and (out[10:20, 30:50] == 100).all()
    assert out.dtype == np.uint8 and out.shape == rgb.shape


def test_a_move_the_policy_cannot_see_changes_nothing_and_a_row_left_out_is_nan(node_checkpoint):
    import torch

    wrapped = InterpretableACT.from_pretrained(str(node_checkpoint), device="cpu")
    try:
        gen = torch.Generator().manual_seed(0)
        batch = {k: torch.rand((3, 3, 48, 64), generator=gen) for k in wrapped.image_shapes}
        batch["observation.state"] = torch.rand((3, 6), generator=gen)
        batch[FRONT][0] = 0.25  # a flat image: moving a flat region is no edit
        move = RegionMove(wrapped.policy, MoveSpec.parse("front:8,8,16,16:12,6"))
        result = move.run(batch, [(48, 64), None, (48, 64)])
        assert result.change[0] == pytest.approx(0.0, abs=1e-6) and result.vs_control[0] == pytest.approx(0.0, abs=1e-6)
        assert np.isnan(result.change[1]) and np.isnan(result.follow[1])
        assert result.change[2] > 0 and result.control_change[2] > 0 and result.vs_control[2] > 0
        assert 0.0 <= result.follow[2] <= 1.0 + 1e-6  # triangle inequality
        with pytest.raises(ValueError, match="camera 'observation.images.top' is not one of the policy's"):
            RegionMove(wrapped.policy, MoveSpec.parse("top:0,0,8,8:1,0"))
    finally:
        wrapped.close()


# ------------------------------------------------------------------------------ replays, end to end
@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    return write_cli_bag(tmp_path_factory.mktemp("move_bag") / "bag")


def test_bag_replay_with_move_writes_columns_plot_summary_line_and_video(capsys, tmp_path, so101_checkpoint,
                                                                        small_bag):
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "--move",
                              "front:32,24,48,32:20,10", "--side-every", "0", "--faithfulness-samples", "0", "-q")
    assert rc == 0, err
    table = read_table(out / "ticks.csv")
    processed = (~table["skipped"].astype(bool)).to_numpy()
    assert processed.any()
    cols = {c: table[c].to_numpy(dtype=float) for c in ("move_change", "move_control_change", "move_vs_control",
                                                        "move_follow")}
    for name, v in cols.items():
        assert np.isfinite(v[processed]).all() and (v[processed] >= 0).all(), name
        assert np.isnan(v[~processed]).all(), name
    np.testing.assert_allclose(cols["move_follow"][processed], (cols["move_vs_control"] / (
        cols["move_change"] + cols["move_control_change"]))[processed], rtol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    mv = summary["move"]
    assert mv["spec"] == "front:32,24,48,32:20,10" and mv["ticks"] == int(processed.sum())
    assert mv["change"] == pytest.approx(float(np.nanmean(cols["move_change"])), rel=1e-5)
    assert mv["follow"] == pytest.approx(mv["vs_control"] / (mv["change"] + mv["control_change"]), rel=1e-4)
    assert f"--move front:32,24,48,32:20,10: on {mv['ticks']} ticks" in stdout and "follows the move" in stdout
    assert (out / "move_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert count_video_frames(out / "moved_front.mp4") == len(table)
    assert {"move_plot.png", "moved_front.mp4"} <= set(summary["outputs"])
    # the same run without --move has none of it, and removes the earlier run's files
    rc, stdout, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "--side-every", "0",
                              "--faithfulness-samples", "0", "-q")
    assert rc == 0, err
    assert "move_change" not in read_table(out / "ticks.csv").columns and "--move" not in stdout
    assert not (out / "move_plot.png").exists() and not (out / "moved_front.mp4").exists()
    assert json.loads((out / "summary.json").read_text())["move"] == {}


@pytest.mark.parametrize(("args", "needle"), [
    (("--move", "top:0,0,8,8:4,0"), "camera 'observation.images.top' is not one of the policy's"),
    (("--move", "front:500,0,8,8:4,0"), "starts outside the 128x96"),
    (("--move", "front:0,0,8,8"), "expected CAMERA:x,y,w,h:dx,dy"),
    (("--move", "front:0,0,8,8:0,0"), "not both 0"),
])
def test_a_move_that_cannot_apply_is_one_line_and_no_output(capsys, tmp_path, so101_checkpoint, small_bag, args,
                                                             needle):
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, *args, "-q")
    assert rc == replay_cli.EXIT_BAD_INPUT, err
    lines = [line for line in err.splitlines() if line.startswith("act_interp_replay: error:")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not (out / "summary.json").exists()


MOVE_PX = 16  # shift of the moved box (px at 128x160), towards the image's centre


def test_moving_the_target_makes_the_known_answer_models_chunk_follow_far_more_than_the_distractor(
        tmp_path, repo_root, capsys):
    """The user's workflow on a dataset: move the suspect region, then an equal region elsewhere, compare how far
    each move and its opposite push the chunk apart."""
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset
    from act_interp_ros.proofs.map_evaluation import spec_of
    from act_interp_ros.proofs.model_cache import ensure_known_answer_model
    from act_interp_ros.settings import load_settings_yaml
    from act_interp_ros.synthetic import SyntheticScene

    model = ensure_known_answer_model()
    wrapped = InterpretableACT.from_pretrained(str(model.path), device="cpu")
    spec = spec_of(wrapped.policy)
    wrapped.close()
    ds = build_synthetic_dataset(tmp_path / "ds", n_episodes=2, episode_steps=20, image_size=tuple(spec.image_size),
                                 cameras=tuple(spec.cameras), use_videos=False, seed=101)
    scene = SyntheticScene(spec.scene_config())
    settings = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(model.path)})
    h, w = spec.image_size
    lines, ratios = [], []
    for ep, episode in enumerate(ds.episodes):
        boxes = scene.boxes(episode.scene_state(0), "front")
        side = max(max(b[2] - b[0], b[3] - b[1]) for b in (boxes["target"], boxes["distractor"])) + 4
        means = {}
        for name in ("target", "distractor"):
            b = boxes[name]
            x, y = max(0, (b[0] + b[2] - side) // 2), max(0, (b[1] + b[3] - side) // 2)
            dx = MOVE_PX if x + side / 2 < w / 2 else -MOVE_PX
            move = MoveSpec.parse(f"front:{x},{y},{side},{side}:{dx},0")
            opts = DatasetReplayOptions(episodes=[ep], methods=[], side_every=0, faithfulness_samples=0,
                                        write_video=False, write_plot=False, move=move)
            summary = replay_dataset(ds.root, str(model.path), settings, tmp_path / f"out_{ep}_{name}", opts)
            assert summary.move["ticks"] == summary.processed == 20
            means[name] = summary.move
        t, d = means["target"], means["distractor"]
        ratios.append(t["vs_control"] / max(d["vs_control"], 1e-9))
        lines.append(f"episode {ep} ({side}x{side} px boxes, shift {MOVE_PX} px): target moved: change "
                     f"{t['change']:.3f}, vs opposite {t['vs_control']:.3f}, follow {t['follow']:.2f}; distractor "
                     f"moved: change {d['change']:.3f}, vs opposite {d['vs_control']:.3f}, follow {d['follow']:.2f}: "
                     f"target / distractor {ratios[-1]:.1f}x")
    with capsys.disabled():
        print("\n=== --move on the known-answer model (criterion: target / distractor >= 3x) ===\n" + "\n".join(lines))
    assert min(ratios) >= 3.0, lines
