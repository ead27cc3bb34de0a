"""The demo's real-time check: the node's ticks and inference against the same model's forward alone.

After the node has stopped (so nothing competes for the CPU), the demo times the unwrapped LeRobot
``ACTPolicy.predict_action_chunk`` of the same checkpoint, with the node's torch thread count, on an
observation of the policy's shape. The node's inference p50 (from its ``/diagnostics``) is then compared
with it, and the tick counts with the targets the node is built to meet at rate 1 on a 2-core CPU.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: name -> (op, limit): computed / maps are fractions of the 30 Hz ticks; the ratio is node / isolated p50.
TARGETS = {"computed_fraction": (">=", 0.95), "maps_fraction": (">=", 0.80), "inference_vs_isolated": ("<=", 1.3)}


@dataclass(frozen=True)
class ForwardTiming:
    """Wall time of ``n`` plain forwards (after ``warmup``), in milliseconds."""

    torch_threads: int
    n: int
    p10_ms: float
    p50_ms: float
    p90_ms: float


def isolated_forward(model_path: str | Path, torch_threads: int, n: int = 30, warmup: int = 5) -> ForwardTiming:
    """Time the unwrapped policy's forward (no grad, batch 1) with ``torch_threads`` intra-op threads.

    ``torch_threads`` <= 0 keeps torch's default. The process's thread count is restored afterwards.
    """
    import torch

    from act_interp_ros.core import ObservationBuilder
    from act_interp_ros.core.loading import load_act_policy

    loaded = load_act_policy(str(model_path), device="cpu")
    builder = ObservationBuilder(loaded.policy.config)
    rng = np.random.default_rng(0)
    frames = {k: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k, (h, w) in builder.image_shapes.items()}
    state = np.zeros(builder.state_dim, np.float32) if builder.state_dim else None
    env = np.zeros(builder.env_dim, np.float32) if builder.env_dim else None
    batch = loaded.preprocessor(builder.build(frames, state, env))
    old = torch.get_num_threads()
    if torch_threads > 0:
        torch.set_num_threads(torch_threads)
    try:
        times = []
        with torch.inference_mode():
            for i in range(warmup + n):
                t = time.perf_counter()
                loaded.policy.predict_action_chunk(batch)
                if i >= warmup:
                    times.append((time.perf_counter() - t) * 1e3)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(old)
    p10, p50, p90 = np.percentile(times, [10, 50, 90])
    return ForwardTiming(used, n, round(float(p10), 2), round(float(p50), 2), round(float(p90), 2))


def realtime_summary(ticks: dict[str, Any], latency: dict[str, Any], forward: ForwardTiming | None) -> dict[str, Any]:
    """The targets with their measured values and whether each is met (``None`` = not measured).

    Args:
        ticks: :func:`~act_interp_ros.demo.analysis.tick_summary`'s dict (computed / maps fractions).
        latency: the node's latencies from its last /diagnostics (``inference_p50_ms``).
        forward: the isolated forward timing, or None when it could not be measured.
    """
    node_p50 = latency.get("inference_p50_ms")
    ratio = None
    if forward is not None and isinstance(node_p50, (int, float)) and np.isfinite(node_p50) and forward.p50_ms > 0:
        ratio = round(float(node_p50) / forward.p50_ms, 3)
    values = {"computed_fraction": ticks.get("computed_fraction"), "maps_fraction": ticks.get("maps_fraction"),
              "inference_vs_isolated": ratio}
    targets = {}
    for name, (op, limit) in TARGETS.items():
        v = values[name]
        met = None if v is None else (v >= limit if op == ">=" else v <= limit)
        targets[name] = {"value": v, "op": op, "limit": limit, "met": met}
    return {"node_inference_p50_ms": node_p50, "isolated_forward": asdict(forward) if forward else None,
            "targets": targets}
