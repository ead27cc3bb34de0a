"""The replay's tick plan: when the ticks are and which message each tick sees (pure, no I/O).

Time rule (``clock="log"``, the default)
    Ticks are placed on the bag's **log (receive) time** axis, from the first camera / joint-state
    message to the last one, every ``1 / rate_hz`` seconds. A tick at time ``t`` uses, per topic, the
    latest message *received* by ``t`` (log time <= t) and judges its freshness by its **header stamp**
    with the node's own gate (``now = t``). This is what the live node sees when the bag is played into it
    with ``ros2 bag play --clock`` / ``act_interp_play`` under ``use_sim_time`` - except for a message logged
    at exactly the tick's time, which live may or may not have arrived when the tick runs (a race the
    offline replay resolves as "arrived").
    ``clock="header"`` places ticks on the header-stamp axis and uses, per topic, the message with the
    latest header stamp <= t: for bags whose log times are unrelated to the stamps (recorded on another
    machine, simulated stamps); outputs are recorded at ``t + median(log time - header stamp)``. Messages
    stamped 0 (unstamped) place no tick on that axis.
    Explicit ``tick_times_ns`` (e.g. the live node's own tick times from ``~/tick_status``) replace the
    regular grid; selection follows ``clock`` as above.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from act_interp_ros.pipeline.tick import NS

__all__ = ["CLOCKS", "NS", "TickPlan", "TopicIndex", "build_plan", "tick_times"]

CLOCKS = ("log", "header")


class PlanError(ValueError):
    """The requested range or ticks cannot be planned on this bag (one line)."""


@dataclass
class TopicIndex:
    """Log times and header stamps (ns) of one topic's messages, in log order."""

    topic: str
    msgtype: str
    log_ns: np.ndarray
    stamp_ns: np.ndarray


@dataclass
class TickPlan:
    """Everything the streaming pass needs.

    Attributes:
        origin_ns: time 0 of the replayed range on the clock axis (first camera/joint message).
        ticks: tick times (ns) on the clock axis.
        selection: topic -> (n_ticks,) index of the message (log order) each tick uses, -1 = none yet.
        last_use: (topic, message index) -> last tick index that uses it (decoded messages are dropped then).
        log_offset_ns: added to a tick time to get the log time its outputs are recorded at.
        read_range: [from, to] log times of the messages the ticks use.
        copy_range: [from, to] log times of the input messages copied into the output bag
            (``None`` = the whole bag).
    """

    origin_ns: int
    ticks: list[int]
    selection: dict[str, np.ndarray]
    last_use: dict[tuple[str, int], int]
    log_offset_ns: int
    read_range: tuple[int, int]
    copy_range: tuple[int, int] | None


def tick_times(first_ns: int, last_ns: int, rate_hz: float) -> list[int]:
    """Tick times first, first + 1/rate, ... <= last, as exact ceil'd integer ns (never early vs k/rate)."""
    period = Fraction(NS) / Fraction(rate_hz)
    times = (first_ns + math.ceil(k * period) for k in range(int((last_ns - first_ns) / period) + 1))
    return [t for t in times if t <= last_ns]


def build_plan(
    idx: Mapping[str, TopicIndex],
    *,
    rate_hz: float,
    clock: str = "log",
    start_s: float | None = None,
    end_s: float | None = None,
    max_input_age_s: float = 0.25,
    tick_times_ns: Sequence[int] | None = None,
) -> TickPlan:
    """Plan the ticks over ``idx`` (see the module docstring); raises PlanError for an empty range."""
    header = clock == "header"
    # a message stamped 0 (unstamped) is not a time on the header axis (it would start the range at 1970)
    axis = {t: (ix.stamp_ns[ix.stamp_ns != 0] if header else ix.log_ns) for t, ix in idx.items()}
    if header and not all(len(a) for a in axis.values()):
        raise PlanError(f"every header stamp of {', '.join(t for t, a in axis.items() if not len(a))} is 0: "
                        "--clock header needs stamped messages")
    begin = int(min(int(a.min()) for a in axis.values()))
    last = int(max(int(a.max()) for a in axis.values()))
    start = begin + round((start_s or 0.0) * NS)
    end = last if end_s is None else begin + round(end_s * NS)
    if tick_times_ns is not None:
        ticks = sorted(int(t) for t in tick_times_ns if start <= int(t) <= end)
    else:
        if start > last:
            raise PlanError(f"--start {start_s} s is past the end of the bag's camera/joint data "
                            f"({(last - begin) / NS:.3f} s long)")
        ticks = tick_times(start, min(end, last), rate_hz)
    if not ticks:
        raise PlanError("the selected time range holds no control tick")
    tick_arr = np.asarray(ticks, dtype=np.int64)
    selection: dict[str, np.ndarray] = {}
    for t, ix in idx.items():
        if header:
            order = np.argsort(ix.stamp_ns, kind="stable")
            pos = np.searchsorted(ix.stamp_ns[order], tick_arr, side="right") - 1
            sel = np.where(pos >= 0, order[np.maximum(pos, 0)], -1)
        else:
            sel = np.searchsorted(ix.log_ns, tick_arr, side="right") - 1
        selection[t] = sel.astype(np.int64)
    last_use: dict[tuple[str, int], int] = {}
    for t, sel in selection.items():
        for k, j in enumerate(sel.tolist()):
            if j >= 0:
                last_use[(t, j)] = k
    offset = (int(np.median(np.concatenate([(ix.log_ns - ix.stamp_ns)[ix.stamp_ns != 0] for ix in idx.values()])))
              if header else 0)
    needed = [int(idx[t].log_ns[j]) for (t, j) in last_use]
    read_range = (min(needed), max(needed)) if needed else (ticks[0], ticks[-1])
    if start_s is None and end_s is None:
        copy_range = None
    else:  # every input message of the requested range, plus the inputs the first tick may still use
        copy_end = end + offset if end_s is not None else 2**63 - 1
        copy_range = (start + offset - round(max_input_age_s * NS), copy_end)
    return TickPlan(begin, ticks, selection, last_use, offset, read_range, copy_range)
