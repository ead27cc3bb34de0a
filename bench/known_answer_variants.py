"""Experiment: which known-answer ACT variants and GradCAM layers give maps that localise the target.

Not a pass/fail test: it trains (or reuses from the cache) the default known-answer model and variants of
it, scores their maps with the same code as ``test/test_known_answer.py`` and writes a table. Each
uncached variant trains for ~7 minutes on a 2-core CPU.

    .venv/bin/python -m bench.known_answer_variants            # -> bench/known_answer_variants.json
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from act_interp_ros.proofs import known_answer as ka

log = logging.getLogger("bench.known_answer_variants")

#: name -> KnownAnswerSpec overrides.
VARIANTS: dict[str, dict] = {
    "default (1 encoder layer)": {},
    "no encoder layer": {"n_encoder_layers": 0},
}
LAYERS = ("layer4", "layer3")


def run(n_frames: int, out: Path) -> list[dict]:
    rows = []
    for name, overrides in VARIANTS.items():
        spec = replace(ka.DEFAULT_SPEC, **overrides)
        model = ka.ensure_known_answer_model(progress=True, spec=spec)
        chunk = model.metrics["held_out_action_error"]["chunk"]
        eff = ka.intervention_effect(model.path, n_frames=32, seed=0)
        for layer in LAYERS:
            ev = ka.evaluate_maps(model.path, n_frames=n_frames, seed=0, gradcam_layer=layer)
            for method in ("attention", "gradcam"):
                if method == "attention" and layer != LAYERS[0]:
                    continue  # attention does not depend on the GradCAM layer
                s = ev.get(method, "front")
                rows.append({
                    "variant": name, "overrides": overrides, "key": model.key,
                    "map": method if method == "attention" else f"gradcam {layer}",
                    "ratio_vs_uniform": round(s.ratio_vs_uniform, 2),
                    "target_beats_distractor": round(s.target_beats_distractor, 2),
                    "rank_corr_random": round(s.rank_corr_random, 2),
                    "chunk_mae": round(chunk["model"]["overall"], 2),
                    "hold_still_mae": round(chunk["hold_state_baseline"]["overall"], 2),
                    "target_vs_distractor_intervention": round(eff.ratio, 1),
                    "train_s": model.metrics["seconds"]["train"],
                })
                log.info("%s", rows[-1])
    out.write_text(json.dumps({"n_frames": n_frames, "rows": rows}, indent=2))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| variant | map | ratio vs uniform | target > distractor | rank corr. vs random | chunk MAE (hold-still) |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {r['map']} | {r['ratio_vs_uniform']:.2f}x | "
                     f"{100 * r['target_beats_distractor']:.0f}% | {r['rank_corr_random']:+.2f} | "
                     f"{r['chunk_mae']:.2f} ({r['hold_still_mae']:.2f}) |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=64, help="held-out frames to score (default 64, as the tests)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("known_answer_variants.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rows = run(args.frames, args.out)
    log.info("results written to %s\n%s", args.out, table(rows))


if __name__ == "__main__":
    main()
