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


def run_beside_control_loop(wrapped: InterpretableACT, explain, n_ticks: int = 24, seed: int = 8):
    """Run ``explain()`` repeatedly on a second thread while a control loop runs ``select_action`` on
    ``n_ticks`` batches; returns (the explanations, the control loop's results, the same episode's results
    with nothing beside it). Raises what either thread raised."""
    import threading

    episode = random_batches(wrapped, n_ticks, seed=seed)
    wrapped.reset()
    expected = [wrapped.select_action(b) for b in episode]
    wrapped.reset()
    results, explanations, errors = [], [], []
    start = threading.Barrier(2)

    def control():
        try:
            start.wait()
            for batch in episode:
                results.append(wrapped.select_action(batch))
        except Exception as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    def side():
        try:
            start.wait()
            while len(results) < len(episode) and not errors:
                explanations.append(explain())
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=control), threading.Thread(target=side)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return explanations, results, expected


def assert_control_unchanged(wrapped: InterpretableACT, results, expected) -> None:
    """The control loop's actions and maps equal a run with nothing beside it; no parameter got a .grad."""
    for tick, (got, want) in enumerate(zip(results, expected)):
        torch.testing.assert_close(got.action, want.action, msg=f"tick {tick}")
        np.testing.assert_allclose(got.interpretation.token_weights, want.interpretation.token_weights, rtol=1e-5)
    assert all(p.grad is None for p in wrapped.policy.parameters())
