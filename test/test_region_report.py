"""``--regions FILE`` (per tick and region: each map's mass, density, lift over uniform, and the chunk's change when
the region is ablated) and ``--save-maps`` (the raw maps, ``maps.npz``), on a real bag (issue 29, item 3)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from act_interp_ros.cli import replay as replay_cli
from act_interp_ros.offline.outputs import read_table
from act_interp_ros.offline.regions import RegionSet, map_region_values
from replay_helpers import run_cli, write_cli_bag

pytestmark = [pytest.mark.timeout(900), pytest.mark.trained_models("known_answer")]


def test_a_uniform_map_has_lift_one_and_a_peaked_map_finds_its_box():
    mask = np.zeros((48, 64), bool)
    mask[8:24, 16:32] = True  # 1/12 of the image
    v = map_region_values(np.ones((6, 8)), mask)  # a uniform token map
    assert v["lift"] == pytest.approx(1.0) and v["density"] == pytest.approx(1.0)
    assert v["mass"] == pytest.approx(mask.mean())
    peaked = np.zeros((48, 64))
    peaked[10:20, 20:30] = 1.0  # all the mass inside the box
    v = map_region_values(peaked, mask)
    assert v["mass"] == pytest.approx(1.0) and v["lift"] == pytest.approx(12.0)
    assert v["density"] == pytest.approx(100 / 256)  # the map's mean inside the box, peak = 1
    noise = np.random.default_rng(0).random((48, 64))
    assert map_region_values(noise, mask)["lift"] == pytest.approx(1.0, abs=0.1)  # noise: no lift either
    assert np.isnan(map_region_values(np.zeros((6, 8)), mask)["lift"])


def test_regions_files_parse_and_bad_ones_say_what_is_wrong(tmp_path):
    good = tmp_path / "regions.yaml"
    good.write_text("regions:\n  - {name: shadow, camera: front, box: [10, 20, 30, 40]}\n"
                    "  - name: cube\n    camera: wrist\n    boxes: {0: [0, 0, 8, 8], 5: [4, 4, 8, 8]}\n")
    rs = RegionSet.load(good)
    shadow, cube = rs.regions
    assert shadow.camera == "observation.images.front" and shadow.box_at(0) == shadow.box_at(99) == (10, 20, 30, 40)
    assert cube.box_at(4) == (0, 0, 8, 8) and cube.box_at(5) == cube.box_at(50) == (4, 4, 8, 8)
    (tmp_path / "r.json").write_text(json.dumps({"regions": [{"name": "a", "camera": "front",
                                                               "boxes": {"3": [1, 2, 3, 4]}}]}))
    assert RegionSet.load(tmp_path / "r.json").regions[0].box_at(2) is None  # before its first frame
    for text, needle in (("regions: []", "non-empty list 'regions'"),
                         ("regions:\n  - {name: a b, camera: front, box: [0, 0, 1, 1]}", "'name' must be"),
                         ("regions:\n  - {name: a, camera: front}", "exactly one of 'box'"),
                         ("regions:\n  - {name: a, camera: front, box: [0, 0, 0, 1]}", "w, h >= 1"),
                         ("regions:\n  - {name: a, camera: front, boxes: {x: [0, 0, 1, 1]}}", "not an integer"),
                         ("regions:\n  - {name: a, camera: front, box: [0, 0, 1, 1]}\n"
                          "  - {name: a, camera: front, box: [0, 0, 1, 1]}", "used twice"),
                         ("regions: [", "not valid YAML")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(text)
        with pytest.raises(ValueError, match=re.escape(needle)):
            RegionSet.load(bad)
    with pytest.raises(ValueError, match="cannot read it"):
        RegionSet.load(tmp_path / "missing.yaml")


@pytest.fixture(scope="module")
def small_bag(tmp_path_factory):
    return write_cli_bag(tmp_path_factory.mktemp("regions_bag") / "bag")


def test_bag_replay_with_regions_and_save_maps(capsys, tmp_path, so101_checkpoint, small_bag):
    regions = tmp_path / "regions.yaml"
    regions.write_text("regions:\n  - {name: left, camera: front, box: [0, 0, 64, 96]}\n"
                       "  - name: later\n    camera: wrist\n    boxes: {3: [32, 24, 48, 32]}\n")
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "--regions", regions,
                              "--save-maps", "--methods", "gradient_x_input", "--side-every", "2",
                              "--faithfulness-samples", "0", "-q")
    assert rc == 0, err
    table = read_table(out / "ticks.csv")
    processed = (~table["skipped"].astype(bool)).to_numpy()
    ticks = table["tick"].to_numpy()
    side = table["maps"].fillna("").str.contains("gradient_x_input").to_numpy()
    assert processed.any() and (side & processed).any()
    for name in ("left", "later"):
        applies = processed & ((ticks >= 3) if name == "later" else True)
        for col in (f"region_{name}_attention_mass", f"region_{name}_attention_lift", f"region_{name}_ablation"):
            v = table[col].to_numpy(dtype=float)
            assert np.isfinite(v[applies]).all() and np.isnan(v[~applies]).all(), col
        gxi = table[f"region_{name}_gradient_x_input_lift"].to_numpy(dtype=float)
        assert np.isfinite(gxi[applies & side]).all() and np.isnan(gxi[~side]).all(), name
    left = {f: table[f"region_left_attention_{f}"].to_numpy(dtype=float)[processed] for f in ("mass", "lift",
                                                                                             "density")}
    np.testing.assert_allclose(left["lift"], left["mass"] / 0.5, rtol=1e-5)  # the box is half the image
    assert ((left["density"] >= 0) & (left["density"] <= 1)).all()
    summary = json.loads((out / "summary.json").read_text())
    reg = summary["regions"]
    assert set(reg) == {"left", "later"} and reg["left"]["ticks"] == int(processed.sum())
    assert reg["later"]["ticks"] == int((processed & (ticks >= 3)).sum())
    assert reg["left"]["attention"]["lift"] == pytest.approx(float(np.mean(left["lift"])), rel=1e-4)
    assert reg["left"]["ablation"] >= 0 and "gradient_x_input" in reg["left"]
    assert "region left: on" in stdout and "ablating it changes the chunk" in stdout
    maps = np.load(out / "maps.npz")
    assert list(maps["tick"]) == list(ticks[processed])
    att = maps["attention_front"]
    assert att.shape[0] == int(processed.sum()) and att.ndim == 3
    assert list(maps["gradient_x_input_front_tick"]) == list(ticks[processed & side])
    assert maps["gradient_x_input_front"].shape[1:] == (96, 128)
    assert "maps.npz" in summary["outputs"]


def test_a_region_on_a_camera_the_policy_lacks_is_one_line(capsys, tmp_path, so101_checkpoint, small_bag):
    regions = tmp_path / "regions.json"
    regions.write_text(json.dumps({"regions": [{"name": "a", "camera": "top", "box": [0, 0, 8, 8]}]}))
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, small_bag, "--policy", so101_checkpoint, "--out", out, "--regions", regions, "-q")
    assert rc == replay_cli.EXIT_BAD_INPUT, err
    lines = [line for line in err.splitlines() if line.startswith("act_interp_replay: error:")]
    assert len(lines) == 1 and "camera 'observation.images.top' is not one of the policy's" in lines[0], err
    assert not (out / "summary.json").exists()


def test_regions_on_the_known_answer_model_tell_the_target_from_the_distractor(tmp_path, repo_root, capsys):
    """Boxes on the target and the distractor of a synthetic episode: gradient x input's lift and the ablation's
    effect are far larger on the target (the cube that decides the actions) than on the distractor."""
    from act_interp_ros.core import InterpretableACT
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
    ds = build_synthetic_dataset(tmp_path / "ds", n_episodes=1, episode_steps=20, image_size=tuple(spec.image_size),
                                 cameras=tuple(spec.cameras), use_videos=False, seed=101)
    boxes = SyntheticScene(spec.scene_config()).boxes(ds.episodes[0].scene_state(0), "front")
    regions = {"regions": [{"name": n, "camera": "front", "box": [int(b[0]), int(b[1]), int(b[2] - b[0]),
                                                                   int(b[3] - b[1])]}
                           for n, b in (("target", boxes["target"]), ("distractor", boxes["distractor"]))]}
    path = tmp_path / "regions.json"
    path.write_text(json.dumps(regions))
    settings = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(model.path)})
    opts = DatasetReplayOptions(episodes=[0], methods=["gradient_x_input"], side_every=1, faithfulness_samples=0,
                                write_video=False, write_plot=False, regions=RegionSet.load(path), save_maps=True)
    summary = replay_dataset(ds.root, str(model.path), settings, tmp_path / "out", opts)
    t, d = summary.regions["target"], summary.regions["distractor"]
    line = (f"target: gradient x input lift {t['gradient_x_input']['lift']:.1f}x, attention lift "
            f"{t['attention']['lift']:.2f}x, ablation {t['ablation']:.3f}; distractor: gradient x input lift "
            f"{d['gradient_x_input']['lift']:.1f}x, attention lift {d['attention']['lift']:.2f}x, ablation "
            f"{d['ablation']:.3f} ({t['ticks']} ticks)")
    with capsys.disabled():
        print("\n=== --regions on the known-answer model (criterion: target >= 3x distractor) ===\n" + line)
    assert t["ticks"] == d["ticks"] == 20
    assert t["gradient_x_input"]["lift"] >= 3 * d["gradient_x_input"]["lift"], line
    assert t["ablation"] >= 3 * d["ablation"], line
    (saved,) = (tmp_path / "out").glob("*/maps.npz")  # the episode's raw maps
    assert np.load(saved)["gradient_x_input_front"].shape == (20, *spec.image_size)
