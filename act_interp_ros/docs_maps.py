"""docs/methods.md's table of what each map finds on the known-answer model, generated from
bench/training_spread.json (``bench/training_spread.py``: every criterion over several trainings).

Each cell: the seed-0 training (the cached model the demo and the tests use), then in brackets the range over
every seed in the file.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

__all__ = ["known_answer_maps_markdown"]

SPREAD = Path(__file__).resolve().parents[1] / "bench" / "training_spread.json"

#: (row label, method key in the results)
ROWS = (("attention (all queries, the default)", "attention"),
        ("GradCAM `layer4` (`first_action_sum`)", "gradcam"),
        ("**gradient x input** (`executed`)", "gradient_x_input"),
        ("occlusion (mean-colour fill)", "occlusion"),
        ("occlusion, blur fill (tried for robustness)", "occlusion_blur"))


def _ratio(v: float) -> str:
    return f"{v:.2f}x" if v < 10 else f"{v:.1f}x"


def _pct(v: float) -> str:
    return f"{100 * v:.0f} %"


def _corr(v: float) -> str:
    return f"{v:+.2f}"


#: (column header, metric suffix, formatter)
COLUMNS: tuple[tuple[str, str, Callable[[float], str]], ...] = (
    ("mass on the target vs a uniform map", "ratio_vs_uniform", _ratio),
    ("target > distractor (share of frames)", "target_beats_distractor", _pct),
    ("rank corr. vs random weights", "rank_corr_random", _corr),
    ("faithfulness (deletion test)", "faithfulness_ratio", _ratio))


def _cell(rows: list[dict[str, Any]], key: str, fmt: Callable[[float], str]) -> str:
    values = [r[key] for r in rows if key in r]
    seed0 = next(r[key] for r in rows if r["seed"] == 0)
    lo, hi = fmt(min(values)), fmt(max(values))
    spread = lo if lo == hi else f"{lo.rstrip('x %')}..{hi}" if fmt is _corr else f"{lo.rstrip('x %')}-{hi}"
    return f"{fmt(seed0)} [{spread}]"


def known_answer_maps_markdown(path: Path = SPREAD) -> str:
    data = json.loads(path.read_text())
    rows = sorted((r for r in data["rows"] if r["model"] == "known_answer"), key=lambda r: r["seed"])
    if not any(r["seed"] == 0 for r in rows):
        raise ValueError(f"{path}: no known_answer row for seed 0")
    head = ["| map (target) | " + " | ".join(c[0] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    body = [f"| {label} | " + " | ".join(_cell(rows, f"{key}.{suffix}", fmt) for _, suffix, fmt in COLUMNS) + " |"
            for label, key in ROWS if any(f"{key}.faithfulness_ratio" in r for r in rows)]
    moved = [r["intervention_target_moved"] for r in rows]
    seed0 = rows[0]
    caption = (f"Seed 0, then [the range over seeds {', '.join(str(r['seed']) for r in rows)}]: {len(rows)} trainings "
               f"with LeRobot {data['lerobot']}, torch {data['torch'].split('+')[0]}, {data['training_threads']} "
               f"training threads, on {data.get('machine', {}).get('cpu_model', 'a CPU the file does not record')} "
               f"(`bench/training_spread.json`). The model acts on the target: moving it changes "
               f"the chunk by {seed0['intervention_target_moved']:.1f} deg ({min(moved):.1f}-{max(moved):.1f}), "
               f"{seed0['intervention_ratio']:.0f}x as much as moving the distractor.")
    return "\n".join(head + body + ["", caption])
