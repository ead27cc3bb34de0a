"""The plan rule shared by node and replay: the unwrapped policy's actions between clean ticks, a fresh plan
after a tick that could not act (a short late-input gap excepted)."""

from __future__ import annotations

import pytest
import torch

from act_interp_ros.pipeline import PlanStepper
from engine_helpers import make_wrapped, random_batches, unwrapped_batch


def run(stepper: PlanStepper, batch, force: bool) -> torch.Tensor:
    stepper.begin_tick()
    with torch.no_grad():
        if force or stepper.needs_forward():
            chunk, _ = stepper.policy.predict_chunk(batch)
            return stepper.select(chunk)
        return stepper.select(None)


@pytest.mark.parametrize("force", [False, True], ids=["forward_when_queue_empty", "forward_every_tick"])
def test_clean_ticks_give_the_unwrapped_policys_actions(force):
    wrapped = make_wrapped(chunk_size=6, n_action_steps=3)
    batches = random_batches(wrapped, 8, seed=3)
    stepper = PlanStepper(wrapped)
    ours = [run(stepper, b, force) for b in batches]
    wrapped.reset()
    with torch.no_grad():
        theirs = [wrapped.policy.select_action(unwrapped_batch(wrapped, b)) for b in batches]
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b)
    assert stepper.resets == 1, "one fresh plan at the start"


def test_a_tick_without_action_resets_the_plan():
    wrapped = make_wrapped(chunk_size=6, n_action_steps=3)
    b = random_batches(wrapped, 3, seed=4)
    stepper = PlanStepper(wrapped)
    run(stepper, b[0], force=False)
    assert stepper.last_used_chunk and wrapped.queued_actions == 2
    stepper.no_action()  # e.g. a stale input
    assert stepper.needs_forward()
    action = run(stepper, b[1], force=False)
    with torch.no_grad():
        fresh = wrapped.predict_chunk(b[1])[0][:, 0]
    torch.testing.assert_close(action, fresh)
    assert stepper.resets == 2 and stepper.last_used_chunk
    run(stepper, b[2], force=False)
    assert not stepper.last_used_chunk, "a queued action"
    stepper.begin_tick()
    wrapped.reset()
    with pytest.raises(RuntimeError, match="the action queue is empty: this tick needs a forward pass"):
        stepper.select(None)


def test_a_short_late_input_gap_keeps_the_plan_on_its_timeline():
    """LeRobot's rule for late actions: a plan survives up to gap_tolerance_ticks ticks skipped as stale/skew, and
    the actions planned for them are dropped (never executed later); the next action is the plan's own for that
    tick."""
    wrapped = make_wrapped(chunk_size=8, n_action_steps=6)
    b = random_batches(wrapped, 2, seed=5)
    stepper = PlanStepper(wrapped, gap_tolerance_ticks=2)
    first = run(stepper, b[0], force=False)
    with torch.no_grad():
        plan = wrapped.predict_chunk(b[0])[0]  # (1, chunk, A): the queue holds its first 6 actions
    torch.testing.assert_close(first, plan[:, 0])
    assert stepper.input_gap() and stepper.input_gap(), "two late ticks: the plan survives"
    assert not stepper.needs_forward()
    action = run(stepper, b[1], force=False)  # tick 3 of the plan: ticks 1 and 2 were skipped
    torch.testing.assert_close(action, plan[:, 3])
    assert stepper.gap_actions_dropped == 2 and stepper.resets == 1 and wrapped.queued_actions == 2


def test_a_gap_that_drops_the_last_queued_actions_needs_a_forward():
    """The gap's dropped actions may empty the queue: the next acting tick is then a forward, never a pop of an
    empty queue (the node asks ``needs_forward`` before the tick, to know whether it needs the frames)."""
    wrapped = make_wrapped(chunk_size=8, n_action_steps=3)
    b = random_batches(wrapped, 2, seed=8)
    stepper = PlanStepper(wrapped, gap_tolerance_ticks=3)
    run(stepper, b[0], force=False)
    assert wrapped.queued_actions == 2 and not stepper.needs_forward()
    assert stepper.input_gap() and not stepper.needs_forward(), "one late tick: one of two queued actions dropped"
    assert stepper.input_gap() and stepper.needs_forward(), "two late ticks drop both queued actions"
    action = run(stepper, b[1], force=False)
    with torch.no_grad():
        fresh = wrapped.predict_chunk(b[1])[0][:, 0]
    torch.testing.assert_close(action, fresh)
    assert stepper.gap_actions_dropped == 2


def test_a_longer_gap_or_another_reason_starts_a_fresh_plan():
    wrapped = make_wrapped(chunk_size=8, n_action_steps=6)
    b = random_batches(wrapped, 3, seed=6)
    stepper = PlanStepper(wrapped, gap_tolerance_ticks=2)
    run(stepper, b[0], force=False)
    assert stepper.input_gap() and stepper.input_gap()
    assert not stepper.input_gap(), "a third late tick in a row: longer than the tolerance"
    assert stepper.needs_forward()
    action = run(stepper, b[1], force=False)
    with torch.no_grad():
        fresh = wrapped.predict_chunk(b[1])[0][:, 0]
    torch.testing.assert_close(action, fresh)
    assert stepper.resets == 2 and stepper.gap_actions_dropped == 0
    stepper.no_action()  # any other reason (bad input, pause, ...): a fresh plan at once
    assert stepper.needs_forward()


def test_temporal_ensembling_never_keeps_a_plan_across_a_gap():
    wrapped = make_wrapped(chunk_size=6, n_action_steps=1, temporal_ensemble_coeff=0.01)
    b = random_batches(wrapped, 2, seed=7)
    stepper = PlanStepper(wrapped, gap_tolerance_ticks=3)
    run(stepper, b[0], force=False)
    assert not stepper.input_gap(), "the ensembler's timeline cannot skip a tick"
    run(stepper, b[1], force=False)
    assert stepper.resets == 2
