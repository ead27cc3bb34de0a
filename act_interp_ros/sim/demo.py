"""``act_interp_demo --sim``: the closed loop, seen (issue 27, item 5).

The cached sim ACT (:func:`~act_interp_ros.sim.training.ensure_sim_policy`; trained first where missing) drives
the simulated SO-101 through the real ``act_interp_node`` over DDS, in lockstep simulated time (``node`` mode of
:mod:`.evaluation`), on held-out seeds; the bridge keeps every camera frame and the node's overlays of each step.
The same seeds then run in the ``plain`` LeRobot loop. Written to ``out``:

* ``sim_episode_<seed>.mp4``: per step, each camera's frame beside the node's attention overlay and its latest
  gradient x input overlay (side method, at its own rate), with the gripper-to-cube distance;
* ``sim_closed_loop.png``: the gripper-to-cube distance over time, node (solid) and plain (dashed), per episode,
  success marked;
* ``sim_summary.md`` / ``sim_summary.json``: the success table (Wilson 95 % intervals), closest approaches, the
  node's counters.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.sim.episodes import DEFAULT_EPISODE_STEPS, EXPERT_SEED_OFFSET

__all__ = ["OVERLAY_METHODS", "run_sim_demo"]

logger = logging.getLogger(__name__)
#: The node's overlays shown beside each frame.
OVERLAY_METHODS = ("attention", "gradient_x_input")
SCALE = 3  # 96x128 frames are drawn 3x larger


def run_sim_demo(out: str | Path, episodes: int = 3, steps: int = DEFAULT_EPISODE_STEPS,
                 first_seed: int = EXPERT_SEED_OFFSET, progress: bool = True,
                 policy: str | Path | None = None) -> dict[str, Any]:
    """Run ``episodes`` held-out seeds through the node and the plain loop; write the files above into ``out``.

    ``policy``: a ``pretrained_model/`` directory instead of the cached sim ACT (its ``../metrics.json``, where
    present, describes its training). Returns {"files": [names], "summary": the JSON summary, "overlays":
    {method: overlays received per episode}}.
    """
    from act_interp_ros.core.loading import load_act_policy
    from act_interp_ros.ros.node_process import NodeProcess, node_command
    from act_interp_ros.sim.bridge import BridgeConfig, SimBridge
    from act_interp_ros.sim.evaluation import NODE_OVERRIDES, config_dir, plain_episode, wilson_interval
    from act_interp_ros.sim.scene import CAMERA_NAMES
    from act_interp_ros.sim.simulator import SimArm
    from act_interp_ros.sim.training import ensure_sim_policy

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if policy is None:
        policy_path, metrics = ensure_sim_policy(progress=progress)
    else:
        policy_path = Path(policy)
        found = policy_path.parent / "metrics.json"
        metrics = json.loads(found.read_text()) if found.is_file() else {}
    seeds = list(range(first_seed, first_seed + episodes))
    arm = SimArm()
    files: list[str] = []
    node_results: list[dict] = []
    received: dict[str, list[int]] = {m: [] for m in OVERLAY_METHODS}
    try:
        started = time.monotonic()
        params = [config_dir() / "so101.yaml", config_dir() / "so101_sim.yaml"]
        node = NodeProcess(node_command(params, {"policy_path": str(policy_path), **NODE_OVERRIDES["node"]}))
        bridge = SimBridge(arm, BridgeConfig(command_timeout_s=30.0, record_overlays=OVERLAY_METHODS))
        try:
            if not bridge.wait_for_node(180):
                raise RuntimeError(f"act_interp_node did not come up: {node.output[-1500:]}")
            for seed in seeds:
                result = bridge.run_episode(seed, steps)
                node_results.append(result.as_dict())
                name = f"sim_episode_{seed}.mp4"
                _write_video(out / name, seed, bridge.frames, bridge.overlays, result.distance_m, arm.period_ns)
                files.append(name)
                logger.info("seed %d through the node: %s, closest approach %.1f cm", seed,
                            "success" if result.success else "no success", 100 * result.closest_approach_m)
                for method in OVERLAY_METHODS:
                    received[method].append(sum(len(bridge.overlays[(method, c)]) for c in CAMERA_NAMES))
                for kept in bridge.overlays.values():
                    kept.clear()
            time.sleep(1.5)  # one more /diagnostics period
            diagnostics = dict(bridge.node_diagnostics)
        finally:
            bridge.close()
            node.stop()
            node.cleanup()
        node_s = time.monotonic() - started
        loaded = load_act_policy(policy_path, device="cpu")
        started = time.monotonic()
        plain_results = [plain_episode(arm, loaded, s, steps, 0) for s in seeds]
        plain_s = time.monotonic() - started
    finally:
        arm.close()
    spec = metrics.get("spec", {})
    summary = {"policy_path": str(policy_path), "policy_training": {
                   "demonstrations": spec.get("n_demos"), "train_steps": spec.get("train_steps"),
                   "seconds": metrics.get("seconds", {})},
               "seeds": seeds, "steps": steps, "control_hz": 1e9 / arm.period_ns, "modes": {}}
    for mode, results, wall in (("node", node_results, node_s), ("plain", plain_results, plain_s)):
        wins = sum(bool(r["success"]) for r in results)
        summary["modes"][mode] = {
            "episodes": len(results), "successes": wins, "success_rate": wins / len(results),
            "success_rate_95ci": list(wilson_interval(wins, len(results))), "wall_s": round(wall, 1),
            "closest_approach_m": [round(r["closest_approach_m"], 4) for r in results],
            "max_lift_m": [round(r["max_lift_m"], 4) for r in results]}
    summary["modes"]["node"]["counters"] = {k: int(sum(r[k] for r in node_results)) for k in (
        "commands", "command_timeouts", "skipped_ticks", "stale_input_ticks")}
    summary["modes"]["node"]["node_diagnostics"] = {k: diagnostics[k] for k in (
        "inference_p50_ms", "maps_published", "side.gradient_x_input.runs", "side.gradcam.runs", "actions_clamped")
        if k in diagnostics}
    _write_plot(out / "sim_closed_loop.png", seeds, node_results, plain_results, arm.period_ns)
    (out / "sim_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out / "sim_summary.md").write_text(_markdown(summary))
    files += ["sim_closed_loop.png", "sim_summary.md", "sim_summary.json"]
    return {"files": files, "summary": summary, "overlays": received}


def _panel(frame: np.ndarray, label: str, bottom: bool = False) -> np.ndarray:
    """``frame`` drawn SCALE times larger with ``label`` at its top (or bottom: the node's overlays carry their
    own caption at the top)."""
    import cv2

    big = cv2.resize(frame, (frame.shape[1] * SCALE, frame.shape[0] * SCALE), interpolation=cv2.INTER_NEAREST)
    big = np.ascontiguousarray(big)
    y = big.shape[0] - 8 if bottom else 18
    cv2.putText(big, label, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(big, label, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return big


def _write_video(path: Path, seed: int, frames: list[tuple[int, dict[str, np.ndarray]]],
                 overlays: dict[tuple[str, str], dict[int, np.ndarray]], distance_m: list[float],
                 period_ns: int) -> None:
    """One row per camera: the frame, then each overlay method (the latest one at or before the step)."""
    import cv2

    writer = None
    latest: dict[tuple[str, str], tuple[int, np.ndarray]] = {}
    try:
        for k, (t, images) in enumerate(frames):
            rows = []
            for cam, frame in images.items():
                cells = [_panel(frame, f"{cam}  t={k * period_ns / 1e9:.2f}s")]
                for method in OVERLAY_METHODS:
                    kept = overlays.get((method, cam), {})
                    if t in kept:
                        latest[(method, cam)] = (t, kept[t])
                    if (method, cam) in latest:
                        at, image = latest[(method, cam)]
                        age = (t - at) / 1e9
                        cells.append(_panel(image, f"node: {method}" + (f" (from {age:.1f} s ago)" if age > 0 else ""),
                                            bottom=True))
                    else:
                        cells.append(_panel(np.zeros_like(frame), f"{method}: none yet"))
                rows.append(np.hstack(cells))
            canvas = np.vstack(rows)
            d = distance_m[k] if k < len(distance_m) else float("nan")
            bar = np.zeros((28, canvas.shape[1], 3), np.uint8)
            cv2.putText(bar, f"seed {seed}  step {k}  gripper to cube {100 * d:.1f} cm  (act_interp_node, closed loop)",
                        (6, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
            canvas = np.vstack([bar, canvas])
            if writer is None:
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 1e9 / period_ns,
                                         (canvas.shape[1], canvas.shape[0]))
            writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        if writer is not None:
            writer.release()


def _write_plot(path: Path, seeds: list[int], node: list[dict], plain: list[dict], period_ns: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, seed in enumerate(seeds):
        c = colours[i % len(colours)]
        for results, style, mode in ((node, "-", "node"), (plain, "--", "plain")):
            r = results[i]
            t = np.arange(len(r["distance_m"])) * period_ns / 1e9
            ax.plot(t, 100 * np.asarray(r["distance_m"]), style, color=c, label=f"seed {seed}, {mode}")
            if r["first_success_step"] is not None:
                k = r["first_success_step"]
                ax.plot(t[k], 100 * r["distance_m"][k], "*", color=c, markersize=15, markeredgecolor="black", zorder=5)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("gripper site to cube centre (cm)")
    ax.set_title("Closed loop: the node (solid) and a plain LeRobot loop (dashed); * = success")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _markdown(summary: dict[str, Any]) -> str:
    train = summary["policy_training"]
    built = (f" ({train['demonstrations']} expert demonstrations, {train['train_steps']} training steps, "
             f"{train['seconds']['total']:.0f} s to build)" if train["seconds"] else "")
    lines = [f"# Closed loop in the simulator ({len(summary['seeds'])} held-out seeds, {summary['steps']} steps "
             f"at {summary['control_hz']:g} Hz)", "", f"Policy: {summary['policy_path']}{built}.", "",
             "| mode | success | 95 % interval | closest approach (cm) | highest lift (cm) | wall time (s) |",
             "|---|---|---|---|---|---|"]
    for mode, m in summary["modes"].items():
        lo, hi = m["success_rate_95ci"]
        lines.append(f"| {mode} | {m['successes']}/{m['episodes']} | {100 * lo:.0f}-{100 * hi:.0f} % | "
                     f"{', '.join(f'{100 * v:.1f}' for v in m['closest_approach_m'])} | "
                     f"{', '.join(f'{100 * v:.1f}' for v in m['max_lift_m'])} | {m['wall_s']:.0f} |")
    node = summary["modes"]["node"]
    lines += ["", "Node counters over the episodes: " + ", ".join(f"{k} {v}" for k, v in node["counters"].items())
              + "; " + ", ".join(f"{k} {v}" for k, v in node["node_diagnostics"].items()) + ".", ""]
    return "\n".join(lines)
