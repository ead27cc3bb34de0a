"""Benchmark 6: offline replay throughput (frames/s): model-only, sequential pipeline, batched pipeline.

* model-only: ``InterpretableACT.predict_chunk`` + ``select_from_chunk`` on an already preprocessed batch,
  as many frames as the bag has ticks, at batch size 1 and at the batched pipeline's batch size - the
  ceiling for the pipeline.
* pipeline: ``act_interp_ros.bag.replay.replay_bag`` end to end on a synthetic 480x640 two-camera bag
  (read + deserialise, decode, freshness gate, preprocess, forward with attention, postprocess, attention
  overlays, two MP4 videos, the per-tick table), GradCAM off, no output bag, no plot; frames/s =
  processed ticks / wall time of the whole ``replay_bag`` call (the loop-only rate is reported too).
Arms run in rotating order, ``reps`` times each; every number is the median over reps.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

import torch

from bench.common import REPO_ROOT, row, summarize, target

log = logging.getLogger("bench")


def _settings(ctx):
    from act_interp_ros.settings import load_settings_yaml

    # The policy is passed in memory; policy_path only has to name an existing directory to validate.
    return load_settings_yaml(REPO_ROOT / "config" / "so101.yaml",
                              overrides={"policy_path": str(ctx.workdir), "side_rate_hz": 0.0})


def replay_throughput(ctx) -> dict[str, Any]:
    from act_interp_ros.bag.replay import ReplayOptions, replay_bag

    try:
        from act_interp_ros.bag.synthetic_bag import write_synthetic_bag
    except ImportError as exc:
        raise RuntimeError(f"act_interp_ros.bag.synthetic_bag is not available ({exc}); it writes the test bag") from exc

    c = ctx.counts["s6"]
    spec, _plain, wrapped = ctx.models()
    h, w = next(iter(spec.cameras.values()))
    n_frames, bsz, reps = int(c["frames"]), int(c["batch_size"]), int(c.get("reps", 1))
    t = time.perf_counter()
    bag = write_synthetic_bag(ctx.workdir / "replay_bag", storage="mcap", compressed=False, n_frames=n_frames,
                              image_size=(h, w), seed=0)
    log.info("  wrote a %d-frame %dx%d synthetic bag in %.1f s", n_frames, w, h, time.perf_counter() - t)
    settings = _settings(ctx)

    def pipeline(batch_size: int, end_s: float | None = None) -> dict[str, Any]:
        out = ctx.workdir / f"replay_out_b{batch_size}"
        shutil.rmtree(out, ignore_errors=True)
        opts = ReplayOptions(batch_size=batch_size, side_every=0, write_bag=False, write_video=True,
                             write_table=True, write_plot=False, end_s=end_s)
        t0 = time.perf_counter()
        summary = replay_bag(bag, wrapped, settings, out, opts)
        wall = time.perf_counter() - t0
        if summary.processed == 0:
            raise RuntimeError(f"the replay processed no tick (skips: {summary.skipped_by_reason})")
        tm = summary.timings
        loop_s = tm.get("ticks_s", tm.get("replay_s")) or wall  # the tick loop, without indexing / closing outputs
        return {"fps": summary.processed / wall, "loop_fps": summary.processed / loop_s,
                "processed": summary.processed, "skipped": summary.skipped, "wall_s": wall,
                "model_share": tm.get("model_s", float("nan")) / wall}

    batch1 = ctx.batch()
    stacked = {k: torch.cat([v] * bsz) if isinstance(v, torch.Tensor) else v for k, v in batch1.items()}

    def model_only(batch_size: int, frames: int) -> dict[str, Any]:
        b = batch1 if batch_size == 1 else stacked
        wrapped.reset()
        t0 = time.perf_counter()
        done = 0
        with torch.no_grad():
            while done < frames:
                chunk, _ = wrapped.predict_chunk(b)
                for i in range(batch_size):
                    wrapped.select_from_chunk(chunk[i : i + 1])
                done += batch_size
        wall = time.perf_counter() - t0
        wrapped.reset()
        return {"fps": done / wall, "frames": done, "wall_s": wall}

    for _ in range(int(c["warmup"])):  # first calls at a new batch size build oneDNN kernels / open writers
        pipeline(1, end_s=0.1)
        pipeline(bsz, end_s=0.3)
        model_only(bsz, bsz)

    arms = {
        "model_only_b1": lambda: model_only(1, n_frames),
        "pipeline_sequential": lambda: pipeline(1),
        "pipeline_batched": lambda: pipeline(bsz),
        f"model_only_b{bsz}": lambda: model_only(bsz, n_frames),
    }
    names = list(arms)
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(reps):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            res = arms[name]()
            runs[name].append(res)
            log.info("  rep %d/%d %s: %.3g frames/s", r + 1, reps, name, res["fps"])
    frames = runs["pipeline_sequential"][0]["processed"]
    fps = {n: summarize([x["fps"] for x in v]) for n, v in runs.items()}
    ratio_pipe = summarize([p["fps"] / m["fps"] for p, m in zip(runs["pipeline_sequential"], runs["model_only_b1"])])
    ratio_batch = summarize([b["fps"] / s["fps"] for b, s in zip(runs["pipeline_batched"], runs["pipeline_sequential"])])
    ratio_bpipe = summarize([p["fps"] / m["fps"] for p, m in zip(runs["pipeline_batched"], runs[f"model_only_b{bsz}"])])
    ratio_model = summarize([b["fps"] / s["fps"] for b, s in zip(runs[f"model_only_b{bsz}"], runs["model_only_b1"])])
    loop = {n: summarize([x["loop_fps"] for x in runs[n]]) for n in ("pipeline_sequential", "pipeline_batched")}
    t_pipe = target("sequential pipeline / model-only (batch 1)", ratio_pipe["median"], ">=", 0.85)
    t_batch = target("batched pipeline / sequential pipeline", ratio_batch["median"], ">=", 1.5)
    spread = "min-max over reps" if reps > 1 else "one run"

    def fps_row(label, s):
        return row(label, None, "frames/s", value=s["median"],
                   spread=f"{spread} {s['min']:.3g}-{s['max']:.3g}, n={s['n']}" if reps > 1 else spread)

    return {
        "title": "Offline replay throughput (480x640 synthetic bag)" if h == 480 else "Offline replay throughput",
        "model": ctx.model_name,
        "run": {"reps": reps, "bag_frames": n_frames, "ticks_processed": frames, "batch_size": bsz},
        "metrics": {"fps": fps, "loop_fps": loop, "ratio_pipeline_over_model_only": ratio_pipe,
                    "ratio_batched_over_sequential": ratio_batch, "ratio_batched_pipeline_over_model_only_batched": ratio_bpipe,
                    "ratio_model_only_batched_over_b1": ratio_model,
                    "model_share_of_wall": {n: summarize([x["model_share"] for x in runs[n]])
                                            for n in ("pipeline_sequential", "pipeline_batched")},
                    "runs": runs},
        "targets": [t_pipe, t_batch],
        "rows": [
            fps_row("model-only, batch 1 (predict_chunk + select_from_chunk)", fps["model_only_b1"]),
            fps_row(f"model-only, batch {bsz}", fps[f"model_only_b{bsz}"]),
            fps_row("pipeline, sequential (replay_bag --batch-size 1, end to end)", fps["pipeline_sequential"]),
            fps_row(f"pipeline, batched (replay_bag --batch-size {bsz}, end to end)", fps["pipeline_batched"]),
            row("ratio sequential pipeline / model-only b1", None, "x", value=ratio_pipe["median"], target_=t_pipe),
            row("ratio batched pipeline / sequential pipeline", None, "x", value=ratio_batch["median"], target_=t_batch),
            row(f"ratio batched pipeline / model-only b{bsz}", None, "x", value=ratio_bpipe["median"]),
            row(f"ratio model-only b{bsz} / b1 (what batching can give here)", None, "x", value=ratio_model["median"]),
        ],
    }
