"""``--ablate`` / ``--ablate-top``: edit a region of one camera on every tick and measure how much the executed
chunk changes (issue 22, item 4), for bags and datasets.

The known answer: the known-answer model follows the target cube and ignores the distractor, so filling a box
on the target must change its chunk far more than filling an equal box on the distractor (measured below:
about 47x with the mean fill and 32x blurred on held-out frames, seed-0 model; asserted >= 3x per episode,
the ratio the issue asks of the shortcut pair).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from act_interp_ros.cli import replay as replay_cli
from act_interp_ros.core import InterpretableACT
from act_interp_ros.core.ablation import Ablation, AblationSpec, ablated_frame, box_mask, top_mask
from act_interp_ros.offline.outputs import read_table
from replay_helpers import count_video_frames, run_cli, write_cli_bag

pytestmark = pytest.mark.timeout(900)

FRONT = "observation.images.front"


# ------------------------------------------------------------------------------------------- specs
def test_specs_parse_and_bad_specs_say_what_is_expected():
    box = AblationSpec.parse_box("front:40,30,24,20")
    assert (box.camera, box.box, box.fill, box.method) == (FRONT, (40, 30, 24, 20), "mean", None)
    assert box.label == "front:40,30,24,20:mean"
    assert AblationSpec.parse_box("observation.images.wrist:0,0,8,8:blur").label == "wrist:0,0,8,8:blur"
    top = AblationSpec.parse_top("front:gradient_x_input:10")
    assert (top.camera, top.method, top.percent, top.fill) == (FRONT, "gradient_x_input", 10.0, "mean")
    assert top.label == "front:gradient_x_input:10:mean"
    for bad, needle in (("front", "expected CAMERA:x,y,w,h"), ("front:1,2,3", "4 integers"),
                        ("front:1,2,0,4", "w,h >= 1"), ("front:1,2,3,4:smudge", "the fill must be one of mean, blur")):
        with pytest.raises(ValueError, match=re.escape(needle)):
            AblationSpec.parse_box(bad)
    for bad, needle in (("front:attention", "expected CAMERA:METHOD:PERCENT"), ("front:attention:0", "(0, 100]"),
                        ("front:attention:x", "(0, 100]")):
        with pytest.raises(ValueError, match=re.escape(needle)):
            AblationSpec.parse_top(bad)


def test_a_box_in_source_pixels_scales_with_the_image():
    mask = box_mask((64, 48, 64, 96), source_hw=(480, 640), policy_hw=(48, 64))
    assert mask.shape == (48, 64)
    ys, xs = np.nonzero(mask)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (4, 14, 6, 12)
    assert box_mask((630, 470, 100, 100), (480, 640), (48, 64)).sum() == 1  # clipped, at least one pixel
    with pytest.raises(ValueError, match="starts outside the 640x480"):
        box_mask((640, 0, 4, 4), (480, 640), (48, 64))


def test_top_mask_takes_the_maps_strongest_cells():
    saliency = np.zeros((6, 8))
    saliency[1, 2] = 1.0  # one token of a 6x8 grid over a 48x64 image = one 8x8 cell
    mask = top_mask(saliency, (48, 64), percent=100 / 48)
    assert mask.sum() == 64
    ys, xs = np.nonzero(mask)
    assert (ys.min(), xs.min()) == (8, 16)
    assert top_mask(saliency, (48, 64), percent=50).sum() == 24 * 64


def test_the_edited_frame_is_what_the_policy_saw():
    rgb = np.full((96, 128, 3), 200, np.uint8)
    mask = np.zeros((48, 64), bool)
    mask[10:20, 30:40] = True
    out = ablated_frame(rgb, mask, "mean", (0.25, 0.5, 0.75))
    assert (out[20:40, 60:80] == np.round(np.array([0.25, 0.5, 0.75]) * 255)).all()
    assert (out[:20] == 200).all() and (out[40:] == 200).all()
    rgb[:, ::2] = 0  # stripes: blurring removes them inside the box only
    out = ablated_frame(rgb, mask, "blur", None)
    assert out[20:40, 60:80].std() < 0.2 * rgb[20:40, 60:80].std()
    assert (out[:20] == rgb[:20]).all()


def test_an_empty_edit_changes_nothing_and_no_mask_is_nan(node_checkpoint):
    import torch

    wrapped = InterpretableACT.from_pretrained(str(node_checkpoint), device="cpu")
    try:
        gen = torch.Generator().manual_seed(0)
        batch = {k: torch.rand((3, 3, 48, 64), generator=gen) for k in wrapped.image_shapes}
        batch["observation.state"] = torch.rand((3, 6), generator=gen)
        ab = Ablation(wrapped.policy, FRONT, "blur")
        empty = np.zeros((48, 64), bool)
        full = np.ones((48, 64), bool)
        changes = ab.run(batch, [empty, None, full])
        assert changes[0] == 0.0 and np.isnan(changes[1]) and changes[2] > 0.0
        with pytest.raises(ValueError, match="camera 'observation.images.top' is not one of the policy's"):
            Ablation(wrapped.policy, "observation.images.top")
    finally:
        wrapped.close()


# ------------------------------------------------------------------------------ replays, end to end
@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    return write_cli_bag(tmp_path_factory.mktemp("ablate_bag") / "bag")


def test_bag_replay_with_ablate_writes_column_plot_summary_and_video(capsys, tmp_path, so101_checkpoint, small_bag):
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "--ablate",
                              "front:32,24,48,32:blur", "--side-every", "0", "--faithfulness-samples", "0", "-q")
    assert rc == 0, err
    table = read_table(out / "ticks.csv")
    processed = ~table["skipped"].astype(bool)
    assert processed.any()
    change = table["ablation_change"].to_numpy(dtype=float)
    assert np.isfinite(change[processed.to_numpy()]).all() and (change[processed.to_numpy()] >= 0).all()
    assert np.isnan(change[~processed.to_numpy()]).all()
    summary = json.loads((out / "summary.json").read_text())
    ab = summary["ablation"]
    assert ab["spec"] == "front:32,24,48,32:blur" and ab["ticks"] == int(processed.sum())
    assert ab["mean"] == pytest.approx(float(np.nanmean(change)), rel=1e-5)
    assert (out / "ablation_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert count_video_frames(out / "ablated_front.mp4") == len(table)
    assert {"ablation_plot.png", "ablated_front.mp4"} <= set(summary["outputs"])
    # the same run without --ablate has none of it, and removes the earlier run's ablation files
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "--side-every", "0",
                         "--faithfulness-samples", "0", "-q")
    assert rc == 0, err
    assert "ablation_change" not in read_table(out / "ticks.csv").columns
    assert not (out / "ablation_plot.png").exists() and not (out / "ablated_front.mp4").exists()
    assert json.loads((out / "summary.json").read_text())["ablation"] == {}


@pytest.mark.parametrize(("args", "needle"), [
    (("--ablate", "top:0,0,8,8"), "camera 'observation.images.top' is not one of the policy's"),
    (("--ablate", "front:500,0,8,8"), "starts outside the 128x96"),
    (("--ablate", "front:0,0,8"), "4 integers"),
    (("--ablate-top", "front:gradcam:10", "--methods", "gradient_x_input"), "gradcam maps are not computed"),
    (("--ablate-top", "front:saliency:10"), "map 'saliency' unknown"),
])
def test_an_ablation_that_cannot_apply_is_one_line_and_no_output(capsys, tmp_path, so101_checkpoint, small_bag,
                                                                   args, needle):
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, *args, "-q")
    assert rc == replay_cli.EXIT_BAD_INPUT, err
    lines = [line for line in err.splitlines() if line.startswith("act_interp_replay: error:")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not (out / "summary.json").exists()


@pytest.mark.trained_models("known_answer")
def test_ablating_the_target_moves_the_known_answer_models_chunk_far_more_than_the_distractor(tmp_path, repo_root,
                                                                                               capsys):
    """The user's workflow on a recording: ablate the suspect region, then an equal region elsewhere, compare."""
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset
    from act_interp_ros.proofs.model_cache import ensure_known_answer_model
    from act_interp_ros.proofs.map_evaluation import spec_of
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
    lines, ratios = [], []
    for ep, episode in enumerate(ds.episodes):
        boxes = scene.boxes(episode.scene_state(0), "front")
        side = max(max(b[2] - b[0], b[3] - b[1]) for b in (boxes["target"], boxes["distractor"]))
        means = {}
        for name in ("target", "distractor"):
            b = boxes[name]
            x, y = max(0, (b[0] + b[2] - side) // 2), max(0, (b[1] + b[3] - side) // 2)
            opts = DatasetReplayOptions(episodes=[ep], methods=[], side_every=0, faithfulness_samples=0,
                                        write_video=False, write_plot=False,
                                        ablate=AblationSpec.parse_box(f"front:{x},{y},{side},{side}"))
            summary = replay_dataset(ds.root, str(model.path), settings, tmp_path / f"out_{ep}_{name}", opts)
            assert summary.ablation["ticks"] == summary.processed == 20
            means[name] = summary.ablation["mean"]
        ratios.append(means["target"] / max(means["distractor"], 1e-9))
        lines.append(f"episode {ep}: mean chunk change {means['target']:.3f} (target box) vs "
                     f"{means['distractor']:.3f} (distractor box, {side}x{side} px): {ratios[-1]:.1f}x")
    with capsys.disabled():
        print("\n=== --ablate on the known-answer model (criterion >= 3x) ===\n" + "\n".join(lines))
    assert min(ratios) >= 3.0, lines
