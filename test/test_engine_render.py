"""Overlay rendering: RGB (not BGR) colours, alpha blend, proprio border, label, errors."""

from __future__ import annotations

import numpy as np
import pytest

from act_interp_ros.core import colorize, render_overlay


def test_colormap_is_rgb_hot_is_red_cold_is_blue():
    hot = colorize(np.ones((2, 2)), (4, 4))[0, 0]
    cold = colorize(np.zeros((2, 2)), (4, 4))[0, 0]
    assert hot[0] > 100 and hot[2] == 0, f"hot should be red in RGB, got {hot}"
    assert cold[2] > 100 and cold[0] == 0, f"cold should be blue in RGB, got {cold}"


def test_heatmap_is_resized_and_located():
    heat = np.zeros((3, 4), np.float32)
    heat[0, 3] = 1.0  # top-right cell
    out = colorize(heat, (96, 128))
    assert out.shape == (96, 128, 3) and out.dtype == np.uint8
    assert out[5, 124, 0] > out[90, 5, 0]  # red at the top-right, not at the bottom-left


def test_alpha_blend_and_border():
    image = np.full((60, 80, 3), 40, np.uint8)
    heat = np.zeros((3, 4))
    assert np.array_equal(render_overlay(image, heat, alpha=0.0), image)
    full = render_overlay(image, heat, alpha=1.0)
    assert np.array_equal(full, colorize(heat, (60, 80)))
    framed = render_overlay(image, heat, alpha=0.0, border=1.0, border_px=3)
    assert framed[0, 0].tolist() == [255, 0, 255] and framed[30, 40].tolist() == [40, 40, 40]
    dim = render_overlay(image, heat, alpha=0.0, border=0.25, border_px=3)[1, 1]
    assert 40 < dim[0] < 255 and dim[1] < 40  # partly magenta
    assert render_overlay(image, heat, alpha=0.0, border=0.0, border_px=3)[0, 0].tolist() == [40, 40, 40]


def test_label_is_drawn_and_input_untouched():
    image = np.zeros((120, 160, 3), np.uint8)
    out = render_overlay(image, np.zeros((2, 2)), alpha=0.0, label="front 42%")
    assert out[:30, :100].max() == 255 and image.max() == 0


@pytest.mark.parametrize(
    "image,alpha,match",
    [
        (np.zeros((10, 10), np.uint8), 0.5, r"\(H, W, 3\) uint8 RGB"),
        (np.zeros((10, 10, 3), np.float32), 0.5, "uint8"),
        (np.zeros((10, 10, 3), np.uint8), 1.5, "alpha must be in"),
    ],
)
def test_bad_input_is_clear(image, alpha, match):
    with pytest.raises(ValueError, match=match):
        render_overlay(image, np.zeros((2, 2)), alpha=alpha)
