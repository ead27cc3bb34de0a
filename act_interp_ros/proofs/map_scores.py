"""How well a map finds the known answer: the share of its mass on the target and on the distractor, the
rank correlation with a random-weight model's map, faithfulness (rules: :mod:`act_interp_ros.proofs.known_answer`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


def object_coverage(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask -> (h, w) float fraction of each token cell covered by the object (area downsampling)."""
    import cv2

    h, w = grid
    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)


def map_mass(saliency: np.ndarray, coverage: np.ndarray) -> float:
    """Share of a non-negative (h, w) map inside the region given by per-cell ``coverage`` (0 when the map is 0)."""
    m = np.clip(saliency.astype(np.float64), 0.0, None)
    total = m.sum()
    return float((m * coverage).sum() / total) if total > 0 else 0.0


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..n, ties share the mean rank), like ``scipy.stats.rankdata``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    sorted_x = x[order]
    boundaries = np.concatenate([[0], np.nonzero(np.diff(sorted_x))[0] + 1, [len(x)]])
    for a, b in zip(boundaries[:-1], boundaries[1:]):
        ranks[order[a:b]] = 0.5 * (a + b - 1) + 1.0
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally sized arrays; NaN when either is constant."""
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


@dataclass
class MapScores:
    """Scores of one method (``attention`` | ``gradcam``) on one camera over the held-out frames.

    Attributes:
        n_frames: frames in which the target is in view (used for the mass numbers).
        target_mass: mean share of the map inside the target.
        uniform_mass: mean target area fraction (what a uniform map gives).
        ratio_vs_uniform: ``target_mass / uniform_mass`` (ratio of the means).
        median_frame_ratio: median over frames of the per-frame ratio.
        distractor_mass: mean share inside the distractor (frames where it is in view).
        n_pairs: frames in which both cubes are in view.
        target_beats_distractor: fraction of those frames with target mass > distractor mass.
        rank_corr_random: mean per-frame Spearman correlation between the trained model's map and the
            random-weights model's map (frames where both maps are non-constant).
        n_rank: number of frames that entered ``rank_corr_random``.
    """

    method: str
    camera: str
    n_frames: int
    target_mass: float
    uniform_mass: float
    ratio_vs_uniform: float
    median_frame_ratio: float
    distractor_mass: float
    n_pairs: int
    target_beats_distractor: float
    rank_corr_random: float
    n_rank: int
    resolution: str = "token"
    faithfulness_ratio: float = float("nan")
    faithfulness_median_frame_ratio: float = float("nan")
    deletion_top: list[float] = field(default_factory=list)
    deletion_random: list[float] = field(default_factory=list)
    n_faithfulness: int = 0


@dataclass
class MapEvaluation:
    """Result of :func:`evaluate_maps`: one :class:`MapScores` per (method, camera).

    ``targets``: method -> the action target its maps explain; ``deletion_fractions`` / ``deletion_cell``:
    the deletion test's settings (empty / 0 when it was not run); ``occlusion_window``: (patch, stride)
    per camera when occlusion was scored.
    """

    scores: list[MapScores]
    n_frames: int
    seeds: list[int]
    steps: list[int]
    grid: dict[str, tuple[int, int]]
    gradcam_target: str
    gradcam_layer: str = "layer4"
    region: str = "object silhouette downsampled to the token grid by area (cv2.INTER_AREA)"
    extra: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    deletion_fractions: list[float] = field(default_factory=list)
    deletion_cell: int = 0
    deletion_random_draws: int = 0
    occlusion_window: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MapEvaluation:
        """Inverse of :meth:`as_dict` (JSON round trip; tuples come back as lists where JSON has no tuple)."""
        fields = dict(data)
        fields["scores"] = [MapScores(**score) for score in data["scores"]]
        fields["grid"] = {k: tuple(v) for k, v in data["grid"].items()}
        fields["occlusion_window"] = {k: tuple(v) for k, v in data.get("occlusion_window", {}).items()}
        return cls(**fields)

    def get(self, method: str, camera: str) -> MapScores:
        for s in self.scores:
            if s.method == method and s.camera == camera:
                return s
        raise KeyError(f"no scores for method={method!r} camera={camera!r}; have {[(s.method, s.camera) for s in self.scores]}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """Markdown table of the numbers (for test output and the README)."""
        rows = [
            "| map | resolution | camera | target mass | uniform | ratio vs uniform | target > distractor "
            "| rank corr. vs random weights | faithfulness (deletion AUC top / random) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in self.scores:
            faith = f"{s.faithfulness_ratio:.2f}x ({s.n_faithfulness} frames)" if s.n_faithfulness else "-"
            rows.append(
                f"| {s.method} | {s.resolution} | {s.camera} | {s.target_mass:.3f} | {s.uniform_mass:.3f} "
                f"| {s.ratio_vs_uniform:.2f}x | {100 * s.target_beats_distractor:.0f}% ({s.n_pairs} frames) "
                f"| {s.rank_corr_random:+.2f} | {faith} |"
            )
        return "\n".join(rows)

    def deletion_table(self) -> str:
        """Markdown table of the mean deletion curves (change of the executed chunk, normalised units)."""
        if not self.deletion_fractions:
            return "(deletion test not run)"
        ks = " | ".join(f"{100 * k:g} %" for k in self.deletion_fractions)
        rows = [f"| map | camera | curve | {ks} |", "|---|---|---|" + "---|" * len(self.deletion_fractions)]
        for s in self.scores:
            if not s.n_faithfulness:
                continue
            for name, curve in (("top cells", s.deletion_top), ("random cells", s.deletion_random)):
                rows.append(f"| {s.method} | {s.camera} | {name} | " + " | ".join(f"{v:.3f}" for v in curve) + " |")
        return "\n".join(rows)


