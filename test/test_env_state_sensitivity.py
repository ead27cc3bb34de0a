"""Unit tests of the coordinate-sensitivity check (``core/env_state_sensitivity.py``) on small real ACTs.

The policies are LeRobot ``ACTPolicy`` objects built through ``core/checkpoints.py`` with an env-state
input, random weights and non-trivial normalisation stats, so a unit slip (user vs normalised deltas,
normalised vs dataset actions) changes the numbers.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from act_interp_ros.core import InterpretableACT, ObservationBuilder
from act_interp_ros.core.checkpoints import SmallACTSpec, default_stats, make_act_config
from act_interp_ros.core.env_state_sensitivity import (
    EnvStateSensitivity,
    SensitivityConfig,
    SensitivityError,
    without_env_state,
)

ENV = "observation.environment_state"
CAMERAS = {"observation.images.front": (64, 96)}
ENV_MEAN, ENV_STD = [0.2, 0.0], [0.05, 0.1]
ENV_MIN, ENV_MAX = [0.1, -0.15], [0.3, 0.15]
ACTION_STD = [10.0, 20.0, 30.0, 5.0, 2.0, 40.0]
DELTAS = (0.01, 0.02)


def make_policy(env_normalization: str | None = "MEAN_STD", seed: int = 0):
    """(policy, preprocessor, postprocessor): env dim 2, chunk 8, 4 executed steps, one 64x96 camera."""
    from lerobot.configs.types import NormalizationMode
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    spec = SmallACTSpec(cameras=dict(CAMERAS), env_state_dim=2, chunk_size=8, n_action_steps=4, seed=seed)
    config = make_act_config(spec)
    if env_normalization is not None:
        config.normalization_mapping = {**config.normalization_mapping, "ENV": NormalizationMode(env_normalization)}
    stats = default_stats(config)
    stats[ENV] = {"mean": torch.tensor(ENV_MEAN), "std": torch.tensor(ENV_STD),
                  "min": torch.tensor(ENV_MIN), "max": torch.tensor(ENV_MAX)}
    stats["action"] = {"mean": torch.linspace(-5.0, 5.0, 6), "std": torch.tensor(ACTION_STD)}
    torch.manual_seed(seed)
    policy = ACTPolicy(config)
    policy.eval()
    pre, post = make_pre_post_processors(config, dataset_stats=stats)
    return policy, pre, post


def raw_observation(policy, env: list[float], seed: int = 0) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(seed)
    images = {k: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k, (h, w) in CAMERAS.items()}
    return ObservationBuilder(policy.config).build(images, rng.normal(size=6), np.asarray(env))


def tensor_batch(batch: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}


@pytest.fixture(scope="module")
def model():
    return make_policy()


@torch.no_grad()
def direct_jacobian(policy, pre, post, obs: dict, deltas, n_steps: int, central: bool = True) -> np.ndarray:
    """(n_steps, A, D) by hand: one observation per perturbation, each through the real pre/post-processors."""
    def executed(env: torch.Tensor) -> np.ndarray:
        chunk = policy.predict_action_chunk(pre({**obs, ENV: env}))[0, :n_steps]  # (n, A) normalised
        return post(chunk).double().numpy()

    cols = []
    for i, d in enumerate(deltas):
        e = torch.zeros(2)
        e[i] = d
        if central:
            cols.append((executed(obs[ENV] + e) - executed(obs[ENV] - e)) / (2 * d))
        else:
            cols.append((executed(obs[ENV] + e) - executed(obs[ENV])) / d)
    return np.stack(cols, axis=-1)


# ----------------------------------------------------------------------------------------- values
@pytest.mark.parametrize("central", [True, False])
def test_matches_direct_finite_difference(model, central):
    policy, pre, post = model
    obs = raw_observation(policy, [0.22, -0.05])
    sens = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS, central=central), post)
    result = sens.measure(tensor_batch(pre(obs)))
    n = policy.config.n_action_steps
    assert result.jacobian.shape == (1, n, 6, 2) and result.n_steps == n
    expected = direct_jacobian(policy, pre, post, obs, DELTAS, n, central)
    scale = np.abs(expected).max()
    assert scale > 1.0  # random weights and 10-40 deg action std: degrees per metre, clearly non-zero
    np.testing.assert_allclose(result.jacobian[0], expected, rtol=1e-3, atol=1e-4 * scale)
    np.testing.assert_allclose(result.per_dim[0], np.abs(expected).mean(axis=(0, 1)), rtol=1e-3)
    assert result.overall[0] == pytest.approx(result.per_dim[0].mean())
    assert result.action_units == "dataset"


def test_measure_observation_equals_measure_of_the_preprocessed_batch(model):
    policy, pre, post = model
    obs = raw_observation(policy, [0.15, 0.08], seed=3)
    sens = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post)
    np.testing.assert_array_equal(sens.measure_observation(obs).jacobian, sens.measure(pre(obs)).jacobian)


@pytest.mark.parametrize("mode, expected", [
    ("MEAN_STD", 1.0 / np.asarray(ENV_STD)),
    ("MIN_MAX", 2.0 / (np.asarray(ENV_MAX) - np.asarray(ENV_MIN))),
    (None, np.ones(2)),  # LeRobot's ACT default (0.4.4 to 0.6.1): ENV is not in normalization_mapping -> not normalised
])
def test_user_deltas_map_through_the_normaliser(mode, expected):
    policy, pre, post = make_policy(mode)
    sens = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post)
    np.testing.assert_allclose(sens.env_scale, expected, rtol=1e-5)
    # the mapping is what the preprocessor itself does to a raw delta
    a, b = (pre(raw_observation(policy, env))[ENV][0].numpy() for env in ([0.2, 0.0], [0.2 + DELTAS[0], DELTAS[1]]))
    np.testing.assert_allclose(b - a, np.asarray(DELTAS) * sens.env_scale, rtol=1e-4)
    np.testing.assert_allclose(sens.action_scale, ACTION_STD, rtol=1e-5)


def test_without_postprocessor_actions_are_normalised(model):
    policy, pre, post = model
    batch = pre(raw_observation(policy, [0.2, 0.1]))
    in_dataset = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post).measure(batch)
    normalised = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS)).measure(batch)
    assert normalised.action_units == "normalised"
    np.testing.assert_allclose(normalised.jacobian * np.asarray(ACTION_STD)[:, None], in_dataset.jacobian, rtol=1e-6)


def test_zeroed_env_projection_gives_exactly_zero(model):
    policy, pre, post = model
    blind = without_env_state(policy)
    assert float(policy.model.encoder_env_state_input_proj.weight.detach().abs().sum()) > 0  # original untouched
    envs = ([0.2, 0.0], [0.1, -0.1], [0.3, 0.12])
    batches = [pre(raw_observation(policy, env, seed=i)) for i, env in enumerate(envs)]
    batch = {k: torch.cat([b[k] for b in batches]) for k in tensor_batch(batches[0])}
    for central in (True, False):
        result = EnvStateSensitivity(blind, pre, SensitivityConfig(DELTAS, central=central), post).measure(batch)
        assert result.per_dim.shape == (3, 2)
        assert np.all(result.jacobian == 0.0) and np.all(result.overall == 0.0)
    assert np.all(EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post).measure(batch).overall > 0)


# ----------------------------------------------------------------------------------------- safety
def test_action_queue_is_untouched(model):
    policy, pre, post = model
    wrapped = InterpretableACT(policy, pre, post)
    try:
        wrapped.reset()
        batch = pre(raw_observation(policy, [0.2, 0.0]))
        wrapped.select_action(batch)  # fills the queue with n_action_steps actions and pops one
        queue = policy._action_queue
        before = [a.clone() for a in queue]
        assert len(before) == policy.config.n_action_steps - 1
        EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post).measure(batch)
        assert policy._action_queue is queue and len(queue) == len(before)
        assert all(torch.equal(a, b) for a, b in zip(queue, before))
    finally:
        wrapped.close()


def test_safe_beside_a_concurrent_control_forward(model):
    """A control loop (with the engine's attention hooks) and the sensitivity check share the weights."""
    policy, pre, post = model
    wrapped = InterpretableACT(policy, pre, post)
    sens = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post)
    control_batch = pre(raw_observation(policy, [0.25, 0.05], seed=7))
    batch = pre(raw_observation(policy, [0.18, -0.04], seed=8))
    try:
        reference_chunk, reference_interp = wrapped.predict_chunk(control_batch)
        reference = sens.measure(batch).jacobian
        errors: list[str] = []
        stop = threading.Event()

        def control_loop() -> None:
            while not stop.is_set():
                chunk, interps = wrapped.predict_chunk(control_batch)
                if len(interps) != 1 or not torch.allclose(chunk, reference_chunk, atol=1e-6):
                    errors.append(f"control forward disturbed: {len(interps)} interpretations")
                elif not np.allclose(interps[0].token_weights, reference_interp[0].token_weights, atol=1e-6):
                    errors.append("control attention disturbed")

        thread = threading.Thread(target=control_loop)
        thread.start()
        try:
            results = [sens.measure(batch).jacobian for _ in range(5)]
        finally:
            stop.set()
            thread.join()
        assert not errors, errors[:3]
        for r in results:
            np.testing.assert_allclose(r, reference, rtol=1e-5, atol=1e-6 * np.abs(reference).max())
    finally:
        wrapped.close()


def test_training_mode_is_refused(model):
    policy, pre, post = model
    sens = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post)
    policy.train()
    try:
        with pytest.raises(SensitivityError, match="training mode"):
            sens.measure(pre(raw_observation(policy, [0.2, 0.0])))
    finally:
        policy.eval()


# ----------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("deltas, match", [
    ((0.01, 0.01, 0.01), "got 3 value"),
    ((0.01,), "got 1 value"),
    ((), "empty"),
    ((0.01, float("nan")), "finite"),
    ((float("inf"), 0.01), "finite"),
    ((0.01, 0.0), "non-zero"),
    (("a", 0.01), "numbers"),
])
def test_bad_deltas_give_one_clear_line(model, deltas, match):
    policy, pre, post = model
    with pytest.raises(SensitivityError, match=match) as info:
        EnvStateSensitivity(policy, pre, SensitivityConfig(deltas), post)
    assert "\n" not in str(info.value)


def test_policy_without_env_state_is_refused():
    from act_interp_ros.core.checkpoints import build_policy

    policy, pre, post = build_policy(SmallACTSpec(cameras=dict(CAMERAS)))
    with pytest.raises(SensitivityError, match="no observation.environment_state"):
        EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post)
    with pytest.raises(SensitivityError, match="no env-state input projection"):
        without_env_state(policy)


def test_bad_batch_and_steps_are_refused(model):
    policy, pre, post = model
    sens = EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS), post)
    batch = tensor_batch(pre(raw_observation(policy, [0.2, 0.0])))
    with pytest.raises(SensitivityError, match=r"expected \(B, 2\)"):
        sens.measure({**batch, ENV: batch[ENV][0]})
    with pytest.raises(SensitivityError, match="has no"):
        sens.measure({k: v for k, v in batch.items() if k != ENV})
    with pytest.raises(SensitivityError, match="exceeds the policy's chunk_size"):
        EnvStateSensitivity(policy, pre, SensitivityConfig(DELTAS, n_steps=99), post)
    with pytest.raises(SensitivityError, match="n_steps must be >= 1"):
        SensitivityConfig(DELTAS, n_steps=0)
