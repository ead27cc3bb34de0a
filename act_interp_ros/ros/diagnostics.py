"""Render the control loop's counters (:meth:`~act_interp_ros.pipeline.health.LoopStats.values`) as diagnostics."""

from __future__ import annotations

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from act_interp_ros.pipeline.health import LoopStats

__all__ = ["diagnostic_status"]


def diagnostic_status(stats: LoopStats, name: str, hardware_id: str, now_ns: int, commands_enabled: bool,
                      extra: dict[str, str]) -> DiagnosticStatus:
    """One DiagnosticStatus: lifetime counters and latencies; the level from the recent window."""
    health = stats.health(now_ns, commands_enabled)
    values = stats.values()
    values.update(extra)
    return DiagnosticStatus(level=bytes([health.level]),  # OK 0, WARN 1, ERROR 2 (a byte field)
                            name=name, message=health.message, hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=v) for k, v in values.items()])
