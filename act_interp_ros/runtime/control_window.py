"""When a background forward may start: only when it ends before the next control forward is due (ROS-free).

The map worker's forward, the side methods and occlusion share the CPU with the control loop. On a CPU where
one forward takes longer than a tick, a background forward that is still running when the control loop
refills its action queue slows that refill down (both compete for the cores and memory bandwidth), and the
robot misses ticks. :class:`ControlWindow` prevents it without ever making the control forward wait:

* the control thread tells it, after every tick, how many ticks remain until its next forward (the queued
  actions + 1 in action-queue mode; 1 with temporal ensembling or when a fresh plan is due), so the next
  control forward is due at ``tick start + ticks * period``. The period is the wall-clock one: the nominal
  period, or the median interval between the control timer's last firings where that is longer (simulated time
  running slower than the wall clock, a lockstep simulator, a bag played below rate 1);
* every forward is timed: the control forward, the map forward and each side method (running windows of the
  last ``size`` durations; the expected duration of a job is their ``percentile``, 90 by default, seeded by
  the warm-up);
* a background job is *admitted* only when ``now + expected + margin <= due``; a job that is longer than the
  longest gap between two control forwards is never admitted (``never``), so it is skipped at once instead of
  waited for. A job never measured is admitted once in a gap at least as long as one control forward, and
  measured then;
* a *long* job (expected longer than ``long_ticks`` control periods) starts only where a core is free for it:
  each job's CPU share (its thread's CPU time / wall time) is measured, and while the median of a long job's
  last runs is below ``min_cpu_share`` (it shared a core with other work) it starts only as a probe, once
  every ``probe_s`` seconds. On a busy CPU a 1 s map forward between two control forwards otherwise takes the
  CPU the executor needs to receive the cameras, and the control loop refuses ticks whose inputs are late or
  out of step (BENCHMARKS.md section 11).

The control forward itself never waits for anything here (no lock is shared with the background threads).
A control forward that starts while a background job still runs (an estimate was wrong, or the machine got
busier) is counted in :attr:`ControlWindow.overlaps`; a *preemptible* job (the map worker's forward) then
stops at its next model block (:func:`install_preemption`: a forward pre-hook on each ResNet block and
transformer layer raises :class:`Preempted` in that thread only), so it overlaps the control forward by one
block at most instead of a whole forward.
"""

from __future__ import annotations

import contextlib
import re
import threading
import statistics
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from act_interp_ros.pipeline.health import LatencyWindow

__all__ = ["Admission", "CONTROL", "ControlWindow", "Preempted", "install_preemption"]

#: the key of the control loop's own forward (refills of the action queue / every tick with ensembling)
CONTROL = "control"


class Preempted(RuntimeError):
    """A preemptible background forward stopped because the control forward started."""


#: the blocks whose start checks for preemption: the backbone's stem and residual blocks, each transformer layer
PREEMPTION_POINTS = re.compile(r"backbone\.(conv1|layer\d+\.\d+)|encoder\.layers\.\d+|decoder\.layers\.\d+")


def install_preemption(model, window: ControlWindow) -> list:
    """Forward pre-hooks on ``model``'s (an ACT ``model``) blocks that raise :class:`Preempted` in a preemptible
    background job once the control forward has started; returns the hook handles (``.remove()`` them)."""
    def check(_module, _args) -> None:
        window.check_preempted()

    return [m.register_forward_pre_hook(check) for name, m in model.named_modules() if PREEMPTION_POINTS.fullmatch(name)]


@dataclass(frozen=True)
class Admission:
    """Whether a background job may start now.

    Attributes:
        ok: start it now.
        never: it is longer than the longest gap between control forwards (waiting cannot help).
        expected_s: its expected duration (``None``: never measured).
        free_s: seconds until the next control forward is due, less the margin (``None``: no tick yet).
    """

    ok: bool
    never: bool
    expected_s: float | None
    free_s: float | None


class ControlWindow:
    """The time left before the control loop's next forward, and which background job fits in it.

    Args:
        period_s: the control tick period.
        ticks_per_forward: ticks between two control forwards when no tick is skipped (``n_action_steps``;
            1 with temporal ensembling).
        margin_s: slack kept free before the control forward (default: a tenth of a period).
        percentile: the percentile of the measured durations a job is expected to take.
        long_ticks / min_cpu_share / probe_s: the rule for long jobs (module docstring).
        clock: monotonic seconds; thread_clock: the calling thread's CPU seconds (tests inject both).
    """

    def __init__(self, period_s: float, ticks_per_forward: int = 1, *, margin_s: float | None = None,
                 percentile: float = 90.0, size: int = 50, long_ticks: float = 3.0, min_cpu_share: float = 0.8,
                 probe_s: float = 10.0, clock: Callable[[], float] = time.monotonic,
                 thread_clock: Callable[[], float] = time.thread_time) -> None:
        self.period_s = float(period_s)
        self.ticks_per_forward = max(1, int(ticks_per_forward))
        self.margin_s = 0.1 * self.period_s if margin_s is None else float(margin_s)
        self.percentile = float(percentile)
        self._size = int(size)
        self._clock = clock
        self._lock = threading.Lock()
        self._durations: dict[str, LatencyWindow] = {}
        self._seeds: dict[str, float] = {}
        self._due_at: float | None = None
        self._fired: deque[float] = deque(maxlen=16)  # wall times of the control timer's last firings
        self._tick_period_s = self.period_s  # see tick_period_s; updated once per firing
        self._control_running = False
        self._background: dict[str, int] = {}
        self._local = threading.local()  # .preemptible: this thread runs a preemptible background job
        self.long_ticks = float(long_ticks)
        self.min_cpu_share = float(min_cpu_share)
        self.probe_s = float(probe_s)
        self._thread_clock = thread_clock
        self._shares: dict[str, deque[float]] = {}
        self._last_start: dict[str, float] = {}
        self.held_back = 0  # long jobs not started because they found no free core
        self.overlaps = 0  # control forwards that started while a background job ran
        self.preempted = 0  # preemptible jobs stopped by a control forward

    # ------------------------------------------------------------------------------- measurements
    def seed(self, key: str, seconds: float) -> None:
        """An estimate for ``key`` before any run is measured (the warm-up's timing)."""
        with self._lock:
            self._seeds[key] = float(seconds)

    def record(self, key: str, seconds: float) -> None:
        """A measured duration of ``key`` (seconds)."""
        with self._lock:
            window = self._durations.setdefault(key, LatencyWindow(self._size))
        window.add(float(seconds))

    def expected_s(self, key: str) -> float | None:
        """The duration ``key`` is expected to take: the percentile of its measured runs, else its seed."""
        return self._stat(key, self.percentile)

    def median_s(self, key: str) -> float | None:
        """The median of ``key``'s measured runs (else its seed)."""
        return self._stat(key, 50.0)

    def _stat(self, key: str, q: float) -> float | None:
        with self._lock:
            window, seed = self._durations.get(key), self._seeds.get(key)
        if window is not None and len(window):
            return window.percentiles_ms((q,))[q] / 1e3
        return seed

    # ------------------------------------------------------------------------------- the control side
    def timer_fired(self, at: float) -> None:
        """The control timer fired at ``at`` (clock seconds; every firing, also those the loop was too busy for)."""
        with self._lock:
            self._fired.append(float(at))
            fired = list(self._fired)
        period = self.period_s
        if len(fired) >= 4:
            period = max(period, statistics.median(b - a for a, b in zip(fired, fired[1:])))
        self._tick_period_s = period

    @property
    def tick_period_s(self) -> float:
        """The control period on the wall clock: the nominal period, or the median interval between the timer's
        last firings (at least 4) where that is longer."""
        return self._tick_period_s

    @property
    def long_s(self) -> float:
        """A background job expected to take longer than this is *long* (``long_ticks`` wall-clock periods)."""
        return self.long_ticks * self.tick_period_s

    def tick_done(self, started_at: float, ticks_to_forward: int) -> None:
        """A control tick that started at ``started_at`` (clock seconds) ended; the control loop runs its next
        forward ``ticks_to_forward`` ticks after it (>= 1)."""
        period = self.tick_period_s
        with self._lock:
            self._due_at = started_at + max(1, int(ticks_to_forward)) * period

    @contextlib.contextmanager
    def control_forward(self) -> Iterator[None]:
        """Around the control loop's forward: no background job is admitted meanwhile. Never blocks."""
        with self._lock:
            self._control_running = True
            if any(self._background.values()):
                self.overlaps += 1
        try:
            yield
        finally:
            with self._lock:
                self._control_running = False

    # ------------------------------------------------------------------------------- the background side
    def longest_gap_s(self) -> float | None:
        """The longest time between two control forwards: ``ticks_per_forward`` periods less one control
        forward and the margin (``None`` before the control forward is measured)."""
        control = self.expected_s(CONTROL)
        if control is None:
            return None
        return self.ticks_per_forward * self.tick_period_s - control - self.margin_s

    def admit(self, key: str) -> Admission:
        """Whether ``key`` may start now (see the module docstring)."""
        now = self._clock()
        expected = self.expected_s(key)
        gap = self.longest_gap_s()
        with self._lock:
            due, running = self._due_at, self._control_running
        free = None if due is None else due - now - self.margin_s
        if expected is not None and gap is not None and expected > gap:
            return Admission(False, True, expected, free)
        if running or free is None:
            return Admission(False, False, expected, free)
        if expected is None:  # never measured: start it in a gap at least one control forward long
            control = self.expected_s(CONTROL)
            return Admission(free >= (control if control is not None else self.period_s), False, None, free)
        if expected > free:
            return Admission(False, False, expected, free)
        if expected > self.long_s and not self._core_free(key, now):  # long: the rule for a free core
            with self._lock:
                self.held_back += 1
            return Admission(False, False, expected, free)
        return Admission(True, False, expected, free)

    def cpu_share(self, key: str) -> float | None:
        """Median CPU share (thread CPU time / wall time) of ``key``'s last runs (``None``: not measured)."""
        with self._lock:
            shares = list(self._shares.get(key, ()))
        return statistics.median(shares) if shares else None

    def _core_free(self, key: str, now: float) -> bool:
        share = self.cpu_share(key)
        with self._lock:
            last = self._last_start.get(key)
        return share is None or share >= self.min_cpu_share or last is None or now - last >= self.probe_s

    def check_preempted(self) -> None:
        """Raise :class:`Preempted` in a preemptible background job while the control forward runs, or in a
        :meth:`cancellable` block once its predicate holds."""
        if getattr(self._local, "preemptible", False) and self._control_running:
            raise Preempted("the control forward started")
        cancelled = getattr(self._local, "cancelled", None)
        if cancelled is not None and cancelled():
            raise Preempted("cancelled")

    @contextlib.contextmanager
    def cancellable(self, cancelled: Callable[[], bool]) -> Iterator[None]:
        """A forward in this block (this thread) stops at its next model block once ``cancelled()`` holds (the
        async chunk whose observation a reset made stale)."""
        self._local.cancelled = cancelled
        try:
            yield
        finally:
            self._local.cancelled = None

    @contextlib.contextmanager
    def background(self, key: str, *, preemptible: bool = False) -> Iterator[None]:
        """Around an admitted background job: counted as running (for :attr:`overlaps`) and timed (a preempted
        run is not timed: it did not finish). ``preemptible``: :class:`Preempted` ends it when the control
        forward starts (the caller catches it)."""
        with self._lock:
            self._background[key] = self._background.get(key, 0) + 1
        self._local.preemptible = preemptible
        started, cpu_started = self._clock(), self._thread_clock()
        with self._lock:
            self._last_start[key] = started
        try:
            yield
        except Preempted:
            with self._lock:
                self.preempted += 1
            raise
        else:
            wall = self._clock() - started
            self.record(key, wall)
            if wall > 0:
                with self._lock:
                    shares = self._shares.setdefault(key, deque(maxlen=3))
                    shares.append(min(1.0, (self._thread_clock() - cpu_started) / wall))
        finally:
            self._local.preemptible = False
            with self._lock:
                self._background[key] -= 1

    def values(self) -> dict[str, str]:
        """Diagnostics: each job's expected duration (ms) and the overlap count."""
        with self._lock:
            keys = sorted(set(self._durations) | set(self._seeds))
        out = {"background_overlapped_control_forward": str(self.overlaps),
               "background_held_back_no_free_core": str(self.held_back),
               "background_preempted_by_control_forward": str(self.preempted)}
        for key in keys:
            expected = self.expected_s(key)
            out[f"expected_ms.{key}"] = f"{1e3 * expected:.1f}" if expected is not None else "nan"
            share = self.cpu_share(key)
            if share is not None:
                out[f"cpu_share.{key}"] = f"{share:.2f}"
        return out
