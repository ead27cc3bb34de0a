"""Thread scheduling: keep real-time policies off the work that must not have them (Linux).

Linux schedules threads, not processes, and a new thread or process inherits its creator's policy. A
CPU-bound thread under a real-time policy (``SCHED_FIFO``/``SCHED_RR``) starves every normal thread on its
core. Two ways one reaches this package:

* an operator starts the node under ``chrt`` so the control loop runs real-time: the interpretation workers
  (maps, side methods, occlusion) are CPU-bound by design and must still run as normal threads;
* a library sets it: FFmpeg's SVT-AV1 encoder (LeRobot's default video codec) switches the thread that
  encodes to ``SCHED_FIFO`` priority 99 when it runs as root. Measured here: after a test wrote a synthetic
  LeRobotDataset, the test process and every node it started ran at ``SCHED_FIFO`` 99, the node's map and
  side workers took both cores, and the test run stalled until CI's time limit.

Elsewhere (no ``os.sched_*``) these functions do nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

__all__ = ["is_real_time", "leave_real_time", "scheduling_preserved"]

logger = logging.getLogger(__name__)

REAL_TIME_POLICIES = frozenset(getattr(os, name) for name in ("SCHED_FIFO", "SCHED_RR") if hasattr(os, name))


def _current() -> tuple[int, int] | None:
    """(policy, priority) of the calling thread, or None where it cannot be read."""
    try:
        return os.sched_getscheduler(0), os.sched_getparam(0).sched_priority
    except (AttributeError, OSError):
        return None


def is_real_time() -> bool:
    """True when the calling thread runs under a real-time policy."""
    now = _current()
    return now is not None and now[0] in REAL_TIME_POLICIES


def leave_real_time() -> bool:
    """Move the calling thread from a real-time policy to ``SCHED_OTHER`` (always permitted); True if it moved."""
    if not is_real_time():
        return False
    try:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError as exc:
        logger.warning("could not leave the real-time scheduling policy: %s", exc)
        return False
    return True


@contextlib.contextmanager
def scheduling_preserved() -> Iterator[None]:
    """Give the calling thread back its scheduling policy and priority after the block (e.g. around an
    SVT-AV1 encode, which makes it ``SCHED_FIFO`` 99 when run as root)."""
    saved = _current()
    try:
        yield
    finally:
        now = _current()
        if saved is not None and now is not None and now != saved:
            try:
                os.sched_setscheduler(0, saved[0], os.sched_param(saved[1]))
                logger.debug("scheduling policy restored to %s (was changed to %s)", saved, now)
            except OSError as exc:
                logger.warning("could not restore the scheduling policy %s (now %s): %s", saved, now, exc)
