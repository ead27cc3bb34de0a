"""``act_interp_sim``: the simulated SO-101 (MuJoCo) for closed-loop runs of ``act_interp_node``.

Examples::

    act_interp_sim --episodes 5 --out /tmp/sim_run       # bridge: serve a running act_interp_node, 5 episodes
    act_interp_sim --expert 20                            # the scripted expert's success on 20 held-out seeds
    act_interp_sim --record /tmp/sim_demos --episodes 40  # expert demonstrations as a LeRobotDataset
    act_interp_sim --eval 10 --out /tmp/sim_eval          # the sim ACT in closed loop: node, node_no_maps, plain

The bridge publishes the cameras, /joint_states (lerobot_radians convention) and /clock in simulated time and
applies the node's commands; start the node with config/so101.yaml + config/so101_sim.yaml (docs/simulator.md).
Results: ``--out DIR`` gets ``summary.json`` (success rate and per-episode counters).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

logger = logging.getLogger("act_interp_sim")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="act_interp_sim", description=(
        "Simulated SO-101 (MuJoCo, so101-nexus) behind ROS 2 in lockstep simulated time; or the scripted "
        "expert's success; or expert demonstrations as a LeRobotDataset."))
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--expert", type=int, metavar="N", help="measure the scripted expert on N held-out seeds")
    mode.add_argument("--record", type=Path, metavar="DIR", help="write --episodes expert demonstrations as a LeRobotDataset in DIR")
    mode.add_argument("--eval", type=int, metavar="N", help=(
        "closed-loop evaluation on N held-out seeds in the modes node, node_no_maps, plain (starts "
        "act_interp_node itself); needs --out"))
    p.add_argument("--policy", default=None, help=(
        "ACT pretrained_model for --eval (default: the cached sim ACT, trained first where missing)"))
    p.add_argument("--modes", default="node,node_no_maps,plain", help="--eval modes, comma-separated")
    p.add_argument("--episodes", type=int, default=1, help="episodes to run or record (default 1)")
    p.add_argument("--seed", type=int, default=None,
                   help="first scene seed (default: held-out seeds for runs and --expert, 0 for --record)")
    p.add_argument("--steps", type=int, default=None, help="control steps per episode (default 150 = 5 s)")
    p.add_argument("--out", type=Path, default=None, help="the folder summary.json is written to (runs and --expert)")
    p.add_argument("--command-timeout", type=float, default=10.0,
                   help="wall seconds to wait for the node's command of one step (default 10)")
    p.add_argument("--node-timeout", type=float, default=180.0,
                   help="wall seconds to wait for the node to come up (default 180)")
    p.add_argument("--node-name", default="/act_interp_node", help="the node's name (its command topic's namespace)")
    return p


def _write(out: Path | None, summary: dict) -> None:
    text = json.dumps(summary, indent=2)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(text + "\n")
        logger.info("wrote %s", out / "summary.json")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 error, 2 usage)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    for name in ("episodes", "expert", "steps", "eval"):
        value = getattr(args, name)
        if value is not None and value < 1:
            logger.error("--%s must be >= 1, got %s", name, value)
            return 2
    if args.eval is not None and args.out is None:
        logger.error("--eval needs --out DIR (summary.json is written there)")
        return 2
    from act_interp_ros.sim.scene import sim_unavailable_reason

    reason = sim_unavailable_reason()
    if reason:
        logger.error(reason)
        return 1
    from act_interp_ros.sim.episodes import DEFAULT_EPISODE_STEPS, EXPERT_SEED_OFFSET
    from act_interp_ros.sim.simulator import SimArm

    steps = args.steps or DEFAULT_EPISODE_STEPS
    if args.record is not None:
        from act_interp_ros.sim.recording import record_expert_dataset

        if args.record.exists():
            logger.error("output %s already exists; choose a new path or delete it first", args.record)
            return 1
        started = time.monotonic()
        ds = record_expert_dataset(args.record, args.episodes, seed=args.seed or 0, steps=steps)
        logger.info("%d demonstrations in %.0f s; failed seeds left out: %s", len(ds.episodes),
                    time.monotonic() - started, ds.failed_seeds or "none")
        return 0
    first = EXPERT_SEED_OFFSET if args.seed is None else args.seed
    if args.eval is not None:
        return _evaluate(args, first, steps)
    arm = SimArm()
    try:
        if args.expert is not None:
            from act_interp_ros.sim.episodes import expert_success

            started = time.monotonic()
            rate, episodes = expert_success(arm, range(first, first + args.expert), steps)
            summary = {"mode": "expert", "success_rate": rate, "episodes": len(episodes),
                       "seeds": [first, first + args.expert - 1], "wall_s": round(time.monotonic() - started, 1),
                       "first_success_step": {e.seed: e.first_success_step for e in episodes}}
            logger.info("scripted expert: %d/%d held-out seeds picked (%.0f %%)", sum(e.succeeded for e in episodes),
                        len(episodes), 100 * rate)
            _write(args.out, summary)
            return 0
        return _serve(arm, args, first, steps)
    finally:
        arm.close()


def _evaluate(args, first: int, steps: int) -> int:
    from act_interp_ros.sim.evaluation import MODES, evaluate

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        logger.error("--modes must be a comma-separated subset of %s, got %s", ",".join(MODES), args.modes)
        return 2
    policy = args.policy
    if policy is None:
        from act_interp_ros.sim.training import ensure_sim_policy

        path, metrics = ensure_sim_policy()
        policy = str(path)
        logger.info("the sim ACT %s (trained in %.0f s)", policy, metrics["seconds"]["total"])
    summary = evaluate(policy, args.eval, args.out, modes=modes, steps=steps, first_seed=first)
    for mode, s in summary["modes"].items():
        lo, hi = s["success_rate_95ci"]
        logger.info("%-13s success %d/%d (%.0f %%, 95 %% CI %.0f-%.0f %%)", mode, s["successes"], s["episodes"],
                    100 * s["success_rate"], 100 * lo, 100 * hi)
    return 0


def _serve(arm, args, first: int, steps: int) -> int:
    from act_interp_ros.sim.bridge import BridgeConfig, SimBridge

    bridge = SimBridge(arm, BridgeConfig(command_topic=f"{args.node_name}/joint_command", node_name=args.node_name,
                                         command_timeout_s=args.command_timeout))
    try:
        logger.info("waiting for %s (its command publisher) ...", args.node_name)
        if not bridge.wait_for_node(args.node_timeout):
            logger.error("no publisher on %s/joint_command after %.0f s: start act_interp_node with "
                         "config/so101.yaml and config/so101_sim.yaml (use_sim_time) on this ROS_DOMAIN_ID",
                         args.node_name, args.node_timeout)
            return 1
        results = []
        started = time.monotonic()
        for e in range(args.episodes):
            r = bridge.run_episode(first + e, steps)
            results.append(r)
            logger.info("episode %d (seed %d): %s at step %s; commands %d, skipped ticks %d, timeouts %d, stale %d",
                        e, r.seed, "success" if r.success else "no success", r.first_success_step, r.commands,
                        r.skipped_ticks, r.command_timeouts, r.stale_input_ticks)
        summary = {"mode": "node", "success_rate": sum(r.success for r in results) / len(results),
                   "episodes": [r.as_dict() for r in results], "wall_s": round(time.monotonic() - started, 1)}
        _write(args.out, summary)
        return 0
    finally:
        bridge.close()


if __name__ == "__main__":
    sys.exit(main())
