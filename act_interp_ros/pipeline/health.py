"""Counters and the health level of a running control loop (ROS-free; the node renders them as diagnostics).

Every tick is counted: computed (an action), skipped by kind, errors. Lifetime totals are reported, but
the *level* follows the recent past only:

* ERROR - ``max_consecutive_tick_errors`` ticks in a row failed (commands stop until a clean tick), or
  commands are enabled and no action could be computed for longer than ``max_input_age_s``;
* WARN  - ticks were skipped, maps or side methods failed, or a QoS mismatch was seen within the
  recent window (``window_s``, ROS time);
* OK    - otherwise: a node that had a bad start and is healthy now says OK.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from act_interp_ros.pipeline.tick import NS

__all__ = ["Health", "LatencyWindow", "LoopStats"]

OK, WARN, ERROR = 0, 1, 2


class LatencyWindow:
    """The last ``size`` durations (seconds) with percentiles in milliseconds (thread-safe)."""

    def __init__(self, size: int = 300) -> None:
        self._values: deque[float] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values.append(seconds)

    def percentiles_ms(self, qs=(50, 90, 99)) -> dict[int, float]:
        with self._lock:
            values = list(self._values)
        if not values:
            return {q: float("nan") for q in qs}
        arr = np.asarray(values, dtype=np.float64) * 1e3
        return {q: float(np.percentile(arr, q)) for q in qs}

    def __len__(self) -> int:
        return len(self._values)


@dataclass(frozen=True)
class Health:
    """Level (0 OK, 1 WARN, 2 ERROR) and a one-line message saying why."""

    level: int
    message: str


class LoopStats:
    """Thread-safe counters of everything the control loop did, skipped or dropped (nothing lost silently).

    Args:
        control_period_s: the tick period (late ticks are those more than 1.5 periods after the previous).
        max_input_age_s: no action for longer than this (ROS time) while commanding is an ERROR.
        max_consecutive_errors: this many failed ticks in a row is a fault (ERROR; commands stop).
        window_s: the recent window (ROS time) the WARN level looks at.
    """

    def __init__(self, control_period_s: float, max_input_age_s: float, max_consecutive_errors: int,
                 window_s: float = 2.0) -> None:
        self.period_s = control_period_s
        self.max_input_age_ns = int(max_input_age_s * NS)
        self.max_consecutive_errors = max_consecutive_errors
        self.window_ns = int(window_s * NS)
        self.lock = threading.RLock()
        self.ticks = 0
        self.late_ticks = 0
        self.ticks_ok = 0
        self.skipped: Counter[str] = Counter()  # skip kind -> ticks without an action computed
        self.actions_published = 0
        self.actions_clamped = 0
        self.actions_held = 0  # computed while paused / observe-only
        self.tick_errors = 0
        self.consecutive_errors = 0
        self.counters: Counter[str] = Counter()  # free-form: maps_published, side.gradcam.runs, ...
        self.inference = LatencyWindow()  # forward passes of the control loop (queue refills / every tick in TE)
        self.map_inference = LatencyWindow()  # forward passes of the map worker
        self.tick_work = LatencyWindow()  # control-thread work per computed tick, forward excluded
        self.periods = LatencyWindow()
        self.input_delay = LatencyWindow()  # receive time - header stamp of stamped inputs (ROS time)
        self.side_latency: dict[str, LatencyWindow] = {}
        self._last_tick_wall: float | None = None
        self._rate_marks: deque[float] = deque(maxlen=600)
        self._events: deque[tuple[int, str]] = deque(maxlen=4096)  # (ROS ns, "skip"/"fail") for the WARN window
        self._start_ns: int | None = None
        self._last_action_ns: int | None = None

    # ------------------------------------------------------------------------------- recording
    def tick_started(self, wall_s: float, now_ns: int) -> None:
        with self.lock:
            self.ticks += 1
            if self._start_ns is None or now_ns < self._start_ns:
                self._start_ns = now_ns
            if self._last_tick_wall is not None:
                period = wall_s - self._last_tick_wall
                self.periods.add(period)
                if period > 1.5 * self.period_s:
                    self.late_ticks += 1
            self._last_tick_wall = wall_s
            self._rate_marks.append(wall_s)

    def tick_computed(self, now_ns: int) -> None:
        with self.lock:
            self.ticks_ok += 1
            self.consecutive_errors = 0
            self._last_action_ns = now_ns

    def action_sent(self, clamped: bool) -> None:
        with self.lock:
            self.actions_published += 1
            self.actions_clamped += int(clamped)

    def action_held(self) -> None:
        """An action computed while paused or observe-only (not commanded)."""
        with self.lock:
            self.actions_held += 1

    def tick_skipped(self, kind: str, now_ns: int) -> None:
        with self.lock:
            self.skipped[kind] += 1
            self._events.append((now_ns, f"skipped.{kind}"))

    def tick_failed(self, now_ns: int) -> bool:
        """Count a failed tick; True when this failure starts (or continues) a fault."""
        with self.lock:
            self.tick_errors += 1
            self.consecutive_errors += 1
            self.skipped["tick_error"] += 1
            self._events.append((now_ns, "skipped.tick_error"))
            return self.consecutive_errors >= self.max_consecutive_errors

    def problem(self, name: str, now_ns: int) -> None:
        """A non-tick problem (map or side-method failure, QoS) that makes the recent window WARN."""
        with self.lock:
            self.counters[name] += 1
            self._events.append((now_ns, name))

    def count(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counters[name] += n

    def side_window(self, method: str) -> LatencyWindow:
        with self.lock:
            return self.side_latency.setdefault(method, LatencyWindow(50))

    # --------------------------------------------------------------------------------- reading
    @property
    def faulted(self) -> bool:
        with self.lock:
            return self.consecutive_errors >= self.max_consecutive_errors

    def rate_hz(self, wall_now_s: float) -> float:
        with self.lock:
            recent = [m for m in self._rate_marks if wall_now_s - m <= 5.0]
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def health(self, now_ns: int, commands_enabled: bool) -> Health:
        """The level from the recent window (see the module docstring)."""
        with self.lock:
            if self.consecutive_errors >= self.max_consecutive_errors:
                return Health(ERROR, f"{self.consecutive_errors} consecutive tick errors: commands stopped until a "
                                     "clean tick")
            since = self._last_action_ns if self._last_action_ns is not None else self._start_ns
            if commands_enabled and since is not None and now_ns - since > self.max_input_age_ns:
                return Health(ERROR, f"no action computed for {(now_ns - since) / NS:.2f} s while commands are "
                                     f"enabled (max_input_age_s {self.max_input_age_ns / NS:g})")
            recent = Counter(kind for t, kind in self._events if now_ns - t <= self.window_ns)
        if recent:
            what = ", ".join(f"{k} {v}" for k, v in recent.most_common(3))
            return Health(WARN, f"in the last {self.window_ns / NS:g} s: {what}")
        return Health(OK, "ok")

    def values(self) -> dict[str, str]:
        """Lifetime counters and recent latencies, as the diagnostics' key -> value strings."""
        inf = self.inference.percentiles_ms()
        maps = self.map_inference.percentiles_ms()
        work = self.tick_work.percentiles_ms()
        per = self.periods.percentiles_ms()
        delay = self.input_delay.percentiles_ms()
        with self.lock:
            values = {
                "tick_rate_hz": f"{self.rate_hz(time.monotonic()):.2f}",
                "target_rate_hz": f"{1.0 / self.period_s:.2f}",
                "ticks": str(self.ticks),
                "ticks_with_action_computed": str(self.ticks_ok),
                "late_ticks": str(self.late_ticks),
                "tick_period_p50_ms": f"{per[50]:.2f}",
                "tick_period_p99_ms": f"{per[99]:.2f}",
                "inference_p50_ms": f"{inf[50]:.2f}",
                "inference_p90_ms": f"{inf[90]:.2f}",
                "inference_p99_ms": f"{inf[99]:.2f}",
                "map_inference_p50_ms": f"{maps[50]:.2f}",
                "map_inference_p99_ms": f"{maps[99]:.2f}",
                "tick_work_p50_ms": f"{work[50]:.2f}",
                "tick_work_p99_ms": f"{work[99]:.2f}",
                "input_delay_p50_ms": f"{delay[50]:.2f}",
                "input_delay_p99_ms": f"{delay[99]:.2f}",
                "skipped_ticks": str(sum(self.skipped.values())),
                "tick_errors": str(self.tick_errors),
                "consecutive_tick_errors": str(self.consecutive_errors),
                "actions_published": str(self.actions_published),
                "actions_clamped": str(self.actions_clamped),
                "actions_not_commanded": str(self.actions_held),
            }
            values.update({f"skipped.{k}": str(v) for k, v in sorted(self.skipped.items())})
            values.update({k: str(v) for k, v in sorted(self.counters.items())})
            for method, window in sorted(self.side_latency.items()):
                p = window.percentiles_ms((50, 99))
                values[f"side.{method}.latency_p50_ms"] = f"{p[50]:.1f}"
                values[f"side.{method}.latency_p99_ms"] = f"{p[99]:.1f}"
        return values
