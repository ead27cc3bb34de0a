"""Benchmarks 1-3 and 9: model-level cost of attention capture, of the peer wrapper's approach, of the side
methods, and of the offline methods (occlusion, the deletion test)."""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from bench.common import interleaved, row, summarize, target
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
    """3. The live side methods vs a plain no-grad forward: GradCAM (forward + backward to layer4) and
    gradient x input (forward + backward to the pixels), interleaved."""
    from act_interp_ros.core import DEFAULT_GRADIENT_TARGET, GradCAM, GradCAMTarget, PixelGradientXInput

    c = ctx.counts["s3"]
    _, plain, wrapped = ctx.models()
    batch = ctx.batch()
    gradcam = GradCAM(wrapped.policy)
    gxi = PixelGradientXInput(wrapped.policy)
    tgt = GradCAMTarget()
    try:
        res = interleaved(
            {
                "forward": lambda: plain.predict_action_chunk(batch),
                "gradcam": lambda: gradcam.attribute(batch, tgt),
                "gradient_x_input": lambda: gxi.attribute(batch, DEFAULT_GRADIENT_TARGET),
            },
            rounds=c["rounds"], warmup=c["warmup"], min_rounds=c["min_rounds"], budget_s=c["budget_s"], label="s3",
        )
    finally:
        gradcam.close()
        gxi.close()
    ratio = res.paired_ratio("gradcam", "forward")
    gxi_ratio = res.paired_ratio("gradient_x_input", "forward")
    fwd, gc_ms, gxi_ms = res.stats_ms("forward"), res.stats_ms("gradcam"), res.stats_ms("gradient_x_input")
    share_2hz = 2.0 * (gc_ms["median"] + gxi_ms["median"]) / 1e3
    t_gxi = target("gradient x input / forward (median of per-round ratios)", gxi_ratio.get("median"), "<=", 2.5)
    return {
        "title": "Live side methods (forward + backward) vs a plain forward",
        "model": ctx.model_name,
        "run": _run_info(res),
        "metrics": {"forward_ms": fwd, "gradcam_ms": gc_ms, "gradient_x_input_ms": gxi_ms,
                    "ratio_gradcam_over_forward": ratio, "ratio_gradient_x_input_over_forward": gxi_ratio,
                    "side_methods_2hz_compute_s_per_s": round(share_2hz, 3)},
        "targets": [t_gxi],
        "rows": [
            row("plain forward (no grad)", fwd),
            row("GradCAM.attribute (forward + backward to layer4)", gc_ms),
            row("PixelGradientXInput.attribute (forward + backward to the pixels)", gxi_ms),
            row("ratio GradCAM / forward", ratio, "x"),
            row("ratio gradient x input / forward", gxi_ratio, "x", target_=t_gxi),
            row("both at 2 Hz (the shipped side timer): compute seconds per second", None, "s/s",
                value=round(share_2hz, 3)),
        ],
    }


def offline_attribution_cost(ctx) -> dict[str, Any]:
    """9. Offline methods at the model's own resolution: one occlusion map with the default grid (the
    node's ``occlusion_*`` defaults), and one deletion (faithfulness) test of a gradient x input map."""
    from act_interp_ros.core import DEFAULT_GRADIENT_TARGET, DeletionTest, PixelGradientXInput
    from act_interp_ros.pipeline.side_methods import SideMethods
    from act_interp_ros.settings import NodeSettings

    c = ctx.counts["s9"]
    _, plain, wrapped = ctx.models()
    batch = ctx.batch()
    settings = NodeSettings.from_mapping({"policy_path": "user/bench"})  # the shipped defaults
    occ = SideMethods(wrapped.policy, settings, ["occlusion"])
    gxi = PixelGradientXInput(wrapped.policy)
    deletion = DeletionTest(wrapped.policy)
    try:
        with torch.no_grad():
            plain.predict_action_chunk(batch)  # warm-up
            t = time.perf_counter()
            plain.predict_action_chunk(batch)
            fwd_s = time.perf_counter() - t
        impl = occ.impl["occlusion"]
        per_cam = impl.n_perturbations()
        windows = {k.rsplit(".", 1)[-1]: list(w) for k, w in impl.windows.items()}
        occ_s = []
        for _ in range(int(c["occlusion_reps"])):
            t = time.perf_counter()
            occ.attribute("occlusion", batch)
            occ_s.append(time.perf_counter() - t)
        maps = gxi.attribute(batch, DEFAULT_GRADIENT_TARGET)
        del_s = []
        for _ in range(int(c["deletion_reps"])):
            t = time.perf_counter()
            deletion.run(batch, maps)
            del_s.append(time.perf_counter() - t)
    finally:
        occ.close()
        gxi.close()
        deletion.close()
    n_occ = sum(per_cam.values())
    n_del = deletion.n_forwards(1)
    occ_stats, del_stats = summarize(occ_s), summarize(del_s)
    return {
        "title": "Offline methods: occlusion map and deletion (faithfulness) test, one observation",
        "model": ctx.model_name,
        "run": {"occlusion_reps": len(occ_s), "deletion_reps": len(del_s), "occlusion_batch_size": impl.batch_size,
                "deletion_batch_size": deletion.batch_size},
        "metrics": {"forward_s": round(fwd_s, 4), "occlusion_s": occ_stats, "occlusion_windows_px": windows,
                    "occlusion_perturbations": per_cam, "deletion_s": del_stats, "deletion_perturbations": n_del},
        "targets": [],
        "rows": [
            row("plain forward (no grad, batch 1), one call", None, "s", value=round(fwd_s, 3)),
            row(f"occlusion map, both cameras (patch/stride {windows}, {n_occ} perturbed forwards)", occ_stats, "s"),
            row("occlusion: seconds per perturbed forward", None, "s", value=round(occ_stats["median"] / n_occ, 4)),
            row(f"deletion test of one map pair ({n_del} perturbed forwards: fractions x (1 + random draws) x "
                "cameras)", del_stats, "s"),
        ],
    }
