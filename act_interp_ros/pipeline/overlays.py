"""Overlay images and their labels, the same for the node, the replay and the demo.

The magenta border of an attention overlay is the joint-state (proprio) token's **share** of the decoder's
attention, and the label prints that same share with its lift over uniform: a near-uniform distribution
(share ~ 1 / n_tokens) leaves the border almost invisible, and "proprio 42% (9.2x)" draws it at 42 %.
"""
from __future__ import annotations

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


def method_overlay(frame: np.ndarray, saliency: np.ndarray, method: str, key: str, *, alpha: float,
                   suffix: str = "") -> np.ndarray:
    """(H, W, 3) uint8: an attribution map (any resolution, [0, 1]) over ``frame``, labelled with the method."""
    return render_overlay(frame, saliency, alpha=alpha, label=f"{camera_name(key)} {LABELS[method]}{suffix}")
