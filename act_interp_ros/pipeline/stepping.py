"""The policy step of a tick: the policy's own action queue / temporal ensembler, never a stale plan.

:class:`PlanStepper` wraps :class:`~act_interp_ros.core.InterpretableACT` with the one rule the node and
the replay share: after any tick that could not act (skipped for any reason but ``overrun``, paused,
commands disabled), the next action comes from a fresh forward pass - the queue / ensembler is reset first - so a plan made
before an input gap is never executed after it. Between clean ticks the actions are exactly the
unwrapped LeRobot policy's (``ACTPolicy.select_action``): in action-queue mode a forward runs only when
the queue is empty, in temporal-ensembling mode every tick.
"""
from __future__ import annotations

import logging

from torch import Tensor

from act_interp_ros.core import InterpretableACT

__all__ = ["PlanStepper"]

logger = logging.getLogger(__name__)


class PlanStepper:
    """Advances ``policy``'s queue/ensembler tick by tick, resetting it after ticks without an action."""

    def __init__(self, policy: InterpretableACT) -> None:
        self.policy = policy
        self._fresh_plan_needed = True
        self.resets = 0  # plans discarded because a tick could not act
        self.last_used_chunk = False  # whether the last select() started executing its chunk (a new plan)

    def begin_tick(self) -> bool:
        """Call before stepping a tick that will act; resets the plan if the last tick did not act.

        Returns True when the plan was reset (this tick's action comes from a fresh forward pass).
        """
        if not self._fresh_plan_needed:
            return False
        self.policy.reset()
        self._fresh_plan_needed = False
        self.resets += 1
        return True

    def no_action(self) -> None:
        """This tick could not act: the next acting tick starts a fresh plan."""
        self._fresh_plan_needed = True

    def needs_forward(self) -> bool:
        """Whether the unwrapped policy would run a forward pass on the next acting tick."""
        return self._fresh_plan_needed or self.policy.needs_model_run(force_model_run=False)

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
