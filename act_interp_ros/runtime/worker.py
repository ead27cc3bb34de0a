"""A thread that always works on the newest job: the node's control, map and side-method workers.

Executor callbacks (timers, subscriptions) only hand jobs over, so rclpy's executor never waits for torch
and torch never waits for the executor. Two policies for a job that arrives while the worker is busy:

* ``drop_when_busy=True`` (side methods): the new job is refused and counted;
* ``drop_when_busy=False`` (control ticks, maps): it waits in a one-slot mailbox; a newer job replaces it,
  and the replaced one is counted as dropped - a control tick runs late rather than not at all while the
  worker is less than one job behind, and maps follow the newest observation at the rate the hardware
  sustains.

Every dropped job (refused or replaced) is passed to ``on_drop``; an exception in a job is passed to
``on_error`` and never ends the thread. A ``background`` worker (maps, side methods, occlusion) never runs
under a real-time scheduling policy, even one its process inherited (:mod:`act_interp_ros.runtime.scheduling`), and
``nice`` > 0 lowers its CPU priority (Linux: per-thread nice value, inherited by threads it starts), so
background work yields the CPU to the control thread, the executor and the robot's other processes instead
of competing with them as an equal.
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from act_interp_ros.runtime.scheduling import leave_real_time

__all__ = ["LatestJobWorker"]

logger = logging.getLogger(__name__)

_STOP = object()


class LatestJobWorker:
    """Runs ``handle(job)`` on its own daemon thread for the newest submitted job (see module docstring)."""

    def __init__(self, name: str, handle: Callable[[Any], None], *, drop_when_busy: bool,
                 on_error: Callable[[BaseException], None] | None = None,
                 on_drop: Callable[[Any], None] | None = None, background: bool = False, nice: int = 0) -> None:
        self.name = name
        self.background = bool(background)
        self.nice = int(nice)
        self.left_real_time = False  # True when this background thread was moved off a real-time policy
        self.nice_applied: int | None = None  # the thread's nice value once lowered; None = unchanged
        self._handle = handle
        self._on_error = on_error
        self._on_drop = on_drop
        self._drop_when_busy = drop_when_busy
        self._cond = threading.Condition()
        self._pending: Any = None
        self._has_pending = False
        self._busy = False
        self._stopping = False
        self.submitted = 0
        self.processed = 0
        self.dropped = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Any) -> bool:
        """Hand over ``job``; False when it (drop_when_busy) or an older pending job was dropped."""
        dropped = None
        with self._cond:
            if self._stopping:
                return False
            self.submitted += 1
            if self._drop_when_busy and (self._busy or self._has_pending):
                self.dropped += 1
                dropped, accepted = job, False
            else:
                if self._has_pending:
                    self.dropped += 1
                    dropped = self._pending
                self._pending, self._has_pending = job, True
                self._cond.notify()
                accepted = dropped is None
        if dropped is not None and self._on_drop is not None:
            self._on_drop(dropped)
        return accepted

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._busy or self._has_pending

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is running or pending (tests, shutdown); True when idle."""
        with self._cond:
            return self._cond.wait_for(lambda: not (self._busy or self._has_pending), timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the running job, drop a pending one, end the thread."""
        with self._cond:
            self._stopping = True
            self._has_pending = False
            self._pending = None
            self._cond.notify_all()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _lower_priority(self) -> None:
        try:
            tid = threading.get_native_id()
            value = min(19, os.getpriority(os.PRIO_PROCESS, tid) + self.nice)
            os.setpriority(os.PRIO_PROCESS, tid, value)  # Linux: a thread id sets that thread only
            self.nice_applied = value
        except (AttributeError, OSError) as exc:  # not Linux / not permitted: run at normal priority
            logger.debug("%s: could not lower the thread priority: %s", self.name, exc)

    def _run(self) -> None:
        if self.background:
            self.left_real_time = leave_real_time()
        if self.nice > 0:
            self._lower_priority()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._has_pending or self._stopping)
                if self._stopping:
                    self._busy = False
                    self._cond.notify_all()
                    return
                job, self._pending, self._has_pending = self._pending, None, False
                self._busy = True
            try:
                self._handle(job)
            except BaseException as exc:  # noqa: BLE001 - a job failure must never end the worker
                self.errors += 1
                if self._on_error is not None:
                    try:
                        self._on_error(exc)
                    except Exception:  # noqa: BLE001
                        logger.exception("%s: error handler failed", self.name)
                else:
                    logger.exception("%s: job failed", self.name)
            finally:
                with self._cond:
                    self._busy = False
                    self.processed += 1
                    self._cond.notify_all()
