"""Spread of every known-answer, env-state and shortcut-pair criterion over trainings (issues 20, 29).

CPU training is not bit-reproducible across machines, so a test on a trained model may only assert with a
margin that the spread over trainings supports. This script trains each cached model with several seeds
(``spec.seed``: weight initialisation and batch order; the data is the same), runs the evaluation the tests
run, and writes one row per (model, seed) plus min/max per criterion:

    .venv/bin/python bench/training_spread.py [--seeds 0 1 2] [--only known_answer|env_state|shortcut_pair] [--out FILE]

Models are cached like the tests' (``ACT_INTERP_CACHE``), so seed 0 is the tests' own model. Cost on 2 cores:
about 10 minutes per known-answer seed, 5 per env-state seed and variant, and 10-15 per shortcut-pair seed (two
models, their evaluation, ``--ablate`` and ``--move`` on a recording). The shortcut pair's tests read their
thresholds from the stored rows (``act_interp_ros.proofs.pair_spread``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "test"))  # the tests' own constants (thresholds, frame counts)


def known_answer_row(seed: int) -> dict:
    import test_known_answer as t

    from act_interp_ros.proofs import known_answer as ka

    model = ka.ensure_known_answer_model(progress=False, spec=replace(ka.DEFAULT_SPEC, seed=seed))
    err = model.metrics["held_out_action_error"]
    eff = ka.intervention_effect(model.path, n_frames=32, seed=0)
    maps = ka.evaluate_maps(model.path, **ka.STANDARD_EVALUATION)
    occ = ka.evaluate_maps(model.path, n_frames=t.N_OCCLUSION_FRAMES, seed=0, methods=("occlusion",),
                           occlusion_patch=t.OCCLUSION_PATCH, occlusion_stride=t.OCCLUSION_STRIDE,
                           deletion_random_draws=t.DELETION_DRAWS)
    blur = ka.evaluate_maps(model.path, n_frames=t.N_OCCLUSION_FRAMES, seed=0, methods=("occlusion",),
                            occlusion_patch=t.OCCLUSION_PATCH, occlusion_stride=t.OCCLUSION_STRIDE,
                            deletion_random_draws=t.DELETION_DRAWS, occlusion_fill="blur")
    row = {"model": "known_answer", "seed": seed, "weights_sha256": model.metrics.get("weights_sha256", ""),
           "train_s": model.metrics["seconds"]["train"],
           "first_action_to_mean_baseline": err["first_action"]["model_to_mean_baseline"],
           "chunk_to_mean_baseline": err["chunk"]["model_to_mean_baseline"],
           "chunk_to_hold_baseline": err["chunk"]["model"]["overall"] / err["chunk"]["hold_state_baseline"]["overall"],
           "intervention_target_moved": eff.target_moved, "intervention_ratio": eff.ratio}
    for name, evaluation, method in (("attention", maps, "attention"), ("gradcam", maps, "gradcam"),
                                     ("gradient_x_input", maps, "gradient_x_input"), ("occlusion", occ, "occlusion"),
                                     ("occlusion_blur", blur, "occlusion")):
        s = evaluation.get(method, "front")
        row.update({f"{name}.ratio_vs_uniform": s.ratio_vs_uniform,
                    f"{name}.target_beats_distractor": s.target_beats_distractor,
                    f"{name}.rank_corr_random": s.rank_corr_random,
                    f"{name}.faithfulness_ratio": s.faithfulness_ratio})
    return row


def env_state_rows(seed: int) -> list[dict]:
    import test_env_state_known_answer as t

    from act_interp_ros.proofs import coordinate_use as cu
    from act_interp_ros.proofs import env_state_model as em

    rows = []
    for variant, spec in t.VARIANTS.items():
        model = em.ensure_env_state_model(progress=False, spec=replace(spec, seed=seed))
        use = cu.evaluate_coordinate_use(model.path, n_episodes=t.N_EPISODES, seed=0)
        err = model.metrics["held_out_action_error"]
        rows.append({"model": f"env_state.{variant}", "seed": seed,
                     "weights_sha256": model.metrics.get("weights_sha256", ""),
                     "chunk_to_mean_baseline": err["chunk"]["model_to_mean_baseline"],
                     "chunk_to_hold_baseline": err["chunk"]["model"]["overall"] / err["chunk"]["hold_state_baseline"]["overall"],
                     "sensitivity_to_expert": use.sensitivity / use.expert_sensitivity,
                     "named_cube_accuracy": use.named_cube_accuracy,
                     "control_sensitivity": use.control_sensitivity,
                     "attention_share_control_to_trained": use.control_env_attention_share / use.env_attention_share})
    return rows


def shortcut_pair_row(seed: int) -> dict:
    import tempfile

    from act_interp_ros.proofs import pair_spread
    from act_interp_ros.proofs import shortcut_evaluation as se
    from act_interp_ros.proofs import shortcut_model as sm
    from act_interp_ros.proofs import shortcut_recording as rec

    pair = {name: sm.ensure_shortcut_model(replace(spec, seed=seed)) for name, spec in sm.PAIR.items()}
    evaluations = {name: se.cached_shortcut_evaluation(m, **se.STANDARD_SHORTCUT_EVALUATION) for name, m in pair.items()}
    config = HERE.parent / "config" / "so101.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        ablation, _ = rec.ablation_ratios(pair, Path(tmp) / "ablate", config)
        moves, _ = rec.move_results(pair, Path(tmp) / "move", config)
    return pair_spread.pair_row(seed, pair, evaluations, ablation, moves)


def spread(rows: list[dict]) -> dict:
    """model -> criterion -> [min, max] over seeds."""
    out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        for key, value in row.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "seed":
                lo_hi = out.setdefault(row["model"], {}).setdefault(key, [value, value])
                lo_hi[0], lo_hi[1] = min(lo_hi[0], value), max(lo_hi[1], value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--only", choices=["known_answer", "env_state", "shortcut_pair"])
    ap.add_argument("--out", type=Path, default=HERE / "training_spread.json")
    args = ap.parse_args(argv)
    import importlib.metadata

    import torch

    rows = json.loads(args.out.read_text())["rows"] if args.out.is_file() else []
    for seed in args.seeds:
        t0 = time.perf_counter()
        new = []
        if args.only in (None, "known_answer"):
            new.append(known_answer_row(seed))
        if args.only in (None, "env_state"):
            new += env_state_rows(seed)
        if args.only in (None, "shortcut_pair"):
            new.append(shortcut_pair_row(seed))
        rows = [r for r in rows if (r["model"], r["seed"]) not in {(n["model"], n["seed"]) for n in new}] + new
        print(f"seed {seed}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        args.out.write_text(json.dumps({
            "lerobot": importlib.metadata.version("lerobot"), "torch": torch.__version__,
            "training_threads": 2, "rows": rows, "spread": spread(rows)}, indent=1))
    for model, crits in spread(rows).items():
        print(f"\n{model} ({sum(r['model'] == model for r in rows)} trainings)")
        for key, (lo, hi) in crits.items():
            print(f"  {key:42s} {lo:10.3f} .. {hi:10.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
