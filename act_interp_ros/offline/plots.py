"""The replay's plots over an episode: attention shares and faithfulness, actions against the recording's, and the
action error statistics."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.offline.outputs import TickTable

# ------------------------------------------------------------------------------------------- plot
def write_attention_plot(table: TickTable, path: Path, title: str = "") -> None:
    """PNG over the episode: attention share per input group (top) and, when measured, the faithfulness
    (deletion-test ratio) of each map method on the sampled ticks (bottom).

    Skipped ticks are gaps in the lines and shaded grey; side-method ticks are marked on the time axis.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = table.rows
    t = np.array([r["time_s"] for r in rows], dtype=np.float64)
    skipped = np.array([r["skipped"] for r in rows], dtype=bool)
    faith = {c: np.array([r.get(c, np.nan) for r in rows], dtype=np.float64) for c in table.faithfulness_columns}
    faith = {c: v for c, v in faith.items() if np.isfinite(v).any()}
    fig = Figure(figsize=(10, 6.2 if faith else 4.2), dpi=100, layout="constrained")
    axes = fig.subplots(2 if faith else 1, 1, sharex=True, squeeze=False)[:, 0]
    ax = axes[0]
    styles = {"attn_proprio": dict(color="#d81b60", lw=2.0, label="proprio (joint state)"),
              "attn_env_state": dict(color="#8e24aa", lw=1.5, label="env state"),
              "attn_latent": dict(color="#9e9e9e", lw=1.0, ls="--", label="latent")}
    palette = ["#1e88e5", "#43a047", "#fb8c00", "#00acc1", "#6d4c41", "#3949ab"]
    for i, name in enumerate(table.camera_names):
        styles[f"attn_{name}"] = dict(color=palette[i % len(palette)], lw=1.8, label=f"camera: {name}")
    for col in table.fraction_columns:
        y = np.array([r[col] for r in rows], dtype=np.float64)
        ax.plot(t, y, **styles[col])
    if skipped.any():
        ax.fill_between(t, 0, 1, where=skipped, step="mid", color="grey", alpha=0.2, lw=0,
                        transform=ax.get_xaxis_transform(), label="skipped tick")
    side = np.array([bool(r["maps"]) for r in rows], dtype=bool)
    if side.any():
        ax.plot(t[side], np.zeros(int(side.sum())), "|", color="black", ms=6, transform=ax.get_xaxis_transform(),
                label="side-method tick")
    ax.set_ylabel("share of decoder cross-attention")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, ncols=2)
    ax.set_title(title or "ACT attention per input group over the episode", fontsize=10)
    if faith:
        fx = axes[1]
        for i, (col, y) in enumerate(faith.items()):
            ok = np.isfinite(y)
            fx.plot(t[ok], y[ok], "o-", color=palette[i % len(palette)], ms=4, lw=1.2, label=col[len("faith_"):])
        fx.axhline(1.0, color="grey", lw=1.0, ls="--")
        fx.set_ylabel("faithfulness (top-k / random deletion)")
        fx.set_yscale("log")
        fx.grid(True, alpha=0.3)
        fx.legend(loc="upper right", fontsize=8, ncols=3)
    axes[-1].set_xlabel("time since start of replay (s)")
    if len(t):
        axes[-1].set_xlim(t[0], max(t[-1], t[0] + 1e-3))
    fig.savefig(path, format="png")


# ------------------------------------------------------------------------------ predicted vs recorded
def write_ablation_plot(table: TickTable, path: Path, label: str, title: str = "") -> None:
    """PNG over the episode: how much the executed chunk changes when ``--ablate`` edits its region (normalised
    L2 of the executed actions), per tick; skipped ticks shaded grey, ticks that start a new chunk marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = table.rows
    t = np.array([r["time_s"] for r in rows], dtype=np.float64)
    y = np.array([r.get("ablation_change", np.nan) for r in rows], dtype=np.float64)
    skipped = np.array([r["skipped"] for r in rows], dtype=bool)
    new_plan = np.array([bool(r["new_plan"]) for r in rows], dtype=bool)
    fig = Figure(figsize=(10, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    ok = np.isfinite(y)
    ax.plot(t[ok], y[ok], "-", color="#e53935", lw=1.6, label=f"--ablate {label}")
    if ok.any():
        ax.axhline(float(np.median(y[ok])), color="#e53935", lw=1.0, ls="--", alpha=0.6, label="median")
    _finish_chunk_change_plot(fig, ax, t, skipped, new_plan, title or "Chunk change under --ablate", 4, path)


def write_move_plot(table: TickTable, path: Path, label: str, title: str = "") -> None:
    """PNG over the episode (``--move``): the executed chunk's change under the move, under the opposite (control)
    move, and between the two (normalised L2), per tick; skipped ticks shaded grey, new chunks marked."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = table.rows
    t = np.array([r["time_s"] for r in rows], dtype=np.float64)
    skipped = np.array([r["skipped"] for r in rows], dtype=bool)
    new_plan = np.array([bool(r["new_plan"]) for r in rows], dtype=bool)
    fig = Figure(figsize=(10, 3.6), dpi=100, layout="constrained")
    ax = fig.subplots()
    for col, colour, name in (("move_change", "#e53935", f"--move {label}"),
                              ("move_control_change", "#1e88e5", "opposite move (control)"),
                              ("move_vs_control", "#43a047", "move vs opposite (follows)")):
        y = np.array([r.get(col, np.nan) for r in rows], dtype=np.float64)
        ok = np.isfinite(y)
        ax.plot(t[ok], y[ok], "-", color=colour, lw=1.4, label=name)
    _finish_chunk_change_plot(fig, ax, t, skipped, new_plan, title or "Chunk change under --move", 3, path)


def _finish_chunk_change_plot(fig, ax, t: np.ndarray, skipped: np.ndarray, new_plan: np.ndarray, title: str,
                              ncols: int, path: Path) -> None:
    """The shared part of the ``--ablate`` / ``--move`` plots: skipped ticks shaded, new chunks marked, axes,
    legend and title; then the PNG written to ``path``."""
    if skipped.any():
        ax.fill_between(t, 0, 1, where=skipped, step="mid", color="grey", alpha=0.2, lw=0,
                        transform=ax.get_xaxis_transform(), label="skipped tick")
    if new_plan.any():
        ax.plot(t[new_plan], np.zeros(int(new_plan.sum())), "|", color="black", ms=6,
                transform=ax.get_xaxis_transform(), label="new chunk")
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel("executed chunk change\n(normalised L2)")
    ax.set_xlabel("time since start of replay (s)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8, ncols=ncols)
    ax.set_title(title, fontsize=10)
    if len(t):
        ax.set_xlim(t[0], max(t[-1], t[0] + 1e-3))
    fig.savefig(path, format="png")


def action_errors(table: TickTable) -> dict[str, np.ndarray]:
    """joint -> (n_rows,) predicted - recorded action (policy units; NaN where either is missing)."""
    if not table.recorded:
        return {}
    return {name: np.array([r[f"error_{name}"] for r in table.rows], dtype=np.float64) for name in table.action_names}


def action_error_stats(tables: Sequence[tuple[int | None, TickTable]]) -> dict[str, Any]:
    """Per-joint error of the predicted against the recorded action, pooled over ``(episode, table)`` pairs.

    Returns ``{"joints": {joint: {n, mae, rmse, bias, max_abs, max_abs_at: {episode, tick, time_s}}},
    "all": {n, mae, rmse}}`` in policy units (degrees for SO-101 arm joints, 0..100 gripper); ``bias`` is the
    mean of predicted - recorded; ``max_abs_at`` is where the policy is furthest from the demonstration.
    Values are ``None`` when no tick has both actions.
    """
    names: list[str] = []
    for _, table in tables:
        names += [n for n in table.action_names if n not in names and table.recorded]
    joints: dict[str, Any] = {}
    pooled: list[np.ndarray] = []
    for name in names:
        parts, where = [], []
        for episode, table in tables:
            err = action_errors(table).get(name)
            if err is None:
                continue
            parts.append(err)
            where += [(episode, r["tick"], r["time_s"]) for r in table.rows]
        err = np.concatenate(parts) if parts else np.zeros(0)
        ok = np.isfinite(err)
        pooled.append(err[ok])
        if not ok.any():
            joints[name] = {"n": 0, "mae": None, "rmse": None, "bias": None, "max_abs": None, "max_abs_at": None}
            continue
        e = err[ok]
        worst = int(np.flatnonzero(ok)[int(np.argmax(np.abs(e)))])
        episode, tick, time_s = where[worst]
        joints[name] = {"n": int(ok.sum()), "mae": _r(np.mean(np.abs(e))), "rmse": _r(np.sqrt(np.mean(e ** 2))),
                        "bias": _r(np.mean(e)), "max_abs": _r(np.max(np.abs(e))),
                        "max_abs_at": {"episode": episode, "tick": int(tick), "time_s": float(time_s)}}
    every = np.concatenate(pooled) if pooled else np.zeros(0)
    overall = ({"n": int(every.size), "mae": _r(np.mean(np.abs(every))), "rmse": _r(np.sqrt(np.mean(every ** 2)))}
               if every.size else {"n": 0, "mae": None, "rmse": None})
    return {"joints": joints, "all": overall}


def _r(v: float) -> float:
    return round(float(v), 6)


def write_action_plot(table: TickTable, path: Path, title: str = "") -> None:
    """PNG, one panel per joint: the predicted action and, when the table has them, the recorded
    (demonstration) action over the episode, the gap between them shaded; ticks that started a new
    chunk are marked on the time axis and skipped ticks shaded grey.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    rows = table.rows
    names = table.action_names
    n = max(1, len(names))
    cols = min(3, n)
    nrows = -(-n // cols)
    t = np.array([r["time_s"] for r in rows], dtype=np.float64)
    skipped = np.array([r["skipped"] for r in rows], dtype=bool)
    plans = np.array([bool(r["new_plan"]) for r in rows], dtype=bool)
    fig = Figure(figsize=(4.2 * cols, 2.6 * nrows + 0.6), dpi=100, layout="constrained")
    axes = fig.subplots(nrows, cols, sharex=True, squeeze=False).ravel()
    errors = action_errors(table)
    for ax, name in zip(axes, names):
        pred = np.array([r[f"action_{name}"] for r in rows], dtype=np.float64)
        ax.plot(t, pred, color="#e66101", lw=1.6, label="predicted")
        label = name
        if table.recorded:
            rec = np.array([r[f"recorded_{name}"] for r in rows], dtype=np.float64)
            ax.plot(t, rec, color="#2166ac", lw=1.4, ls="--", label="recorded")
            ok = np.isfinite(pred) & np.isfinite(rec)
            ax.fill_between(t, pred, rec, where=ok, color="#e66101", alpha=0.15, lw=0, interpolate=True)
            err = errors[name][np.isfinite(errors[name])]
            if err.size:
                label += f"  (MAE {np.mean(np.abs(err)):.2f})"
        if skipped.any():
            ax.fill_between(t, 0, 1, where=skipped, step="mid", color="grey", alpha=0.2, lw=0,
                            transform=ax.get_xaxis_transform())
        if plans.any():
            ax.plot(t[plans], np.zeros(int(plans.sum())), "|", color="black", ms=5, transform=ax.get_xaxis_transform())
        ax.set_title(label, fontsize=9)
        ax.grid(True, alpha=0.3)
    for ax in axes[len(names):]:
        ax.set_visible(False)
    axes[0].legend(loc="best", fontsize=7)
    for ax in axes[(nrows - 1) * cols:]:
        ax.set_xlabel("time (s)")
    fig.suptitle(title or "Predicted vs recorded action per joint (| = new chunk)", fontsize=10)
    if len(t):
        axes[0].set_xlim(t[0], max(t[-1], t[0] + 1e-3))
    fig.savefig(path, format="png")
