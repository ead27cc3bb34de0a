"""The side methods' rate: ``side_rate_hz`` as given, or ``auto`` from the measured forward times (ROS-free).

``auto`` (the default) picks the highest rate whose expected CPU use stays under half of the CPU the control
loop and the attention maps leave spare, so a slow CPU gets rarer GradCAM / gradient x input maps instead
of a stuttering robot (a full-size ACT at 2 Hz needs 2.4 CPU-seconds per second on a 2-core CPU)::

    control  = threads x forward x control_rate / ticks_per_forward      CPU-s per s of the control forwards
    maps     = threads x min(1, map_forward x control_rate x (1 - 1 / ticks_per_forward))
               (the map worker's forward on the ticks without a control forward; one thread at most)
    spare    = usable CPUs - control - maps
    rate     = 0.5 x spare / (threads x one run of every side method)

rounded down to one of 2, 1, 0.5, 0.2, 0.1, 0.05 Hz (at most 2 Hz, the former default), and 0 (off) when
even 0.05 Hz does not fit or when a side method takes longer than the longest gap between two control
forwards (it could never start without delaying control, :mod:`act_interp_ros.runtime.control_window`).
Offline (no real time) ``auto`` means the 2 Hz cap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["AUTO", "CPU_FRACTION", "MAX_AUTO_RATE_HZ", "RATE_STEPS", "SideRate", "auto_side_rate", "usable_cpus"]

AUTO = "auto"
MAX_AUTO_RATE_HZ = 2.0
CPU_FRACTION = 0.5
RATE_STEPS = (2.0, 1.0, 0.5, 0.2, 0.1, 0.05)


@dataclass(frozen=True)
class SideRate:
    """The side timer's rate (Hz, 0 = off) and why, in one line for the log."""

    hz: float
    reason: str


def usable_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_side_rate(*, methods: Mapping[str, float], forward_s: float, map_forward_s: float, control_rate_hz: float,
                   ticks_per_forward: int, longest_gap_s: float | None, cpus: int, threads: int) -> SideRate:
    """The ``auto`` rate (see the module docstring).

    Args:
        methods: side method -> seconds of one run (measured).
        forward_s / map_forward_s: one control / map forward (seconds, measured).
        ticks_per_forward: ``n_action_steps`` (1 with temporal ensembling).
        longest_gap_s: the longest time between two control forwards (``None``: unknown).
        cpus / threads: usable CPUs, torch intra-op threads per forward.
    """
    if not methods:
        return SideRate(0.0, "side_methods is empty")
    slowest = max(methods, key=methods.get)
    if longest_gap_s is not None and methods[slowest] > longest_gap_s:
        return SideRate(0.0, f"auto: {slowest} takes {1e3 * methods[slowest]:.0f} ms, longer than the "
                             f"{1e3 * max(0.0, longest_gap_s):.0f} ms between two control forwards, so it could never "
                             "run without delaying control; side methods off (set side_rate_hz to force a rate)")
    n = max(1, int(ticks_per_forward))
    control = threads * forward_s * control_rate_hz / n
    maps = threads * min(1.0, map_forward_s * control_rate_hz * (1.0 - 1.0 / n))
    spare = cpus - control - maps
    run = threads * sum(methods.values())
    raw = CPU_FRACTION * spare / run if run > 0 and spare > 0 else 0.0
    hz = next((step for step in RATE_STEPS if step <= min(raw, control_rate_hz)), 0.0)
    what = (f"auto: control forward {1e3 * forward_s:.0f} ms every {n} tick(s) = {control:.2f} CPU, maps "
            f"{maps:.2f} CPU, {cpus} usable CPU(s) -> {max(spare, 0.0):.2f} CPU spare; one run of "
            f"{', '.join(methods)} {1e3 * sum(methods.values()):.0f} ms x {threads} thread(s); "
            f"{CPU_FRACTION:g} x spare / run = {raw:.2f} Hz")
    if hz == 0.0:
        return SideRate(0.0, f"{what}, below {RATE_STEPS[-1]:g} Hz: side methods off")
    return SideRate(hz, f"{what} -> {hz:g} Hz (steps {', '.join(f'{s:g}' for s in RATE_STEPS)}; at most "
                        f"{MAX_AUTO_RATE_HZ:g})")
