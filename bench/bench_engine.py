"""Benchmarks 1-3: model-level cost of attention capture, of the peer wrapper's approach, and of GradCAM."""

from __future__ import annotations

import logging
from typing import Any

import torch

from bench.common import interleaved, row, target
from bench.peer_reproduction import PeerACTPolicyWithAttentionReproduction

log = logging.getLogger("bench")


def _run_info(res) -> dict[str, Any]:
    return {"rounds": res.rounds, "stopped_by_budget": res.stopped_by_budget, "wall_s": round(res.wall_s, 1)}


def attention_overhead(ctx) -> dict[str, Any]:
    """1. plain ``ACTPolicy.predict_action_chunk`` vs ``InterpretableACT.select_action(force_model_run=True)``."""
    c = ctx.counts["s1"]
    _, plain, wrapped = ctx.models()
    batch = ctx.batch()
    with torch.no_grad():  # same weights, same chunk: the comparison is like for like
        same = torch.allclose(plain.predict_action_chunk(batch), wrapped.predict_chunk(batch)[0], atol=1e-5)
    wrapped.reset()
    res = interleaved(
        {
            "plain": lambda: plain.predict_action_chunk(batch),
            "ours": lambda: wrapped.select_action(batch, force_model_run=True),
        },
        rounds=c["rounds"], warmup=c["warmup"], min_rounds=c["min_rounds"], budget_s=c["budget_s"], label="s1",
    )
    ratio = res.paired_ratio("ours", "plain")
    t = target("overhead ratio ours/plain (median of per-round ratios)", ratio.get("median"), "<=", 1.05)
    plain_ms, ours_ms = res.stats_ms("plain"), res.stats_ms("ours")
    return {
        "title": "Attention capture overhead (model level, preprocessed batch)",
        "model": ctx.model_name,
        "run": _run_info(res),
        "metrics": {"plain_predict_action_chunk_ms": plain_ms, "ours_select_action_ms": ours_ms,
                    "ratio_ours_over_plain": ratio},
        "checks": {"same_chunk_as_plain": bool(same)},
        "targets": [t],
        "rows": [
            row("plain ACTPolicy.predict_action_chunk", plain_ms),
            row("ours select_action(force_model_run=True) + attention", ours_ms),
            row("ratio ours / plain", ratio, "x",
                spread=f"IQR {ratio['p25']:.3f}-{ratio['p75']:.3f}, p10-p90 {ratio['p10']:.3f}-{ratio['p90']:.3f}",
                target_=t),
        ],
    }


def peer_comparison(ctx) -> dict[str, Any]:
    """2. Our tick vs a reproduction of the peer wrapper's tick (extra backbone pass per camera), from a raw observation."""
    c = ctx.counts["s2"]
    _, plain, wrapped = ctx.models()
    obs = ctx.raw_observation()
    pre = wrapped.preprocessor
    peer = PeerACTPolicyWithAttentionReproduction(plain, pre)

    def plain_tick():
        plain.reset()  # a forward every tick, like the two interpretable arms
        return plain.select_action(pre(obs))

    def peer_tick():
        # The reproduction shares `plain` (and so its action queue) with the plain arm, which leaves 99 queued
        # actions behind; the original wrapper resets only *after* its call, so without this reset the peer
        # arm would pop a queued action and skip the model (the first full run timed exactly that: 0.67x).
        plain.reset()
        return peer.select_action(obs)

    res = interleaved(
        {
            "plain": plain_tick,
            "ours": lambda: wrapped.step(obs, force_model_run=True),
            "peer": peer_tick,
        },
        rounds=c["rounds"], warmup=c["warmup"], min_rounds=c["min_rounds"], budget_s=c["budget_s"], label="s2",
    )
    wrapped.reset()
    plain.reset()
    peer_ours = res.paired_ratio("peer", "ours")
    ours_plain = res.paired_ratio("ours", "plain")
    peer_plain = res.paired_ratio("peer", "plain")
    ms = {arm: res.stats_ms(arm) for arm in ("plain", "ours", "peer")}
    return {
        "title": "Peer wrapper's approach (reproduction) vs ours, per tick from a raw observation",
        "model": ctx.model_name,
        "run": _run_info(res),
        "metrics": {"plain_tick_ms": ms["plain"], "ours_step_ms": ms["ours"], "peer_select_action_ms": ms["peer"],
                    "ratio_peer_over_ours": peer_ours, "ratio_ours_over_plain": ours_plain,
                    "ratio_peer_over_plain": peer_plain},
        "targets": [],
        "rows": [
            row("plain tick: preprocess + ACTPolicy.select_action (forward every tick)", ms["plain"]),
            row("ours: InterpretableACT.step(force_model_run=True)", ms["ours"]),
            row("peer reproduction: extra backbone pass/camera + forward", ms["peer"]),
            row("ratio peer / ours", peer_ours, "x"),
            row("ratio ours / plain (same tick, raw obs)", ours_plain, "x"),
            row("ratio peer / plain", peer_plain, "x"),
        ],
    }


def gradcam_cost(ctx) -> dict[str, Any]:
    """3. ``GradCAM.attribute`` (forward + backward to layer4) vs a plain no-grad forward."""
    from act_interp_ros.core import GradCAM, GradCAMTarget

    c = ctx.counts["s3"]
    _, plain, wrapped = ctx.models()
    batch = ctx.batch()
    gradcam = GradCAM(wrapped.policy)
    tgt = GradCAMTarget()
    try:
        res = interleaved(
            {
                "forward": lambda: plain.predict_action_chunk(batch),
                "gradcam": lambda: gradcam.attribute(batch, tgt),
            },
            rounds=c["rounds"], warmup=c["warmup"], min_rounds=c["min_rounds"], budget_s=c["budget_s"], label="s3",
        )
    finally:
        gradcam.close()
    ratio = res.paired_ratio("gradcam", "forward")
    fwd, gc_ms = res.stats_ms("forward"), res.stats_ms("gradcam")
    share_2hz = 2.0 * gc_ms["median"] / 1e3
    return {
        "title": "GradCAM (forward + backward) vs a plain forward",
        "model": ctx.model_name,
        "run": _run_info(res),
        "metrics": {"forward_ms": fwd, "gradcam_ms": gc_ms, "ratio_gradcam_over_forward": ratio,
                    "gradcam_2hz_compute_s_per_s": round(share_2hz, 3)},
        "targets": [],
        "rows": [
            row("plain forward (no grad)", fwd),
            row("GradCAM.attribute (forward + backward)", gc_ms),
            row("ratio GradCAM / forward", ratio, "x"),
            row("GradCAM at 2 Hz: compute seconds per second", None, "s/s", value=round(share_2hz, 3)),
        ],
    }
