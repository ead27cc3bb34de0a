"""What a replay's summary says: tick counts by skip reason, attention means, the training-range flags, timings
(``summary.json``), and the one line of a run in which no tick computed an action."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from act_interp_ros.offline.records import TickRecord
from act_interp_ros.offline.regions import RegionSet
from act_interp_ros.settings import camera_name

def group_name(group: str) -> str:
    """Attention group -> the name tables and plots use: state -> proprio, a camera key -> its short name."""
    return "proprio" if group == "state" else camera_name(group) if group.startswith("observation.") else group


# ------------------------------------------------------------------------------------------ summaries
class TickStats:
    """Counts over tick records: processed / skipped (by kind, by kind and input, first reason of each),
    side ticks, and the mean attention share per group over the processed ticks."""

    def __init__(self, ablation: str | None = None, move: str | None = None,
                 regions: RegionSet | None = None) -> None:
        self.regions = regions
        self._region_values: dict[str, list[float]] = {}
        self.ablation_label = ablation
        self._ablation: list[float] = []
        self.move_label = move
        self._move: list[tuple[float, float, float]] = []
        self.ticks = self.processed = self.skipped = self.side_ticks = 0
        self.kinds: Counter[str] = Counter()
        self.groups: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.out_of_range: Counter[str] = Counter()  # flag counter name -> ticks
        self.out_of_range_examples: dict[str, str] = {}
        self._shares: dict[str, list[float]] = {}

    def add(self, rec: TickRecord) -> None:
        self.ticks += 1
        for flag in rec.range_flags:
            self.out_of_range[flag.counter] += 1
            self.out_of_range_examples.setdefault(flag.counter, flag.line())
        if rec.skipped:
            self.skipped += 1
            self.kinds[rec.skip.kind] += 1
            self.groups[rec.skip.group] += 1
            self.examples.setdefault(rec.skip.group, str(rec.skip))
            return
        self.processed += 1
        self.side_ticks += bool(rec.side_maps)
        if rec.ablation_change is not None:
            self._ablation.append(float(rec.ablation_change))
        for col, v in rec.region_values.items():
            self._region_values.setdefault(col, []).append(float(v))
        if rec.move_change is not None:
            self._move.append((rec.move_change, rec.move_control_change, rec.move_vs_control))
        if rec.interpretation is not None:
            for g, v in rec.interpretation.fractions.items():
                self._shares.setdefault(group_name(g), []).append(float(v))

    def no_action_message(self) -> str | None:
        """One line when no tick computed an action (what happened), else None."""
        return no_action_message(self.ticks, self.processed, dict(sorted(self.groups.items())), self.examples)

    def fields(self) -> dict[str, Any]:
        """The :class:`TickSummary` fields these counts fill."""
        return {
            "ticks": self.ticks, "processed": self.processed, "skipped": self.skipped,
            "skipped_by_kind": dict(sorted(self.kinds.items())), "skipped_by_reason": dict(sorted(self.groups.items())),
            "reason_examples": dict(sorted(self.examples.items())), "side_ticks": self.side_ticks,
            "attention_mean": {g: round(float(np.mean(v)), 6) for g, v in self._shares.items()},
            "outside_training_range": dict(sorted(self.out_of_range.items())),
            "outside_training_range_examples": dict(sorted(self.out_of_range_examples.items())),
            "ablation": self.ablation_fields(),
            "move": self.move_fields(),
            "regions": self.region_fields(),
        }

    def region_fields(self) -> dict[str, Any]:
        """``--regions``: region -> {"ablation": mean chunk change, map -> {mass, density, lift: mean}, "ticks"}
        over the ticks where each applied ({} without)."""
        if self.regions is None:
            return {}
        out: dict[str, Any] = {}
        for r in self.regions.regions:
            prefix = f"region_{r.name}_"
            entry: dict[str, Any] = {"camera": r.camera, "ticks": len(self._region_values.get(prefix + "ablation", []))}
            for col, values in self._region_values.items():
                if not col.startswith(prefix):
                    continue
                v = np.asarray(values, dtype=np.float64)
                v = v[np.isfinite(v)]
                mean = round(float(v.mean()), 6) if v.size else None
                rest = col[len(prefix):]
                if rest == "ablation":
                    entry["ablation"] = mean
                else:
                    method, _, fld = rest.rpartition("_")
                    entry.setdefault(method, {})[fld] = mean
            out[r.name] = entry
        return out

    def ablation_fields(self) -> dict[str, Any]:
        """``--ablate``: the spec and the executed chunk's change over the ticks where it applied ({} without)."""
        if self.ablation_label is None:
            return {}
        v = np.asarray(self._ablation, dtype=np.float64)
        stats = ({"mean": float(v.mean()), "median": float(np.median(v)), "p90": float(np.percentile(v, 90)),
                  "max": float(v.max())} if v.size else {"mean": None, "median": None, "p90": None, "max": None})
        return {"spec": self.ablation_label, "ticks": int(v.size),
                **{k: (round(x, 6) if x is not None else None) for k, x in stats.items()}}


    def move_fields(self) -> dict[str, Any]:
        """``--move``: the spec; over the ticks where it applied, the mean executed chunk change under the move,
        under the opposite (control) move and between the two, and ``follow`` = mean vs_control / (mean change +
        mean control change) in [0, 1] ({} without)."""
        if self.move_label is None:
            return {}
        v = np.asarray(self._move, dtype=np.float64).reshape(-1, 3)
        if not len(v):
            return {"spec": self.move_label, "ticks": 0, "change": None, "control_change": None,
                    "vs_control": None, "follow": None}
        change, control, vs = (float(x) for x in v.mean(axis=0))
        follow = vs / (change + control) if change + control > 0 else None
        return {"spec": self.move_label, "ticks": len(v), "change": round(change, 6),
                "change_median": round(float(np.median(v[:, 0])), 6), "control_change": round(control, 6),
                "vs_control": round(vs, 6), "follow": round(follow, 6) if follow is not None else None}


def region_lines(regions: dict[str, Any]) -> list[str]:
    """One summary line per ``--regions`` region: each map's mean lift over uniform, and the ablation's effect."""
    lines = []
    for name, entry in regions.items():
        maps = ", ".join(f"{m} lift {v['lift']:.2f}x" for m, v in entry.items()
                         if isinstance(v, dict) and v.get("lift") is not None)
        ablation = entry.get("ablation")
        lines.append(f"region {name}: on {entry['ticks']} ticks {maps or 'no map'}; ablating it changes the chunk "
                     f"{'-' if ablation is None else f'{ablation:.3g}'}")
    return lines


def move_line(move: dict[str, Any]) -> str | None:
    """One summary line of ``--move`` (``None`` without)."""
    if not move:
        return None
    if not move["ticks"]:
        return f"--move {move['spec']}: applied on no tick"
    return (f"--move {move['spec']}: on {move['ticks']} ticks the executed chunk changed {move['change']:.3g} "
            f"(opposite move {move['control_change']:.3g}); between the two {move['vs_control']:.3g}: follows the "
            f"move {move['follow']:.2f} (1 = the chunk goes where the region goes, 0 = it only reacts to the edit)")


@dataclass(kw_only=True)
class TickSummary:
    """The summary fields of every replay (``summary.json``).

    ``skipped_by_kind`` counts skipped ticks per kind of :data:`act_interp_ros.pipeline.SKIP_KINDS` (what
    the node's diagnostics count as ``skipped.<kind>``); ``skipped_by_reason`` per kind and input, with the
    first full reason of each in ``reason_examples``. ``attention_mean``: mean share of the decoder's
    attention per group (proprio, env_state, latent, each camera) over the processed ticks.
    ``faithfulness``: method -> camera -> deletion-test result. ``outside_training_range``: flag counter
    (``state_outside_training_range.<joint>``, ...) -> ticks, with the first line of each in ``..._examples``. ``ablation`` (with
    ``--ablate``): the spec and the executed chunk's change (mean, median, p90, max; normalised L2) over the ticks
    where the edit applied. ``move`` (with ``--move``): :meth:`TickStats.move_fields`. ``outputs`` maps each output's name to its
    final path; ``timings`` has wall times (s) and ticks/s.
    """

    ticks: int
    processed: int
    skipped: int
    skipped_by_kind: dict[str, int]
    skipped_by_reason: dict[str, int]
    reason_examples: dict[str, str]
    plan_resets: int
    side_ticks: int
    attention_mean: dict[str, float]
    faithfulness: dict[str, Any]
    outputs: dict[str, str]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    outside_training_range: dict[str, int] = field(default_factory=dict)
    outside_training_range_examples: dict[str, str] = field(default_factory=dict)
    ablation: dict[str, Any] = field(default_factory=dict)
    move: dict[str, Any] = field(default_factory=dict)
    regions: dict[str, Any] = field(default_factory=dict)

    def range_line(self) -> str:
        """One summary line: which inputs were outside the training range on how many ticks (first example)."""
        if not self.outside_training_range:
            return "training range: every checked input inside"
        parts = ", ".join(f"{k} on {v} of {self.ticks} ticks" for k, v in self.outside_training_range.items())
        first = next(iter(self.outside_training_range_examples.values()), "")
        return f"training range: {parts}; first: {first}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def no_action_message(self) -> str | None:
        """One line when no tick computed an action (what happened), else None."""
        return no_action_message(self.ticks, self.processed, self.skipped_by_reason, self.reason_examples)


def no_action_message(ticks: int, processed: int, skipped_by_reason: dict[str, int],
                      reason_examples: dict[str, str]) -> str | None:
    """``no tick computed an action (N ticks skipped: <reason counts>); first: <reason>`` when ``processed`` is 0."""
    if processed:
        return None
    ranked = sorted(skipped_by_reason.items(), key=lambda kv: -kv[1])
    reasons = ", ".join(f"{k}: {v}" for k, v in ranked)
    text = f"no tick computed an action ({ticks} ticks skipped: {reasons})"
    if ranked:
        text += f"; first: {reason_examples.get(ranked[0][0], ranked[0][0])}"
    return text


def timings(*, total_s: float, loop_s: float, model_s: float, outputs_s: float, ticks: int, **extra: float) -> dict[str, float]:
    """The ``timings`` of a summary (s, rounded) with ``ticks_per_s`` = ticks / loop time."""
    loop_s = max(loop_s, 1e-9)
    values = {**extra, "ticks_s": loop_s, "model_s": model_s, "outputs_s": outputs_s, "total_s": total_s}
    return {**{k: round(v, 4) for k, v in values.items()}, "ticks_per_s": round(ticks / loop_s, 3)}
