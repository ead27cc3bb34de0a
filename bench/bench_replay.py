"""Benchmarks 6 and 8: offline replay throughput (frames/s), bag (6) and LeRobotDataset (8): model-only,
sequential pipeline, batched pipeline.

* model-only: ``InterpretableACT.predict_chunk`` + ``select_from_chunk`` on an already preprocessed batch,
  as many frames as the input has ticks, at batch size 1 and at the batched pipeline's batch size - the
  ceiling for the pipeline.
* pipeline (6): ``act_interp_ros.bag.replay.replay_bag`` end to end on a synthetic 480x640 two-camera bag
  (read + deserialise, decode, freshness gate, preprocess, forward with attention, postprocess, attention
  overlays, two MP4 videos, the per-tick table), side methods and faithfulness off, no output bag, no plot;
* pipeline (8): ``act_interp_ros.dataset.replay.replay_dataset`` end to end on one episode of a synthetic
  two-camera LeRobotDataset stored as AV1 video, as ``lerobot-record`` writes it (open and validate the
  episode, read every frame through ``LeRobotDataset`` incl. video decoding, preprocess, forward with
  attention, postprocess, attention overlays, two MP4 videos, the per-tick table with recorded actions),
  side methods and faithfulness off, no plot, no Rerun;
  frames/s = processed ticks / wall time of the whole call (the loop-only rate is reported too).
Arms run in rotating order, ``reps`` times each; every number is the median over reps.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from typing import Any

import torch

from bench.common import REPO_ROOT, row, summarize, target

log = logging.getLogger("bench")


def _settings(ctx):
    from act_interp_ros.settings import load_settings_yaml

    # The policy is passed in memory; policy_path only has to name an existing directory to validate.
    return load_settings_yaml(REPO_ROOT / "config" / "so101.yaml",
                              overrides={"policy_path": str(ctx.workdir), "side_rate_hz": 0.0})


def _model_only(ctx, wrapped, bsz: int) -> Callable[[int, int], dict[str, Any]]:
    """``run(batch_size, frames)``: the model-only arm (forward with attention + the policy's queue)."""
    batch1 = ctx.batch()
    stacked = {k: torch.cat([v] * bsz) if isinstance(v, torch.Tensor) else v for k, v in batch1.items()}

    def run(batch_size: int, frames: int) -> dict[str, Any]:
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

    return run


def _pipeline_result(summary, wall: float) -> dict[str, Any]:
    """One pipeline run's numbers from its summary (frames/s over the whole call and over the tick loop)."""
    if summary.processed == 0:
        raise RuntimeError(f"the replay processed no tick (skips: {summary.skipped_by_reason})")
    tm = summary.timings
    loop_s = tm.get("ticks_s", tm.get("replay_s")) or wall  # the tick loop, without indexing / closing outputs
    return {"fps": summary.processed / wall, "loop_fps": summary.processed / loop_s, "processed": summary.processed,
            "skipped": summary.skipped, "wall_s": wall, "model_share": tm.get("model_s", float("nan")) / wall,
            "read_share": tm.get("read_s", float("nan")) / wall}


def _throughput(ctx, *, key: str, what: str, title: str, n_frames: int, bsz: int, reps: int,
                pipeline: Callable[[int], dict[str, Any]], warmup: Callable[[], None],
                batch_target: bool) -> dict[str, Any]:
    """Run the four arms interleaved ``reps`` times and build the section (shared by the bag and dataset)."""
    _spec, _plain, wrapped = ctx.models()
    model_only = _model_only(ctx, wrapped, bsz)
    for _ in range(int(ctx.counts[key]["warmup"])):  # first calls at a new batch size build oneDNN kernels / open writers
        warmup()
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
    pipes = ("pipeline_sequential", "pipeline_batched")
    loop = {n: summarize([x["loop_fps"] for x in runs[n]]) for n in pipes}
    t_pipe = target("sequential pipeline / model-only (batch 1)", ratio_pipe["median"], ">=", 0.85)
    t_batch = target("batched pipeline / sequential pipeline", ratio_batch["median"], ">=", 1.5) if batch_target else None
    spread = "min-max over reps" if reps > 1 else "one run"

    def fps_row(label, s):
        return row(label, None, "frames/s", value=s["median"],
                   spread=f"{spread} {s['min']:.3g}-{s['max']:.3g}, n={s['n']}" if reps > 1 else spread)

    h, _w = next(iter(ctx.models()[0].cameras.values()))
    metrics = {"fps": fps, "loop_fps": loop, "ratio_pipeline_over_model_only": ratio_pipe,
               "ratio_batched_over_sequential": ratio_batch, "ratio_batched_pipeline_over_model_only_batched": ratio_bpipe,
               "ratio_model_only_batched_over_b1": ratio_model,
               "model_share_of_wall": {n: summarize([x["model_share"] for x in runs[n]]) for n in pipes},
               "runs": runs}
    if what == "dataset":
        metrics["read_share_of_wall"] = {n: summarize([x["read_share"] for x in runs[n]]) for n in pipes}
    return {
        "title": f"{title} (480x640 synthetic {what})" if h == 480 else title,
        "model": ctx.model_name,
        "run": {"reps": reps, f"{what}_frames": n_frames, "ticks_processed": frames, "batch_size": bsz},
        "metrics": metrics,
        "targets": [t for t in (t_pipe, t_batch) if t is not None],
        "rows": [
            fps_row("model-only, batch 1 (predict_chunk + select_from_chunk)", fps["model_only_b1"]),
            fps_row(f"model-only, batch {bsz}", fps[f"model_only_b{bsz}"]),
            fps_row(f"pipeline, sequential (replay_{what} --batch-size 1, end to end)", fps["pipeline_sequential"]),
            fps_row(f"pipeline, batched (replay_{what} --batch-size {bsz}, end to end)", fps["pipeline_batched"]),
            row("ratio sequential pipeline / model-only b1", None, "x", value=ratio_pipe["median"], target_=t_pipe),
            row("ratio batched pipeline / sequential pipeline", None, "x", value=ratio_batch["median"], target_=t_batch),
            row(f"ratio batched pipeline / model-only b{bsz}", None, "x", value=ratio_bpipe["median"]),
            row(f"ratio model-only b{bsz} / b1 (what batching can give here)", None, "x", value=ratio_model["median"]),
        ],
    }


def replay_throughput(ctx) -> dict[str, Any]:
    """6. Bag replay: model-only vs ``replay_bag`` end to end."""
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
        opts = ReplayOptions(batch_size=batch_size, side_every=0, faithfulness_samples=0, write_bag=False,
                             write_video=True, write_table=True, write_plot=False, end_s=end_s)
        t0 = time.perf_counter()
        summary = replay_bag(bag, wrapped, settings, out, opts)
        return _pipeline_result(summary, time.perf_counter() - t0)

    def warmup() -> None:
        pipeline(1, end_s=0.1)
        pipeline(bsz, end_s=0.3)

    return _throughput(ctx, key="s6", what="bag", title="Offline replay throughput", n_frames=n_frames, bsz=bsz,
                       reps=reps, pipeline=pipeline, warmup=warmup, batch_target=True)


def dataset_replay_throughput(ctx) -> dict[str, Any]:
    """8. LeRobotDataset replay: model-only vs ``replay_dataset`` end to end (one AV1-video episode)."""
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset

    c = ctx.counts["s8"]
    spec, _plain, wrapped = ctx.models()
    h, w = next(iter(spec.cameras.values()))
    n_frames, bsz, reps = int(c["frames"]), int(c["batch_size"]), int(c.get("reps", 1))
    warm_frames = max(2, bsz)
    t = time.perf_counter()
    ds = build_synthetic_dataset(ctx.workdir / "replay_dataset", n_episodes=2, episode_steps=[warm_frames, n_frames],
                                 image_size=(h, w), cameras=("front", "wrist"), use_videos=True, keep_images=False,
                                 seed=0)
    log.info("  wrote a %dx%d synthetic LeRobotDataset (episodes of %d and %d frames, AV1) in %.1f s", w, h,
             warm_frames, n_frames, time.perf_counter() - t)
    settings = _settings(ctx)

    def pipeline(batch_size: int, episode: int = 1) -> dict[str, Any]:
        out = ctx.workdir / f"dataset_out_b{batch_size}"
        shutil.rmtree(out, ignore_errors=True)
        opts = DatasetReplayOptions(batch_size=batch_size, episodes=[episode], methods=[], faithfulness_samples=0,
                                    write_video=True, write_table=True, write_plot=False)
        t0 = time.perf_counter()
        summary = replay_dataset(ds.root, wrapped, settings, out, opts)
        return _pipeline_result(summary, time.perf_counter() - t0)

    def warmup() -> None:  # the short episode 0
        pipeline(1, episode=0)
        pipeline(bsz, episode=0)

    return _throughput(ctx, key="s8", what="dataset", title="Offline dataset replay throughput", n_frames=n_frames,
                       bsz=bsz, reps=reps, pipeline=pipeline, warmup=warmup, batch_target=False)
