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

from act_interp_ros.proofs import map_criteria as mc
from act_interp_ros.proofs import pair_spread as ps
from act_interp_ros.proofs import shortcut_evaluation as se
from act_interp_ros.proofs import shortcut_model as sm
from act_interp_ros.proofs import shortcut_recording as rec
from act_interp_ros.proofs.map_baselines import BASELINES

pytestmark = [pytest.mark.timeout(900), pytest.mark.trained_models("shortcut_pair", "shortcut_evaluation")]

# The criteria, and what is asserted. CPU training is deterministic on one machine, not across machines,
# so each criterion is asserted with the margin that the pair's spread over trainings supports: the rows of
# bench/training_spread.json (model "shortcut_pair", one per seed; bench/training_spread.py --only shortcut_pair),
# read by act_interp_ros.proofs.pair_spread.supported: asserted at the criterion, or 20 % below the worst training
# where that is looser; a strict xfail where every training misses the criterion (an unexpected pass fails the
# run, so a fix is noticed). The map criteria live in act_interp_ros/proofs/map_criteria.py (SHORTCUT); each is put
# through a uniform and a random map here too and must fail for both (issue 29).
CRITERION_INTERVENTION = 3.0
CRITERION_ERROR_GAP = 0.25
CRITERION_HEADS = 0.75
CRITERION_MOVE = 3.0  # --move: the shortcut model's move-vs-opposite this many times the control's
CRITERION_ABLATE = 3.0
INTERVENTION = {name: ps.supported(f"{name}.intervention", CRITERION_INTERVENTION) for name in ("shortcut", "control")}
ERROR_GAP = ps.supported("error_gap", CRITERION_ERROR_GAP, higher=False)
HEADS = {"shortcut": ps.supported("shortcut.heads_for_cue", CRITERION_HEADS),
         "control": ps.supported("control.heads_for_cube", CRITERION_HEADS)}
MOVE = ps.supported("move.shortcut_over_control", CRITERION_MOVE)
ABLATE = {"shortcut": ps.supported("ablate.shortcut_shadow_over_cube", CRITERION_ABLATE),
          "control": ps.supported("ablate.control_cube_over_shadow", CRITERION_ABLATE)}


def _xfail_unless_supported(s: ps.Supported, why: str) -> list:
    """A strict xfail (with the numbers) when every stored training misses the criterion."""
    if s.status != "xfail":
        return []
    return [pytest.mark.xfail(strict=True, reason=f"known limitation: {s.key} >= {s.criterion:g} missed by every "
                              f"training: {s.measured()}; {why}")]


#: Why the control model's gradient x input misses its criterion (strict xfail in test_map_criterion).
GXI_FOOLED_BY_THE_SHADOW = (
    "the shadow covers 3x the cube's pixels and is the darkest region, where the input factor x of gradient x "
    "input is largest; per unit area it does prefer the cube (94-96 % of frames)")
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


@pytest.mark.parametrize("name", [pytest.param(n, marks=_xfail_unless_supported(INTERVENTION[n], "")) for n in
                                  ("shortcut", "control")])
def test_each_model_follows_what_it_was_trained_to_use(evaluations, name):
    """Intervention: the shortcut model's chunk follows a moved shadow, the control model's a moved cube."""
    ev, s = evaluations[name], INTERVENTION[name]
    used, other = (ev.cue_moved, ev.cube_moved) if name == "shortcut" else (ev.cube_moved, ev.cue_moved)
    assert used >= s.threshold * other, (
        f"{name}: moving what it should use changed the chunk {used:.2f}, the other feature {other:.2f}: "
        f"{used / max(other, 1e-9):.2f}x (criterion {s.criterion:g}x; trainings {s.measured()})")


def test_in_distribution_both_models_look_equally_good(pair):
    errors = {name: m.metrics["held_out_action_error"]["chunk"] for name, m in pair.items()}
    mae = {name: e["model"]["overall"] for name, e in errors.items()}
    assert max(mae.values()) <= (1 + ERROR_GAP.threshold) * min(mae.values()), (mae, ERROR_GAP.measured("{:.0%}"))
    for name, e in errors.items():  # and both learned the task: far below predicting the mean action
        assert e["model"]["overall"] < 0.5 * e["mean_action_baseline"]["overall"], (name, e)


def test_when_the_light_moves_each_chunk_heads_for_what_its_model_uses(evaluations):
    shortcut, control = evaluations["shortcut"], evaluations["control"]
    assert shortcut.heads_for_cue >= HEADS["shortcut"].threshold, (shortcut, HEADS["shortcut"].measured("{:.0%}"))
    assert 1 - control.heads_for_cue >= HEADS["control"].threshold, (control, HEADS["control"].measured("{:.0%}"))


def _marked(criteria: list[mc.Criterion]) -> list:
    out = []
    for c in criteria:
        if c.status == "xfail":
            why = (DENSITY_FAVOURS_THE_CUBE if c.name == "shortcut_denser"
                   else GXI_FOOLED_BY_THE_SHADOW if c.method == "gradient_x_input" else "")
            out.append(pytest.param(c, id=c.id, marks=pytest.mark.xfail(strict=True, reason=(
                f"known limitation: {c.text} {c.op} {c.threshold} missed by every training: {c.measured}; {why}"))))
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
    """Each map criterion on the pair (thresholds and measured spread: proofs/map_criteria.py)."""
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
    """docs/map_criteria.md holds the table :mod:`act_interp_ros.proofs.map_criteria_doc` generates."""
    from act_interp_ros.proofs import map_criteria_doc as doc

    doc.check_section("shortcut", doc.shortcut_section(pair, evaluations, baselines))


# ------------------------------------------------------------------------------ --ablate on a recording
@pytest.fixture(scope="module")
def ablation(pair, tmp_path_factory, repo_root) -> tuple[dict[tuple[str, int], float], list[str]]:
    """({(model, episode): chunk change with the shadow's box ablated / with an equal box on the cube ablated},
    report lines): the user's recipe on a LeRobotDataset of the shortcut scene (two held-out episodes, 20 ticks
    each, mean fill; :func:`act_interp_ros.proofs.shortcut_recording.ablation_ratios`)."""
    return rec.ablation_ratios(pair, tmp_path_factory.mktemp("ablate"), repo_root / "config" / "so101.yaml")


def test_report_ablation(ablation, capsys):
    """Not a criterion: prints the --ablate numbers of both models."""
    with capsys.disabled():
        print("\n=== --ablate on the shortcut pair (criterion: shortcut shadow / cube >= 3x, control cube / shadow "
              ">= 3x) ===\n" + "\n".join(ablation[1]))


REMOVAL_IS_NOT_MOVING = (
    "the shortcut model uses the shadow but also the cube, which tells it the same: with the shadow removed it falls "
    "back on the cube, so removing the shadow changes its chunk little more than removing the cube. Moving the "
    "shadow, not removing it, shows the shortcut")


@pytest.mark.parametrize("name", [
    pytest.param(n, marks=_xfail_unless_supported(ABLATE[n], REMOVAL_IS_NOT_MOVING if n == "shortcut" else ""))
    for n in ("shortcut", "control")])
def test_ablate_on_a_recording_shows_what_each_model_uses(ablation, name):
    """``--ablate``: the shortcut model's chunk changes more without the shadow than without the cube, the control
    model's the other way round (each episode)."""
    s = ABLATE[name]
    for (model, ep), ratio in ablation[0].items():
        if model == name:
            effect = ratio if name == "shortcut" else 1 / max(ratio, 1e-9)
            assert effect >= s.threshold, (f"{name}, episode {ep}: {effect:.2f}x (criterion {s.criterion:g}x, "
                                           f"trainings {s.measured()})")


# ------------------------------------------------------------------------------ --move on a recording
@pytest.fixture(scope="module")
def moves(pair, tmp_path_factory, repo_root) -> tuple[dict[str, dict[str, float]], list[str]]:
    """({model: mean over two held-out episodes of the summary's move fields}, report lines): the recipe's decisive
    offline step on a LeRobotDataset of the shortcut scene (the --ablate episodes): ``--move`` the shadow's bounding
    box by 20 px against the opposite shift (:func:`act_interp_ros.proofs.shortcut_recording.move_results`)."""
    return rec.move_results(pair, tmp_path_factory.mktemp("move"), repo_root / "config" / "so101.yaml")


def test_report_move(moves, capsys):
    """Not a criterion: prints the --move numbers of both models."""
    with capsys.disabled():
        print(f"\n=== --move the shadow on the shortcut pair (criterion {CRITERION_MOVE:g}x; trainings "
              f"{MOVE.measured()}) ===\n" + "\n".join(moves[1]))


@pytest.mark.parametrize("criterion", [pytest.param(MOVE, marks=_xfail_unless_supported(
    MOVE, "the shadow sits at the image's bottom edge beside the cube, so only an upward move fits and its opposite "
    "(the control) is clipped"), id="move")])
def test_moving_the_shadow_makes_the_shortcut_models_chunk_follow_it(moves, criterion):
    """The decisive offline step: where the shadow goes decides the shortcut model's chunk, not the control's."""
    s, c = moves[0]["shortcut"], moves[0]["control"]
    assert s["vs_control"] >= criterion.threshold * c["vs_control"], (moves[1], criterion.measured())


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
