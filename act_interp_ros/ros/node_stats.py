"""Counters and timing windows of the live node, rendered as a diagnostic_msgs/DiagnosticStatus."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque

import numpy as np
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue


class LatencyWindow:
    """The last ``size`` durations (seconds) with percentiles in milliseconds."""

    def __init__(self, size: int = 300) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(seconds)

    def percentiles_ms(self, qs=(50, 90, 99)) -> dict[int, float]:
        if not self._values:
            return {q: float("nan") for q in qs}
        arr = np.fromiter(self._values, dtype=np.float64) * 1e3
        return {q: float(np.percentile(arr, q)) for q in qs}

    def __len__(self) -> int:
        return len(self._values)


class NodeStats:
    """Thread-safe counters of everything the node did, skipped or dropped (nothing is lost silently)."""

    def __init__(self, control_period_s: float) -> None:
        self.period_s = control_period_s
        self.lock = threading.RLock()
        self.ticks = 0
        self.late_ticks = 0
        self.ticks_ok = 0
        self.skipped: Counter[str] = Counter()  # reason kind -> ticks without an action computed
        self.bad_input: Counter[str] = Counter()  # input problem kind -> count
        self.actions_published = 0
        self.actions_clamped = 0
        self.actions_held = 0  # ticks computed while commanding is paused or observe-only
        self.qos_incompatible: Counter[str] = Counter()
        self.gradcam_runs = 0
        self.gradcam_skipped_busy = 0
        self.gradcam_skipped_no_data = 0
        self.gradcam_failures = 0
        self.inference = LatencyWindow()
        self.tick_work = LatencyWindow()
        self.periods = LatencyWindow()
        self.gradcam_latency = LatencyWindow(50)
        self._last_tick: float | None = None
        self._rate_marks: deque[float] = deque(maxlen=600)

    def tick_started(self) -> None:
        now = time.monotonic()
        with self.lock:
            self.ticks += 1
            if self._last_tick is not None:
                period = now - self._last_tick
                self.periods.add(period)
                if period > 1.5 * self.period_s:
                    self.late_ticks += 1
            self._last_tick = now
            self._rate_marks.append(now)

    def rate_hz(self) -> float:
        with self.lock:
            marks = list(self._rate_marks)
        now = time.monotonic()
        recent = [m for m in marks if now - m <= 5.0]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / (recent[-1] - recent[0]) if recent[-1] > recent[0] else 0.0

    def count(self, counter: Counter, key: str) -> None:
        with self.lock:
            counter[key] += 1

    def status(self, name: str, hardware_id: str, extra: dict[str, str]) -> DiagnosticStatus:
        """One DiagnosticStatus: WARN when ticks are being skipped/late or GradCAM fails, else OK."""
        inf = self.inference.percentiles_ms()
        work = self.tick_work.percentiles_ms()
        per = self.periods.percentiles_ms()
        gc = self.gradcam_latency.percentiles_ms((50, 99))
        with self.lock:
            values = {
                "tick_rate_hz": f"{self.rate_hz():.2f}",
                "target_rate_hz": f"{1.0 / self.period_s:.2f}",
                "ticks": str(self.ticks),
                "ticks_with_action_computed": str(self.ticks_ok),
                "late_ticks": str(self.late_ticks),
                "tick_period_p50_ms": f"{per[50]:.2f}",
                "tick_period_p99_ms": f"{per[99]:.2f}",
                "inference_p50_ms": f"{inf[50]:.2f}",
                "inference_p90_ms": f"{inf[90]:.2f}",
                "inference_p99_ms": f"{inf[99]:.2f}",
                "tick_work_p50_ms": f"{work[50]:.2f}",
                "tick_work_p99_ms": f"{work[99]:.2f}",
                "skipped_ticks": str(sum(self.skipped.values())),
                "actions_published": str(self.actions_published),
                "actions_clamped": str(self.actions_clamped),
                "actions_not_commanded": str(self.actions_held),
                "gradcam_runs": str(self.gradcam_runs),
                "gradcam_latency_p50_ms": f"{gc[50]:.1f}",
                "gradcam_latency_p99_ms": f"{gc[99]:.1f}",
                "gradcam_skipped_busy": str(self.gradcam_skipped_busy),
                "gradcam_skipped_no_new_tick": str(self.gradcam_skipped_no_data),
                "gradcam_failures": str(self.gradcam_failures),
            }
            values.update({f"skipped.{k}": str(v) for k, v in sorted(self.skipped.items())})
            values.update({f"bad_input.{k}": str(v) for k, v in sorted(self.bad_input.items())})
            values.update({f"qos_incompatible.{k}": str(v) for k, v in sorted(self.qos_incompatible.items())})
            problems = self.gradcam_failures or sum(self.qos_incompatible.values())
            recent_skips = sum(self.skipped.values())
        values.update(extra)
        level = DiagnosticStatus.WARN if (problems or recent_skips > 0.5 * max(self.ticks, 1)) else DiagnosticStatus.OK
        message = "ok" if level == DiagnosticStatus.OK else "inputs missing/stale or GradCAM/QoS problems"
        return DiagnosticStatus(
            level=level, name=name, message=message, hardware_id=hardware_id,
            values=[KeyValue(key=k, value=v) for k, v in values.items()],
        )
