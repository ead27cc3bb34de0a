"""The demo's summary: what ran (model, bag, node, timings), what the node computed and how well its maps did;
``summary.json`` and its Markdown twin ``summary.md``."""

from __future__ import annotations

import logging
import math
from typing import Any

from act_interp_ros.demo.model import model_summary

logger = logging.getLogger(__name__)


def build_summary(opts, out_dir, model, bag, settings, config, cmd, domain, node_code, side_rate, playback, session,
                  items, timings, forward=None) -> dict[str, Any]:
    """``summary.json`` of a demo run."""
    from act_interp_ros.demo.analysis import diagnostics_summary, proprio_summary, tick_summary
    from act_interp_ros.demo.realtime import realtime_summary

    rec = session.recorder.rec
    timeline = items["timeline"]
    counts = rec.overlay_counts()
    played = {tp: int(n) for tp, n in playback.published.items()}
    ticks = tick_summary(rec, timeline, settings.control_rate_hz)
    diagnostics = diagnostics_summary(rec, timeline)
    return {
        "ok": True,
        "output_dir": str(out_dir),
        "model": model_summary(model),
        "bag": {"path": str(bag.path), "built_now": bag.built, "seconds": bag.seconds, "fps": bag.fps,
                "episodes": bag.n_episodes, "frames_per_episode": bag.n_frames, "scene_seeds": timeline.seeds,
                "image_size_hw": list(bag.image_size), "storage": "mcap", "encoding": "rgb8"},
        "node": {"command": cmd, "config": str(config), "exit_code": node_code, "ros_domain_id": domain,
                 "side_rate_hz": side_rate, "control_rate_hz": settings.control_rate_hz},
        "playback": {"rate": opts.rate, "messages_published": playback.total_published,
                     "published_per_topic": played,
                     "frames_played_per_camera": {c: played.get(tp, 0)
                                                  for c, tp in zip(settings.camera_names, settings.camera_topics)},
                     "dropped": sum(playback.dropped.values()), "clock_messages": playback.clock_messages,
                     "wall_s": round(playback.wall_time_s, 3), "max_lag_ms": round(playback.max_lag_s * 1000, 1)},
        "ticks": ticks,
        "realtime": realtime_summary(ticks, diagnostics.get("latency") or {}, forward),
        "overlays_received": counts,
        "maps": _map_scores(model),
        "proprio_attention": proprio_summary(rec, timeline),
        "diagnostics": diagnostics,
        "overlay_decode_errors": rec.decode_errors,
        "stills": items["stills"],
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "files": [*items["files"], "summary.md", "summary.json"],
    }


def _map_scores(model: dict[str, Any]) -> dict[str, Any]:
    """Localisation and faithfulness of every map on the known-answer model (held-out frames; cached)."""
    if model.get("key") is None:
        return {"note": "a --policy has no known answer: no localisation numbers"}
    from act_interp_ros.proofs import known_answer as ka

    logger.info("map scores of the known-answer model (computed once, then cached beside the model)")
    evaluation = ka.cached_map_evaluation(ka.ensure_known_answer_model(progress=False), **ka.STANDARD_EVALUATION)
    out: dict[str, Any] = {"frames": evaluation.n_frames, "targets": evaluation.targets, "methods": {}}
    for sc in evaluation.scores:
        out["methods"][sc.method] = {
            "resolution": sc.resolution, "target_mass_vs_uniform": _finite(sc.ratio_vs_uniform),
            "target_beats_distractor": _finite(sc.target_beats_distractor),
            "rank_corr_random_weights": _finite(sc.rank_corr_random), "faithfulness": _finite(sc.faithfulness_ratio)}
    return out


def _finite(v: float) -> float | None:
    return round(float(v), 4) if v == v else None


def summary_markdown(s: dict[str, Any]) -> str:
    """Human-readable summary.md from the summary.json dict."""
    m = s["model"]
    err = m.get("held_out_action_mae") or {}
    lines = [
        "# act_interp_ros demo",
        "",
        f"The live `act_interp_node` (observe-only, `use_sim_time`) ran the known-answer ACT policy on a "
        f"{s['bag']['seconds']:.1f} s synthetic SO-101 bag played over DDS with `act_interp_play` timing "
        f"(rate {s['playback']['rate']:g}).",
        "",
        "## Model",
        f"- checkpoint: `{m['path']}` ({'trained in this run' if m.get('built_now') else 'cached'})",
    ]
    if err:
        lines.append(f"- held-out action error (MAE, {err.get('units', 'policy units')}): model "
                     f"**{err.get('model', float('nan')):.2f}** vs mean-action baseline "
                     f"{err.get('mean_action_baseline', float('nan')):.2f} and hold-still baseline "
                     f"{err.get('hold_state_baseline', float('nan')):.2f}")
    lines += [
        "",
        "## Run",
        "- frames played per camera: " + ", ".join(f"{k} {v}" for k, v in s["playback"]["frames_played_per_camera"].items())
        + f"; messages published: "
        f"{s['playback']['messages_published']} (max lag {s['playback']['max_lag_ms']:.0f} ms)",
        "- overlays received: " + "; ".join(f"{m}: " + ", ".join(f"{c} {n}" for c, n in per_cam.items())
                                            for m, per_cam in s["overlays_received"].items()),
        f"- proprio attention samples: {s['proprio_attention']['count']}, mean "
        f"{_pct(s['proprio_attention']['mean'])}",
    ]
    t = s.get("ticks") or {}
    if t.get("expected"):
        lines.append(f"- control ticks ({t['control_rate_hz']:g} Hz, {t['expected']:.0f} expected over the bag): "
                     f"**{_pct(t['computed_fraction'])}** computed an action (observe-only: the action it would have "
                     f"published), maps for **{_pct(t['maps_fraction'])}**; skipped: "
                     + (", ".join(f"{k} {v}" for k, v in t["skipped_by_kind"].items()) or "none"))
    rt = s.get("realtime") or {}
    if rt.get("targets"):
        fwd = rt.get("isolated_forward") or {}
        lines += ["", "## Real time (targets for rate 1 on a 2-core CPU)", "",
                  f"The node's inference (its queue-refill forwards, with attention capture) p50 "
                  f"{_num(rt.get('node_inference_p50_ms'), ' ms')}; the same model's forward alone, timed after the "
                  f"node stopped with its {fwd.get('torch_threads', '?')} torch thread(s): p50 "
                  f"{_num(fwd.get('p50_ms'), ' ms')} (p10-p90 {_num(fwd.get('p10_ms'), '')}-{_num(fwd.get('p90_ms'), '')}, "
                  f"n={fwd.get('n', 0)}).", "",
                  "| target | measured | limit | met |", "|---|---|---|---|"]
        names = {"computed_fraction": "ticks with an action computed", "maps_fraction": "ticks with maps published",
                 "inference_vs_isolated": "node inference p50 / forward alone p50"}
        for name, t in rt["targets"].items():
            v = t["value"]
            shown = _pct(v) if name.endswith("fraction") else _num(v, "x")
            limit = f"{t['op']} {t['limit']:.0%}" if name.endswith("fraction") else f"{t['op']} {t['limit']:g}x"
            met = "n/a" if t["met"] is None else ("yes" if t["met"] else "**no**")
            lines.append(f"| {names.get(name, name)} | {shown} | {limit} | {met} |")
    maps = (s.get("maps") or {}).get("methods") or {}
    if maps:
        lines += ["", f"## What each map finds (known-answer model, {s['maps']['frames']} held-out approach frames)", "",
                  "| map | on the target (x uniform) | target > distractor | rank corr. vs random weights | "
                  "faithfulness (deletion) |", "|---|---|---|---|---|"]
        for method, m in maps.items():
            lines.append(f"| {method} | {_num(m['target_mass_vs_uniform'], 'x')} | {_pct(m['target_beats_distractor'])} | "
                         f"{_num(m['rank_corr_random_weights'], '', signed=True)} | {_num(m['faithfulness'], 'x')} |")
    d = s.get("diagnostics") or {}
    if d:
        c = d.get("counters", {})
        lines.append(f"- node ticks (diagnostics at bag time {d.get('as_of_bag_time_s', 0):.1f} s): "
                     + ", ".join(f"{k} {v}" for k, v in c.items()))
        skipped = d.get("skipped_by_reason") or {}
        lines.append("- ticks skipped by reason: " + (", ".join(f"{k} {v}" for k, v in skipped.items()) or "none"))
        if d.get("latency"):
            lines.append("- node timing: " + ", ".join(f"{k} {v}" for k, v in d["latency"].items()))
    else:
        lines.append("- no /diagnostics received from the node")
    per_phase = s["proprio_attention"].get("per_phase") or {}
    if per_phase:
        lines += ["", "## Proprio attention per phase", "", "| phase | mean | samples |", "|---|---|---|"]
        lines += [f"| {p} | {_pct(v['mean'])} | {v['count']} |" for p, v in per_phase.items()]
    lines += ["", "## Timings (s)", ""]
    lines += [f"- {k}: {v:.1f}" for k, v in s["timings_s"].items()]
    lines += ["", "## Files", ""]
    lines += [f"- `{f}`" for f in s["files"]]
    return "\n".join(lines) + "\n"


def _num(v: Any, unit: str, signed: bool = False) -> str:
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        return "n/a"
    return f"{v:+.2f}{unit}" if signed else f"{v:.2f}{unit}"


def _pct(v: Any) -> str:
    return f"{v:.1%}" if isinstance(v, (int, float)) and math.isfinite(v) else "n/a"
