"""Known answer for coordinate conditioning: does the env-state ACT act on the coordinates it is given?

The coordinate task (``synthetic/coordinate_task.py``) shows two identical-looking cubes; only
``observation.environment_state`` (the target's x, y in metres) says which one the expert picks. Two small
ACTs are trained on it for real (LeRobot's ACTPolicy, processors and optimiser; ``proofs/env_state_model.py``)
with the same data, seed and steps, differing only in whether the coordinates are normalised - LeRobot's
default ACT config does not normalise ``observation.environment_state``. Both are cached once per machine
(``ACT_INTERP_CACHE``); a cold run of this module trains them (about 3 minutes each on 2 idle CPU cores).

Each model's coordinate sensitivity (``core/env_state_sensitivity.py``) is compared with the scripted
expert's (the known answer) and with a control whose env-state input projection is zeroed (coordinates
carry no information: exactly 0). The env-state token's attention share is reported for both, to show
that attention share and sensitivity measure different things. Numbers are printed in the test output
(``pytest -s`` or the report sections).
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace

import numpy as np
import pytest

from act_interp_ros.proofs import coordinate_use as cu
from act_interp_ros.proofs import env_state_model as em

pytestmark = pytest.mark.trained_models("env_state")

N_EPISODES = 32  # held-out episodes for the coordinate evaluation (2 early-approach frames each)
MIN_SENSITIVITY_TO_EXPERT = 0.25  # trained model's sensitivity / the scripted expert's, same frames and deltas
MIN_NAMED_CUBE_ACCURACY = 0.8  # given a cube's coordinates, the chunk goes to that cube (0.5 = ignored)
MAX_ERROR_TO_BASELINE = 0.5  # held-out chunk MAE / mean-action baseline MAE

#: "normalised": coordinates MEAN_STD-normalised (em.DEFAULT_ENV_SPEC); "lerobot_default": LeRobot's ACT
#: default config (0.4.4 to 0.6.1), which does not normalise observation.environment_state. Same data, seed and steps.
VARIANTS = {"normalised": em.DEFAULT_ENV_SPEC, "lerobot_default": em.LEROBOT_DEFAULT_ENV_SPEC}

# Measured on the lerobot_default model (600 steps, seed 0): sensitivity 0.45 deg/m vs the expert's 68.1
# on the same 64 frames (0.7 %), named-cube accuracy 50 % (chance), while its held-out chunk error is
# 0.36x the mean-action baseline: the mode collapse of issue 15 (the coordinates decide the target and are
# ignored; the loss looks fine). Strict xfail keeps the criterion measured: a pass would fail the run.
# Spread over trainings (issue 20; LeRobot 0.6.1 seeds 0, 1, 2, bench/training_spread.json), all with wide margins:
#   normalised:      sensitivity 0.89-1.65 of the expert's (criterion 0.25), named cube 91-93 % (0.8), chunk error
#                    0.28-0.32 of the mean-action baseline (0.5) and 0.49-0.55 of the hold-still one (1.0)
#   lerobot_default: sensitivity 0.003-0.005 of the expert's, named cube 50-51 %: fails on every training
#   zeroed-projection control: attention share 0.85-1.10 of the trained model's (asserted >= 0.5)
COLLAPSE = pytest.mark.xfail(
    strict=True,
    reason="mode collapse (issue 15): with LeRobot's default ACT normalisation the env state reaches the model in "
    "metres and is ignored (measured sensitivity 0.45 deg/m = 0.7 % of the expert's, named-cube accuracy 50 %)",
)
BOTH = pytest.mark.parametrize("variant", list(VARIANTS))
COLLAPSING = pytest.mark.parametrize(
    "variant", ["normalised", pytest.param("lerobot_default", marks=COLLAPSE)])


@pytest.fixture(scope="module")
def built():
    """variant -> (model, CoordinateUse), built/evaluated on first use."""
    cache: dict[str, tuple] = {}

    def get(variant: str):
        if variant not in cache:
            model = em.ensure_env_state_model(progress=False, spec=VARIANTS[variant])
            cache[variant] = model, cu.evaluate_coordinate_use(model.path, n_episodes=N_EPISODES, seed=0)
        return cache[variant]

    return get


def _report(capsys, title: str, text: str) -> None:
    with capsys.disabled():  # stderr: also shown from a pytest-xdist worker (scripts/test.sh)
        print(f"\n\n=== {title} ===\n{text}\n", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ fast unit tests
def test_task_shows_two_identical_cubes_and_the_env_state_names_the_target():
    from act_interp_ros.synthetic import SyntheticScene
    from act_interp_ros.synthetic.coordinate_task import env_state_of, expert_chunk

    spec = em.DEFAULT_ENV_SPEC
    cfg = spec.scene_config()
    assert cfg.target_color == cfg.distractor_color
    frames = em.render_env_frames([123], spec, steps=[0])
    ep = frames.episodes[0]
    np.testing.assert_allclose(frames.env_state[0], ep.target_xy_yaw[:2], atol=1e-6)
    np.testing.assert_allclose(env_state_of(ep), ep.target_pos[0, :2], atol=1e-6)
    # both cubes are drawn with the same pixels: the mean colour inside each silhouette is the same
    scene = SyntheticScene(cfg)
    masks = scene.masks(ep.scene_state(0), "front")
    image = frames.images["front"][0].astype(np.float64)
    means = [image[masks[o]].mean(0) for o in ("target", "distractor")]
    assert masks["target"].any() and masks["distractor"].any()
    # shading differs with the yaw only (the known-answer scene's red and blue cubes are ~130 apart)
    np.testing.assert_allclose(means[0], means[1], atol=12.0)
    # the expert restarted from a frame reproduces the episode, and goes elsewhere for the other cube
    np.testing.assert_allclose(expert_chunk(ep, 0, 10)[:, :5], ep.action[:10, :5], atol=1e-4)
    assert np.abs(expert_chunk(ep, 0, 20, ep.distractor_xy_yaw) - expert_chunk(ep, 0, 20)).mean() > 2.0


def test_cache_key_depends_on_hyperparameters():
    assert em.cache_key() == em.cache_key(em.DEFAULT_ENV_SPEC)
    assert em.cache_key(em.LEROBOT_DEFAULT_ENV_SPEC) != em.cache_key()
    assert em.cache_key(replace(em.DEFAULT_ENV_SPEC, seed=1)) != em.cache_key()


# ------------------------------------------------------------------------------- the env-state models
@BOTH
def test_model_is_a_cached_lerobot_checkpoint(built, variant):
    from act_interp_ros.core import InterpretableACT

    model, _ = built(variant)
    assert model.path.name == "pretrained_model" and model.path.parent.name == model.key
    assert model.key == em.cache_key(VARIANTS[variant])
    for name in ("config.json", "model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert (model.path / name).is_file(), name
    again = em.ensure_env_state_model(progress=False, spec=VARIANTS[variant])
    assert not again.built and again.path == model.path
    wrapped = InterpretableACT.from_pretrained(str(model.path), device="cpu")
    try:
        assert wrapped.env_state_dim == 2 and wrapped.state_dim == 6
    finally:
        wrapped.close()


@BOTH
def test_held_out_action_error_beats_the_baselines(built, variant, capsys):
    model, _ = built(variant)
    err = model.metrics["held_out_action_error"]
    lines = [f"cache: {model.path}  (built now: {model.built})",
             f"build seconds: {json.dumps(model.metrics['seconds'])}",
             f"weights sha256: {model.metrics.get('weights_sha256')} (compare across machines); trained with "
             f"{json.dumps(model.metrics.get('trained_with'))}",
             f"held-out frames: {err['n_frames']}, chunk {err['chunk_size']} (policy units: deg, gripper 0..100)"]
    for view in ("first_action", "chunk"):
        v = err[view]
        lines.append(f"{view:>12}: model MAE {v['model']['overall']:.2f} | mean-action baseline "
                     f"{v['mean_action_baseline']['overall']:.2f} | hold-state baseline "
                     f"{v['hold_state_baseline']['overall']:.2f}")
    _report(capsys, f"env-state model ({variant}): held-out action error", "\n".join(lines))
    assert err["chunk"]["model_to_mean_baseline"] < MAX_ERROR_TO_BASELINE, err["chunk"]
    assert err["chunk"]["model"]["overall"] < err["chunk"]["hold_state_baseline"]["overall"], err["chunk"]


@BOTH
def test_report_coordinate_use(built, variant, capsys):
    _, use = built(variant)
    _report(capsys, f"env-state model ({variant}): coordinate sensitivity and attention", (
        f"{use.table()}\n\n{use.n_frames} held-out early-approach frames; deltas {use.deltas} m; first "
        f"{use.n_steps} (executed) steps; sensitivity per dim (x, y): trained "
        f"{use.sensitivity_per_dim[0]:.1f}, {use.sensitivity_per_dim[1]:.1f} | expert "
        f"{use.expert_sensitivity_per_dim[0]:.1f}, {use.expert_sensitivity_per_dim[1]:.1f} deg/m; "
        f"chunk error to the named cube {use.named_cube_error:.2f} deg vs to the other cube "
        f"{use.other_cube_error:.2f} deg"))
    assert use.n_frames >= N_EPISODES  # at least one early-approach frame per episode
    assert use.expert_sensitivity > 10.0  # the known answer: the expert's executed actions follow the target


@COLLAPSING
def test_trained_model_is_sensitive_to_its_coordinates(built, variant):
    _, use = built(variant)
    assert use.sensitivity > MIN_SENSITIVITY_TO_EXPERT * use.expert_sensitivity, use


@COLLAPSING
def test_model_reaches_for_the_cube_its_coordinates_name(built, variant):
    _, use = built(variant)
    assert use.named_cube_accuracy >= MIN_NAMED_CUBE_ACCURACY, use


@BOTH
def test_control_without_coordinates_is_insensitive(built, variant):
    _, use = built(variant)
    assert use.control_sensitivity == 0.0, use
    assert use.control_named_cube_accuracy == pytest.approx(0.5), use  # cannot tell which cube is named


@BOTH
def test_attention_share_and_sensitivity_disagree(built, variant):
    """The control keeps (at least half of) the trained model's attention share on its env-state token,
    yet that token cannot change its actions (sensitivity exactly 0): attention share is no evidence of use."""
    _, use = built(variant)
    assert use.control_env_attention_share >= 0.5 * use.env_attention_share, use
    assert use.control_sensitivity == 0.0 < use.sensitivity, use
