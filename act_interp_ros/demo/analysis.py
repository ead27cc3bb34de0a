"""Numbers the demo summary reports from what the recorder received (diagnostics, proprio attention)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

DIAG_COUNTERS = ("ticks", "ticks_with_action_computed", "late_ticks", "skipped_ticks", "plan_resets",
                 "maps_published", "maps_superseded", "maps_yielded_to_control", "side.gradcam.runs", "side.gradient_x_input.runs",
                 "side.skipped_busy", "side.skipped_no_new_tick", "side.gradcam.failures", "tick_errors")
DIAG_LATENCIES = ("tick_rate_hz", "inference_p50_ms", "inference_p99_ms", "map_inference_p50_ms",
                  "map_inference_p99_ms", "tick_work_p50_ms", "tick_work_p99_ms", "side.gradcam.latency_p50_ms",
                  "side.gradient_x_input.latency_p50_ms")


def _number(v: str) -> float | int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else f


def last_diagnostic_values(rec) -> dict[str, str]:
    """key -> value of the node's last /diagnostics message (all its statuses merged; {} when none came)."""
    values: dict[str, str] = {}
    if rec.diagnostics:
        for v in rec.diagnostics[-1][1].values():
            values.update(v)
    return values


def diagnostics_summary(rec, timeline) -> dict[str, Any]:
    """The node's last /diagnostics status: tick counters, skipped ticks by reason, GradCAM, latencies.

    The node's diagnostics timer runs on ROS time (``use_sim_time``), so the last message is from the
    last whole diagnostics period of the bag; ``as_of_bag_time_s`` says when.
    """
    if not rec.diagnostics:
        return {}
    t_ns = rec.diagnostics[-1][0]
    values = last_diagnostic_values(rec)
    statuses = rec.diagnostics[-1][1]
    out: dict[str, Any] = {"messages": len(rec.diagnostics), "as_of_bag_time_s": round(timeline.rel_s(t_ns), 3),
                           "level": _number(values.get("_level", "")), "message": values.get("_message", "")}
    out["counters"] = {k: _number(values[k]) for k in DIAG_COUNTERS if k in values}
    out["skipped_by_reason"] = {k.split(".", 1)[1]: _number(v) for k, v in values.items() if k.startswith("skipped.")}
    out["bad_input"] = {k.split(".", 1)[1]: _number(v) for k, v in values.items() if k.startswith("bad_input.")}
    out["latency"] = {k: _number(values[k]) for k in DIAG_LATENCIES if k in values}
    out["torch_threads"] = _number(values.get("torch_threads", ""))
    out["last_status"] = statuses
    return out


def tick_summary(rec, timeline, control_rate_hz: float) -> dict[str, Any]:
    """Every tick the node reported on ``~/tick_status`` while the bag played: computed vs skipped, maps.

    ``expected`` = bag seconds x control rate: the ticks a node that never falls behind runs. ``computed_fraction``
    = ticks with an action computed (in observe-only mode: the action it would have published) / expected;
    ``maps_fraction`` = attention maps published / expected.
    """
    start, end = timeline.start_ns, timeline.start_ns + round(len(timeline) / timeline.fps * 1e9)
    ticks = [(k, t, m) for k, t, m in rec.ticks if start <= t <= end]
    expected = (end - start) / 1e9 * control_rate_hz
    computed = sum(1 for _, _, m in ticks if m == "ok")
    skipped: dict[str, int] = defaultdict(int)
    for _, _, m in ticks:
        if m != "ok":
            skipped[m.split(":", 1)[0]] += 1
    maps = max((len(v) for v in rec.camera_share.values()), default=0)
    return {
        "control_rate_hz": control_rate_hz,
        "expected": round(expected, 1),
        "reported": len(ticks),
        "computed": computed,
        "skipped_by_kind": dict(sorted(skipped.items())),
        "maps": maps,
        "computed_fraction": round(min(1.0, computed / expected), 3) if expected > 0 else None,
        "maps_fraction": round(min(1.0, maps / expected), 3) if expected > 0 else None,
    }


def proprio_summary(rec, timeline) -> dict[str, Any]:
    values = np.array([s.value for s in rec.proprio], dtype=np.float64)
    out: dict[str, Any] = {"count": int(values.size)}
    if values.size:
        out.update(mean=float(values.mean()), min=float(values.min()), max=float(values.max()))
    else:
        out.update(mean=None, min=None, max=None)
    per_phase: dict[str, list[float]] = defaultdict(list)
    for s in rec.proprio:
        per_phase[timeline.phase[timeline.index_at(s.received_ns)]].append(s.value)
    from act_interp_ros.synthetic import PHASES

    out["per_phase"] = {p: {"mean": float(np.mean(per_phase[p])), "count": len(per_phase[p])}
                        for p in PHASES if per_phase.get(p)}
    return out


class ProprioLookup:
    """Proprio attention of the tick that produced an overlay, matched by receipt time (same tick)."""

    def __init__(self, rec) -> None:
        samples = sorted(rec.proprio, key=lambda s: s.received_ns)
        self.t = np.array([s.received_ns for s in samples], dtype=np.int64)
        self.v = np.array([s.value for s in samples], dtype=np.float64)

    def near(self, t_ns: int, max_dt_s: float = 0.1) -> float | None:
        if not len(self.t):
            return None
        i = int(np.searchsorted(self.t, t_ns))
        best = min((j for j in (i - 1, i) if 0 <= j < len(self.t)), key=lambda j: abs(int(self.t[j]) - t_ns))
        return float(self.v[best]) if abs(int(self.t[best]) - t_ns) <= max_dt_s * 1e9 else None

    def after(self, t_ns: int, max_dt_s: float = 0.2) -> float | None:
        if not len(self.t):
            return None
        i = int(np.searchsorted(self.t, t_ns))
        if i < len(self.t) and self.t[i] - t_ns <= max_dt_s * 1e9:
            return float(self.v[i])
        return None
