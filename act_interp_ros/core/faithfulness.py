"""Deletion test: does filling what a map marks change the executed action more than filling random cells?

For one observation, camera and map (any method: a (h, w) token map of attention / GradCAM, or an
(H, W) pixel map):

1. the map is brought to the image's pixels: a token map is resized bilinearly (``cv2.INTER_LINEAR``,
   as the overlays are rendered), a pixel map is used as it is;
2. the image is cut into ``cell x cell`` pixel cells (8 x 8 by default; border cells may be smaller)
   and each cell is scored by the map's mean over it; cells are ranked by score (ties in random order);
3. for each fraction k (5, 10, 20, 40 % by default) the top ``round(k * n_cells)`` cells are filled
   with ``fill`` (normalised units; 0 = the dataset's mean colour) and the policy is run; the score is
   the target's change (default: the L2 change of the executed part of the chunk, normalised units);
4. the same number of cells, drawn at random (``n_random`` draws; one random order per draw, so each
   draw is a deletion curve too), is filled the same way.

``ratio = AUC(top) / AUC(random)``: areas under the two deletion curves (trapezoid over k, with 0
change at k = 0). 1 = the map is no better than random cells at finding what the action depends on.
All perturbed observations of a call go through the model in batches of ``batch_size`` rows.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from act_interp_ros.core.action_targets import DEFAULT_PERTURBATION_TARGET, ActionTarget
from act_interp_ros.core.attribution import ACTInputs, fill_value

logger = logging.getLogger(__name__)

DEFAULT_FRACTIONS = (0.05, 0.10, 0.20, 0.40)


def _auc(fractions: Sequence[float], curve: np.ndarray) -> np.ndarray:
    """Trapezoid area under ``curve`` (..., K) over ``fractions`` (K,), starting from 0 change at k = 0."""
    x = np.concatenate([[0.0], np.asarray(fractions, np.float64)])
    y = np.concatenate([np.zeros(curve.shape[:-1] + (1,)), curve], axis=-1)
    return ((y[..., 1:] + y[..., :-1]) * 0.5 * np.diff(x)).sum(axis=-1)


@dataclass(frozen=True)
class DeletionResult:
    """Deletion test of one camera over N observations.

    Attributes:
        camera: camera key.
        fractions: (K,) deleted fractions of the image's cells.
        top: (N, K) change of the target when the map's top cells are filled.
        random: (N, K, R) the same for R random draws of as many cells.
        cell: cell side in pixels.
    """

    camera: str
    fractions: tuple[float, ...]
    top: np.ndarray
    random: np.ndarray
    cell: int

    @property
    def n(self) -> int:
        return int(self.top.shape[0])

    @property
    def top_curve(self) -> np.ndarray:
        """(K,) mean over observations."""
        return self.top.mean(axis=0)

    @property
    def random_curve(self) -> np.ndarray:
        """(K,) mean over observations and draws."""
        return self.random.mean(axis=(0, 2))

    @property
    def auc_top(self) -> float:
        return float(_auc(self.fractions, self.top_curve))

    @property
    def auc_random(self) -> float:
        return float(_auc(self.fractions, self.random_curve))

    @property
    def ratio(self) -> float:
        """AUC(top) / AUC(random) of the mean curves (NaN when random deletion changes nothing)."""
        den = self.auc_random
        return self.auc_top / den if den > 0 else float("nan")

    def frame_ratios(self) -> np.ndarray:
        """(N,) per-observation AUC ratio (NaN where random deletion changes nothing)."""
        top, rnd = _auc(self.fractions, self.top), _auc(self.fractions, self.random.mean(axis=2))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(rnd > 0, top / rnd, np.nan)

    @classmethod
    def concatenate(cls, parts: Sequence[DeletionResult]) -> DeletionResult:
        """One result over the observations of several results of the same camera and settings."""
        first = parts[0]
        if any(p.camera != first.camera or p.fractions != first.fractions or p.cell != first.cell for p in parts):
            raise ValueError("DeletionResult.concatenate: parts differ in camera, fractions or cell size")
        return cls(first.camera, first.fractions, np.concatenate([p.top for p in parts]),
                   np.concatenate([p.random for p in parts]), first.cell)


def to_pixels(saliency: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """(h, w) map -> (H, W) float64: unchanged at the image size, else bilinear (as the overlays are drawn)."""
    import cv2

    m = np.nan_to_num(np.asarray(saliency, dtype=np.float32), nan=0.0)
    if m.ndim != 2:
        raise ValueError(f"a map must be 2-D (h, w), got shape {m.shape}")
    h, w = size_hw
    if m.shape != (h, w):
        m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
    return m.astype(np.float64)


def cell_scores(pixels: np.ndarray, cell: int) -> np.ndarray:
    """(H, W) map -> (ceil(H / cell), ceil(W / cell)) mean of the map over each cell."""
    h, w = pixels.shape
    gh, gw = -(-h // cell), -(-w // cell)
    padded = np.zeros((gh * cell, gw * cell))
    count = np.zeros_like(padded)
    padded[:h, :w] = pixels
    count[:h, :w] = 1.0
    total = padded.reshape(gh, cell, gw, cell).sum(axis=(1, 3))
    return total / count.reshape(gh, cell, gw, cell).sum(axis=(1, 3))


class DeletionTest:
    """Deletion (faithfulness) test of saliency maps on an ``ACTPolicy`` (see the module docstring).

    Args:
        policy: an ``ACTPolicy`` in eval mode.
        fractions: deleted fractions of the cells, each in (0, 1].
        cell: cell side in pixels.
        n_random: random draws per observation and camera.
        fill: fill colour, one number or one per RGB channel, normalised units.
        target: what "the action changed" means (default: L2 change of the executed chunk).
        batch_size: rows per forward pass.
        seed: seed of the random draws and of the tie-breaking (a private generator: torch's and numpy's
            global RNGs are not touched).

    Cost: ``B * n_cameras * K * (1 + n_random)`` perturbed forwards for a batch of B (36 per observation
    and camera with the defaults: ~0.6 s on the known-answer model at 128x160, ~10 s for a small dim-32
    ACT at 480x640; one contended CPU core). Not for concurrent use from several threads (one random
    generator per object).
    """

    def __init__(
        self,
        policy,
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        cell: int = 8,
        n_random: int = 8,
        fill: float | Sequence[float] = 0.0,
        target: ActionTarget = DEFAULT_PERTURBATION_TARGET,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        self._io = ACTInputs(policy, "DeletionTest")
        self._io.validate(target)
        fr = tuple(float(f) for f in fractions)
        if not fr or any(not 0.0 < f <= 1.0 for f in fr) or list(fr) != sorted(set(fr)):
            raise ValueError(
                f"DeletionTest: fractions must be increasing, distinct and in (0, 1], got {list(fractions)}"
            )
        if cell < 1 or n_random < 1 or batch_size < 1:
            raise ValueError(
                f"DeletionTest: cell, n_random and batch_size must be >= 1, got {cell}, {n_random}, {batch_size}"
            )
        self.policy = policy
        self.camera_keys = self._io.camera_keys
        self.fractions = fr
        self.cell = int(cell)
        self.n_random = int(n_random)
        self.fill = fill_value(fill, "DeletionTest")
        self.target = target
        self.batch_size = int(batch_size)
        self._rng = np.random.default_rng(seed)

    def n_forwards(self, batch_size: int) -> int:
        """Perturbed forwards for ``batch_size`` observations."""
        return batch_size * len(self.camera_keys) * len(self.fractions) * (1 + self.n_random)

    def run(self, batch: dict[str, Tensor], maps: Sequence[dict[str, np.ndarray]]) -> dict[str, DeletionResult]:
        """Deletion curves for a normalised batch and one {camera key: map} per batch element.

        Returns {camera key: :class:`DeletionResult`} for every camera that has a map in every element.
        """
        io = self._io
        images, extras = io.split_for(batch, len(maps), "maps")
        b = images[0].shape[0]
        cams = [i for i, k in enumerate(self.camera_keys) if all(k in m for m in maps)]
        if not cams:
            raise ValueError(
                f"DeletionTest: no camera has a map in every element; expected keys {list(self.camera_keys)}"
            )
        k_n, r_n = len(self.fractions), self.n_random
        with torch.no_grad():
            reference = io.chunk(images, extras)
        # Row plan: (element, camera index, deletion mask over cells) for every perturbed observation.
        plans: list[tuple[int, int, np.ndarray]] = []
        for ci in cams:
            key = self.camera_keys[ci]
            h, w = io.image_shapes[key]
            for e in range(b):
                scores = cell_scores(to_pixels(maps[e][key], (h, w)), self.cell)
                n_cells = scores.size
                counts = [max(1, round(f * n_cells)) for f in self.fractions]
                ranked = np.lexsort((self._rng.random(n_cells), -scores.ravel()))  # top first, ties at random
                orders = [ranked] + [self._rng.permutation(n_cells) for _ in range(r_n)]
                for order in orders:
                    for c in counts:
                        cells = np.zeros(n_cells, bool)
                        cells[order[:c]] = True
                        plans.append((e, ci, cells.reshape(scores.shape)))
        changes = self._changes(images, extras, reference, plans)  # (rows,)
        out: dict[str, DeletionResult] = {}
        per_cam = changes.reshape(len(cams), b, 1 + r_n, k_n)
        for j, ci in enumerate(cams):
            key = self.camera_keys[ci]
            out[key] = DeletionResult(
                key, self.fractions, per_cam[j, :, 0], per_cam[j, :, 1:].transpose(0, 2, 1), self.cell
            )
        return out

    def _changes(self, images, extras, reference: Tensor, plans) -> np.ndarray:
        io = self._io
        out = []
        with torch.no_grad():
            for start in range(0, len(plans), self.batch_size):
                part = plans[start : start + self.batch_size]
                rows = torch.as_tensor([e for e, _, _ in part], dtype=torch.long, device=images[0].device)
                batch_images = [x.index_select(0, rows).clone() for x in images]
                for r, (_, ci, cells) in enumerate(part):
                    x = batch_images[ci][r]  # (3, H, W)
                    h, w = x.shape[-2:]
                    mask = np.repeat(np.repeat(cells, self.cell, axis=0), self.cell, axis=1)[:h, :w]
                    m = torch.from_numpy(mask).to(x.device)
                    x[:, m] = self.fill.to(x)[:, :, 0].expand(3, int(m.sum()))
                chunk = io.chunk(batch_images, [t.index_select(0, rows) for t in extras])
                out.append(self.target.change(chunk, reference.index_select(0, rows), io.n_action_steps).float().cpu())
        return torch.cat(out).numpy().astype(np.float64)

    def close(self) -> None:
        """Nothing to release (no hooks); kept for the GradCAM-shaped interface."""


__all__ = ["DEFAULT_FRACTIONS", "DeletionResult", "DeletionTest", "cell_scores", "to_pixels"]
