"""Overlay images and their labels, the same for the node, the replay and the demo.

The magenta border of an attention overlay is the joint-state (proprio) token's **share** of the decoder's
attention, and the label prints that same share with its lift over uniform: a near-uniform distribution
(share ~ 1 / n_tokens) leaves the border almost invisible, and "proprio 42% (9.2x)" draws it at 42 %.

Pixel-level maps (gradient x input, integrated gradients, occlusion) are drawn smoothed with a Gaussian of
sigma = 1.5 % of the map's shorter side and rescaled to their peak, so that a few hot pixels read as a
region; every number (localisation, faithfulness) uses the raw map.
"""
from __future__ import annotations

import cv2
import numpy as np

from act_interp_ros.core import Interpretation, render_overlay
from act_interp_ros.pipeline.side_methods import LABELS
from act_interp_ros.settings import camera_name

__all__ = ["attention_label", "attention_overlay", "method_overlay"]


def attention_label(interp: Interpretation, key: str, prefix: str = "") -> str:
    """``front attn 55% (1.2x) | proprio 42% (9.2x)``: shares with their lift over uniform."""
    text = f"{prefix}{camera_name(key)} attn {interp.fractions[key]:.0%} ({interp.lifts[key]:.1f}x)"
    if "state" in interp.fractions:
        text += f" | proprio {interp.fractions['state']:.0%} ({interp.lifts['state']:.1f}x)"
    if "env_state" in interp.fractions:
        text += f" | env {interp.fractions['env_state']:.0%} ({interp.lifts['env_state']:.1f}x)"
    return text


def attention_overlay(frame: np.ndarray, interp: Interpretation, key: str, *, alpha: float, scale: str = "global",
                      prefix: str = "") -> np.ndarray:
    """(H, W, 3) uint8: camera ``key``'s attention map over ``frame``, border = proprio share, labelled."""
    return render_overlay(frame, interp.maps(scale)[key], alpha=alpha, border=interp.fractions.get("state"),
                          label=attention_label(interp, key, prefix))


PIXEL_MAP_MIN_SIDE = 64  # maps at least this large are pixel maps (token grids are a few cells)


def display_map(saliency: np.ndarray) -> np.ndarray:
    """The map as drawn: pixel maps smoothed (sigma = 1.5 % of the shorter side) and rescaled to [0, 1]."""
    m = np.asarray(saliency, dtype=np.float32)
    if min(m.shape[:2]) < PIXEL_MAP_MIN_SIDE:
        return m
    sigma = 0.015 * min(m.shape[:2])
    smooth = cv2.GaussianBlur(m, (0, 0), sigmaX=sigma, sigmaY=sigma)
    peak = float(smooth.max())
    return smooth / peak if peak > 0 else smooth


def method_overlay(frame: np.ndarray, saliency: np.ndarray, method: str, key: str, *, alpha: float,
                   suffix: str = "") -> np.ndarray:
    """(H, W, 3) uint8: an attribution map (any resolution, [0, 1]) over ``frame``, labelled with the method."""
    return render_overlay(frame, display_map(saliency), alpha=alpha,
                          label=f"{camera_name(key)} {LABELS[method]}{suffix}")
