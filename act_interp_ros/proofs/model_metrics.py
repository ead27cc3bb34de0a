"""How a trained model does on held-out frames: its predicted chunks, their error against the mean and
hold-state baselines, the training loss curve."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from act_interp_ros.proofs.training import FrameSet, KnownAnswerSpec, raw_batch


@torch.no_grad()
def predict_chunks(policy, preprocessor, postprocessor, frames: FrameSet, spec: KnownAnswerSpec,
                   batch_size: int = 64) -> np.ndarray:
    """(N, chunk_size, 6) predicted action chunk for every frame, in policy units."""
    policy.eval()
    out = []
    for start in range(0, len(frames), batch_size):
        idx = np.arange(start, min(start + batch_size, len(frames)))
        batch = preprocessor(raw_batch(frames, idx, spec, with_action=False))
        chunk = policy.predict_action_chunk(batch)  # (B, chunk, 6) normalised
        b, c, a = chunk.shape
        out.append(postprocessor(chunk.reshape(b * c, a)).detach().cpu().numpy().reshape(b, c, a))
    return np.concatenate(out).astype(np.float32)


def action_error_metrics(predicted: np.ndarray, frames: FrameSet, train_mean_action: np.ndarray,
                         joint_names: tuple[str, ...]) -> dict[str, Any]:
    """Held-out absolute errors (policy units) of the model and of two baselines, per joint and overall.

    ``predicted`` is (N, chunk_size, 6). Two views: ``first_action`` (the action executed at this step)
    and ``chunk`` (every non-padded step of the predicted chunk - what ACT's L1 loss measures).
    Baselines: ``mean_action`` predicts the training set's mean action everywhere; ``hold_state``
    repeats the current joint state (a policy that never moves; the first action of this expert is
    always within a few degrees of the state, so the chunk view is the one that shows whether the model
    knows where the target is).
    """
    valid = ~frames.chunk_is_pad  # (N, chunk)
    truth = frames.chunk
    candidates = {
        "model": predicted,
        "mean_action_baseline": np.broadcast_to(train_mean_action[None, None, :], truth.shape),
        "hold_state_baseline": np.broadcast_to(frames.state[:, None, :], truth.shape),
    }

    def summary(err: np.ndarray) -> dict[str, Any]:  # err: (M, 6)
        return {"overall": float(err.mean()), "per_joint": {n: float(v) for n, v in zip(joint_names, err.mean(0))}}

    out: dict[str, Any] = {"n_frames": int(truth.shape[0]), "chunk_size": int(truth.shape[1])}
    for view in ("first_action", "chunk"):
        sel = (slice(None), 0) if view == "first_action" else valid
        out[view] = {name: summary(np.abs(p - truth)[sel]) for name, p in candidates.items()}
        out[view]["model_to_mean_baseline"] = out[view]["model"]["overall"] / max(
            out[view]["mean_action_baseline"]["overall"], 1e-9)
    return out


def loss_summary(losses: np.ndarray, n_points: int = 10) -> dict[str, Any]:
    """Compact training-curve summary: first/last window means and ``n_points`` evenly spaced window means."""
    n = len(losses)
    win = max(1, min(50, n // 10))
    edges = np.linspace(0, n, n_points + 1).astype(int)
    return {
        "steps": n,
        "first_window_mean": float(losses[:win].mean()),
        "last_window_mean": float(losses[-win:].mean()),
        "min": float(losses.min()),
        "curve": [{"step": int(b), "loss": float(losses[a:b].mean())} for a, b in zip(edges[:-1], edges[1:]) if b > a],
    }


def seconds_to_text(seconds: float) -> str:
    m, s = divmod(int(math.ceil(seconds)), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"
