"""``act_interp_demo``: the command line of the demo (:mod:`act_interp_ros.demo.run_demo`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from act_interp_ros.demo.bag_cache import EPISODE_SECONDS
from act_interp_ros.demo.errors import DemoError
from act_interp_ros.demo.run_demo import DEFAULT_OUT, DEFAULT_SECONDS, PROG, DemoOptions, run_demo

logger = logging.getLogger("act_interp_ros.demo.run_demo")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run the live act_interp_node (observe-only) on a known-answer ACT model over a synthetic "
        "SO-101 bag, and write overlay videos, an attention plot, PNG stills and a summary to one folder. "
        "The first run trains the model (a few minutes on a laptop CPU); later runs reuse it.",
    )
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                   help=f"output folder (default ./{DEFAULT_OUT}); its demo files are replaced at the end")
    p.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                   help=f"length of the demo bag in seconds, {EPISODE_SECONDS:g} s per pick episode "
                   f"(default {DEFAULT_SECONDS:g}; 2..120)")
    p.add_argument("--rate", type=float, default=1.0,
                   help="playback speed factor (default 1.0 = real time)")
    p.add_argument("--no-gradcam", action="store_true", help="run the node with side_rate_hz:=0.0 (no GradCAM)")
    p.add_argument("--rebuild", action="store_true",
                   help="rebuild the cached known-answer model and demo bag instead of reusing them")
    p.add_argument("--policy", type=Path, default=None,
                   help="advanced: use this LeRobot pretrained_model directory instead of the known-answer model")
    p.add_argument("--config", type=Path, default=None,
                   help="advanced: node params file (default: the package's config/so101.yaml)")
    p.add_argument("--node-timeout", type=float, default=300.0, metavar="S",
                   help="seconds to wait for the node to load the policy and come up (default 300)")
    p.add_argument("--shortcut", action="store_true",
                   help="only the shadow test: train (or reuse) the control/shortcut ACT pair and write "
                   "OUT/shortcut/ (comparison stills and a summary); about 17 min the first time on a 2-core CPU "
                   "(training 2 x 6 min, evaluation 2 x 2 min), seconds when cached")
    p.add_argument("--sim", action="store_true",
                   help="only the closed loop: the sim ACT drives a simulated SO-101 (MuJoCo) through the node; writes "
                   "OUT/sim/ (a video per episode with the node's overlays, the success table, a plot). Needs the "
                   "sim extra (Python >= 3.12); the sim ACT trains on first use (about an hour on a 2-core CPU)")
    p.add_argument("--sim-episodes", type=int, default=3, metavar="N", help="--sim: held-out episodes (default 3)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    return p


# -------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit codes: 0 ok, 1 failure (one message), 2 usage error, 130 interrupted."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # e.g. started as a background job of a script:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C / SIGINT must still stop us cleanly
    level = logging.WARNING if args.quiet else logging.INFO
    root = logging.getLogger()
    handler = None
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    old_level = root.level
    root.setLevel(level)
    opts = DemoOptions(out=args.out, seconds=args.seconds, rate=args.rate, gradcam=not args.no_gradcam,
                       rebuild=args.rebuild, policy=args.policy, config=args.config,
                       node_timeout_s=args.node_timeout, progress=not args.quiet)
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        if old_term in (signal.SIG_DFL, None):  # SIGTERM ends the demo like Ctrl-C, with clean-up
            signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread
        old_term = None
    try:
        if args.shortcut:
            return _shortcut(args.out / "shortcut", progress=not args.quiet)
        if args.sim:
            return _sim(args.out / "sim", args.sim_episodes, progress=not args.quiet)
        summary = run_demo(opts)
    except KeyboardInterrupt:
        logger.error("interrupted; the node was stopped and no output was written")
        return 130
    except DemoError as exc:
        logger.error("demo failed: %s", exc)
        return 1
    except Exception as exc:  # noqa: BLE001 - one clear message instead of a traceback
        logger.debug("demo failed", exc_info=True)
        logger.error("demo failed: %s: %s (run with a debugger or see the log above)", type(exc).__name__, exc)
        return 1
    finally:
        if old_term in (signal.SIG_DFL, None):
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            except ValueError:
                pass
        root.setLevel(old_level)
        if handler is not None:
            root.removeHandler(handler)
    _print_result(summary)
    return 0


def _shown(out: Path) -> str:
    """``out`` as the user should read it: relative to the working directory when inside it."""
    rel = os.path.relpath(out)
    return str(out) if rel.startswith("..") else rel


def _sim(out: Path, episodes: int, progress: bool) -> int:
    """``--sim``: the closed loop through the node in the simulator, seen (videos, success table, plot)."""
    import importlib.util

    missing = [m for m in ("mujoco", "so101_nexus") if importlib.util.find_spec(m) is None]
    if missing:
        raise DemoError(f"--sim needs {', '.join(missing)}: install the sim extra (pip install -e '.[sim]', Python "
                        ">= 3.12; scripts/setup_env.sh does it for .venv)")
    if episodes < 1:
        raise DemoError(f"--sim-episodes must be at least 1, got {episodes}")
    from act_interp_ros.sim.demo import run_sim_demo

    result = run_sim_demo(out, episodes=episodes, progress=progress)
    rel = _shown(out)
    print(f"\nact_interp_demo --sim: outputs in {rel}/: " + ", ".join(result["files"]))
    for mode, m in result["summary"]["modes"].items():
        lo, hi = m["success_rate_95ci"]
        print(f"  {mode:<6} {m['successes']}/{m['episodes']} successes (95 % interval {100 * lo:.0f}-{100 * hi:.0f} %), "
              f"closest approach {min(m['closest_approach_m']) * 100:.1f} cm")
    return 0


def _shortcut(out: Path, progress: bool) -> int:
    """``--shortcut``: the shadow test's comparison stills and summary (train the pair on first use)."""
    from act_interp_ros.demo.shortcut_stills import write_shortcut_report

    result = write_shortcut_report(out, progress=progress)
    rel = _shown(out)
    print(f"\nact_interp_demo --shortcut: outputs in {rel}/: " + ", ".join(result["files"]))
    for name, ev in result["evaluations"].items():
        gxi = ev.contrast("gradient_x_input")
        print(f"  {name:<8} follows the {ev.follows} ({ev.intervention_ratio:.1f}x); gradient x input puts more mass "
              f"on the shadow than on the cube in {gxi.cue_beats_cube:.0%} of frames; with the shadow moved its "
              f"chunk heads for the shadow in {ev.heads_for_cue:.0%}")
    return 0


def _print_result(s: dict[str, Any]) -> None:
    out = Path(s["output_dir"])
    rel = _shown(out)
    counts = s["overlays_received"]
    p = s["proprio_attention"]
    ticks = s.get("ticks") or {}
    lines = [
        "",
        f"act_interp_demo finished in {s['timings_s'].get('total', 0):.0f} s. Outputs in {rel}/:",
        "  overview.mp4                 attention and each side method (rows) for each camera, bag time",
        "  " + ", ".join(f for f in s["files"] if f.endswith(".mp4") and f != "overview.mp4"),
        "  attention_plot.png           proprio and per-camera attention share over time",
        "  " + ", ".join(f for f in s["files"] if f.startswith("still_")),
        "  summary.md, summary.json     numbers (model error, ticks, maps, timings)",
        "overlays received: " + ", ".join(f"{m} {sum(v.values())}" for m, v in counts.items())
        + (f"; mean proprio attention {p['mean']:.1%}" if p.get("mean") is not None else ""),
    ]
    for method, m in ((s.get("maps") or {}).get("methods") or {}).items():
        lines.append(f"  {method:<20} on the target {m['target_mass_vs_uniform'] or 0:5.1f}x uniform, "
                     f"target > distractor {100 * (m['target_beats_distractor'] or 0):3.0f}% of frames, "
                     f"faithfulness {m['faithfulness'] or 0:.2f}x")
    if ticks.get("computed_fraction") is not None:
        lines.append(f"the node computed an action for {ticks['computed_fraction']:.0%} of its "
                     f"{ticks['control_rate_hz']:g} Hz ticks and published maps for {ticks['maps_fraction']:.0%}")
    rt = s.get("realtime") or {}
    ratio = ((rt.get("targets") or {}).get("inference_vs_isolated") or {}).get("value")
    if ratio is not None:
        lines.append(f"its inference p50 {rt['node_inference_p50_ms']:.1f} ms is {ratio:.2f}x the model's forward alone "
                     f"({rt['isolated_forward']['p50_ms']:.1f} ms, timed after the node stopped)")
    print("\n".join(line for line in lines if line.strip() or line == ""), flush=True)


if __name__ == "__main__":
    sys.exit(main())
