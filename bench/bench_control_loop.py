"""Benchmarks 5 and 7: the real node's control-loop timing at 30 Hz, and its memory over 2000 ticks.

The node runs as its own process, started exactly as ``ros2 run act_interp_ros act_interp_node`` would
start it (``act_interp_ros.ros.node_main`` with ``--ros-args --params-file config/so101.yaml``), on the
small ACT checkpoint (48x64 policy images, see LOOP_POLICY_HW) at the shipped 30 Hz. This process feeds it
like a robot would:

* a camera thread publishes two rgb8 ``sensor_msgs/Image`` (480x640 by default, as the SO-101 cameras
  send; the node resizes them to the policy's size) and a ``JointState`` at the control rate on absolute-time
  deadlines, stamped with the current time. Feeder and node use RELIABLE QoS (``input_qos: reliable``), as
  the demo does: with best effort, Fast DDS drops fragments of 921 kB frames on a loaded 2-core loopback
  (a first run lost 10-15% of the ticks to ``stale``/``skew``), and this section measures the node, not
  DDS's delivery of large best-effort messages;
* a subscriber process (``bench/ros_sink.py``, standing in for RViz) subscribes to the node's attention
  overlays and, with the side timer on, to the overlays of every side method (GradCAM and gradient x
  input at 2 Hz, the shipped ``side_methods``), so the node does the full work (overlays are only
  rendered while someone subscribes);
* this process subscribes to the node's joint command (one message per processed tick) and to
  ``/diagnostics``.

Timing: the node's own tick periods (the start of each tick on its control thread, p50/p99 over its last
300 ticks) and counters over the measured ticks (ticks, late ticks, actions computed, maps published);
beside them, the period between joint commands as this process receives them (DDS delivery and this
process's own load included). Ticks the node skips (inputs ``stale`` or ``skew`` because DDS delivered a
frame late) are counted by reason: the node refuses to act on them by design. Memory is the node process's RSS
(psutil) sampled every ``sample_every`` ticks after the warm-up.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import CAMERA_KEYS, FULL_HW, REPO_ROOT, random_frames, row, start_sink, \
    stop_sink, summarize, target

log = logging.getLogger("bench")
NODE = "act_interp_node"
#: The control-loop model: the SO-101 layout (two cameras, 6 joints, dim 32) with 48x64 policy images
#: (the node resizes the fed 480x640 frames), chunk 10 / n_action_steps 5: a queue refill every 5th tick,
#: a harder case than LeRobot's default 100 / 100.
LOOP_POLICY_HW = (48, 64)
CONTROL_RATE_HZ = 30.0
TICK_S = 1.0 / CONTROL_RATE_HZ


def loop_spec():
    """The control-loop model: :func:`bench.common.small_spec` with ``LOOP_POLICY_HW`` images."""
    from act_interp_ros.core.checkpoints import SmallACTSpec

    return SmallACTSpec(cameras={k: LOOP_POLICY_HW for k in CAMERA_KEYS})


@dataclass
class NodeRun:
    """What one node run recorded."""

    side_hz: float
    command_rx: list[float] = field(default_factory=list)  # monotonic receive time of each joint command
    command_stamps: list[float] = field(default_factory=list)  # header stamp (s) of each joint command
    diagnostics: list[dict[str, str]] = field(default_factory=list)  # per message: key -> value
    rss: list[tuple[int, int]] = field(default_factory=list)  # (commands received so far, RSS bytes)
    diag_warm_index: int | None = None  # first /diagnostics message received after the warm-up
    published_frames: int = 0
    feeder_late: int = 0
    node_log: str = ""
    sink: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0


class _Feeder:
    """Publishes the camera images and joint states at the control rate from a thread (absolute deadlines)."""

    def __init__(self, node, image_hw: tuple[int, int]) -> None:
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image, JointState

        from act_interp_ros.ros.image_encoding import encode_rgb_image
        from act_interp_ros.settings import camera_name

        self.node = node
        frames = random_frames({k: image_hw for k in CAMERA_KEYS}, seed=3)
        self.images = {}
        self.pubs = {}
        for key in CAMERA_KEYS:
            name = camera_name(key)
            msg = encode_rgb_image(frames[key])  # built once; only the stamp changes per frame (like a driver)
            msg.header.frame_id = f"{name}_camera"
            self.images[key] = msg
            self.pubs[key] = node.create_publisher(Image, f"/camera/{name}/image_raw",
                                                   QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
        self.joint_pub = node.create_publisher(JointState, "/joint_states", 10)
        self.joints = JointState()
        self.joints.name = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
        self.joints.position = [0.0, -0.5, 0.5, 0.2, 0.0, 0.3]
        self.stop = threading.Event()
        self.count = 0
        self.late = 0
        self.thread = threading.Thread(target=self._run, name="bench-feeder", daemon=True)

    def _run(self) -> None:
        period = 1.0 / CONTROL_RATE_HZ
        next_t = time.monotonic()
        while not self.stop.is_set():
            stamp = self.node.get_clock().now().to_msg()
            for key, msg in self.images.items():
                msg.header.stamp = stamp
                self.pubs[key].publish(msg)
            self.joints.header.stamp = stamp
            self.joint_pub.publish(self.joints)
            self.count += 1
            next_t += period
            delay = next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self.late += 1
                if delay < -period:  # fell behind by more than a frame: drop, do not burst
                    next_t = time.monotonic()


def dds_baseline(seconds: float, image_hw: tuple[int, int]) -> dict[str, Any]:
    """The feeder's camera streams into a plain rclpy subscriber process (``bench.ros_sink --delay``): no node,
    no model. Returns the sink's counts and delay percentiles (receive - header stamp, ms)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from act_interp_ros.settings import camera_name

    rclpy.init()
    node = rclpy.create_node("bench_dds_baseline")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spin = threading.Thread(target=executor.spin, name="bench-spin", daemon=True)
    spin.start()
    feeder = _Feeder(node, image_hw)
    sink = start_sink([f"/camera/{camera_name(k)}/image_raw" for k in CAMERA_KEYS], delay=True)
    try:
        feeder.thread.start()
        time.sleep(seconds)
    finally:
        feeder.stop.set()
        feeder.thread.join(timeout=5)
        result = stop_sink(sink)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        spin.join(timeout=5)
    return {**result, "published_per_camera": feeder.count, "seconds": seconds}


def _node_command(ckpt: Path, side_hz: float) -> list[str]:
    from act_interp_ros.ros.node_process import node_command

    return node_command([REPO_ROOT / "config" / "so101.yaml"],
                        {"policy_path": str(ckpt), "side_rate_hz": float(side_hz), "diagnostics_period_s": 1.0,
                         "control_rate_hz": float(CONTROL_RATE_HZ), "input_qos": "reliable"})


def run_node(ctx, side_hz: float, warmup_ticks: int, ticks: int, sample_every: int | None,
             image_hw: tuple[int, int], startup_timeout_s: float = 120.0) -> NodeRun:
    """Start the node, feed it for ``warmup_ticks + ticks`` processed ticks, record, stop it."""
    import psutil
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import JointState

    from act_interp_ros.core.checkpoints import build_act_checkpoint
    from act_interp_ros.settings import camera_name

    ckpt = ctx.shared.get("loop_ckpt")
    if ckpt is None:
        ckpt = build_act_checkpoint(ctx.workdir / "loop_ckpt" / "pretrained_model", loop_spec())
        ctx.shared["loop_ckpt"] = ckpt
    run = NodeRun(side_hz)
    names = [camera_name(k) for k in CAMERA_KEYS]
    overlay_topics = [f"/{NODE}/attention/{n}/overlay" for n in names]
    if side_hz > 0:
        from act_interp_ros.settings import NodeSettings

        methods = NodeSettings.from_mapping({"policy_path": "user/bench"}).side_methods  # the shipped default
        overlay_topics += [f"/{NODE}/{m}/{n}/overlay" for m in methods for n in names]
    log_path = ctx.workdir / f"node_side{side_hz:g}.log"
    rclpy.init()
    node = rclpy.create_node("bench_control_loop")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    lock = threading.Lock()

    def on_command(msg) -> None:
        with lock:
            run.command_rx.append(time.monotonic())
            run.command_stamps.append(msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9)

    def on_diag(msg) -> None:
        entry = {kv.key: kv.value for st in msg.status for kv in st.values}
        with lock:
            run.diagnostics.append(entry)

    node.create_subscription(JointState, f"/{NODE}/joint_command", on_command, 100)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diag, 10)
    spin = threading.Thread(target=executor.spin, name="bench-spin", daemon=True)
    spin.start()
    feeder = _Feeder(node, image_hw)
    sink = start_sink(overlay_topics)
    log_file = open(log_path, "w")  # noqa: SIM115 - closed in finally
    proc = subprocess.Popen(_node_command(ckpt, side_hz), cwd=REPO_ROOT, stdout=log_file,
                            stderr=subprocess.STDOUT, env={**os.environ})
    t0 = time.monotonic()
    try:
        feeder.thread.start()
        total = warmup_ticks + ticks
        deadline = t0 + startup_timeout_s
        while len(run.command_rx) == 0:  # node start-up: import torch/lerobot, load, first tick
            if proc.poll() is not None:
                raise RuntimeError(f"the node exited with code {proc.returncode} before its first tick: "
                                   f"{log_path.read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no joint command from the node within {startup_timeout_s:.0f} s")
            time.sleep(0.1)
        log.info("  node up after %.1f s (side methods %g Hz); running %d + %d ticks", time.monotonic() - t0,
                 side_hz, warmup_ticks, ticks)
        ps = psutil.Process(proc.pid)
        next_sample = warmup_ticks
        stall_deadline = time.monotonic() + (total / CONTROL_RATE_HZ) * 3 + 30
        last_log = 0
        while True:
            n = len(run.command_rx)
            if run.diag_warm_index is None and n >= warmup_ticks:
                run.diag_warm_index = len(run.diagnostics)
            if sample_every and n >= next_sample:
                run.rss.append((n, int(ps.memory_info().rss)))
                next_sample += sample_every
            if n >= total:
                break
            if proc.poll() is not None:
                raise RuntimeError(f"the node exited with code {proc.returncode}: {log_path.read_text()[-2000:]}")
            if time.monotonic() > stall_deadline:
                raise RuntimeError(f"only {n} of {total} ticks produced a command in time")
            if n - last_log >= 300:
                last_log = n
                log.info("  %d/%d ticks", n, total)
            time.sleep(0.02)
        if sample_every:
            run.rss.append((len(run.command_rx), int(ps.memory_info().rss)))
        time.sleep(1.2)  # one more diagnostics period
    finally:
        feeder.stop.set()
        feeder.thread.join(timeout=5)
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()
        run.sink = stop_sink(sink)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
        spin.join(timeout=5)
    run.published_frames, run.feeder_late = feeder.count, feeder.late
    run.node_log = log_path.read_text()[-4000:]
    run.wall_s = time.monotonic() - t0
    return run


def _diag_float(d: dict[str, str], key: str) -> float | None:
    try:
        return float(d[key])
    except (KeyError, ValueError):
        return None


def _timing(run: NodeRun, warmup_ticks: int) -> dict[str, Any]:
    """Command periods as received here (after the warm-up), and the node's counters over the same span."""
    times = np.asarray(run.command_rx[warmup_ticks:], dtype=np.float64)
    periods_ms = np.diff(times) * 1e3
    late = periods_ms > 1.5 * TICK_S * 1e3
    stats = summarize(periods_ms)
    out: dict[str, Any] = {
        "source": "joint_command receive times in the bench (what a driver sees; DDS delivery jitter included)",
        "commands": int(times.size),
        "period_ms": stats,
        "p99_over_p50": round(stats["p99"] / stats["median"], 3) if stats.get("median") else None,
        "late_commands": int(late.sum()),
        "late_pct": round(100.0 * late.mean(), 3) if late.size else None,
        "achieved_hz": round((times.size - 1) / (times[-1] - times[0]), 3) if times.size > 1 else None,
        "feeder_frames": run.published_frames,
        "feeder_late_frames": run.feeder_late,
        "sink": run.sink,
    }
    if run.diagnostics:  # the node's own counters: every tick, also those that computed no action
        last = run.diagnostics[-1]
        first = run.diagnostics[min(run.diag_warm_index or 0, len(run.diagnostics) - 1)]

        def delta(key: str) -> int:
            return int((_diag_float(last, key) or 0) - (_diag_float(first, key) or 0))

        ticks = delta("ticks")
        node = {k: delta(k) for k in ("ticks", "late_ticks", "skipped_ticks", "ticks_with_action_computed",
                                      "maps_published", "maps_superseded", "maps_yielded_to_control",
                                      "side.skipped_busy", "side.skipped_no_new_tick")}
        node.update({
            "late_pct": round(100.0 * node["late_ticks"] / ticks, 3) if ticks > 0 else None,
            "computed_pct": round(100.0 * node["ticks_with_action_computed"] / ticks, 2) if ticks > 0 else None,
            "maps_pct": round(100.0 * node["maps_published"] / ticks, 2) if ticks > 0 else None,
            **{k: _diag_float(last, k) for k in (
                "tick_period_p50_ms", "tick_period_p99_ms", "inference_p50_ms", "inference_p99_ms",
                "map_inference_p50_ms", "map_inference_p99_ms", "tick_work_p50_ms", "tick_work_p99_ms",
                "input_delay_p50_ms", "input_delay_p99_ms")},
            "side": {k: v for k, v in last.items() if k.startswith("side.")},
            "last_diagnostics": last,
        })
        out["node"] = node
    return out


def control_loop(ctx) -> dict[str, Any]:
    """5. Command period p50/p99, late ticks, actions and maps per tick: side methods off and at 2 Hz."""
    c = ctx.counts["s5"]
    image_hw = tuple(c.get("image_hw", FULL_HW))
    ctx.release_models()  # the node is its own process; keep this one light
    want_memory = 7 in ctx.shared.get("sections", [])
    c7 = ctx.counts["s7"]
    out: dict[str, Any] = {}
    rows = []
    targets = []
    base = dds_baseline(float(c["baseline_s"]), image_hw)
    out["dds_baseline"] = base
    d = base.get("delay_ms") or {}
    received = sum((base.get("counts") or {}).values())
    rows.append(row("no node (DDS baseline): the same 2 camera streams into a plain rclpy subscriber, delay p50", None,
                    "ms", value=d.get("p50"), spread=f"p90 {d.get('p90')} ms, p99 {d.get('p99')} ms, max {d.get('max')} "
                    f"ms; {received} of {2 * base['published_per_camera']} frames received"))
    for hz in (0.0, 2.0):
        warm, ticks = int(c["warmup_ticks"]), int(c["ticks"])
        sample_every = None
        if hz > 0 and want_memory:  # one long run serves section 7 too
            warm, ticks = max(warm, int(c7["warmup_ticks"])), max(ticks, int(c7["ticks"]))
            sample_every = int(c7["sample_every"])
        run = run_node(ctx, hz, warm, ticks, sample_every, image_hw)
        tm = _timing(run, warm)
        out[f"side_{hz:g}hz"] = tm
        if sample_every:
            ctx.shared["memory_run"] = (run, warm)
        label = "side methods off" if hz == 0 else f"GradCAM + gradient x input {hz:g} Hz"
        p = tm["period_ms"]
        node = tm.get("node") or {}
        p50, p99 = node.get("tick_period_p50_ms"), node.get("tick_period_p99_ms")
        ratio = round(p99 / p50, 3) if p50 and p99 else None
        t_ratio = target(f"p99/p50 tick period ({label}, node)", ratio, "<=", 1.5)
        t_late = target(f"late ticks % ({label}, node counter)", node.get("late_pct"), "<=", 1.0)
        if hz > 0:
            targets += [t_ratio, t_late]
        side = node.get("side") or {}
        skips = {k.split(".", 1)[1]: v for k, v in (node.get("last_diagnostics") or {}).items()
                 if k.startswith("skipped.")}
        rows += [
            row(f"{label}: tick period p50 / p99 (node: start of each tick, last 300 ticks)", None, "ms", value=p50,
                spread=f"p99 {p99} ms"),
            row(f"{label}: p99 / p50 tick period", None, "x", value=ratio, target_=t_ratio if hz > 0 else None),
            row(f"{label}: late ticks (> 1.5 periods after the previous, node counter), %", None, "%",
                value=node.get("late_pct"), spread=f"{node.get('late_ticks')} of {node.get('ticks')} ticks",
                target_=t_late if hz > 0 else None),
            row(f"{label}: ticks with an action computed, %", None, "%", value=node.get("computed_pct"),
                spread=f"{node.get('skipped_ticks')} skipped; whole run by reason: {skips or 'none'}"),
            row(f"{label}: input delay at the node (receive - header stamp) p50", None, "ms",
                value=node.get("input_delay_p50_ms"), spread=f"p99 {node.get('input_delay_p99_ms')} ms (last 300 msgs)"),
            row(f"{label}: command period as received here, p50 (p99 {p['p99']:.3g} ms, max {p['max']:.3g} ms)", p),
            row(f"{label}: ticks with maps published, %", None, "%", value=node.get("maps_pct"),
                spread=f"{node.get('maps_superseded')} superseded, {node.get('maps_yielded_to_control')} yielded "
                       "to a queue refill"),
            row(f"{label}: node inference (queue refill forwards) p50", None, "ms", value=node.get("inference_p50_ms"),
                spread=f"p99 {node.get('inference_p99_ms')} ms; map worker forward p50 "
                       f"{node.get('map_inference_p50_ms')} ms"),
            row(f"{label}: node control-thread work outside the forward p50", None, "ms",
                value=node.get("tick_work_p50_ms"), spread=f"p99 {node.get('tick_work_p99_ms')} ms"),
        ]
        if hz > 0:
            for m in ("gradcam", "gradient_x_input"):
                rows.append(row(f"{label}: {m} latency p50 (runs)", None, "ms",
                                value=_diag_float(side, f"side.{m}.latency_p50_ms"),
                                spread=f"{side.get(f'side.{m}.runs')} runs, {side.get('side.skipped_busy', 0)} timer "
                                       "firings skipped busy"))
    return {
        "title": "Control-loop timing of the live node at 30 Hz (small model, 48x64 policy images)",
        "model": "small",
        "run": {"ticks": int(c["ticks"]), "warmup_ticks": int(c["warmup_ticks"]), "image_hw": list(image_hw),
                "control_rate_hz": CONTROL_RATE_HZ},
        "metrics": out,
        "targets": targets,
        "rows": rows,
    }


def memory(ctx) -> dict[str, Any]:
    """7. Node RSS over ``ticks`` ticks after the warm-up (side methods at 2 Hz, overlays subscribed)."""
    c = ctx.counts["s7"]
    shared = ctx.shared.get("memory_run")
    if shared is None:
        ctx.release_models()
        warm = int(c["warmup_ticks"])
        run = run_node(ctx, 2.0, warm, int(c["ticks"]), int(c["sample_every"]), tuple(ctx.counts["s5"].get("image_hw", FULL_HW)))
        reused = False
    else:
        run, warm = shared
        reused = True
    ticks = np.array([n for n, _ in run.rss], dtype=np.float64)
    rss_mb = np.array([b for _, b in run.rss], dtype=np.float64) / 2**20
    growth = float(rss_mb[-1] - rss_mb[0]) if rss_mb.size else None
    slope = float(np.polyfit(ticks, rss_mb, 1)[0] * 1000) if rss_mb.size > 2 else None
    span = int(ticks[-1] - ticks[0]) if ticks.size else 0
    t = target(f"RSS growth over {span} ticks after warm-up (MB)", round(growth, 2) if growth is not None else None,
               "<=", 20.0)
    return {
        "title": "Memory: node RSS after warm-up (small model, side methods 2 Hz, overlays subscribed)",
        "model": "small",
        "run": {"ticks": span, "warmup_ticks": warm, "samples": int(rss_mb.size), "shared_with_section_5": reused},
        "metrics": {"rss_mb_start": round(float(rss_mb[0]), 2) if rss_mb.size else None,
                    "rss_mb_end": round(float(rss_mb[-1]), 2) if rss_mb.size else None,
                    "rss_mb_max": round(float(rss_mb.max()), 2) if rss_mb.size else None,
                    "growth_mb": growth, "slope_mb_per_1000_ticks": slope,
                    "samples": [[int(n), round(float(m), 2)] for n, m in zip(ticks, rss_mb)]},
        "targets": [t],
        "rows": [
            row("RSS after warm-up", None, "MB", value=round(float(rss_mb[0]), 1) if rss_mb.size else None),
            row(f"RSS growth over {span} ticks", None, "MB", value=round(growth, 2) if growth is not None else None,
                spread=f"max {rss_mb.max() - rss_mb[0]:.2f} MB above start" if rss_mb.size else "", target_=t),
            row("trend (least squares)", None, "MB/1000 ticks", value=round(slope, 3) if slope is not None else None),
        ],
    }
