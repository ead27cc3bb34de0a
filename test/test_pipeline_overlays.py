"""Honest scales (issue 13.6): the border and the printed number are the same share; near-uniform attention
does not light the border; lifts say how far from uniform each group is; pixel maps are drawn smoothed."""

from __future__ import annotations

import numpy as np

from act_interp_ros.core import render_overlay
from act_interp_ros.core.attention import interpret
from act_interp_ros.core.token_layout import TokenLayout
from act_interp_ros.pipeline.overlays import attention_label, attention_overlay, display_map

LAYOUT = TokenLayout(True, False, ("observation.images.front",), ((4, 5),))  # latent, state, 20 image tokens
FRAME = np.full((120, 160, 3), 90, dtype=np.uint8)


def border_strength(interp) -> float:
    """Mean change of the outermost pixel ring by the border, 0..1 (against the same overlay without it)."""
    key = "observation.images.front"
    with_border = attention_overlay(FRAME, interp, key, alpha=0.5).astype(float)
    without = render_overlay(FRAME, interp.camera_maps[key], alpha=0.5, label=attention_label(interp, key)).astype(float)
    diff = np.abs(with_border - without)
    ring = np.concatenate([diff[0], diff[-1], diff[:, 0], diff[:, -1]])
    return float(ring.mean() / 255.0)


def test_uniform_attention_leaves_the_border_faint_and_a_proprio_peak_lights_it():
    uniform = interpret(np.full(22, 1 / 22, dtype=np.float32), LAYOUT)
    assert attention_label(uniform, "observation.images.front") == "front attn 91% (1.0x) | proprio 5% (1.0x)"
    heavy_w = np.full(22, 0.5 / 21, dtype=np.float32)
    heavy_w[1] = 0.5
    heavy = interpret(heavy_w, LAYOUT)
    assert attention_label(heavy, "observation.images.front") == "front attn 48% (0.5x) | proprio 50% (11.0x)"
    faint, strong = border_strength(uniform), border_strength(heavy)
    assert faint < 0.05 and strong > 0.25 and strong / faint > 5


def test_per_camera_scale_keeps_a_dim_camera_map_visible():
    w = np.full(22, 0.002, dtype=np.float32)
    w[1] = 1 - 0.002 * 21
    w[5] = 0.004  # one image token slightly hotter
    interp = interpret(w, LAYOUT)
    assert interp.camera_maps["observation.images.front"].max() == 1.0
    assert interp.maps("per_camera")["observation.images.front"].min() == 0.5


def test_pixel_maps_are_smoothed_for_display_token_maps_are_not():
    token = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    assert display_map(token) is not None and np.array_equal(display_map(token), token)
    pixel = np.zeros((128, 160), np.float32)
    pixel[60, 80] = 1.0
    shown = display_map(pixel)
    assert shown.max() == 1.0 and (shown > 0.2).sum() > 9, "a single hot pixel becomes a visible spot"
