"""Helpers shared by the engine tests: small real ACT policies and random observations."""

from __future__ import annotations

import numpy as np
import torch

from act_interp_ros.core import InterpretableACT, ObservationBuilder
from act_interp_ros.core.checkpoints import SmallACTSpec, build_policy

# Two cameras of DIFFERENT sizes (feature maps 3x4 and 2x3) so a slicing bug cannot hide.
UNEQUAL_CAMERAS = {"observation.images.front": (96, 128), "observation.images.wrist": (64, 96)}


def make_wrapped(**spec_kwargs) -> InterpretableACT:
    spec_kwargs.setdefault("cameras", dict(UNEQUAL_CAMERAS))
    policy, pre, post = build_policy(SmallACTSpec(**spec_kwargs))
    return InterpretableACT(policy, pre, post)


def random_batches(wrapped: InterpretableACT, n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """n preprocessed (normalised, batched) observations with random images and states."""
    rng = np.random.default_rng(seed)
    builder = ObservationBuilder(wrapped.config)
    out = []
    for _ in range(n):
        images = {k: rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for k, (h, w) in wrapped.image_shapes.items()}
        state = rng.normal(size=wrapped.state_dim) if wrapped.state_dim else None
        env = rng.normal(size=wrapped.env_state_dim) if wrapped.env_state_dim else None
        out.append(wrapped.preprocess(builder.build(images, state, env)))
    return out


def unwrapped_batch(wrapped: InterpretableACT, batch: dict) -> dict:
    """What the bare lerobot policy needs: a state placeholder when the policy has no state (a
    lerobot 0.4.4 bug reads batch['observation.state'].device unconditionally)."""
    return wrapped._with_state_placeholder(batch)
