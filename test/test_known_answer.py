"""Proof on a model whose right answer is known of which maps point at what drives the action.

The known-answer ACT is trained for real (LeRobot's ACTPolicy, processors and optimiser) on synthetic
SO-101 episodes in which only the red target cube decides the expert's actions; the blue distractor
never does. The model is built once per machine and cached (``ACT_INTERP_CACHE``); a cold run of this
module trains it (a few minutes on a 2-core CPU), later runs reuse it.

The measured numbers are printed in the test output (run ``pytest -s`` or look at the report section).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from act_interp_ros.proofs import known_answer as ka
from act_interp_ros.proofs import map_criteria as mc
from act_interp_ros.proofs.map_baselines import BASELINES
from act_interp_ros.proofs.map_evaluation import BASELINE_EVALUATION, OCCLUSION_EVALUATION

pytestmark = pytest.mark.trained_models("known_answer", "known_answer_maps")

N_FRAMES = 64  # held-out frames, one per held-out episode
# Occlusion costs one forward per patch, so its test is smaller than the default evaluation: the first 32
# of the 64 held-out frames and a 16 px patch with stride 16 (80 forwards per frame) instead of the
# default stride 8 (285 forwards per frame). Measured on all 64 frames at stride 8 (not run here):
# ratio 16.8x, 100 %, rank corr. +0.58, faithfulness 5.5x.
N_OCCLUSION_FRAMES = 32
OCCLUSION_PATCH, OCCLUSION_STRIDE = 16, 16
DELETION_DRAWS = 4  # random draws per frame in the deletion test (the library default is 8)
MIN_INTERVENTION_RATIO = 5.0  # chunk change when the target moves vs when the distractor moves
MAX_ERROR_TO_BASELINE = 0.5  # held-out chunk MAE / mean-action baseline MAE ("clearly below")
# Held-out chunk MAE / the hold-still baseline's: criterion < 0.5 (the model knows where the target is), measured
# 0.40-0.47 over trainings: reported; asserted below the largest measured value plus a margin.
HOLD_CRITERION = 0.5
MAX_ERROR_TO_HOLD = 0.6

# The map criteria, their thresholds and their measured spread over trainings (bench/training_spread.json) live
# in act_interp_ros/proofs/map_criteria.py (KNOWN_ANSWER), which also writes docs/map_criteria.md. Every one is
# put through a uniform and a random map here too, and must fail for both (issue 29). CPU training is
# deterministic on one machine but not across machines, so each is asserted only with the margin its measured
# spread supports; a criterion every training misses is a strict xfail with its numbers (attention's
# localisation and faithfulness: 0.83-1.12x uniform, 27-61 %; GradCAM's localisation: 0.88-1.99x, 22-70 %).
# What GradCAM asserts is causal: its top cells matter (deletion 1.95-2.96x, noise ~1x). The randomisation check
# (Adebayo et al. 2018) is joined with faithfulness: a noise map also differs from the random-weights model's.


@pytest.fixture(scope="module")
def model() -> ka.KnownAnswerModel:
    return ka.ensure_known_answer_model(progress=False)


@pytest.fixture(scope="module")
def maps(model) -> ka.MapEvaluation:
    """Attention (all queries: the node's default; the executed queries: an option), GradCAM (token grid) and
    gradient x input (pixels), each with its deletion test."""
    assert ka.STANDARD_EVALUATION["n_frames"] == N_FRAMES
    assert ka.STANDARD_EVALUATION["deletion_random_draws"] == DELETION_DRAWS
    return ka.cached_map_evaluation(model, **ka.STANDARD_EVALUATION)  # the numbers the demo summary reports


@pytest.fixture(scope="module")
def occlusion_maps(model) -> ka.MapEvaluation:
    assert OCCLUSION_EVALUATION == {"n_frames": N_OCCLUSION_FRAMES, "seed": 0, "methods": ("occlusion",),
                                    "occlusion_patch": OCCLUSION_PATCH, "occlusion_stride": OCCLUSION_STRIDE,
                                    "deletion_random_draws": DELETION_DRAWS}
    return ka.cached_map_evaluation(model, **OCCLUSION_EVALUATION)  # shared with docs/map_criteria.md


@pytest.fixture(scope="module")
def baselines(model) -> dict[str, ka.MapEvaluation]:
    """The standard evaluation with a uniform / a seeded-noise map in place of the model's (same frames, same
    scoring, the deletion test on the trained model)."""
    return {kind: ka.cached_map_evaluation(model, **BASELINE_EVALUATION, baseline=kind) for kind in BASELINES}


def _report(capsys, title: str, text: str) -> None:
    with capsys.disabled():  # stderr: also shown from a pytest-xdist worker (scripts/test.sh)
        print(f"\n\n=== {title} ===\n{text}\n", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ fast unit tests
def test_rankdata_and_spearman_match_definitions():
    np.testing.assert_allclose(ka.rankdata(np.array([3.0, 1.0, 2.0, 2.0])), [4.0, 1.0, 2.5, 2.5])
    x = np.arange(10.0)
    assert ka.spearman(x, x**3) == pytest.approx(1.0)
    assert ka.spearman(x, -x) == pytest.approx(-1.0)
    assert np.isnan(ka.spearman(x, np.zeros(10)))
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    ra, rb = ka.rankdata(a), ka.rankdata(b)
    assert ka.spearman(a, b) == pytest.approx(np.corrcoef(ra, rb)[0, 1])


def test_map_mass_uses_area_coverage_of_token_cells():
    mask = np.zeros((128, 160), bool)
    mask[32:48, 64:96] = True  # half of cell (1, 2) of the 4x5 grid
    cov = ka.object_coverage(mask, (4, 5))
    assert cov[1, 2] == pytest.approx(0.5) and cov.sum() == pytest.approx(0.5)
    uniform = np.ones((4, 5))
    assert ka.map_mass(uniform, cov) == pytest.approx(mask.mean())  # uniform map -> area fraction
    peaked = np.zeros((4, 5))
    peaked[1, 2] = 1.0
    assert ka.map_mass(peaked, cov) == pytest.approx(0.5)
    assert ka.map_mass(np.zeros((4, 5)), cov) == 0.0


def test_cache_key_depends_on_hyperparameters():
    from dataclasses import replace

    assert ka.cache_key(ka.DEFAULT_SPEC) == ka.cache_key(ka.DEFAULT_SPEC)
    assert ka.cache_key(replace(ka.DEFAULT_SPEC, seed=1)) != ka.cache_key(ka.DEFAULT_SPEC)


# ------------------------------------------------------------------------- the known-answer model
def test_model_is_a_cached_lerobot_checkpoint(model):
    assert model.path.name == "pretrained_model"
    assert model.path.parent.name == model.key == ka.cache_key()
    for name in ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert (model.path / name).is_file(), name
    again = ka.ensure_known_answer_model(progress=False)
    assert not again.built and again.path == model.path


def test_held_out_action_error_clearly_below_mean_action_baseline(model, capsys):
    err = model.metrics["held_out_action_error"]
    secs = model.metrics["seconds"]
    lines = [f"cache: {model.path}  (built now: {model.built})",
             f"build seconds: {json.dumps(secs)}",
             f"weights sha256: {model.metrics.get('weights_sha256')} (compare across machines); trained with "
             f"{json.dumps(model.metrics.get('trained_with'))}",
             f"held-out frames: {err['n_frames']}, chunk size {err['chunk_size']} (policy units: deg, gripper 0..100)"]
    for view in ("first_action", "chunk"):
        v = err[view]
        lines.append(
            f"{view:>12}: model MAE {v['model']['overall']:.2f} | mean-action baseline "
            f"{v['mean_action_baseline']['overall']:.2f} | hold-state baseline {v['hold_state_baseline']['overall']:.2f}"
        )
        lines.append("              per joint (model): " + ", ".join(
            f"{k} {x:.2f}" for k, x in v["model"]["per_joint"].items()))
    # The chunk is where the target matters (the first action is within a few degrees of the state):
    # the model must beat "stand still" there too, i.e. it knows where the target is.
    to_hold = err["chunk"]["model"]["overall"] / err["chunk"]["hold_state_baseline"]["overall"]
    lines.append(f"chunk MAE / hold-still baseline: {to_hold:.3f} (criterion < {HOLD_CRITERION}: "
                 f"{'met' if to_hold < HOLD_CRITERION else 'not met'}; measured 0.40-0.47 over trainings)")
    _report(capsys, "known-answer model: held-out action error", "\n".join(lines))
    for view in ("first_action", "chunk"):
        assert err[view]["model_to_mean_baseline"] < MAX_ERROR_TO_BASELINE, err[view]
    assert to_hold < MAX_ERROR_TO_HOLD, err["chunk"]
    # Training time is reported above (build seconds), not asserted: it depends on the load on the machine
    # (BENCHMARKS.md holds the timing targets).


def test_model_acts_on_the_target_not_the_distractor(model, capsys):
    """The known answer holds for the model itself: moving the target moves its chunk, moving the distractor does not."""
    eff = ka.intervention_effect(model.path, n_frames=32, seed=0)
    _report(capsys, "known-answer model: cube interventions", (
        f"{eff.n_frames} held-out approach frames; mean |chunk change| when the target is moved "
        f"{eff.target_moved:.2f} deg, when the distractor is moved {eff.distractor_moved:.2f} deg "
        f"(ratio {eff.ratio:.0f}x)"))
    assert eff.target_moved > 2.0, eff  # the chunk follows the target by degrees
    assert eff.ratio > MIN_INTERVENTION_RATIO, eff


def test_report_map_numbers(maps, occlusion_maps, capsys):
    text = "\n\n".join([
        maps.table(),
        f"{maps.n_frames} held-out approach-phase frames (one per held-out episode); token grid {maps.grid}; "
        f"targets {maps.targets}; region = {maps.region}",
        occlusion_maps.table(),
        f"occlusion: first {occlusion_maps.n_frames} of those frames, (patch, stride) {occlusion_maps.occlusion_window}, "
        f"target {occlusion_maps.targets['occlusion']}",
        f"deletion test: {maps.deletion_cell}x{maps.deletion_cell}-px cells filled with the mean colour, change of the "
        f"executed chunk (L2, normalised units) vs {maps.deletion_random_draws} random draws per frame:",
        maps.deletion_table(),
        occlusion_maps.deletion_table(),
    ])
    _report(capsys, "known-answer model: map scores", text)


def _marked(criteria: list[mc.Criterion]) -> list:
    out = []
    for c in criteria:
        reason = (f"known limitation: {c.text} {c.op} {c.threshold} not met on this training; measured over "
                  f"trainings: {c.measured}")
        marks = pytest.mark.xfail(strict=True, reason=reason) if c.status == "xfail" else ()
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


@pytest.mark.parametrize("criterion", _marked(mc.KNOWN_ANSWER))
def test_map_criterion(maps, occlusion_maps, criterion):
    """Each map criterion on the trained model (thresholds and measured spread: proofs/map_criteria.py)."""
    source = mc.known_answer_source(maps, occlusion_maps)
    s = source(criterion.method)
    frames = N_OCCLUSION_FRAMES if criterion.method == "occlusion" else N_FRAMES
    assert s.n_frames >= 0.9 * frames and s.n_pairs >= 0.9 * frames, s
    assert s.n_faithfulness == frames and len(s.deletion_top) == len(s.deletion_random) == 4, s
    assert criterion.passes(source), criterion.describe(source)


@pytest.mark.parametrize("kind", BASELINES)
def test_uniform_and_random_maps_fail_every_map_criterion(baselines, kind, capsys):
    """A uniform map and a seeded-noise map, scored like the model's maps, pass none of the criteria above."""
    source = mc.known_answer_source(baselines[kind])
    assert baselines[kind].n_frames == N_FRAMES
    _report(capsys, f"known-answer criteria on a {kind} map",
            "\n".join(c.describe(source) for c in mc.KNOWN_ANSWER))
    passed = [c.describe(source) for c in mc.KNOWN_ANSWER if c.passes(source)]
    assert not passed, f"a {kind} map passes: {passed}"


def test_the_criteria_table_in_the_docs_is_current(model, maps, occlusion_maps, baselines):
    """docs/map_criteria.md holds the table :mod:`act_interp_ros.proofs.map_criteria_doc` generates."""
    from act_interp_ros.proofs import map_criteria_doc as doc

    doc.check_section("known_answer", doc.known_answer_section(model, maps, occlusion_maps, baselines))
