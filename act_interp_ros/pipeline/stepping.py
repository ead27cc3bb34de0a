"""The policy step of a tick: the policy's own action queue / temporal ensembler, never a stale plan.

:class:`PlanStepper` wraps :class:`~act_interp_ros.core.InterpretableACT` with the one rule the node and
the replay share: after a tick that could not act (skipped for any reason but ``overrun``, paused,
commands disabled), the next action comes from a fresh forward pass - the queue / ensembler is reset first - so a plan made
before an input gap is never executed after it. One exception, LeRobot's own (its async client drops the actions
whose timestep has passed): in action-queue mode a plan survives a short run of ticks skipped because an input was
late or out of step (``stale``, ``skew``; at most ``gap_tolerance_ticks`` in a row); the actions it planned for
those ticks are dropped, so what follows stays on the plan's timeline. Between clean ticks the actions are exactly
the unwrapped LeRobot policy's (``ACTPolicy.select_action``): in action-queue mode a forward runs only when
the queue is empty, in temporal-ensembling mode every tick.
"""
from __future__ import annotations

import logging

from torch import Tensor

from act_interp_ros.core import InterpretableACT

__all__ = ["GAP_KINDS", "PlanStepper", "gap_tolerance_ticks"]

logger = logging.getLogger(__name__)


#: Skip kinds that are an input gap a plan may survive: an input arrived late or out of step.
GAP_KINDS = ("stale", "skew")


def gap_tolerance_ticks(plan_survives_gap_s: float, rate_hz: float) -> int:
    """Whole ticks at ``rate_hz`` within ``plan_survives_gap_s`` (0.1 s at 30 Hz: 3)."""
    return max(0, int(float(plan_survives_gap_s) * float(rate_hz) + 1e-9))


class PlanStepper:
    """Advances ``policy``'s queue/ensembler tick by tick, resetting it after ticks without an action.

    Args:
        policy: the wrapped policy.
        gap_tolerance_ticks: how many ticks in a row skipped for a late input (:data:`GAP_KINDS`) the plan survives
            (action-queue mode only; 0 = none: every skipped tick starts a fresh plan).
    """

    def __init__(self, policy: InterpretableACT, gap_tolerance_ticks: int = 0) -> None:
        self.policy = policy
        self.gap_tolerance_ticks = max(0, int(gap_tolerance_ticks))
        self._fresh_plan_needed = True
        self._gap = 0  # ticks skipped for a late input since the last acting tick (plan kept)
        self.resets = 0  # plans discarded because a tick could not act
        self.gap_actions_dropped = 0  # planned actions dropped because their tick was skipped (plan kept)
        self.last_used_chunk = False  # whether the last select() started executing its chunk (a new plan)

    def begin_tick(self) -> bool:
        """Call before stepping a tick that will act; resets the plan if the last tick did not act.

        Returns True when the plan was reset (this tick's action comes from a fresh forward pass).
        """
        if not self._fresh_plan_needed:
            while self._gap and self.policy.queued_actions:  # the gap's planned actions: their time has passed
                self.policy.pop_queued()
                self.gap_actions_dropped += 1
                self._gap -= 1
            self._gap = 0
            return False
        self.policy.reset()
        self._fresh_plan_needed = False
        self._gap = 0
        self.resets += 1
        return True

    def no_action(self) -> None:
        """This tick could not act: the next acting tick starts a fresh plan."""
        self._fresh_plan_needed = True

    def input_gap(self) -> bool:
        """This tick was skipped for a late input: the plan survives (True) while the run of such ticks is at most
        ``gap_tolerance_ticks`` long and the policy uses an action queue; otherwise a fresh plan is due (False)."""
        self._gap += 1
        if self._gap > self.gap_tolerance_ticks or self.policy.uses_temporal_ensembling:
            self._fresh_plan_needed = True
        return not self._fresh_plan_needed

    def needs_forward(self) -> bool:
        """Whether the unwrapped policy would run a forward pass on the next acting tick (after the actions of a
        surviving gap are dropped: a queue they empty needs one)."""
        return (self._fresh_plan_needed or self.policy.needs_model_run(force_model_run=False)
                or self.policy.queued_actions <= self._gap)

    def select(self, chunk: Tensor | None) -> Tensor:
        """(1, A) normalised action for this tick from ``chunk`` (1, chunk_size, A), or from the queue.

        ``chunk`` may be ``None`` only when :meth:`needs_forward` is False (the queue holds the action).
        """
        if chunk is None:
            if self.policy.needs_model_run(force_model_run=False):
                raise RuntimeError("the action queue is empty: this tick needs a forward pass")
            self.last_used_chunk = False
            return self.policy.pop_queued()
        self.last_used_chunk = self.policy.needs_model_run(force_model_run=False)
        return self.policy.select_from_chunk(chunk)
