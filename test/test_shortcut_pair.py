"""The shadow test (issue 22): a policy that succeeds for the wrong reason, caught by the maps, then broken.

Two ACTs are trained for real (LeRobot's ACTPolicy, processors and optimiser) on the same synthetic SO-101
episodes with a low-contrast cube and a large shadow on the table (``act_interp_ros.synthetic.shortcut_scene``):
in the **shortcut** model's data the shadow always sits at a fixed offset from the cube; in the **control**
model's it is placed independently. What each model uses is established by intervention (move only the shadow,
move only the cube), then the maps are judged against it, then the shadow is moved to see where each chunk
heads. Both models are built once per machine and cached (``ACT_INTERP_CACHE``); the evaluation is cached
beside each checkpoint and shared with the demo's comparison stills.

The measured numbers are printed in the test output (``pytest -s``, or the report section).
"""

from __future__ import annotations

import numpy as np
import pytest

from act_interp_ros.demo import map_criteria as mc
from act_interp_ros.demo import shortcut_evaluation as se
from act_interp_ros.demo import shortcut_model as sm
from act_interp_ros.demo.map_baselines import BASELINES

pytestmark = [pytest.mark.timeout(900), pytest.mark.trained_models("shortcut_pair", "shortcut_evaluation")]

# The criteria, and what is asserted. CPU training is deterministic on one machine, not across machines,
# so each criterion is asserted only with the margin that the spread over trainings supports: measured here on
# the cached pair (spec seed 0) and on a second training of both models (seed 1; same data, other
# initialisation and batches). Where every training misses a criterion by a wide margin, a strict xfail keeps it
# visible (an unexpected pass fails the run, so a fix is noticed).
#   intervention, shortcut follows the shadow:  3.3x, 3.1x   (criterion 3x: met, within noise of it)
#   intervention, control follows the cube:     6.7x, 3.1x   (criterion 3x: met, within noise of it)
#   held-out chunk MAE, larger / smaller:       1.04, 1.17   (criterion 1.25)
#   shadow moved, chunk heads for what the model uses: shortcut 94 %, 88 %; control 96 %, 88 %
# The map criteria (thresholds, measured spread, the table in docs/map_criteria.md) live in
# act_interp_ros/demo/map_criteria.py (SHORTCUT); each is put through a uniform and a random map here too and must
# fail for both (issue 29). "More mass on the shadow than on the cube" alone is not one: a uniform map passes it
# (the shadow covers about 3x the cube's pixels). What is asserted is the separation of the pair (the shortcut
# model's share of such frames minus the control's: 0 for any map that ignores the model), the shortcut model's
# per-area preference for the shadow, the control model's mass on the cube, and each model's faithfulness.
CRITERION_INTERVENTION = 3.0
MIN_INTERVENTION = 2.5
CRITERION_ERROR_GAP = 0.25
MAX_ERROR_GAP = 0.35
MIN_HEADS = 0.75
#: Why the control model's gradient x input misses its criterion (strict xfail in test_map_criterion).
GXI_FOOLED_BY_THE_SHADOW = (
    "the shadow covers 3x the cube's pixels and is the darkest region, where the input factor x of gradient x "
    "input is largest; per unit area it does prefer the cube (96 %, 54 %)")
#: Why the shortcut model's maps are not denser on the shadow (strict xfail in test_map_criterion).
DENSITY_FAVOURS_THE_CUBE = (
    "the shortcut model also learned the cube (it agrees with the shadow), and a smooth map's density favours the "
    "small cube: per unit area its maps prefer the cube too; what separates the pair is the mass share against the "
    "control's (separation) and moving the shadow (--move)")


@pytest.fixture(scope="module")
def pair() -> dict[str, object]:
    return sm.ensure_pair(progress=False)


@pytest.fixture(scope="module")
def evaluations(pair) -> dict[str, se.ShortcutEvaluation]:
    return {name: se.cached_shortcut_evaluation(model, **se.STANDARD_SHORTCUT_EVALUATION)
            for name, model in pair.items()}


def test_report_the_pair(pair, evaluations, capsys):
    """Not a criterion: prints every number (intervention, end points, every map, faithfulness)."""
    lines = [f"{name}: key {m.key}, weights sha256 {m.metrics['weights_sha256'][:16]}..., trained in "
             f"{m.metrics['seconds']['total']:.0f} s" for name, m in pair.items()]
    for name, ev in evaluations.items():
        met = "met" if ev.intervention_ratio >= CRITERION_INTERVENTION else "MISSED"
        lines.append(f"{name}: follows the {ev.follows} {ev.intervention_ratio:.1f}x (criterion "
                     f"{CRITERION_INTERVENTION:g}x: {met}); shadow moved: chunk end nearer where the shadow says the "
                     f"cube is than the cube in {ev.heads_for_cue:.0%} (median {100 * ev.end_to_implied_m:.1f} cm "
                     f"from it, {100 * ev.end_to_cube_m:.1f} cm from the cube)")
    with capsys.disabled():
        print("\n=== shortcut pair (issue 22) ===\n" + "\n".join(lines) + "\n" + se.pair_table(evaluations))


def test_the_shortcut_model_follows_the_shadow(evaluations):
    ev = evaluations["shortcut"]
    assert ev.cue_moved >= MIN_INTERVENTION * ev.cube_moved, (
        f"moving only the shadow changed the chunk {ev.cue_moved:.2f}, moving only the cube {ev.cube_moved:.2f}")


def test_the_control_model_follows_the_cube(evaluations):
    ev = evaluations["control"]
    assert ev.cube_moved >= MIN_INTERVENTION * ev.cue_moved, (
        f"moving only the cube changed the chunk {ev.cube_moved:.2f}, moving only the shadow {ev.cue_moved:.2f}")


def test_in_distribution_both_models_look_equally_good(pair):
    errors = {name: m.metrics["held_out_action_error"]["chunk"] for name, m in pair.items()}
    mae = {name: e["model"]["overall"] for name, e in errors.items()}
    assert max(mae.values()) <= (1 + MAX_ERROR_GAP) * min(mae.values()), mae
    for name, e in errors.items():  # and both learned the task: far below predicting the mean action
        assert e["model"]["overall"] < 0.5 * e["mean_action_baseline"]["overall"], (name, e)


def test_when_the_light_moves_each_chunk_heads_for_what_its_model_uses(evaluations):
    shortcut, control = evaluations["shortcut"], evaluations["control"]
    assert shortcut.heads_for_cue >= MIN_HEADS, shortcut
    assert 1 - control.heads_for_cue >= MIN_HEADS, control


def _marked(criteria: list[mc.Criterion]) -> list:
    out = []
    for c in criteria:
        if c.status == "xfail":
            why = (DENSITY_FAVOURS_THE_CUBE if c.name == "shortcut_denser"
                   else GXI_FOOLED_BY_THE_SHADOW if c.method == "gradient_x_input" else "")
            out.append(pytest.param(c, id=c.id, marks=pytest.mark.xfail(strict=True, reason=(
                f"known limitation: {c.text} {c.op} {c.threshold} not met on this training; over trainings: "
                f"{c.measured}; {why}"))))
        else:
            out.append(pytest.param(c, id=c.id))
    return out


@pytest.fixture(scope="module")
def baselines(pair) -> dict[str, dict[str, se.ShortcutEvaluation]]:
    """Each model's evaluation with a uniform / a seeded-noise map in place of its own (same frames, same scoring,
    the deletion test on the model)."""
    return {kind: {name: se.cached_shortcut_evaluation(model, **se.BASELINE_SHORTCUT_EVALUATION, baseline=kind)
                   for name, model in pair.items()} for kind in BASELINES}


@pytest.mark.parametrize("criterion", _marked(mc.SHORTCUT))
def test_map_criterion(evaluations, criterion):
    """Each map criterion on the pair (thresholds and measured spread: demo/map_criteria.py)."""
    source = mc.shortcut_source(evaluations)
    for name in evaluations:
        assert source(name, criterion.method).n_frames >= 40, name
    assert criterion.passes(source), criterion.describe(source)


@pytest.mark.parametrize("kind", BASELINES)
def test_baseline_maps_fail_every_pair_criterion(baselines, kind, capsys):
    """A uniform map and a seeded-noise map, scored like the models' maps, pass none of the criteria above."""
    source = mc.shortcut_source(baselines[kind])
    with capsys.disabled():
        print(f"\n=== shortcut pair criteria on a {kind} map ===\n" +
              "\n".join(c.describe(source) for c in mc.SHORTCUT))
    passed = [c.describe(source) for c in mc.SHORTCUT if c.passes(source)]
    assert not passed, f"a {kind} map passes: {passed}"


def test_the_criteria_table_in_the_docs_is_current(pair, evaluations, baselines):
    """docs/map_criteria.md holds the table :mod:`act_interp_ros.demo.map_criteria_doc` generates."""
    from act_interp_ros.demo import map_criteria_doc as doc

    doc.check_section("shortcut", doc.shortcut_section(pair, evaluations, baselines))


# ------------------------------------------------------------------------------ --ablate on a recording
ABLATE_EPISODE_STEPS = 20
ABLATE_SEED_BASE = 7 * sm.EVAL_SEED_BASE  # held-out episodes (never in training or in the evaluation above)


def _ablation_boxes(spec: sm.ShortcutSpec, n: int) -> list[tuple[object, tuple, tuple]]:
    """(episode, shadow box, equal box on the cube) for the first ``n`` held-out episodes whose two boxes
    (x, y, w, h; the shadow's bounding box, and one of the same size centred on the cube) do not overlap."""
    from act_interp_ros.synthetic.shortcut_scene import ShortcutScene

    scene = ShortcutScene(spec.shortcut_config())
    out = []
    for seed in range(ABLATE_SEED_BASE, ABLATE_SEED_BASE + 50):
        episode, cue = sm.render_cue_episode(seed, spec, ABLATE_EPISODE_STEPS)
        masks = scene.object_masks(episode.scene_state(0), cue, "front")
        ys, xs = np.nonzero(masks["cue"])
        cue_box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        ys, xs = np.nonzero(masks["cube"])
        cx, cy = (xs.min() + xs.max() + 1) // 2, (ys.min() + ys.max() + 1) // 2
        w, h = cue_box[2], cue_box[3]
        cube_box = (int(max(0, cx - w // 2)), int(max(0, cy - h // 2)), w, h)
        in_cube_box = np.zeros_like(masks["cue"])
        in_cube_box[cube_box[1]:cube_box[1] + h, cube_box[0]:cube_box[0] + w] = True
        if not (in_cube_box & masks["cue"]).any() and (in_cube_box & masks["cube"]).sum() == masks["cube"].sum():
            out.append((episode, cue_box, cube_box))
        if len(out) == n:
            return out
    raise AssertionError("fewer than n held-out episodes keep the two boxes apart")


@pytest.fixture(scope="module")
def ablation(pair, tmp_path_factory, repo_root) -> tuple[dict[tuple[str, int], float], list[str]]:
    """({(model, episode): chunk change with the shadow's box ablated / with an equal box on the cube ablated},
    report lines).

    The user's recipe on a LeRobotDataset of the shortcut scene (two held-out episodes, 20 ticks each, mean fill):
    ``--ablate`` the shadow's bounding box, then an equal box centred on the cube, compare the mean change of the
    executed chunk (issue 22, item 4).
    """
    from act_interp_ros.core.ablation import AblationSpec
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset
    from act_interp_ros.settings import load_settings_yaml

    tmp_path = tmp_path_factory.mktemp("ablate")
    spec = sm.SHORTCUT_SPEC
    hw = tuple(spec.image_size)
    picked = [p for p in _ablation_boxes(spec, 8) if _move_shift(p[1], p[2], hw) is not None][:2]
    assert len(picked) == 2, "fewer than two of eight held-out episodes leave room to move the shadow"
    ds = build_synthetic_dataset(tmp_path / "ds", rendered=[p[0] for p in picked], image_size=tuple(spec.image_size),
                                 cameras=tuple(spec.cameras), use_videos=False)
    lines, ratios = [], {}
    for name, model in pair.items():
        settings = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(model.path)})
        for ep, (_, cue_box, cube_box) in enumerate(picked):
            means = {}
            for region, box in (("shadow", cue_box), ("cube", cube_box)):
                opts = DatasetReplayOptions(episodes=[ep], methods=[], side_every=0, faithfulness_samples=0,
                                            write_video=False, write_plot=False,
                                            ablate=AblationSpec.parse_box("front:" + ",".join(map(str, box))))
                summary = replay_dataset(ds.root, str(model.path), settings, tmp_path / f"{name}_{ep}_{region}", opts)
                assert summary.ablation["ticks"] == summary.processed == ABLATE_EPISODE_STEPS
                means[region] = summary.ablation["mean"]
            ratios[(name, ep)] = means["shadow"] / max(means["cube"], 1e-9)
            lines.append(f"{name}, episode {ep}: mean chunk change {means['shadow']:.3f} (shadow box {cue_box}) vs "
                         f"{means['cube']:.3f} (cube box {cube_box}): shadow / cube {ratios[(name, ep)]:.2f}x")
    return ratios, lines


def test_report_ablation(ablation, capsys):
    """Not a criterion: prints the --ablate numbers of both models."""
    with capsys.disabled():
        print("\n=== --ablate on the shortcut pair (criterion: shortcut shadow / cube >= 3x, control cube / shadow "
              ">= 3x) ===\n" + "\n".join(ablation[1]))


def test_ablate_on_a_recording_shows_the_control_model_uses_the_cube(ablation):
    """Measured cube / shadow: 7.1x and 8.3x (seed 0), 2.9x and 2.9x (seed 1); criterion 3x, asserted 2x."""
    for (name, ep), ratio in ablation[0].items():
        if name == "control":
            assert 1 / ratio >= 2.0, (ep, ratio)


@pytest.mark.xfail(strict=True, reason="known limitation of ablation: the shortcut model uses the shadow (it follows "
                   "a moved shadow 3.1-3.3x more than a moved cube) but also the cube, which tells it the same: with "
                   "the shadow removed it falls back on the cube, so removing the shadow changes its chunk only "
                   "0.5-2.7x as much as removing the cube (criterion 3x; two episodes, two trainings). Moving the "
                   "shadow, not removing it, shows the shortcut")
def test_ablate_on_a_recording_shows_the_shortcut_model_uses_the_shadow(ablation):
    for (name, ep), ratio in ablation[0].items():
        if name == "shortcut":
            assert ratio >= CRITERION_INTERVENTION, (ep, ratio)


# ------------------------------------------------------------------------------ --move on a recording
MOVE_PX = 20  # the shadow's shift (px at 96x128; about 6-8 cm on the table)
#: --move: the shortcut model's chunk must depend on where the shadow goes this many times more than the control's.
CRITERION_MOVE = 3.0


def _move_shift(cue_box: tuple, cube_box: tuple, hw: tuple[int, int]) -> tuple[int, int] | None:
    """The first shift of MOVE_PX (then 1.5x, 2x) along an axis or a diagonal that keeps the moved box inside the
    image and off the cube's box, and the opposite (control) box off the cube's box; None when there is none.

    The shadow lies at the image's bottom edge beside the cube in this scene, so the opposite of an upward move
    leaves the image in part: ``--move`` clips the paste, so that control also removes part of the shadow (a
    larger control change: the criterion only gets harder)."""
    x, y, w, h = cue_box
    cx, cy, cw, ch = cube_box

    def apart(nx: int, ny: int) -> bool:
        return nx + w <= cx or cx + cw <= nx or ny + h <= cy or cy + ch <= ny

    def inside(nx: int, ny: int) -> bool:
        return nx >= 0 and ny >= 0 and nx + w <= hw[1] and ny + h <= hw[0]

    for px in (MOVE_PX, MOVE_PX * 3 // 2, MOVE_PX * 2):
        diagonal = int(round(px / 2 ** 0.5))
        for dx, dy in ((px, 0), (-px, 0), (0, -px), (0, px), (-diagonal, -diagonal), (diagonal, -diagonal)):
            if inside(x + dx, y + dy) and apart(x + dx, y + dy) and apart(x - dx, y - dy):
                return dx, dy
    return None


@pytest.fixture(scope="module")
def moves(pair, tmp_path_factory, repo_root) -> tuple[dict[str, dict[str, float]], list[str]]:
    """({model: mean over two held-out episodes of the summary's move fields}, report lines).

    The recipe's decisive offline step on a LeRobotDataset of the shortcut scene (the --ablate episodes): ``--move``
    the shadow's bounding box by MOVE_PX, against the opposite shift.
    """
    from act_interp_ros.core.region_move import MoveSpec
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset
    from act_interp_ros.settings import load_settings_yaml

    tmp_path = tmp_path_factory.mktemp("move")
    spec = sm.SHORTCUT_SPEC
    hw = tuple(spec.image_size)
    picked = [p for p in _ablation_boxes(spec, 8) if _move_shift(p[1], p[2], hw) is not None][:2]
    assert len(picked) == 2, "fewer than two of eight held-out episodes leave room to move the shadow"
    ds = build_synthetic_dataset(tmp_path / "ds", rendered=[p[0] for p in picked], image_size=tuple(spec.image_size),
                                 cameras=tuple(spec.cameras), use_videos=False)
    lines, out = [], {}
    for name, model in pair.items():
        settings = load_settings_yaml(repo_root / "config" / "so101.yaml", overrides={"policy_path": str(model.path)})
        per_ep = []
        for ep, (_, cue_box, cube_box) in enumerate(picked):
            dx, dy = _move_shift(cue_box, cube_box, hw)
            move = MoveSpec.parse(f"front:{','.join(map(str, cue_box))}:{dx},{dy}")
            opts = DatasetReplayOptions(episodes=[ep], methods=[], side_every=0, faithfulness_samples=0,
                                        write_video=False, write_plot=False, move=move)
            summary = replay_dataset(ds.root, str(model.path), settings, tmp_path / f"{name}_{ep}", opts)
            assert summary.move["ticks"] == summary.processed == ABLATE_EPISODE_STEPS
            per_ep.append(summary.move)
            m = summary.move
            lines.append(f"{name}, episode {ep}: --move {move.label}: chunk change {m['change']:.3f} (opposite "
                         f"{m['control_change']:.3f}), move vs opposite {m['vs_control']:.3f}, follow {m['follow']:.2f}")
        out[name] = {k: float(np.mean([m[k] for m in per_ep])) for k in ("change", "control_change", "vs_control")}
    s, c = out["shortcut"], out["control"]
    lines.append(f"shortcut / control: move vs opposite {s['vs_control'] / c['vs_control']:.1f}x, chunk change "
                 f"{s['change'] / c['change']:.1f}x (criterion {CRITERION_MOVE:g}x)")
    return out, lines


def test_report_move(moves, capsys):
    """Not a criterion: prints the --move numbers of both models."""
    with capsys.disabled():
        print("\n=== --move the shadow on the shortcut pair ===\n" + "\n".join(moves[1]))


@pytest.mark.xfail(strict=True, reason="measured miss on the cached pair (one training): moving the shadow 20 px up "
                   "(the opposite shift, clipped at the image's bottom edge, as the control) gives the shortcut model "
                   "move vs opposite 1.48 / 3.05 and the control model 1.25 / 1.16 on two episodes: 1.9x (criterion "
                   "3x); its chunk change is 2.1x the control's. The shadow sits at the bottom edge beside the cube "
                   "in this scene, so only an upward move fits; the in-scene intervention (move the shadow to "
                   "another layout's place) gives 3.1-3.3x")
def test_moving_the_shadow_makes_the_shortcut_models_chunk_follow_it(moves):
    """The decisive offline step: where the shadow goes decides the shortcut model's chunk, not the control's."""
    s, c = moves[0]["shortcut"], moves[0]["control"]
    assert s["vs_control"] >= CRITERION_MOVE * c["vs_control"], moves[1]


def test_the_demo_writes_the_comparison_stills(pair, evaluations, tmp_path, capsys):
    """``act_interp_demo --shortcut`` (what ``bash scripts/demo.sh --shortcut`` runs): the comparison stills (two
    models x two maps x in distribution / shadow moved) and the summary with the pair's numbers."""
    import cv2

    from act_interp_ros.cli.demo import main

    assert main(["--shortcut", "--out", str(tmp_path), "-q"]) == 0
    out = tmp_path / "shortcut"
    for k in (0, 1):
        image = cv2.imread(str(out / f"shortcut_comparison_{k}.png"))
        assert image is not None and image.shape[1] >= 4 * 4 * 128 and image.shape[0] >= 2 * 4 * 96, k
    summary = (out / "shortcut_summary.md").read_text()
    assert "| control |" in summary and "| shortcut |" in summary and "gradient_x_input" in summary
    printed = capsys.readouterr().out
    assert "shortcut follows the shadow" in printed and "control  follows the cube" in printed, printed
