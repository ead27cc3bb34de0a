"""Benchmark 10: the README demo at rate 1, as a user runs it (``act_interp_demo``), and its real-time targets.

The demo plays its 12 s synthetic SO-101 bag (two 480x640 cameras, 30 fps, with /clock) into the live node
(observe-only, ``use_sim_time``, side methods at 2 Hz, every overlay subscribed by the demo's recorder), all
on this machine. Its summary reports the ticks with an action computed and with maps published (of the
bag's 30 Hz ticks), and the node's inference p50 against the same model's forward alone, timed in the demo
process after the node stopped with the node's torch thread count (:mod:`act_interp_ros.demo.realtime`).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from bench.common import row, target

log = logging.getLogger("bench")


def demo_realtime(ctx) -> dict[str, Any]:
    """10. ``act_interp_demo`` at rate 1 (``runs`` times): computed / maps fractions, inference vs forward."""
    from act_interp_ros.cli import demo as demo_cli

    c = ctx.counts["s10"]
    ctx.release_models()
    runs = []
    for i in range(int(c["runs"])):
        out = ctx.workdir / f"demo_{i}"
        code = demo_cli.main(["--out", str(out), "--quiet", "--seconds", str(c["seconds"])])
        if code != 0:
            raise RuntimeError(f"act_interp_demo exited with {code}")
        s = json.loads((out / "summary.json").read_text())
        rt = s["realtime"]
        runs.append({"computed_fraction": s["ticks"]["computed_fraction"], "maps_fraction": s["ticks"]["maps_fraction"],
                     "skipped_by_kind": s["ticks"]["skipped_by_kind"],
                     "node_inference_p50_ms": rt["node_inference_p50_ms"], "isolated_forward": rt["isolated_forward"],
                     "inference_vs_isolated": rt["targets"]["inference_vs_isolated"]["value"],
                     "latency": s["diagnostics"].get("latency"), "torch_threads": s["diagnostics"].get("torch_threads")})
        log.info("  demo run %d: computed %.1f%%, maps %.1f%%, inference %.1f ms = %.2fx the forward alone", i + 1,
                 100 * runs[-1]["computed_fraction"], 100 * runs[-1]["maps_fraction"],
                 runs[-1]["node_inference_p50_ms"], runs[-1]["inference_vs_isolated"] or float("nan"))

    def worst(key: str, lowest: bool) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return (min(values) if lowest else max(values)) if values else None

    def spread(key: str, fmt: str) -> str:
        return "runs: " + ", ".join(fmt.format(r[key]) if r[key] is not None else "n/a" for r in runs)

    t_comp = target("demo rate 1: ticks with an action computed (worst run)", worst("computed_fraction", True), ">=", 0.95)
    t_maps = target("demo rate 1: ticks with maps published (worst run)", worst("maps_fraction", True), ">=", 0.80)
    t_inf = target("demo rate 1: node inference p50 / forward alone (worst run)", worst("inference_vs_isolated", False),
                   "<=", 1.3)
    return {
        "title": f"The demo at rate 1 ({c['seconds']:g} s bag, 480x640 frames at 30 fps, side methods 2 Hz)",
        "model": "known-answer",
        "run": {"runs": len(runs), "seconds": c["seconds"]},
        "metrics": {"runs": runs},
        "targets": [t_comp, t_maps, t_inf],
        "rows": [
            row("ticks with an action computed (worst run)", None, "%", value=round(100 * t_comp["value"], 1),
                spread=spread("computed_fraction", "{:.1%}"), target_={**t_comp, "limit": 95.0}),
            row("ticks with maps published (worst run)", None, "%", value=round(100 * t_maps["value"], 1),
                spread=spread("maps_fraction", "{:.1%}"), target_={**t_maps, "limit": 80.0}),
            row("node inference p50 (queue refills, attention captured)", None, "ms",
                value=worst("node_inference_p50_ms", False), spread=spread("node_inference_p50_ms", "{:.1f}")),
            row("the model's forward alone p50 (after the node stopped, same threads)", None, "ms",
                value=runs[0]["isolated_forward"]["p50_ms"] if runs[0]["isolated_forward"] else None,
                spread="runs: " + ", ".join(f"{r['isolated_forward']['p50_ms']:.1f}" if r["isolated_forward"] else "n/a"
                                            for r in runs) + f"; {runs[0]['torch_threads']} torch thread(s)"),
            row("node inference / forward alone (worst run)", None, "x", value=t_inf["value"],
                spread=spread("inference_vs_isolated", "{:.2f}"), target_=t_inf),
        ],
    }
