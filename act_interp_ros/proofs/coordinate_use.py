"""Known answer for coordinate conditioning: does an env-state checkpoint act on its coordinates?

For a checkpoint trained on the coordinate task (:mod:`act_interp_ros.proofs.env_state_model`),
:func:`evaluate_coordinate_use` takes held-out early-approach frames (the arm has not yet turned towards
either cube, so only the coordinates can say which one to take) and measures:

* coordinate sensitivity (:class:`~act_interp_ros.core.env_state_sensitivity.EnvStateSensitivity`) of the
  model, of a control whose env-state input projection is zeroed (coordinates carry no information), and of
  the scripted expert itself (same frames, deltas and definition: the known answer);
* whether the predicted chunk goes to the cube whose coordinates it is given (each frame is asked for both
  cubes; the expert restarted from the frame's joint state gives the two reference chunks);
* the env-state token's decoder attention share (``Interpretation.fractions["env_state"]`` from
  ``InterpretableACT.predict_chunk``) of model and control.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from act_interp_ros.proofs import known_answer as ka
from act_interp_ros.proofs.env_state_model import (
    DEFAULT_ENV_SPEC,
    EnvFrameSet,
    EnvStateSpec,
    env_batch,
    render_env_frames,
    unnormalise_chunk,
)
from act_interp_ros.proofs.training import EVAL_SEED_BASE as _SEED_UNIT
from act_interp_ros.synthetic import PHASES
from act_interp_ros.synthetic.coordinate_task import expert_chunk, expert_sensitivity

#: Episode seeds of :func:`evaluate_coordinate_use` start here (disjoint from training and metrics episodes).
EVAL_SEED_BASE = 4 * _SEED_UNIT


@dataclass
class CoordinateUse:
    """Does the model act on its coordinates? Numbers over held-out early-approach frames.

    Sensitivities are means over frames of ``SensitivityResult.overall`` (and ``per_dim``): policy units
    (deg; gripper 0..100) of executed motion per metre of coordinate change.

    Attributes:
        n_frames: held-out frames (approach phase, one or more per episode).
        deltas: (x, y) perturbation in metres; n_steps: executed chunk steps compared.
        sensitivity / sensitivity_per_dim: the trained model.
        control_sensitivity: the same model with its env-state input projection zeroed.
        expert_sensitivity / expert_sensitivity_per_dim: the scripted expert, same frames and definition.
        named_cube_accuracy: fraction of (frame, cube) pairs in which the model, given that cube's
            coordinates, predicts a chunk closer (mean |.| over the chunk) to the expert's chunk towards
            that cube than to the expert's chunk towards the other one; each frame is asked for both
            cubes. 0.5 = the coordinates are ignored.
        control_named_cube_accuracy: the same for the control.
        named_cube_error / other_cube_error: mean |chunk - expert towards the named / other cube| (deg).
        env_attention_share / control_env_attention_share: mean ``Interpretation.fractions["env_state"]``
            (decoder cross-attention on the env-state token; sums to 1 with the other groups).
        uniform_share: 1 / n_tokens, the share of any one token under uniform attention.
    """

    n_frames: int
    deltas: tuple[float, ...]
    n_steps: int
    sensitivity: float
    sensitivity_per_dim: tuple[float, ...]
    control_sensitivity: float
    expert_sensitivity: float
    expert_sensitivity_per_dim: tuple[float, ...]
    named_cube_accuracy: float
    control_named_cube_accuracy: float
    named_cube_error: float
    other_cube_error: float
    env_attention_share: float
    control_env_attention_share: float
    uniform_share: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """Markdown table: trained model vs control vs expert."""
        rows = [
            "| | sensitivity (deg/m) | named-cube accuracy | env-state attention share |",
            "|---|---|---|---|",
            f"| trained | {self.sensitivity:.1f} | {100 * self.named_cube_accuracy:.0f}% "
            f"| {self.env_attention_share:.4f} |",
            f"| control (env projection zeroed) | {self.control_sensitivity:.3g} "
            f"| {100 * self.control_named_cube_accuracy:.0f}% | {self.control_env_attention_share:.4f} |",
            f"| scripted expert | {self.expert_sensitivity:.1f} | 100% | - |",
        ]
        return "\n".join(rows) + f"\n(uniform attention share of one token: {self.uniform_share:.4f})"


def evaluate_coordinate_use(
    model_path: str | os.PathLike[str], n_episodes: int = 32, steps: tuple[int, ...] = (0, 6), seed: int = 0,
    deltas: tuple[float, float] = (0.01, 0.01),
) -> CoordinateUse:
    """Measure a coordinate-task checkpoint against the known answer (see :class:`CoordinateUse`).

    Frames: held-out episodes ``EVAL_SEED_BASE + 1000 * seed + i``, rendered at ``steps`` (early in
    the approach, where the arm has not yet turned towards either cube); frames not in the approach
    phase are dropped.
    """
    from act_interp_ros.core import InterpretableACT

    wrapped = InterpretableACT.from_pretrained(os.fspath(model_path), device="cpu")
    try:
        return _evaluate(wrapped, n_episodes, steps, seed, deltas)
    finally:
        wrapped.close()


def _evaluate(wrapped, n_episodes: int, steps: tuple[int, ...], seed: int,
              deltas: tuple[float, float]) -> CoordinateUse:
    from act_interp_ros.core import InterpretableACT
    from act_interp_ros.core.env_state_sensitivity import SensitivityConfig, without_env_state

    policy, pre, post = wrapped.policy, wrapped.preprocessor, wrapped.postprocessor
    seen = ka.spec_of(policy)  # cameras, image size and chunk size of the checkpoint
    spec = replace(DEFAULT_ENV_SPEC, image_size=seen.image_size, cameras=seen.cameras, chunk_size=seen.chunk_size)
    seeds = [EVAL_SEED_BASE + 1000 * seed + i for i in range(n_episodes)]
    frames = render_env_frames(seeds, spec, steps=list(steps))
    approach = PHASES.index("approach")
    keep = np.array([frames.episodes[e].phase[t] == approach for e, t in zip(frames.episode, frames.step)])
    frames = _subset(frames, np.nonzero(keep)[0])
    n_exec = int(policy.config.n_action_steps)
    cfg = SensitivityConfig(deltas=tuple(deltas))
    blind = without_env_state(policy)
    wrapped_blind = InterpretableACT(blind, pre, post)
    other_env = np.stack([np.asarray(frames.episodes[e].distractor_xy_yaw[:2], np.float32) for e in frames.episode])
    results: dict[str, dict[str, np.ndarray]] = {}
    try:
        for name, wr in (("trained", wrapped), ("control", wrapped_blind)):
            results[name] = _model_responses(wr, frames, spec, cfg, other_env)
    finally:
        wrapped_blind.close()
    c = policy.config.chunk_size
    to_target = np.stack([expert_chunk(frames.episodes[e], int(t), c) for e, t in zip(frames.episode, frames.step)])
    to_other = np.stack([expert_chunk(frames.episodes[e], int(t), c, frames.episodes[e].distractor_xy_yaw)
                         for e, t in zip(frames.episode, frames.step)])
    expert = np.stack([expert_sensitivity(frames.episodes[e], int(t), deltas, n_exec)
                       for e, t in zip(frames.episode, frames.step)])

    def choice(r: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(2N,) errors to the named cube's and to the other cube's expert chunk."""
        named = np.concatenate([_mae(r["chunk_named"], to_target), _mae(r["chunk_other"], to_other)])
        other = np.concatenate([_mae(r["chunk_named"], to_other), _mae(r["chunk_other"], to_target)])
        return named, other

    named, other = choice(results["trained"])
    c_named, c_other = choice(results["control"])
    trained_pd = results["trained"]["sens"].mean(0)
    return CoordinateUse(
        n_frames=len(frames), deltas=tuple(float(d) for d in deltas), n_steps=n_exec,
        sensitivity=float(trained_pd.mean()), sensitivity_per_dim=tuple(float(v) for v in trained_pd),
        control_sensitivity=float(results["control"]["sens"].mean()),
        expert_sensitivity=float(expert.mean()), expert_sensitivity_per_dim=tuple(float(v) for v in expert.mean(0)),
        named_cube_accuracy=float((named < other).mean()),
        control_named_cube_accuracy=float((c_named < c_other).mean()),
        named_cube_error=float(named.mean()), other_cube_error=float(other.mean()),
        env_attention_share=float(results["trained"]["share"].mean()),
        control_env_attention_share=float(results["control"]["share"].mean()),
        uniform_share=1.0 / float(results["trained"]["n_tokens"][0]),
    )


def _model_responses(wrapped, frames: EnvFrameSet, spec: EnvStateSpec, cfg, other_env: np.ndarray,
                     batch_size: int = 16) -> dict[str, np.ndarray]:
    """Per frame: sensitivity (N, 2), env-state attention share (N,), chunks (N, chunk, 6) given the target's
    coordinates (``chunk_named``) and the other cube's (``chunk_other``), and the token count (N,)."""
    from act_interp_ros.core.env_state_sensitivity import EnvStateSensitivity

    pre, post = wrapped.preprocessor, wrapped.postprocessor
    sens = EnvStateSensitivity(wrapped.policy, pre, cfg, post)
    acc: dict[str, list] = {"sens": [], "share": [], "n_tokens": [], "chunk_named": [], "chunk_other": []}
    for start in range(0, len(frames), batch_size):
        idx = np.arange(start, min(start + batch_size, len(frames)))
        batch = pre(env_batch(frames, idx, spec, with_action=False))
        chunk, interps = wrapped.predict_chunk(batch)
        acc["share"].append([it.fractions["env_state"] for it in interps])
        acc["n_tokens"].append([len(it.token_weights) for it in interps])
        acc["sens"].append(sens.measure(batch).per_dim)
        acc["chunk_named"].append(unnormalise_chunk(post, chunk))
        swapped = pre(env_batch(frames, idx, spec, False, other_env))
        acc["chunk_other"].append(unnormalise_chunk(post, wrapped.policy.predict_action_chunk(swapped)))
    return {k: np.concatenate([np.asarray(v) for v in vs]) for k, vs in acc.items()}


def _mae(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, T, A) x (N, T, A) -> (N,) mean absolute difference per frame."""
    return np.abs(a.astype(np.float64) - b).mean(axis=(1, 2))


def _subset(frames: EnvFrameSet, idx: np.ndarray) -> EnvFrameSet:
    """The frames ``idx`` (episodes list kept whole: ``episode`` indexes into it)."""
    per_frame = {k: v[idx] for k, v in vars(frames).items() if isinstance(v, np.ndarray)}
    images = {c: v[idx] for c, v in frames.images.items()}
    return EnvFrameSet(**{**vars(frames), **per_frame, "images": images})


__all__ = ["EVAL_SEED_BASE", "CoordinateUse", "evaluate_coordinate_use"]
