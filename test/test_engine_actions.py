"""Interpretation never changes robot behaviour: actions equal the unwrapped ACTPolicy over episodes."""

from __future__ import annotations

import copy

import pytest
import torch

from engine_helpers import make_wrapped, random_batches, unwrapped_batch


@pytest.mark.parametrize(
    "spec",
    [
        dict(chunk_size=6, n_action_steps=4),  # action-queue mode: refills at ticks 0, 4, 8, ...
        dict(chunk_size=6, n_action_steps=1, temporal_ensemble_coeff=0.01),  # temporal ensembling
        dict(chunk_size=5, n_action_steps=5, state_dim=0, env_state_dim=2),  # no proprio token
    ],
    ids=["queue", "temporal_ensembling", "no_state_env_state"],
)
def test_action_sequence_identical_to_unwrapped_policy(spec):
    wrapped = make_wrapped(**spec)
    reference = copy.deepcopy(wrapped.policy)
    episode = random_batches(wrapped, 14, seed=7)
    wrapped.reset()
    reference.reset()
    for tick, batch in enumerate(episode):
        ours = wrapped.select_action(batch, force_model_run=True)
        theirs = reference.select_action(unwrapped_batch(wrapped, batch))
        torch.testing.assert_close(ours.action, theirs, rtol=1e-5, atol=1e-6, msg=f"tick {tick}")
        assert ours.interpretation is not None, "force_model_run must give fresh maps every tick"
    # And across an episode reset.
    wrapped.reset()
    reference.reset()
    for batch in episode[:3]:
        torch.testing.assert_close(
            wrapped.select_action(batch).action, reference.select_action(unwrapped_batch(wrapped, batch))
        )


def test_forced_maps_are_this_ticks_observation_not_the_queued_chunks():
    wrapped = make_wrapped(chunk_size=6, n_action_steps=6)
    first, second = random_batches(wrapped, 2, seed=3)
    wrapped.select_action(first)
    forced = wrapped.select_action(second, force_model_run=True).interpretation
    fresh = make_wrapped(chunk_size=6, n_action_steps=6)
    expected = fresh.select_action(second).interpretation
    torch.testing.assert_close(torch.from_numpy(forced.token_weights), torch.from_numpy(expected.token_weights))


def test_without_force_model_runs_only_when_the_queue_is_empty():
    wrapped = make_wrapped(chunk_size=6, n_action_steps=3)
    reference = copy.deepcopy(wrapped.policy)
    has_maps = []
    for batch in random_batches(wrapped, 7, seed=4):
        result = wrapped.select_action(batch, force_model_run=False)
        torch.testing.assert_close(result.action, reference.select_action(batch))
        has_maps.append(result.interpretation is not None)
    assert has_maps == [True, False, False, True, False, False, True]


def test_batched_chunks_fed_in_order_reproduce_sequential_actions():
    """What offline replay's --batch-size relies on: one batched forward, then select_from_chunk per row."""
    wrapped = make_wrapped(chunk_size=6, n_action_steps=4)
    reference = copy.deepcopy(wrapped.policy)
    episode = random_batches(wrapped, 9, seed=5)
    stacked = {k: torch.cat([b[k] for b in episode]) for k in episode[0] if isinstance(episode[0][k], torch.Tensor)}
    chunks, interps = wrapped.predict_chunk(stacked)
    assert chunks.shape[0] == 9 and len(interps) == 9
    for i, batch in enumerate(episode):
        torch.testing.assert_close(
            wrapped.select_from_chunk(chunks[i : i + 1]), reference.select_action(batch), rtol=1e-4, atol=1e-5
        )
