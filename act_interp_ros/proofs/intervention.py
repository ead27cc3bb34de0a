"""The intervention that proves what the known-answer model uses: move one cube (the other stays), measure
how much the executed chunk changes."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from act_interp_ros.proofs import model_metrics
from act_interp_ros.proofs.map_evaluation import approach_frames, spec_of

@dataclass
class InterventionEffect:
    """How much the predicted action chunk moves when one cube is moved (the model's causal known answer).

    Attributes:
        n_frames: held-out approach-phase frames.
        target_moved: mean |chunk change| (policy units: deg, gripper 0..100) when only the target cube is
            moved to another held-out layout's target pose (joint state and distractor unchanged).
        distractor_moved: the same when only the distractor is moved.
        ratio: ``target_moved / distractor_moved``.
    """

    n_frames: int
    target_moved: float
    distractor_moved: float
    ratio: float


def intervention_effect(model_path: str | os.PathLike[str], n_frames: int = 32, seed: int = 0) -> InterventionEffect:
    """Move one cube at a time in held-out frames and measure how much the model's action chunk changes.

    This checks the *model* against the known answer before its maps are judged: the expert's actions
    depend on the target only, so a model that learned the task moves its chunk when the target moves and
    barely when the distractor moves. Each frame's cube is moved to the pose that cube has in another
    held-out frame, chosen so that the moved cube stays ``min_cube_distance`` away from the other cube.
    """
    from dataclasses import replace

    from act_interp_ros.core import InterpretableACT
    from act_interp_ros.synthetic import SyntheticScene

    wrapped = InterpretableACT.from_pretrained(os.fspath(model_path), device="cpu")
    try:
        policy, pre, post = wrapped.policy, wrapped.preprocessor, wrapped.postprocessor
        spec = spec_of(policy)
        cams = list(spec.cameras)
        frames = approach_frames(spec, n_frames, seed)
        scene = SyntheticScene(spec.scene_config())
        states = [frames.episodes[i].scene_state(int(frames.step[i])) for i in range(len(frames))]
        base = model_metrics.predict_chunks(policy, pre, post, frames, spec)  # (N, chunk, 6)
        effects = {}
        for moved, kept in (("target", "distractor"), ("distractor", "target")):
            images = {c: np.empty_like(frames.images[c]) for c in cams}
            for i, st in enumerate(states):
                other = _donor(states, i, moved, kept, spec.min_cube_distance)
                new = replace(st, **{moved: getattr(states[other], moved)})
                for c in cams:
                    images[c][i] = scene.render(new, c)
            changed = replace(frames, images=images)
            chunks = model_metrics.predict_chunks(policy, pre, post, changed, spec)
            effects[moved] = float(np.abs(chunks - base).mean())
    finally:
        wrapped.close()
    return InterventionEffect(
        n_frames=len(frames), target_moved=effects["target"], distractor_moved=effects["distractor"],
        ratio=effects["target"] / max(effects["distractor"], 1e-9),
    )


def _donor(states: list, i: int, moved: str, kept: str, min_distance: float) -> int:
    """Index of the next frame whose ``moved`` cube lies ``min_distance`` (xy) away from frame i's ``kept`` cube."""
    anchor = getattr(states[i], kept).center[:2]
    for k in range(1, len(states)):
        j = (i + k) % len(states)
        if np.linalg.norm(getattr(states[j], moved).center[:2] - anchor) >= min_distance:
            return j
    raise ValueError("no held-out frame places the moved cube away from the other one; use more frames")
