"""The policy step of a tick, the same for the node, the bag replay and the dataset replay (ROS-free).

    prepared tick -> [plan rule] -> select (queue / ensembler; a forward pass when it needs one)
                  -> postprocess -> non-finite check -> command limits -> TickResult

:class:`PolicyStep` owns the plan rule (:class:`~act_interp_ros.pipeline.stepping.PlanStepper`: after a tick
that could not act, the next action comes from a fresh forward pass; a plan survives only a short late-input
gap), the non-finite check and the count of plan resets. The node runs the forward here (its maps resolved later, on the map worker); the offline
interpreter runs batched forwards itself and hands each tick its row of the chunk.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from act_interp_ros.core import InterpretableACT
from act_interp_ros.core.interpretable_policy import PendingInterpretations
from act_interp_ros.pipeline.reasons import SkipReason
from act_interp_ros.pipeline.stepping import GAP_KINDS, PlanStepper
from act_interp_ros.pipeline.tick import TickPipeline

__all__ = ["PolicyStep", "TickResult"]


@dataclass
class TickResult:
    """What one tick's policy step gave.

    Attributes:
        skip: why the tick did not act (``None``: it acted).
        action: (A,) float32 action in policy units (``None`` when skipped).
        command: (n_joints,) command in ROS units inside the limits (``None`` when skipped or without limits).
        clamped: whether the limits changed the command.
        new_plan: this tick started executing a new chunk (its forward pass made the plan).
        pending: the control forward's attention, still on the device (node only; ``None`` without a forward).
        forward_s: seconds of the forward pass + select + postprocess (0 when the queue held the action).
    """

    skip: SkipReason | None = None
    action: np.ndarray | None = None
    command: np.ndarray | None = None
    clamped: bool = False
    new_plan: bool = False
    pending: PendingInterpretations | None = None
    forward_s: float = 0.0


class PolicyStep:
    """Steps ``policy`` tick by tick with the unwrapped policy's own action rule.

    Args:
        policy: the wrapped policy.
        pipeline: the tick pipeline whose command limits apply; ``None`` = actions stay in policy units
            without a command (datasets).
        gap_tolerance_ticks: ticks in a row skipped for a late input that a plan survives (``plan_survives_gap_s``
            x the control rate; :class:`~act_interp_ros.pipeline.stepping.PlanStepper`).
    """

    def __init__(self, policy: InterpretableACT, pipeline: TickPipeline | None = None,
                 gap_tolerance_ticks: int = 0) -> None:
        self.policy = policy
        self.pipeline = pipeline
        self.stepper = PlanStepper(policy, gap_tolerance_ticks)

    @property
    def plan_resets(self) -> int:
        """Plans started fresh because the tick before could not act (the first plan included)."""
        return self.stepper.resets

    def needs_forward(self) -> bool:
        """Whether the next acting tick runs a forward pass (the queue is empty, or a fresh plan is due)."""
        return self.stepper.needs_forward()

    def reset(self) -> None:
        """No action this tick (paused, a new episode, ...): the next acting tick starts a fresh plan."""
        self.stepper.no_action()

    @property
    def gap_actions_dropped(self) -> int:
        """Planned actions dropped because their tick was skipped for a late input while the plan survived."""
        return self.stepper.gap_actions_dropped

    def skip(self, reason: SkipReason) -> TickResult:
        """A tick that cannot act. ``overrun`` / ``awaiting_chunk`` (which miss no input) keep the plan; a late
        input (``stale``, ``skew``) keeps it for a short run of ticks (its planned action is dropped); any other
        reason resets it."""
        if reason.kind in GAP_KINDS:
            self.stepper.input_gap()
        elif reason.kind not in ("overrun", "awaiting_chunk"):
            self.stepper.no_action()
        return TickResult(skip=reason)

    def run(self, current_ros: np.ndarray | None, *, batch: dict[str, Any] | None = None,
            chunk: Tensor | None = None) -> TickResult:
        """Step one tick that passed every input check.

        Args:
            current_ros: (n_joints,) joint positions in ROS units, the step limit's reference (``None``: no
                command limits, the action stays in policy units).
            batch: the preprocessed (B=1) batch; a forward runs on it (attention captured, resolved later via
                ``TickResult.pending``) when :meth:`needs_forward` (after the plan rule). Node.
            chunk: (1, chunk_size, A) normalised chunk already computed for this tick (offline, batched).
        Without either, the action must come from the queue.
        """
        self.stepper.begin_tick()
        pending, forward_s = None, 0.0
        with torch.inference_mode():
            if chunk is None and batch is not None and self.stepper.needs_forward():
                started = time.perf_counter()
                chunk, pending = self.policy.predict_chunk_deferred(batch)
                action = self.policy.postprocess(self.stepper.select(chunk))[0]  # the tick's one host sync
                forward_s = time.perf_counter() - started
            else:
                action = self.policy.postprocess(self.stepper.select(chunk))[0]
        new_plan = self.stepper.last_used_chunk
        if not np.all(np.isfinite(action)):
            return self.skip(SkipReason("nonfinite_action",
                                        f"policy action {np.array2string(action, precision=3)}; not sent"))
        result = TickResult(action=action, new_plan=new_plan, pending=pending, forward_s=forward_s)
        if self.pipeline is not None and current_ros is not None:
            result.command, result.clamped = self.pipeline.limit(action, current_ros)
        return result
