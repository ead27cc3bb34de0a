#!/usr/bin/env python3
"""What interpretability costs, measured side by side in one run (issue 7).

    .venv/bin/python bench/run_benchmarks.py [--quick] [--out bench/results.json] [--only 1,3,...]

Sections (BENCHMARKS.md has the method and the analysis):
  1  attention capture overhead: plain ACTPolicy.predict_action_chunk vs select_action(force_model_run=True)
  2  the peer wrapper's approach (extra backbone pass per camera; bench/peer_reproduction.py) vs ours
  3  the live side methods (GradCAM, gradient x input: forward + backward) vs a plain forward
  4  the control thread's per-tick work outside the forward (two 480x640 cameras), stage by stage
  5  control-loop timing of the real node at 30 Hz (small model): side methods off and at 2 Hz
  6  offline replay throughput: model-only, sequential pipeline, batched pipeline
  7  memory: node RSS over 2000 ticks after warm-up
  8  offline LeRobotDataset replay throughput: model-only, sequential pipeline, batched pipeline
  9  offline methods: one occlusion map (default grid) and one deletion (faithfulness) test
  10 the README demo at rate 1: actions and maps per 30 Hz tick, node inference vs the forward alone
  11 ticks with an action: the node (sync, async) beside a plain rclpy runner (bench/plain_runner.py), same bag

Writes the results JSON (after every section, so a crash keeps what was measured) and, for full runs,
regenerates the table in BENCHMARKS.md from it. CPU only unless a GPU is visible (then torch still runs
on the CPU: these numbers are labelled "cpu").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from bench import report  # noqa: E402
from bench.common import COUNTS, describe_spec, machine_info, ros_environment, spec_for  # noqa: E402

log = logging.getLogger("bench")

SCHEMA_VERSION = 1
SECTIONS: dict[int, tuple[str, str]] = {  # id -> (module, function)
    1: ("bench.bench_engine", "attention_overhead"),
    2: ("bench.bench_engine", "peer_comparison"),
    3: ("bench.bench_engine", "gradcam_cost"),
    4: ("bench.bench_tick_work", "tick_work"),
    5: ("bench.bench_control_loop", "control_loop"),
    6: ("bench.bench_replay", "replay_throughput"),
    7: ("bench.bench_control_loop", "memory"),
    8: ("bench.bench_replay", "dataset_replay_throughput"),
    9: ("bench.bench_engine", "offline_attribution_cost"),
    10: ("bench.bench_demo", "demo_realtime"),
    11: ("bench.bench_realtime_share", "realtime_share"),
}
FULL_MODEL_SECTIONS = (1, 2, 3, 4, 6, 8, 9)


class Context:
    """What the sections share: iteration counts, the (lazily built) large model, a scratch directory."""

    def __init__(self, mode: str, model_name: str, workdir: Path) -> None:
        self.mode = mode
        self.quick = mode == "quick"
        self.model_name = model_name
        self.counts = COUNTS[mode]
        self.workdir = workdir
        self.shared: dict[str, Any] = {}
        self._models = None
        self._obs = None

    def models(self):
        """``(spec, plain ACTPolicy, InterpretableACT)`` of the benchmark model (full size unless --model tiny)."""
        if self._models is None:
            from bench.common import build_models

            spec = spec_for(self.model_name)
            t = time.perf_counter()
            plain, wrapped = build_models(spec)
            log.info("built the %s ACT model in %.1f s", self.model_name, time.perf_counter() - t)
            self.shared["model_extra"] = {"parameters_M": round(sum(p.numel() for p in plain.parameters()) / 1e6, 2)}
            self._models = (spec, plain, wrapped)
        return self._models

    def raw_observation(self):
        if self._obs is None:
            from bench.common import raw_observation

            self._obs = raw_observation(self.models()[2])
        return self._obs

    def batch(self):
        return self.models()[2].preprocess(self.raw_observation())

    def release_models(self) -> None:
        if self._models is not None:
            self._models[2].close()
        self._models, self._obs = None, None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny iteration counts (validation, not numbers)")
    p.add_argument("--out", type=Path, default=None,
                   help="results JSON (default bench/results.json; bench/results-quick.json with --quick)")
    p.add_argument("--only", default="", help="comma-separated section ids, e.g. 1,3 (default: all)")
    p.add_argument("--model", choices=("full", "tiny"), default="full",
                   help="model for sections 1-4, 6, 8 and 9: full-size ACT (default) or the tiny test model (smoke tests)")
    p.add_argument("--md", type=Path, default=REPO_ROOT / "BENCHMARKS.md", help="markdown file whose table is regenerated")
    md = p.add_mutually_exclusive_group()
    md.add_argument("--update-md", action="store_true", help="regenerate the BENCHMARKS.md table even with --quick")
    md.add_argument("--no-md", action="store_true", help="do not touch BENCHMARKS.md")
    p.add_argument("--table-from", type=Path, default=None,
                   help="only regenerate the BENCHMARKS.md table from this results JSON, measure nothing")
    p.add_argument("--ros-domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: derived from the pid)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch intra-op and OpenCV threads in this process (default: torch's default, = usable CPUs)")
    p.add_argument("--s11-models", default="", help="section 11's models, comma-separated (demo, full, tiny; default: "
                   "demo,full; tiny with --model tiny)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def _select(only: str) -> list[int]:
    if not only.strip():
        return sorted(SECTIONS)
    ids = []
    for part in only.split(","):
        part = part.strip()
        if not part:
            continue
        if not part.isdigit() or int(part) not in SECTIONS:
            raise SystemExit(f"--only: unknown section {part!r}; valid ids are {', '.join(map(str, SECTIONS))}")
        ids.append(int(part))
    return sorted(set(ids))


def _configs(ctx: Context, ids: list[int]) -> dict[str, Any]:
    configs: dict[str, Any] = {}
    big = [i for i in ids if i in FULL_MODEL_SECTIONS]
    if big:
        spec = spec_for(ctx.model_name)
        configs["full-size" if ctx.model_name == "full" else "tiny"] = {
            **describe_spec(spec), **ctx.shared.get("model_extra", {}), "used_in": ", ".join(map(str, big))}
    small = [i for i in ids if i in (5, 7)]
    if small:
        from bench.bench_control_loop import loop_spec

        configs["small (node)"] = {**describe_spec(loop_spec()), "used_in": ", ".join(map(str, small))}
    return configs


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if args.table_from is not None:
        results = json.loads(args.table_from.read_text())
        report.update_markdown(args.md, results)
        log.info("regenerated the table in %s from %s", args.md, args.table_from)
        return 0
    mode = "quick" if args.quick else "full"
    out = args.out or REPO_ROOT / "bench" / ("results-quick.json" if args.quick else "results.json")
    ids = _select(args.only)
    ros_env = ros_environment(args.ros_domain_id)
    if args.threads is not None:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)

    t_start = time.perf_counter()
    results: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "mode": mode,
        "model": args.model,
        "device": "cpu",
        "sections_requested": ids,
        "iteration_counts": {f"s{i}": COUNTS[mode][f"s{i}"] for i in ids},
        "ros_environment": ros_env,
        "machine": machine_info(),
        "configs": {},
        "sections": {},
    }
    log.info("benchmarks %s (%s mode, %s model) -> %s", ids, mode, args.model, out)
    with tempfile.TemporaryDirectory(prefix="act_interp_bench_") as tmp:
        ctx = Context(mode, args.model, Path(tmp))
        ctx.shared["sections"] = ids
        ctx.shared["s11_models"] = [m.strip() for m in args.s11_models.split(",") if m.strip()]
        for sid in ids:
            module_name, fn_name = SECTIONS[sid]
            log.info("=== section %d: %s.%s", sid, module_name.rsplit(".", 1)[-1], fn_name)
            t = time.perf_counter()
            try:
                module = __import__(module_name, fromlist=[fn_name])
                section = getattr(module, fn_name)(ctx)
                section["status"] = "ok"
            except Exception as exc:  # noqa: BLE001 - one failing section must not lose the others
                log.error("section %d failed: %s", sid, exc)
                log.debug("%s", traceback.format_exc())
                section = {"title": fn_name, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                           "traceback": traceback.format_exc()}
            section["duration_s"] = round(time.perf_counter() - t, 1)
            results["sections"][str(sid)] = section
            results["configs"] = _configs(ctx, ids)
            results["duration_s"] = round(time.perf_counter() - t_start, 1)
            write_json(out, results)
            if sid in FULL_MODEL_SECTIONS and not any(i in FULL_MODEL_SECTIONS for i in ids if i > sid):
                ctx.release_models()  # free the large model before the node runs
    results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["duration_s"] = round(time.perf_counter() - t_start, 1)
    write_json(out, results)
    log.info("wrote %s (%.1f min)", out, results["duration_s"] / 60)
    if (not args.quick or args.update_md) and not args.no_md:
        report.update_markdown(args.md, results)
        log.info("regenerated the table in %s", args.md)
    print(report.render(results))
    failed = [sid for sid, s in results["sections"].items() if s.get("status") != "ok"]
    if failed:
        log.error("sections %s failed (see the JSON for tracebacks)", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
