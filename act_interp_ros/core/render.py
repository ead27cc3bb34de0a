"""Heatmap overlays with OpenCV, vectorised. Images are HxWx3 uint8 **RGB** in and out.

OpenCV's colormaps produce BGR; this module converts explicitly so callers never see BGR.
"""

from __future__ import annotations

import cv2
import numpy as np

MAGENTA_RGB = np.array([255, 0, 255], dtype=np.float32)


# OpenCV's jet colormap as an RGB lookup table, (256, 1, 3) uint8. cv2.LUT on a 3-channel image gives
# the same pixels as applyColorMap + BGR->RGB at a fraction of the cost (~1 ms vs ~7 ms at 480x640).
_JET_LUT_RGB = cv2.cvtColor(
    cv2.applyColorMap(np.arange(256, dtype=np.uint8).reshape(256, 1), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB
)


def colorize(heatmap: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """(h, w) float map in [0, 1] -> (H, W, 3) uint8 RGB jet image, bilinearly resized to ``size_hw``."""
    h, w = size_hw
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0)
    heat = cv2.resize(np.clip(heat, 0.0, 1.0), (w, h), interpolation=cv2.INTER_LINEAR)
    u8 = (heat * 255.0).astype(np.uint8)
    return cv2.LUT(cv2.merge([u8, u8, u8]), _JET_LUT_RGB)


def render_overlay(
    image_rgb: np.ndarray,
    heatmap: np.ndarray,
    *,
    alpha: float = 0.5,
    border: float | None = None,
    border_px: int | None = None,
    label: str | None = None,
) -> np.ndarray:
    """Blend a heatmap over an image; optionally draw the proprio border and a text label.

    Args:
        image_rgb: (H, W, 3) uint8 RGB source image.
        heatmap: (h, w) float map in [0, 1] (any h, w; resized to the image).
        alpha: heatmap weight in the blend, 0 = image only, 1 = heatmap only.
        border: proprio-attention value in [0, 1]: a magenta frame blended with that intensity.
        border_px: frame thickness (default ~2% of the shorter side, at least 3 px).
        label: short text drawn top-left (white on a dark box).
    Returns:
        (H, W, 3) uint8 RGB overlay (a new array).
    """
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image_rgb.shape} {image_rgb.dtype}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay alpha must be in [0, 1], got {alpha}")
    h, w = image_rgb.shape[:2]
    out = cv2.addWeighted(image_rgb, 1.0 - alpha, colorize(heatmap, (h, w)), alpha, 0.0)
    if border is not None and np.isfinite(border):
        px = border_px or max(3, round(0.02 * min(h, w)))
        strength = float(np.clip(border, 0.0, 1.0))
        for band in (out[:px], out[-px:], out[px:-px, :px], out[px:-px, -px:]):  # views: edited in place
            band[...] = (band * (1.0 - strength) + MAGENTA_RGB * strength).astype(np.uint8)
    if label:
        draw_label(out, label, scale=max(0.35, min(h, w) / 600.0))
    return out


def draw_label(img: np.ndarray, text: str, *, corner: str = "tl", scale: float | None = None,
               y: int | None = None) -> np.ndarray:
    """White text on a dark box, drawn in place at the top-left (``tl``), bottom-left (``bl``) or row ``y``.

    ``scale`` defaults to the image size (readable from 160x120 to 1280x960). Returns ``img``.
    """
    h, w = img.shape[:2]
    scale = scale or max(0.35, min(h, w) / 600.0)
    thick = 1 if scale < 0.7 else 2
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    pad = max(2, round(0.01 * min(h, w)))
    x0 = max(4, round(0.03 * min(h, w)))
    if y is not None:
        y0 = y
    elif corner == "bl":
        y0 = h - x0 - th - base
    else:
        y0 = x0
    cv2.rectangle(img, (x0 - pad, y0 - pad), (min(w - 1, x0 + tw + pad), y0 + th + base + pad), (0, 0, 0), -1)
    cv2.putText(img, text, (x0, y0 + th), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img
