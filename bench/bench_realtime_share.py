"""Benchmark 11: the node's share of ticks with an action against a plain rclpy runner's, same bag, same CPU.

For each model, ``repeats`` times and in alternating order: the demo's bag (two 480x640 cameras at 30 fps,
joint states, ``/clock``) is played at rate 1 into

* ``plain``: ``bench/plain_runner.py`` (subscribe, LeRobot's ``select_action`` in the timer callback,
  publish; no interpretation), and
* ``node`` / ``node_async``: ``act_interp_node`` with the shipped config (side methods ``auto``, every map
  on), ``inference`` sync or async, commanding,

each with 1 torch thread and ``use_sim_time``. A subscriber in this process counts the actions each
publishes; the share is actions / (bag seconds x 30), the denominator of the demo's ``computed_fraction``.
The node's last ``/diagnostics`` gives its maps and the maps it skipped so that control is never delayed.

Models: ``demo`` (the known-answer ACT of section 10, front camera), ``full`` (LeRobot's default ACT sizes:
two 480x640 cameras, chunk 100, ``n_action_steps`` 100; random weights), ``tiny`` (smoke runs only).
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import CONTROL_RATE_HZ, REPO_ROOT, row, target

log = logging.getLogger("bench")

PLAIN_TOPIC = "/plain_runner/joint_command"
NODE_TOPIC = "/act_interp_node/joint_command"
ARMS = {"plain": None, "node": {"inference": "sync"}, "node_async": {"inference": "async"}}


def _checkpoint(ctx, model: str) -> Path:
    from act_interp_ros.core.checkpoints import build_act_checkpoint

    if model == "demo":
        from act_interp_ros.demo.model import ensure_model

        return Path(ensure_model(None, False, False)["path"])
    from bench.common import full_size_spec, small_spec

    path = ctx.workdir / f"share_{model}" / "pretrained_model"
    if not (path / "config.json").is_file():
        build_act_checkpoint(path, full_size_spec() if model == "full" else small_spec())
    return path


class _Counter:
    """Counts the actions on both action topics and keeps the node's last /diagnostics (own rclpy context)."""

    def __init__(self) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("bench_share_counter", context=self.context)
        self.counts = {PLAIN_TOPIC: 0, NODE_TOPIC: 0}
        self.diagnostics: dict[str, str] = {}
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for topic in self.counts:
            self.node.create_subscription(JointState, topic, lambda _m, t=topic: self._count(t), qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 10)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def _count(self, topic: str) -> None:
        self.counts[topic] += 1

    def _diag(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith(": control"):
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()
        self.thread.join(timeout=5)


def _play(bag_path: Path, topics: list[str], context) -> float:
    """Play the bag at rate 1 with /clock once every topic has a subscriber; returns the seconds it took."""
    import rclpy

    from act_interp_ros.bag.play import BagPlayer

    node = rclpy.create_node("bench_share_player", context=context)
    try:
        player = BagPlayer(bag_path, rate=1.0, clock=True, topics=topics, wait_for_subscribers=1, wait_timeout=180.0,
                           delay=0.5)
        t = time.monotonic()
        player.run(node)
        return time.monotonic() - t
    finally:
        node.destroy_node()


def _one_run(ctx, arm: str, ckpt: Path, cameras: dict[str, list[str]], bag, counter: _Counter) -> dict[str, Any]:
    from act_interp_ros.ros.node_process import NodeProcess, node_command

    log_path = ctx.workdir / f"share_{arm}_{int(time.time() * 1e3)}.log"
    if arm == "plain":
        cmd = [sys.executable, str(REPO_ROOT / "bench" / "plain_runner.py"), "--policy", str(ckpt), "--camera-topics",
               *cameras["camera_topics"], "--rate", str(CONTROL_RATE_HZ), "--threads", "1", "--use-sim-time",
               "--action-topic", PLAIN_TOPIC]
        topic = PLAIN_TOPIC
    else:
        cam_file = ctx.workdir / "share_cameras.yaml"
        cam_file.write_text(json.dumps({"act_interp_node": {"ros__parameters": cameras}}))
        cmd = node_command([REPO_ROOT / "config" / "so101.yaml", cam_file],
                           {"policy_path": str(ckpt), "use_sim_time": True, "input_qos": "reliable",
                            "torch_threads": 1, "control_rate_hz": CONTROL_RATE_HZ, **ARMS[arm]})
        topic = NODE_TOPIC
    proc = NodeProcess(cmd, log_path)
    counter.counts[topic] = 0
    counter.diagnostics = {}
    try:
        played_s = _play(bag.path, [*cameras["camera_topics"], "/joint_states"], counter.context)
        time.sleep(1.0)
        actions = counter.counts[topic]
        diag = dict(counter.diagnostics)
    finally:
        proc.stop()
    expected = bag.seconds * CONTROL_RATE_HZ
    out: dict[str, Any] = {"arm": arm, "actions": actions, "expected_ticks": round(expected),
                           "share": round(min(1.0, actions / expected), 4), "played_s": round(played_s, 1)}
    if arm == "plain":
        lines = [line for line in proc.output.splitlines() if line.startswith("{")]
        if lines:
            out["runner"] = json.loads(lines[-1])
    else:
        keys = ("ticks", "ticks_with_action_computed", "inference_p50_ms", "map_inference_p50_ms", "maps_published",
                "maps_yielded_to_control", "background_overlapped_control_forward", "side_rate_hz",
                "side.gradcam.runs", "side.gradient_x_input.runs", "side.gradcam.yielded_to_control",
                "side.gradient_x_input.yielded_to_control", "async.chunks", "async.stale_actions_dropped",
                "async.chunks_discarded", "async.chunks_cancelled", "maps_preempted_by_control",
                "background_held_back_no_free_core", "cpu_share.maps", "background_preempted_by_control_forward",
                "skipped_ticks", "plan_resets", "plan_gap_actions_dropped", "acted_on_late_frames")
        out["diagnostics"] = {k: diag[k] for k in keys if k in diag}
        out["diagnostics"].update({k: v for k, v in diag.items() if k.startswith("skipped.")})
        line = next((ln for ln in proc.output.splitlines() if "maps: attention on every" in ln), None)
        out["maps_line"] = line.split("]: ", 1)[-1] if line else None
    log.info("  %s: %d actions of %d ticks = %.1f%%%s", arm, actions, round(expected), 100 * out["share"],
             f" ({out['diagnostics']})" if arm != "plain" else f" ({out.get('runner')})")
    return out


def realtime_share(ctx) -> dict[str, Any]:
    """11. Share of 30 Hz ticks with an action: the node (sync, async) against a plain rclpy runner."""
    from act_interp_ros.demo.bag_cache import ensure_demo_bag
    from act_interp_ros.demo.run_demo import policy_camera_overrides

    c = ctx.counts["s11"]
    ctx.release_models()
    bag = ensure_demo_bag(float(c["seconds"]), progress=False)
    models = ctx.shared.get("s11_models") or (c["models"] if ctx.model_name == "full" else ["tiny"])
    counter = _Counter()
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for model in models:
            ckpt = _checkpoint(ctx, model)
            cameras = policy_camera_overrides(ckpt)
            arms = ["plain", "node"] + (["node_async"] if model != "demo" or c.get("async_demo") else [])
            results[model] = {arm: [] for arm in arms}
            for r in range(int(c["repeats"])):
                order = arms if r % 2 == 0 else list(reversed(arms))
                for arm in order:
                    log.info("section 11: model %s, repeat %d, %s", model, r + 1, arm)
                    results[model][arm].append(_one_run(ctx, arm, ckpt, cameras, bag, counter))
    finally:
        counter.close()

    rows, targets = [], []
    summary: dict[str, Any] = {}
    for model, arms in results.items():
        shares = {arm: [run["share"] for run in runs] for arm, runs in arms.items()}
        med = {arm: statistics.median(v) for arm, v in shares.items()}
        summary[model] = {arm: {"median": med[arm], "runs": v} for arm, v in shares.items()}
        for arm, v in shares.items():
            rows.append(row(f"{model}: {arm} ticks with an action (median of {len(v)})", None, "%",
                            value=round(100 * med[arm], 1), spread="runs: " + ", ".join(f"{100 * x:.1f}" for x in v)))
        gap = 100 * (med["plain"] - med["node"])
        t = target(f"{model}: node's share within 2 points of the plain runner's", gap, "<=", 2.0)
        targets.append(t)
        rows.append(row(f"{model}: plain - node (points)", None, "pt", value=round(gap, 1), target_=t))
    return {
        "title": f"Node vs a plain rclpy runner: ticks with an action ({c['seconds']:g} s demo bag at rate 1, 30 Hz, "
                 "1 torch thread)",
        "run": {"repeats": int(c["repeats"]), "seconds": float(c["seconds"]), "models": models},
        "metrics": {"summary": summary, "runs": results},
        "targets": targets,
        "rows": rows,
    }
