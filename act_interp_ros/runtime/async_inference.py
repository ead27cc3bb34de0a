"""``inference: async`` in the live loop: the next chunk is computed on a worker, no control tick waits for it.

Each control tick (on the control thread) pops the next timed action of the
:class:`~act_interp_ros.pipeline.async_chunks.ChunkQueue` (LeRobot ``robot_client`` semantics) and, when the
queue has fallen to ``chunk_size_threshold`` of a chunk and no chunk is being computed, hands this tick's
observation to the inference worker (``act_interp_inference``). The worker normalises it, runs the forward
(attention captured), postprocesses the chunk action by action as LeRobot's ``policy_server`` does, and merges
it into the queue with ``aggregate_fn``; that chunk's attention maps are published at once, stamped with the
headers of the observation they explain.

Safety, as in sync mode: every action passes the non-finite check and the command limits against the tick's
own joint state; a tick that cannot act resets the queue, and a chunk still being computed from before the
reset is stopped at its next model block (or discarded if it already finished): never executed. While the queue is empty (at start, after a gap) ticks are ``awaiting_chunk``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from act_interp_ros.core import InterpretableACT
from act_interp_ros.pipeline import LoopStats, SkipReason, TickPipeline, TickResult
from act_interp_ros.pipeline.async_chunks import ChunkQueue, postprocess_chunk
from act_interp_ros.pipeline.stepping import GAP_KINDS, gap_tolerance_ticks
from act_interp_ros.runtime.control_window import CONTROL, ControlWindow, Preempted
from act_interp_ros.runtime.live_maps import MapJob
from act_interp_ros.runtime.startup import StartupError
from act_interp_ros.runtime.throttled_log import ThrottledLog
from act_interp_ros.runtime.worker import LatestJobWorker
from act_interp_ros.settings import NodeSettings

__all__ = ["AsyncInference"]

logger = logging.getLogger(__name__)


@dataclass
class _Request:
    """An observation sent for inference: its timestep, the queue generation, and the tick it came from."""

    timestep: int
    generation: int
    observation: dict[str, Any]
    tick: int
    frames: dict[str, np.ndarray]
    headers: dict[str, Any]


class AsyncInference:
    """The async action queue and its inference worker (see the module docstring).

    Args:
        on_chunk: called on the worker with the merged chunk's :class:`MapJob` (its attention pending).
        now_ns: the ROS time (problems are counted in the health window with it).
    Raises :class:`StartupError` for a temporal-ensembling policy (it needs a forward every tick).
    """

    def __init__(self, policy: InterpretableACT, settings: NodeSettings, pipeline: TickPipeline, window: ControlWindow,
                 stats: LoopStats, log: ThrottledLog, on_chunk: Callable[[MapJob], None],
                 now_ns: Callable[[], int]) -> None:
        if policy.uses_temporal_ensembling:
            raise StartupError("parameter 'inference' must be sync for this policy: it uses temporal ensembling (a "
                               "forward every tick), async needs an action queue (temporal_ensemble_coeff null)")
        self.policy, self.pipeline, self.window, self.stats, self.log = policy, pipeline, window, stats, log
        self.on_chunk, self.now_ns = on_chunk, now_ns
        self.queue = ChunkQueue(settings.aggregate_fn, settings.chunk_size_threshold, policy.config.n_action_steps)
        self.gap_tolerance_ticks = gap_tolerance_ticks(settings.plan_survives_gap_s, settings.control_rate_hz)
        self._gap = 0  # ticks in a row skipped for a late input, the queue kept
        self.gap_actions_dropped = 0  # actions of ticks skipped for a late input that the plan survived
        self.worker = LatestJobWorker("act_interp_inference", self._infer, drop_when_busy=True,
                                      on_error=self._error)

    def step(self, tick: int, observation: dict[str, Any] | None, current_ros: np.ndarray | None,
             frames: dict[str, np.ndarray], headers: dict[str, Any]) -> TickResult:
        """One control tick that passed every input check: the next queued action, limited; never waits.

        ``observation`` is ``None`` when the tick's frames were late (the queue holds its action): no chunk is
        requested from it."""
        self._gap = 0
        timed = self.queue.pop()
        if observation is not None and self.queue.ready_to_send() and not self.worker.busy:
            self.worker.submit(_Request(self.queue.observation_timestep(), self.queue.generation, observation, tick,
                                        frames, headers))
        if timed is None:
            return TickResult(skip=SkipReason("awaiting_chunk", "the action queue is empty; the next chunk is being "
                                                                "computed"))
        action = timed.action.numpy().astype(np.float32)
        if not np.all(np.isfinite(action)):
            self.reset()
            return TickResult(skip=SkipReason("nonfinite_action",
                                              f"policy action {np.array2string(action, precision=3)}; not sent"))
        result = TickResult(action=action)
        if current_ros is not None:
            result.command, result.clamped = self.pipeline.limit(action, current_ros)
        return result

    def queue_empty(self) -> bool:
        """No action is queued for the next tick (it needs fresh frames for a chunk request)."""
        return len(self.queue) == 0

    def reset(self) -> None:
        """A tick could not act: no queued action, and no chunk in flight, is executed after it."""
        self._gap = 0
        self.queue.reset()

    def input_gap(self, kind: str) -> bool:
        """A tick was skipped for ``kind``: True when the queue survives it (a late input, ``stale`` / ``skew``, at
        most ``plan_survives_gap_s`` of ticks in a row; the action planned for the tick is dropped, its timestep
        has passed, as LeRobot's client drops stale actions); False when the caller must :meth:`reset`."""
        if kind not in GAP_KINDS:
            return False
        self._gap += 1
        if self._gap > self.gap_tolerance_ticks:
            return False
        if self.queue.pop() is not None:
            self.gap_actions_dropped += 1
        return True

    def ticks_to_forward(self) -> int:
        """Ticks until the next chunk is requested (1 while one is being computed: nothing else may start)."""
        return 1 if self.worker.busy else self.queue.ticks_until_send()

    def values(self) -> dict[str, str]:
        return self.queue.values()

    def close(self) -> None:
        self.worker.stop()

    # ------------------------------------------------------------------------------------ worker
    def _infer(self, req: _Request) -> None:
        batch = self.policy.preprocess(req.observation)
        started = time.perf_counter()
        try:  # a reset while it runs (a tick could not act) stops it at its next block: its input is stale
            with self.window.control_forward(), torch.inference_mode(), \
                    self.window.cancellable(lambda: req.generation != self.queue.generation):
                chunk, pending = self.policy.predict_chunk_deferred(batch)
                actions = postprocess_chunk(self.policy.postprocessor, chunk)
        except Preempted:
            self.stats.count("async.chunks_cancelled")
            return
        forward_s = time.perf_counter() - started
        self.stats.inference.add(forward_s)
        self.window.record(CONTROL, forward_s)
        if self.queue.merge(self.queue.timed_chunk(req.timestep, actions), req.generation):
            self.on_chunk(MapJob(req.tick, req.observation, self.policy.preprocess, req.frames, req.headers, pending,
                                 new_plan=True, batch=batch))

    def _error(self, exc: BaseException) -> None:
        self.stats.problem("async.inference_errors", self.now_ns())
        self.log.exception("async", "async inference failed (no chunk this time)", exc)
