"""Render the control loop's counters (:class:`~act_interp_ros.pipeline.health.LoopStats`) as diagnostics."""

from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from act_interp_ros.pipeline.health import LoopStats

__all__ = ["diagnostic_status"]


def diagnostic_status(stats: LoopStats, name: str, hardware_id: str, now_ns: int, commands_enabled: bool,
                      extra: dict[str, str]) -> DiagnosticStatus:
    """One DiagnosticStatus: lifetime counters and latencies; the level from the recent window."""
    inf = stats.inference.percentiles_ms()
    maps = stats.map_inference.percentiles_ms()
    work = stats.tick_work.percentiles_ms()
    per = stats.periods.percentiles_ms()
    delay = stats.input_delay.percentiles_ms()
    health = stats.health(now_ns, commands_enabled)
    with stats.lock:
        values = {
            "tick_rate_hz": f"{stats.rate_hz(time.monotonic()):.2f}",
            "target_rate_hz": f"{1.0 / stats.period_s:.2f}",
            "ticks": str(stats.ticks),
            "ticks_with_action_computed": str(stats.ticks_ok),
            "late_ticks": str(stats.late_ticks),
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
            "skipped_ticks": str(sum(stats.skipped.values())),
            "tick_errors": str(stats.tick_errors),
            "consecutive_tick_errors": str(stats.consecutive_errors),
            "plan_resets": str(stats.plan_resets),
            "actions_published": str(stats.actions_published),
            "actions_clamped": str(stats.actions_clamped),
            "actions_not_commanded": str(stats.actions_held),
        }
        values.update({f"skipped.{k}": str(v) for k, v in sorted(stats.skipped.items())})
        values.update({k: str(v) for k, v in sorted(stats.counters.items())})
        for method, window in sorted(stats.side_latency.items()):
            p = window.percentiles_ms((50, 99))
            values[f"side.{method}.latency_p50_ms"] = f"{p[50]:.1f}"
            values[f"side.{method}.latency_p99_ms"] = f"{p[99]:.1f}"
    values.update(extra)
    return DiagnosticStatus(level=bytes([health.level]),  # OK 0, WARN 1, ERROR 2 (a byte field)
                            name=name, message=health.message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
