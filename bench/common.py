"""Shared benchmark plumbing: iteration counts, statistics, interleaved timing, models, machine description.

Every timed comparison in this suite is *interleaved*: each round runs every arm once, in an order that
rotates from round to round (A B, B A, ... / A B C, B C A, C A B, ...), so slow drift of the machine
(thermal, other processes, page cache) hits every arm alike. Ratios are reported as the median of the
per-round ratios (each one taken between calls seconds apart), with their p10-p90 / IQR as the spread.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.metadata
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("bench")

REPO_ROOT = Path(__file__).resolve().parents[1]
CAMERA_KEYS = ("observation.images.front", "observation.images.wrist")
FULL_HW = (480, 640)
CONTROL_RATE_HZ = 30.0
TICK_S = 1.0 / CONTROL_RATE_HZ

# --------------------------------------------------------------------------------------------------
# Iteration counts. "full" is sized for a quiet 2-core CPU where the full-size ACT forward takes ~0.33 s
# (~8-9 min in all); every loop also stops at its time budget (after its minimum), so a slower or busy
# machine still finishes in bounded time - the JSON records how many rounds each section really ran.
COUNTS: dict[str, dict[str, dict[str, float]]] = {
    "full": {
        "s1": {"warmup": 3, "rounds": 40, "min_rounds": 10, "budget_s": 75},
        "s2": {"warmup": 2, "rounds": 25, "min_rounds": 8, "budget_s": 90},
        "s3": {"warmup": 2, "rounds": 25, "min_rounds": 8, "budget_s": 75},
        "s4": {"warmup": 20, "rounds": 300, "min_rounds": 50, "budget_s": 60},
        "s5": {"warmup_ticks": 90, "ticks": 1200, "min_ticks": 1000, "baseline_s": 40},
        "s6": {"frames": 48, "batch_size": 8, "reps": 2, "warmup": 1},
        "s7": {"warmup_ticks": 150, "ticks": 2000, "sample_every": 50},
        "s8": {"frames": 48, "batch_size": 8, "reps": 2, "warmup": 1},
        "s9": {"occlusion_reps": 1, "deletion_reps": 2},
        "s10": {"runs": 3, "seconds": 12.0},
        "s11": {"repeats": 3, "seconds": 12.0, "models": ["demo", "full"], "async_demo": True},
    },
    "quick": {
        "s1": {"warmup": 1, "rounds": 3, "min_rounds": 2, "budget_s": 30},
        "s2": {"warmup": 1, "rounds": 2, "min_rounds": 1, "budget_s": 30},
        "s3": {"warmup": 1, "rounds": 2, "min_rounds": 1, "budget_s": 30},
        "s4": {"warmup": 3, "rounds": 20, "min_rounds": 5, "budget_s": 10},
        "s5": {"warmup_ticks": 30, "ticks": 150, "min_ticks": 150, "baseline_s": 8},
        "s6": {"frames": 8, "batch_size": 4, "reps": 1, "warmup": 1},
        "s7": {"warmup_ticks": 30, "ticks": 200, "sample_every": 20},
        "s8": {"frames": 8, "batch_size": 4, "reps": 1, "warmup": 1},
        "s9": {"occlusion_reps": 1, "deletion_reps": 1},
        "s10": {"runs": 1, "seconds": 3.0},
        "s11": {"repeats": 1, "seconds": 2.0, "models": ["tiny"]},
    },
}


# --------------------------------------------------------------------------------------------------
# Statistics
def summarize(values: Sequence[float], scale: float = 1.0) -> dict[str, float]:
    """n, median, mean, p10/p25/p75/p90, min, max of ``values * scale`` (4 significant digits)."""
    arr = np.asarray(values, dtype=np.float64) * scale
    if arr.size == 0:
        return {"n": 0}
    p10, p25, p50, p75, p90, p99 = np.percentile(arr, [10, 25, 50, 75, 90, 99])
    out = {"n": int(arr.size), "median": p50, "mean": arr.mean(), "p10": p10, "p25": p25, "p75": p75, "p90": p90,
           "p99": p99, "min": arr.min(), "max": arr.max()}
    return {k: (v if k == "n" else _sig(float(v))) for k, v in out.items()}


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}") if np.isfinite(x) else x


@dataclass
class Interleaved:
    """Per-arm wall times (s), one per round, in round order (index i of every arm = round i)."""

    samples: dict[str, list[float]]
    rounds: int
    stopped_by_budget: bool
    wall_s: float

    def stats_ms(self, arm: str) -> dict[str, float]:
        return summarize(self.samples[arm], 1e3)

    def paired_ratio(self, num: str, den: str) -> dict[str, float]:
        """Per-round ``num / den`` ratios summarised (median and spread)."""
        return summarize([a / b for a, b in zip(self.samples[num], self.samples[den])])


def interleaved(arms: dict[str, Callable[[], Any]], *, rounds: int, warmup: int, min_rounds: int = 1,
                budget_s: float | None = None, label: str = "") -> Interleaved:
    """Time each arm once per round, rotating the order; stop early once past ``budget_s`` (after ``min_rounds``)."""
    names = list(arms)
    for _ in range(int(warmup)):
        for name in names:
            arms[name]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    t0 = time.perf_counter()
    stopped = False
    done = 0
    for r in range(int(rounds)):
        k = r % len(names)
        gc.collect()
        for name in names[k:] + names[:k]:
            t = time.perf_counter()
            arms[name]()
            samples[name].append(time.perf_counter() - t)
        done = r + 1
        elapsed = time.perf_counter() - t0
        if done % max(1, int(rounds) // 5) == 0:
            log.info("  %s round %d/%d (%.0f s)", label, done, rounds, elapsed)
        if budget_s is not None and elapsed > budget_s and done >= min_rounds and done < rounds:
            log.warning("  %s: time budget %.0f s reached after %d of %d rounds", label, budget_s, done, rounds)
            stopped = True
            break
    return Interleaved(samples, done, stopped, time.perf_counter() - t0)


def target(name: str, value: float | None, op: str, limit: float) -> dict[str, Any]:
    """A target check for the JSON; ``met`` is None when the value is missing."""
    met = None
    if value is not None and np.isfinite(value):
        met = bool(value <= limit) if op == "<=" else bool(value >= limit)
    return {"name": name, "value": value, "op": op, "limit": limit, "met": met}


def row(label: str, stats: dict[str, float] | None = None, unit: str = "ms", *, value: float | None = None,
        spread: str | None = None, target_: dict[str, Any] | None = None) -> dict[str, Any]:
    """One table row: median with its p10-p90 spread (from ``stats``) or a single ``value``."""
    if stats is not None and stats.get("n", 0):
        value = stats["median"]
        spread = spread or f"p10-p90 {_fmt(stats['p10'])}-{_fmt(stats['p90'])}, n={stats['n']}"
    out: dict[str, Any] = {"label": label, "value": value, "unit": unit, "spread": spread or ""}
    if target_ is not None:
        out["target"] = f"{target_['op']} {target_['limit']:g}"
        out["met"] = target_["met"]
    return out


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 100 else f"{x:.0f}"


# --------------------------------------------------------------------------------------------------
# Models
def full_size_spec():
    """Default LeRobot ACT sizes (read from ``ACTConfig``'s defaults), two 480x640 cameras, 6-D state/action."""
    from lerobot.policies.act.configuration_act import ACTConfig

    from act_interp_ros.core.checkpoints import SmallACTSpec

    d = {f.name: f.default for f in dataclasses.fields(ACTConfig)}
    return SmallACTSpec(
        cameras={k: FULL_HW for k in CAMERA_KEYS},
        dim_model=d["dim_model"], n_heads=d["n_heads"], dim_feedforward=d["dim_feedforward"],
        n_encoder_layers=d["n_encoder_layers"], n_decoder_layers=d["n_decoder_layers"],
        chunk_size=d["chunk_size"], n_action_steps=d["n_action_steps"], vision_backbone=d["vision_backbone"],
    )


def small_spec():
    """The tests' small ACT (two 96x128 cameras, dim 32, 1+1 layers)."""
    from act_interp_ros.core.checkpoints import SmallACTSpec

    return SmallACTSpec()


def spec_for(model: str):
    """``full`` -> :func:`full_size_spec`; ``tiny`` (smoke tests only) -> :func:`small_spec`."""
    if model == "full":
        return full_size_spec()
    if model == "tiny":
        return small_spec()
    raise ValueError(f"model must be 'full' or 'tiny', got {model!r}")


def describe_spec(spec, policy=None) -> dict[str, Any]:
    """The sizes that matter for cost, for the JSON and the config table."""
    out = {
        "cameras": {k: f"{w}x{h}" for k, (h, w) in spec.cameras.items()},
        "state_dim": spec.state_dim, "action_dim": spec.action_dim, "dim_model": spec.dim_model,
        "n_heads": spec.n_heads, "dim_feedforward": spec.dim_feedforward,
        "n_encoder_layers": spec.n_encoder_layers, "n_decoder_layers": spec.n_decoder_layers,
        "chunk_size": spec.chunk_size, "n_action_steps": spec.n_action_steps, "backbone": spec.vision_backbone,
        "pretrained_backbone_weights": None,
        # ResNet layer4 stride 32: one encoder token per 32x32 patch, + latent + state.
        "encoder_tokens": 1 + int(spec.state_dim > 0) + sum(-(-h // 32) * -(-w // 32) for h, w in spec.cameras.values()),
    }
    if policy is not None:
        out["parameters_M"] = round(sum(p.numel() for p in policy.parameters()) / 1e6, 2)
    return out


def build_models(spec):
    """``(plain, wrapped)``: a bare lerobot ``ACTPolicy`` and an ``InterpretableACT`` around an identical copy.

    The copy is made before wrapping, so the plain policy carries none of the wrapper's hooks.
    """
    import copy

    from act_interp_ros.core import InterpretableACT
    from act_interp_ros.core.checkpoints import build_policy

    policy, pre, post = build_policy(spec)
    plain = copy.deepcopy(policy).eval()
    return plain, InterpretableACT(policy, pre, post)


def random_frames(shapes: dict[str, tuple[int, int]], seed: int = 0) -> dict[str, np.ndarray]:
    """camera key -> (H, W, 3) uint8 RGB noise frame."""
    rng = np.random.default_rng(seed)
    return {k: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k, (h, w) in shapes.items()}


def raw_observation(wrapped, seed: int = 0) -> dict[str, Any]:
    """A raw (unbatched, dataset-unit) observation for ``wrapped``, built with the engine's ObservationBuilder."""
    from act_interp_ros.core import ObservationBuilder

    rng = np.random.default_rng(seed)
    state = rng.normal(size=wrapped.state_dim).astype(np.float32) if wrapped.state_dim else None
    return ObservationBuilder(wrapped.config).build(random_frames(wrapped.image_shapes, seed), state)


# --------------------------------------------------------------------------------------------------
# Environment
def ros_environment(domain_id: int | None = None) -> dict[str, str]:
    """Keep ROS traffic on loopback in a private domain (set before rclpy is imported; inherited by children)."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain_id if domain_id is not None else 1 + (os.getpid() + 37) % 100)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return {k: os.environ[k] for k in ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID")}


def rss_bytes(pid: int | None = None) -> int:
    import psutil

    return int(psutil.Process(pid or os.getpid()).memory_info().rss)


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return sorted(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile", "fma") if f in flags)
    except OSError:
        pass
    return []


def _git() -> dict[str, Any]:
    def run(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10).stdout.strip()

    try:
        return {"commit": run("rev-parse", "--short", "HEAD"), "dirty": bool(run("status", "--porcelain"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def _cv2_threads() -> int | None:
    try:
        import cv2

        return int(cv2.getNumThreads())
    except Exception:  # noqa: BLE001 - informational only
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import psutil
    import torch

    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        affinity = os.cpu_count()
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    try:
        from rclpy.utilities import get_rmw_implementation_identifier

        rmw = get_rmw_implementation_identifier()
    except Exception:  # noqa: BLE001 - informational only
        rmw = None
    return {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "logical_cpus": psutil.cpu_count(logical=True),
        "physical_cpus": psutil.cpu_count(logical=False),
        "cpus_usable": affinity,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "lerobot": _version("lerobot"),
        "numpy": np.__version__,
        "opencv": _version("opencv-python-headless"),
        "opencv_threads": _cv2_threads(),
        "rclpy": _version("ros-rclpy") or _version("rclpy"),
        "rmw": rmw,
        "device": "cpu",
        "gpu": gpu,
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
        "git": _git(),
        "argv": sys.argv,
    }


# --------------------------------------------------------------------------------------------------
# A subscriber process standing in for RViz (bench/ros_sink.py)
def start_sink(topics: Sequence[str], types: Sequence[str] | None = None, timeout_s: float = 60.0,
               delay: bool = False) -> subprocess.Popen:
    """Start ``python -m bench.ros_sink`` on ``topics`` and wait until it has subscribed (``delay``: see there)."""
    cmd = [sys.executable, "-m", "bench.ros_sink", "--topics", *topics]
    if types:
        cmd += ["--types", *types]
    if delay:
        cmd.append("--delay")
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    t0 = time.monotonic()
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "READY":
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"the subscriber process did not start (after {time.monotonic() - t0:.0f} s): {line!r} {err[-2000:]}")
    return proc


def stop_sink(proc: subprocess.Popen) -> dict[str, Any]:
    """Stop the sink; return its ``{"counts": ..., "bytes": ...}`` (empty when it printed nothing)."""
    import json
    import signal

    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _err = proc.communicate()
    for line in reversed((out or "").splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return {}
