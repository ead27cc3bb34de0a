"""Start-up of the live loop (ROS-free): torch's thread count, and a warm-up that proves the policy runs."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from act_interp_ros.core import InterpretableACT, ObservationBuilder
from act_interp_ros.pipeline.side_methods import SideMethods

__all__ = ["StartupError", "WarmUp", "configure_torch_threads", "warm_up"]

logger = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """Configuration that cannot work; the message names the parameter and the expected value (exit 2)."""


def configure_torch_threads(requested: int) -> int:
    """Set torch's intra-op threads; returns the count in use.

    ``requested`` > 0 is used as is. 0 (automatic) keeps ``OMP_NUM_THREADS`` when the user set it, else uses
    half the CPUs this process may run on (at least 1): the control forward shares the machine with the map
    and side workers' forwards (each runs its own intra-op team), the executor and the rest of the robot's
    processes, and oversubscribed OpenMP threads spin against each other. Measured in the demo on 2 cores:
    node inference p50 21-23 ms with 1 thread vs 23-24 ms with 2 (BENCHMARKS.md).
    """
    if requested > 0:
        torch.set_num_threads(requested)
    elif not os.environ.get("OMP_NUM_THREADS"):
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        torch.set_num_threads(max(1, cpus // 2))
    return torch.get_num_threads()


@dataclass
class WarmUp:
    """What the warm-up measured (seconds): the whole warm-up, one policy forward, one run of each side method
    (each the second of two runs: the first pays torch's first-call costs). These seed the
    :class:`~act_interp_ros.runtime.control_window.ControlWindow` and the automatic ``side_rate_hz``."""

    total_s: float
    forward_s: float
    side_s: dict[str, float] = field(default_factory=dict)


def warm_up(policy: InterpretableACT, builder: ObservationBuilder, side_methods: SideMethods, source: str) -> WarmUp:
    """Run the policy (and each side method) twice on a blank observation of the policy's own shapes.

    Done before any timer exists, so the first real ticks do not pay torch's first-call costs (tens to
    hundreds of ms: allocator growth, kernel selection), and a policy that cannot run at all fails at start
    (:class:`StartupError`, naming ``source``). The second runs are timed (:class:`WarmUp`). The action queue
    is reset afterwards.
    """
    started = time.perf_counter()
    frames = {k: np.zeros((h, w, 3), np.uint8) for k, (h, w) in builder.image_shapes.items()}
    state = np.zeros(builder.state_dim, np.float32) if builder.state_dim else None
    env = np.zeros(builder.env_dim, np.float32) if builder.env_dim else None
    try:
        batch = policy.preprocess(builder.build(frames, state, env))
        with torch.inference_mode():
            policy.predict_chunk(batch)
            t = time.perf_counter()
            policy.predict_chunk(batch)
            forward_s = time.perf_counter() - t
    except Exception as exc:  # noqa: BLE001 - cannot run: say so at start, once
        raise StartupError(f"the policy from '{source}' failed on a blank observation of its own input shapes: "
                           f"{type(exc).__name__}: {exc}") from None
    finally:
        policy.reset()
    side_s: dict[str, float] = {}
    for method in side_methods.names:
        try:
            side_methods.attribute(method, batch)
            t = time.perf_counter()
            side_methods.attribute(method, batch)
            side_s[method] = time.perf_counter() - t
        except Exception as exc:  # noqa: BLE001 - a side method never stops control; its ticks will say why
            logger.warning(f"warm-up of side method {method} failed: {type(exc).__name__}: {exc}")
    return WarmUp(time.perf_counter() - started, forward_s, side_s)
