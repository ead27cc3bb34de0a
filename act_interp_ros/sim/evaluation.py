"""Closed-loop evaluation of an ACT checkpoint in the simulator, in three modes (issue 27).

* ``node``: the real ``act_interp_node`` (its console script, config/so101.yaml + config/so101_sim.yaml,
  shipped interpretation: attention every forward, side methods at ``side_rate_hz``) drives the simulated arm
  through the ROS bridge over DDS (:mod:`.bridge`), in lockstep simulated time;
* ``node_no_maps``: the same with the side methods and occlusion off (``side_rate_hz`` = ``occlusion_rate_hz`` = 0);
* ``plain``: the same checkpoint in a plain LeRobot loop: ``select_action`` on the simulator's observations,
  its action applied as is (no ROS, no limits, no interpretation).

Every mode runs the same held-out seeds. ``summary.json`` per mode: ``success_rate`` with its Wilson 95 %
interval, time to success, the closest approach of the gripper to the cube and the highest lift, the bridge's
counters and the node's last ``/diagnostics`` values. ``first_chunk_vs_plain``: how far the first action chunk
of each episode in the node modes is from ``plain``'s (policy units; the node limits each command to
``max_joint_step`` from the measured joints, a plain loop does not); ``first_command_vs_plain_limited``: the
first command against ``plain``'s first action with the node's limits applied (0 = the same action).
"""
from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import numpy as np

from act_interp_ros.sim.episodes import DEFAULT_EPISODE_STEPS, EXPERT_SEED_OFFSET
from act_interp_ros.sim.simulator import SimArm

__all__ = ["MODES", "evaluate", "plain_episode", "wilson_interval"]

logger = logging.getLogger(__name__)
MODES = ("node", "node_no_maps", "plain")


def config_dir() -> Path:
    """config/ of the source checkout, else the installed package's share/act_interp_ros/config."""
    import sys

    for d in (Path(__file__).resolve().parents[2] / "config", Path(sys.prefix) / "share" / "act_interp_ros" / "config"):
        if (d / "so101_sim.yaml").is_file():
            return d
    raise FileNotFoundError("config/so101_sim.yaml not found in the source tree nor in share/act_interp_ros/config")

NODE_OVERRIDES = {"node": {}, "node_no_maps": {"side_rate_hz": 0.0, "occlusion_rate_hz": 0.0}}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial success rate."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def plain_episode(arm: SimArm, loaded, seed: int, steps: int, first_commands: int) -> dict:
    """One episode of the plain LeRobot loop (``loaded``: the project's ``LoadedPolicy``)."""
    import torch
    from lerobot.utils.constants import OBS_IMAGES, OBS_STATE

    policy, pre, post = loaded.policy, loaded.preprocessor, loaded.postprocessor
    policy.reset()
    obs = arm.reset(seed)
    state0 = [float(v) for v in obs.state]
    first, commands, closest, lift, distance = None, [], float("inf"), 0.0, []
    for k in range(steps):
        batch = {f"{OBS_IMAGES}.{c}": torch.from_numpy(img).permute(2, 0, 1).float().div(255.0).unsqueeze(0)
                 for c, img in obs.images.items()}
        batch[OBS_STATE] = torch.from_numpy(obs.state.astype(np.float32)).unsqueeze(0)
        with torch.inference_mode():
            action = post(policy.select_action(pre(batch)))
        action = action.squeeze(0).cpu().numpy().astype(np.float64)
        if len(commands) < first_commands:
            commands.append([float(v) for v in action])
        obs = arm.step_policy(action)
        distance.append(float(np.linalg.norm(arm.tcp_pos() - arm.cube_pos())))
        closest = min(closest, distance[-1])
        lift = max(lift, obs.lift)
        if obs.success and first is None:
            first = k
    return {"seed": seed, "steps": steps, "success": first is not None, "first_success_step": first,
            "closest_approach_m": closest, "max_lift_m": lift, "first_commands": commands, "state0": state0,
            "distance_m": distance}


def _node_mode(mode: str, policy_path: Path, seeds: list[int], steps: int, first_commands: int,
               arm: SimArm) -> tuple[list[dict], dict]:
    from act_interp_ros.ros.node_process import NodeProcess, node_command
    from act_interp_ros.sim.bridge import BridgeConfig, SimBridge

    params = [config_dir() / "so101.yaml", config_dir() / "so101_sim.yaml"]
    node = NodeProcess(node_command(params, {"policy_path": str(policy_path), **NODE_OVERRIDES[mode]}))
    bridge = SimBridge(arm, BridgeConfig(command_timeout_s=30.0))
    try:
        if not bridge.wait_for_node(180):
            raise RuntimeError(f"act_interp_node did not come up: {node.output[-1500:]}")
        results = [bridge.run_episode(s, steps, first_commands).as_dict() for s in seeds]
        time.sleep(1.5)  # one more /diagnostics period
        return results, dict(bridge.node_diagnostics)
    finally:
        bridge.close()
        node.stop()
        node.cleanup()


def _summarise(results: list[dict], period_s: float, wall_s: float, diagnostics: dict | None) -> dict:
    n, wins = len(results), sum(r["success"] for r in results)
    times = [r["first_success_step"] * period_s for r in results if r["success"]]
    out = {"episodes": n, "successes": wins, "success_rate": wins / n if n else 0.0,
           "success_rate_95ci": list(wilson_interval(wins, n)),
           "time_to_success_s": {"median": float(np.median(times)) if times else None,
                                 "max": float(np.max(times)) if times else None},
           "wall_s": round(wall_s, 1)}
    for key in ("commands", "command_timeouts", "skipped_ticks", "stale_input_ticks"):
        if key in results[0]:
            out[key] = int(sum(r[key] for r in results))
    if diagnostics is not None:
        out["node_diagnostics"] = diagnostics
    out["closest_approach_m_median"] = float(np.median([r["closest_approach_m"] for r in results]))
    out["per_episode"] = [{k: v for k, v in r.items() if k not in ("first_commands", "state0", "distance_m")}
                          for r in results]
    return out


def node_joint_mapping():
    """The node's JointMapping under config/so101.yaml + config/so101_sim.yaml (its limits and max_joint_step)."""
    import yaml

    from act_interp_ros.inputs.calibration import resolve_joint_mapping
    from act_interp_ros.inputs.joint_mapping import JointMapping
    from act_interp_ros.settings import load_settings_yaml

    sim = yaml.safe_load((config_dir() / "so101_sim.yaml").read_text())["act_interp_node"]["ros__parameters"]
    sim.pop("use_sim_time", None)
    settings = load_settings_yaml(config_dir() / "so101.yaml", overrides={**sim, "policy_path": "user/sim_act"}, validate=False)
    return JointMapping.from_settings(resolve_joint_mapping(settings)[0])


def first_command_agreement(node_results: list[dict], plain_results: list[dict]) -> dict:
    """How far each node-mode episode's first command is from ``plain``'s first action after the node's own
    limits (max_joint_step from the same measured joints, joint limits): 0 when the node computed the same
    action from the same observation. Policy units."""
    mapping = node_joint_mapping()
    diffs = []
    for n, p in zip(node_results, plain_results):
        if not n["first_commands"] or not p["first_commands"]:
            continue
        limited, _ = mapping.limit(mapping.policy_to_ros(p["first_commands"][0]), mapping.policy_to_ros(p["state0"]))
        diffs.append(float(np.max(np.abs(np.array(n["first_commands"][0]) - mapping.ros_to_policy(limited)))))
    return {"episodes_compared": len(diffs), "max_abs_diff_policy_units": max(diffs) if diffs else None}


def evaluate(policy_path: str | Path, n_episodes: int, out: str | Path, modes=MODES,
             steps: int = DEFAULT_EPISODE_STEPS, first_seed: int = EXPERT_SEED_OFFSET) -> dict:
    """Run ``n_episodes`` held-out episodes per mode and write ``out/summary.json`` (returned)."""
    from act_interp_ros.core.loading import load_act_policy

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(first_seed, first_seed + n_episodes))
    arm = SimArm()
    loaded = load_act_policy(policy_path, device="cpu")
    chunk = int(loaded.policy.config.n_action_steps)
    summary: dict = {"policy_path": str(policy_path), "seeds": [seeds[0], seeds[-1]], "steps": steps,
                     "control_hz": arm.config.control_hz, "modes": {}}
    first: dict[str, np.ndarray] = {}
    raw: dict[str, list[dict]] = {}
    try:
        for mode in modes:
            started = time.monotonic()
            if mode == "plain":
                results, diag = [plain_episode(arm, loaded, s, steps, chunk) for s in seeds], None
            else:
                results, diag = _node_mode(mode, Path(policy_path), seeds, steps, chunk, arm)
            first[mode] = np.array([r["first_commands"][:chunk] for r in results], dtype=object)
            raw[mode] = results
            summary["modes"][mode] = _summarise(results, 1.0 / arm.config.control_hz, time.monotonic() - started,
                                                diag)
            logger.info("%s: %d/%d successes", mode, summary["modes"][mode]["successes"], n_episodes)
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        arm.close()
    if "plain" in first:
        agreement = {}
        for mode in (m for m in first if m != "plain"):
            diffs = [np.max(np.abs(np.array(a, float) - np.array(b, float))) for a, b in zip(first[mode], first["plain"])
                     if len(a) == len(b) == chunk]
            agreement[mode] = {"episodes_compared": len(diffs), "max_abs_diff_policy_units": float(max(diffs))
                               if diffs else None}
        summary["first_chunk_vs_plain"] = agreement
        summary["first_command_vs_plain_limited"] = {m: first_command_agreement(raw[m], raw["plain"])
                                                     for m in raw if m != "plain"}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
