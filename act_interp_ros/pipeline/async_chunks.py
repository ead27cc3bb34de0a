"""The action queue of ``inference: async``: LeRobot's ``robot_client`` semantics, without its gRPC (ROS-free).

LeRobot's async inference (``lerobot.async_inference``) keeps a queue of *timed* actions on the robot:

* each control tick pops the next action and remembers its timestep (``latest_action``);
* when ``queue size / chunk size <= chunk_size_threshold`` (the chunk size being the longest chunk received
  so far), an observation stamped ``max(latest_action, 0)`` is sent for inference;
* the policy returns its chunk cut to ``actions_per_chunk`` (here ``n_action_steps``), action ``i``
  stamped ``observation timestep + i``, postprocessed action by action;
* the chunk replaces the queue: actions whose timestep is ``<= latest_action`` are dropped (stale: their
  moment has passed), actions whose timestep is still queued are merged with ``aggregate_fn(old, new)``,
  the others are queued as they are; queued actions the chunk does not cover are dropped.

:class:`ChunkQueue` implements exactly that (``test/test_async_chunks.py`` checks the action stream
against ``RobotClient._aggregate_action_queues`` itself), plus the node's safety rule: :meth:`ChunkQueue.reset`
empties it after any tick that could not act, and a chunk computed from an observation taken before a reset
is discarded (:attr:`ChunkQueue.generation`), so no action planned before an input gap is executed after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["AGGREGATE_FUNCTIONS", "ChunkQueue", "TimedAction"]

#: LeRobot's ``lerobot.async_inference.configs.AGGREGATE_FUNCTIONS`` (old = queued action, new = incoming one)
AGGREGATE_FUNCTIONS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "weighted_average": lambda old, new: 0.3 * old + 0.7 * new,
    "latest_only": lambda old, new: new,
    "average": lambda old, new: 0.5 * old + 0.5 * new,
    "conservative": lambda old, new: 0.7 * old + 0.3 * new,
}


@dataclass(frozen=True)
class TimedAction:
    """One action of a chunk: ``timestep`` (control ticks since the episode's first action) and the (A,) action
    in policy units (postprocessed)."""

    timestep: int
    action: Tensor


class ChunkQueue:
    """The robot side of LeRobot's async inference (see the module docstring); thread-safe.

    Args:
        aggregate_fn: a key of :data:`AGGREGATE_FUNCTIONS`.
        chunk_size_threshold: request the next chunk when the queue holds at most this fraction of a chunk.
        actions_per_chunk: actions kept from each chunk (``n_action_steps``).
    """

    def __init__(self, aggregate_fn: str, chunk_size_threshold: float, actions_per_chunk: int) -> None:
        if aggregate_fn not in AGGREGATE_FUNCTIONS:
            raise ValueError(f"aggregate_fn must be one of {', '.join(AGGREGATE_FUNCTIONS)}, got {aggregate_fn!r}")
        self.aggregate_fn_name = aggregate_fn
        self.aggregate = AGGREGATE_FUNCTIONS[aggregate_fn]
        self.threshold = float(chunk_size_threshold)
        self.actions_per_chunk = int(actions_per_chunk)
        self._lock = threading.Lock()
        self._queue: list[TimedAction] = []
        self.latest_action = -1
        self.chunk_size = -1  # the longest chunk received (LeRobot's action_chunk_size)
        self.generation = 0
        self.chunks_merged = 0
        self.chunks_discarded = 0  # computed before a reset: never executed
        self.stale_dropped = 0  # incoming actions whose timestep had already passed
        self.aggregated = 0  # incoming actions merged with a queued one

    def __len__(self) -> int:
        with self._lock:
            return len(self._queue)

    def reset(self) -> None:
        """No action this tick: empty the queue, start the timesteps again, discard chunks in flight."""
        with self._lock:
            self._queue.clear()
            self.latest_action = -1
            self.generation += 1

    def pop(self) -> TimedAction | None:
        """The next action to execute (``None`` when the queue is empty); its timestep becomes ``latest_action``."""
        with self._lock:
            if not self._queue:
                return None
            timed = self._queue.pop(0)
            self.latest_action = timed.timestep
            return timed

    def ready_to_send(self) -> bool:
        """LeRobot's ``_ready_to_send_observation``: queue size / chunk size <= threshold."""
        with self._lock:
            return self.chunk_size <= 0 or len(self._queue) / self.chunk_size <= self.threshold

    def ticks_until_send(self) -> int:
        """Ticks (>= 1) until :meth:`ready_to_send` holds, one action popped per tick."""
        with self._lock:
            size, q = self.chunk_size, len(self._queue)
        if size <= 0:
            return 1
        for k in range(1, q + 2):
            if (q - k) / size <= self.threshold:
                return k
        return q + 1

    def observation_timestep(self) -> int:
        """The timestep an observation taken now is stamped with: ``max(latest_action, 0)``."""
        with self._lock:
            return max(self.latest_action, 0)

    def timed_chunk(self, obs_timestep: int, actions: Tensor) -> list[TimedAction]:
        """(n, A) postprocessed actions -> the first ``actions_per_chunk`` as timed actions from ``obs_timestep``."""
        return [TimedAction(obs_timestep + i, a) for i, a in enumerate(actions[: self.actions_per_chunk])]

    def merge(self, incoming: list[TimedAction], generation: int) -> bool:
        """LeRobot's ``_aggregate_action_queues`` with this queue's ``aggregate_fn``; False (and nothing changes)
        when the chunk's observation was taken before a :meth:`reset`."""
        with self._lock:
            if generation != self.generation:
                self.chunks_discarded += 1
                return False
            self.chunk_size = max(self.chunk_size, len(incoming))
            current = {t.timestep: t.action for t in self._queue}
            merged: list[TimedAction] = []
            for new in incoming:
                if new.timestep <= self.latest_action:
                    self.stale_dropped += 1
                elif new.timestep not in current:
                    merged.append(new)
                else:
                    self.aggregated += 1
                    merged.append(TimedAction(new.timestep, self.aggregate(current[new.timestep], new.action)))
            self._queue = merged
            self.chunks_merged += 1
            return True

    def values(self) -> dict[str, str]:
        """Diagnostics counters."""
        with self._lock:
            return {"async.chunks": str(self.chunks_merged), "async.chunks_discarded": str(self.chunks_discarded),
                    "async.stale_actions_dropped": str(self.stale_dropped),
                    "async.actions_aggregated": str(self.aggregated), "async.queued_actions": str(len(self._queue))}


def postprocess_chunk(postprocess: Callable[[Tensor], Tensor], chunk: Tensor) -> Tensor:
    """(1, n, A) normalised chunk -> (n, A) float32 policy-unit actions, postprocessed action by action as
    LeRobot's ``policy_server`` does."""
    return torch.stack([postprocess(chunk[:, i, :]) for i in range(chunk.shape[1])], dim=1).squeeze(0).float().cpu()
