"""The two maps every map criterion must reject: a uniform map and a random (seeded noise) map.

An evaluation run with ``baseline="uniform"`` or ``"random"`` replaces the trained model's maps by one of these
(same shape per frame and camera) and scores them with the same code - mass, rank correlation with the
random-weights model's map, the deletion test on the trained policy - so a criterion that such a map passes
says nothing about the model (issue 29).
"""

from __future__ import annotations

import numpy as np

#: What ``baseline`` may be.
BASELINES = ("uniform", "random")


def baseline_map(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """(h, w) map of ``kind``: ``"uniform"`` all ones; ``"random"`` i.i.d. noise in [0, 1) from ``rng``."""
    if kind == "uniform":
        return np.ones(shape, np.float64)
    if kind == "random":
        return rng.random(shape)
    raise ValueError(f"unknown baseline map {kind!r}; expected one of {', '.join(BASELINES)}")


def replace_maps(maps: dict[str, list[dict[str, np.ndarray]]], kind: str, seed: int
                 ) -> dict[str, list[dict[str, np.ndarray]]]:
    """``{method: [{camera: map} per frame]}`` with every map replaced by a baseline map of its shape.

    The random maps come from one generator seeded with ``seed`` (methods, frames, cameras in order).
    """
    rng = np.random.default_rng(seed)
    return {method: [{cam: baseline_map(kind, m.shape, rng) for cam, m in frame.items()} for frame in frames]
            for method, frames in maps.items()}


__all__ = ["BASELINES", "baseline_map", "replace_maps"]
