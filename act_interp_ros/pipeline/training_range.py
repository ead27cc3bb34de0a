"""Training-range guard: is this observation, in policy units, one the checkpoint was trained on?

The checkpoint's normaliser (LeRobot's ``NormalizerProcessorStep`` in the loaded preprocessor, saved as
``policy_preprocessor_step_*_normalizer_processor.safetensors``) holds the training statistics per feature:
``observation.state`` / ``observation.environment_state`` min, max, mean, std and the per-channel image
mean/std. Every tick, each joint (and env-state value) is compared with the training ``[min, max]``
widened by ``training_range_margin`` x (max - min) on both sides; each camera frame's per-channel mean with
the training mean (flag only, never a skip).

A value outside is almost always a unit, offset or calibration mismatch between the ROS driver and the
dataset (radians read as degrees, another zero, a reversed joint, the gripper's 0..100), which the policy
would otherwise act on confidently and wrongly. Features without min/max in the checkpoint are reported
once (:attr:`TrainingRangeGuard.notes`) and not checked.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from lerobot.utils.constants import OBS_ENV_STATE, OBS_STATE

__all__ = ["RangeFlag", "TrainingRangeGuard", "TrainingStats", "normalizer_stats"]

logger = logging.getLogger(__name__)

LIKELY_CAUSE = ("likely cause: units (radians vs degrees), joint_offset (another zero), a reversed joint or the "
                "calibration; run act_interp_replay BAG --policy P --check-units")


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def normalizer_stats(preprocessor) -> dict[str, dict[str, np.ndarray]]:
    """``{feature: {stat: float64 array}}`` of the preprocessor's ``NormalizerProcessorStep`` ({} when none).

    Read from the loaded step (what LeRobot restored from the normaliser's safetensors), not from file names.
    """
    from lerobot.processor import NormalizerProcessorStep

    steps = [s for s in getattr(preprocessor, "steps", ()) if isinstance(s, NormalizerProcessorStep)]
    if not steps:
        return {}
    return {key: {name: _numpy(v) for name, v in (stats or {}).items()} for key, stats in (steps[0].stats or {}).items()}


@dataclass(frozen=True)
class TrainingStats:
    """Training min/max (and mean/std when present) of one vector feature, in policy units. Shapes (D,)."""

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    mean: np.ndarray | None = None
    std: np.ndarray | None = None

    def widened(self, margin: float) -> tuple[np.ndarray, np.ndarray]:
        """[low, high] widened by ``margin`` x (high - low) on each side."""
        pad = margin * (self.high - self.low)
        return self.low - pad, self.high + pad


@dataclass(frozen=True)
class RangeFlag:
    """One value outside its training range (or one camera far from its training statistics).

    Attributes:
        counter: the diagnostics counter, ``state_outside_training_range.<joint>``,
            ``env_state_outside_training_range.<name>`` or ``image_outside_training_stats.<camera>``.
        name: joint / env-state value / camera name.
        value: the value in policy units (a camera: the largest channel deviation in training stds).
        low, high: the training range (a camera: -tolerance..tolerance).
        margin: the margin fraction the range was widened by.
    """

    counter: str
    name: str
    value: float
    low: float
    high: float
    margin: float

    @property
    def is_image(self) -> bool:
        return self.counter.startswith("image_")

    def line(self) -> str:
        """One actionable line naming the input, its value, the training range and the likely cause."""
        if self.is_image:
            return (f"camera '{self.name}': frame mean is {self.value:.1f} training stds from the training mean "
                    f"(tolerance {self.high:g}); likely cause: a wrong camera, swapped camera_topics, a covered lens "
                    "or very different lighting (flag only, the tick is not skipped)")
        what = "joint" if self.counter.startswith("state_") else "env-state value"
        return (f"{what} '{self.name}' is {self.value:.4g} in policy units, outside the training range "
                f"[{self.low:.4g}, {self.high:.4g}] (+{self.margin:.0%} margin); {LIKELY_CAUSE}")


class TrainingRangeGuard:
    """Compares observations in policy units with the checkpoint's training statistics.

    Args:
        stats: ``{feature: {stat: array}}`` as :func:`normalizer_stats` returns.
        joint_names: names of the ``observation.state`` values (policy order).
        env_names: names of the ``observation.environment_state`` values (empty: no env state).
        camera_keys: the policy's camera keys.
        margin: fraction of the training range added on each side (>= 0).
        image_tolerance: a camera is flagged when a channel's frame mean is more than this many training
            stds from the training mean (0 = off).
    """

    def __init__(self, stats: Mapping[str, Mapping[str, np.ndarray]], joint_names: Sequence[str],
                 env_names: Sequence[str] = (), camera_keys: Sequence[str] = (), margin: float = 0.1,
                 image_tolerance: float = 1.0) -> None:
        self.margin = float(margin)
        self.image_tolerance = float(image_tolerance)
        self.notes: list[str] = []
        self.state = self._vector(stats, OBS_STATE, joint_names)
        self.env = self._vector(stats, OBS_ENV_STATE, env_names) if env_names else None
        self.images: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if self.image_tolerance > 0:
            for key in camera_keys:
                s = stats.get(key, {})
                if "mean" in s and "std" in s:
                    self.images[key] = (s["mean"].reshape(-1), np.maximum(s["std"].reshape(-1), 1e-6))
                else:
                    self.notes.append(f"the checkpoint's normaliser has no mean/std for {key}: the camera check is "
                                      "off for it")
        self._bounds = {k: v.widened(self.margin) for k, v in (("state", self.state), ("env", self.env)) if v}

    def _vector(self, stats, key: str, names: Sequence[str]) -> TrainingStats | None:
        s = stats.get(key, {})
        if "min" not in s or "max" not in s:
            self.notes.append(f"the checkpoint's normaliser has no min/max for {key}: the training-range guard is "
                              "off for it")
            return None
        low, high = s["min"].reshape(-1), s["max"].reshape(-1)
        if low.shape != (len(names),) or high.shape != (len(names),):
            self.notes.append(f"the checkpoint's {key} min/max have {low.size} values for {len(names)} names: the "
                              "training-range guard is off for it")
            return None
        mean = s["mean"].reshape(-1) if "mean" in s and s["mean"].size == low.size else None
        std = s["std"].reshape(-1) if "std" in s and s["std"].size == low.size else None
        return TrainingStats(tuple(names), low, high, mean, std)

    @classmethod
    def from_policy(cls, wrapped, joint_names: Sequence[str], margin: float, image_tolerance: float,
                    camera_keys: Sequence[str] | None = None) -> TrainingRangeGuard:
        """From an :class:`~act_interp_ros.core.InterpretableACT`'s preprocessor; env-state values are named
        x, y, z for up to three values, else ``0``, ``1``, ..."""
        env_dim = int(wrapped.env_state_dim)
        env_names = ["x", "y", "z"][:env_dim] if env_dim <= 3 else [str(i) for i in range(env_dim)]
        cams = list(camera_keys if camera_keys is not None else wrapped.config.image_features)
        return cls(normalizer_stats(wrapped.preprocessor), joint_names, env_names, cams, margin, image_tolerance)

    @property
    def active(self) -> bool:
        return bool(self._bounds or self.images)

    def describe(self) -> str:
        """One line per checked feature: the training ranges, for the start-up log."""
        parts = []
        for label, st in (("state", self.state), ("env state", self.env)):
            if st is not None:
                ranges = ", ".join(f"{n} [{lo:.4g}, {hi:.4g}]" for n, lo, hi in zip(st.names, st.low, st.high))
                parts.append(f"{label}: {ranges}")
        if self.images:
            parts.append(f"cameras {[k for k in self.images]} within {self.image_tolerance:g} std of the training mean")
        return f"training-range guard (margin {self.margin:.0%}): " + ("; ".join(parts) if parts else "off")

    def _check(self, which: str, prefix: str, values: np.ndarray) -> list[RangeFlag]:
        bounds = self._bounds.get(which)
        if bounds is None:
            return []
        st = self.state if which == "state" else self.env
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        lo, hi = bounds
        out = np.flatnonzero((v < lo) | (v > hi))
        return [RangeFlag(f"{prefix}.{st.names[j]}", st.names[j], float(v[j]), float(st.low[j]), float(st.high[j]),
                          self.margin) for j in out]

    def check_state(self, values: np.ndarray) -> list[RangeFlag]:
        """(n_joints,) joint positions in policy units -> one flag per joint outside its widened range."""
        return self._check("state", "state_outside_training_range", values)

    def check_env(self, values: np.ndarray) -> list[RangeFlag]:
        """(env_dim,) env state in policy units -> one flag per value outside its widened range."""
        return self._check("env", "env_state_outside_training_range", values)

    def check_image(self, key: str, name: str, frame: np.ndarray) -> RangeFlag | None:
        """(H, W, 3) uint8 RGB frame -> a flag when a channel mean is > ``image_tolerance`` training stds off."""
        stats = self.images.get(key)
        if stats is None:
            return None
        mean, std = stats
        sub = frame[::4, ::4]  # every 16th pixel: the mean is as good and costs ~1/16
        channel_mean = sub.reshape(-1, sub.shape[-1]).mean(axis=0) / 255.0
        if channel_mean.shape != mean.shape:
            return None
        z = float(np.max(np.abs(channel_mean - mean) / std))
        if z <= self.image_tolerance:
            return None
        return RangeFlag(f"image_outside_training_stats.{name}", name, z, -self.image_tolerance, self.image_tolerance,
                         self.margin)
