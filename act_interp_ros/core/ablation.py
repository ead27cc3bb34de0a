"""Counterfactual frames: edit a region of one camera's image and measure how much the executed chunk changes.

A user's hypothesis ("the policy follows the shadow, not the cube") becomes a test on their own recording:
fill the shadow's region and see whether the actions change, then fill an equal region on the cube.

:class:`Ablation` takes a normalised batch (B rows) and one (H, W) bool mask per row at the policy's image
size, fills the masked pixels of its camera and runs the model on the edited rows. The fill is

* ``mean``: the dataset's mean colour (0 in normalised units, as the deletion test and occlusion fill), or
* ``blur``: the image blurred with a Gaussian of sigma = 5 % of its short side (at least 1.5 px), which keeps
  the region's colours and removes its detail.

The change is the target's (default ``executed``: the L2 change of the executed part of the chunk, normalised
units, as occlusion and the deletion test) between the edited and the unedited observation.

Where to edit (:class:`AblationSpec`): a fixed box in source pixels (``front:x,y,w,h``, scaled to the
policy's image size by :func:`box_mask`), or the top ``k`` % of a map's cells on each tick (``front:
gradient_x_input:10``, :func:`top_mask`, cells of 8 px ranked by the map's mean as in the deletion test).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from act_interp_ros.core.action_targets import DEFAULT_PERTURBATION_TARGET, ActionTarget
from act_interp_ros.core.attribution import ACTInputs
from act_interp_ros.core.faithfulness import cell_scores, to_pixels

__all__ = ["FILLS", "Ablation", "AblationSpec", "ablated_frame", "box_mask", "top_mask"]

#: How an edited region is filled.
FILLS = ("mean", "blur")
#: Camera keys start with this (``front`` -> ``observation.images.front``).
_CAMERA_PREFIX = "observation.images."


@dataclass(frozen=True)
class AblationSpec:
    """Which region of which camera to edit, and how.

    Attributes:
        camera: the policy's camera key (``observation.images.front``).
        fill: ``mean`` or ``blur``.
        box: (x, y, w, h) in source pixels (a fixed box), or ``None``.
        method: the map whose top cells are edited (``attention``, ``gradient_x_input``, ...), or ``None``.
        percent: the share of the image's cells edited with ``method``, in (0, 100].
    """

    camera: str
    fill: str = "mean"
    box: tuple[int, int, int, int] | None = None
    method: str | None = None
    percent: float | None = None

    @property
    def label(self) -> str:
        """How the command line spells it (``front:40,30,24,24:mean``, ``front:gradient_x_input:10:blur``)."""
        cam = self.camera[len(_CAMERA_PREFIX):] if self.camera.startswith(_CAMERA_PREFIX) else self.camera
        what = ",".join(map(str, self.box)) if self.box is not None else f"{self.method}:{self.percent:g}"
        return f"{cam}:{what}:{self.fill}"

    @classmethod
    def parse_box(cls, text: str) -> AblationSpec:
        """``CAMERA:x,y,w,h[:mean|blur]`` -> spec; ValueError with one line for anything else."""
        parts = str(text).split(":")
        expected = "expected CAMERA:x,y,w,h[:mean|blur], e.g. front:40,30,24,24"
        if len(parts) not in (2, 3) or not parts[0]:
            raise ValueError(f"--ablate '{text}': {expected}")
        try:
            box = tuple(int(v) for v in parts[1].split(","))
        except ValueError:
            box = ()
        if len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1:
            raise ValueError(f"--ablate '{text}': the box must be 4 integers x,y >= 0 and w,h >= 1; {expected}")
        return cls(_camera_key(parts[0]), _fill(parts[2] if len(parts) == 3 else "mean", text, "--ablate"), box=box)

    @classmethod
    def parse_top(cls, text: str) -> AblationSpec:
        """``CAMERA:METHOD:PERCENT[:mean|blur]`` -> spec; ValueError with one line for anything else."""
        parts = str(text).split(":")
        expected = "expected CAMERA:METHOD:PERCENT[:mean|blur], e.g. front:gradient_x_input:10"
        if len(parts) not in (3, 4) or not parts[0] or not parts[1]:
            raise ValueError(f"--ablate-top '{text}': {expected}")
        try:
            percent = float(parts[2])
        except ValueError:
            percent = math.nan
        if not 0.0 < percent <= 100.0:
            raise ValueError(f"--ablate-top '{text}': the percent must be a number in (0, 100]; {expected}")
        return cls(_camera_key(parts[0]), _fill(parts[3] if len(parts) == 4 else "mean", text, "--ablate-top"),
                   method=parts[1], percent=percent)


def _camera_key(name: str) -> str:
    name = name.strip()
    return name if name.startswith(_CAMERA_PREFIX) else _CAMERA_PREFIX + name


def _fill(fill: str, text: str, flag: str) -> str:
    if fill not in FILLS:
        raise ValueError(f"{flag} '{text}': the fill must be one of {', '.join(FILLS)}, got '{fill}'")
    return fill


def box_mask(box: tuple[int, int, int, int], source_hw: tuple[int, int], policy_hw: tuple[int, int]) -> np.ndarray:
    """(x, y, w, h) in source pixels -> (H, W) bool mask at the policy's size (the box scaled with the image,
    at least one pixel; clipped to the image). ValueError when the box lies outside the image."""
    (sh, sw), (h, w) = source_hw, policy_hw
    x, y, bw, bh = box
    if x >= sw or y >= sh:
        raise ValueError(f"the box {x},{y},{bw},{bh} starts outside the {sw}x{sh} (WxH) image")
    x0, y0 = int(math.floor(x * w / sw)), int(math.floor(y * h / sh))
    x1 = max(x0 + 1, int(math.ceil(min(x + bw, sw) * w / sw)))
    y1 = max(y0 + 1, int(math.ceil(min(y + bh, sh) * h / sh)))
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def top_mask(saliency: np.ndarray, policy_hw: tuple[int, int], percent: float, cell: int = 8) -> np.ndarray:
    """A map (token grid or pixels) -> (H, W) bool mask of its top ``percent`` % cells (``cell`` px squares
    ranked by the map's mean over them; ties broken by position)."""
    scores = cell_scores(to_pixels(saliency, policy_hw), cell)
    n = max(1, round(percent / 100.0 * scores.size))
    chosen = np.zeros(scores.size, dtype=bool)
    chosen[np.argsort(-scores.ravel(), kind="stable")[:n]] = True
    grid = chosen.reshape(scores.shape)
    h, w = policy_hw
    return np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)[:h, :w]


def _blur_sigma(h: int, w: int) -> float:
    return max(1.5, 0.05 * min(h, w))


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """(3, H, W) -> the same blurred with a separable Gaussian (reflect padding)."""
    radius = max(1, int(math.ceil(3 * sigma)))
    radius = min(radius, x.shape[-1] - 1, x.shape[-2] - 1)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    y = x.unsqueeze(0)  # (1, 3, H, W)
    y = torch.nn.functional.pad(y, (radius, radius, 0, 0), mode="reflect")
    y = torch.nn.functional.conv2d(y, k.view(1, 1, 1, -1).expand(3, 1, 1, -1), groups=3)
    y = torch.nn.functional.pad(y, (0, 0, radius, radius), mode="reflect")
    y = torch.nn.functional.conv2d(y, k.view(1, 1, -1, 1).expand(3, 1, -1, 1), groups=3)
    return y[0]


def ablated_frame(rgb: np.ndarray, mask: np.ndarray, fill: str, mean_rgb: Sequence[float] | None) -> np.ndarray:
    """What the policy saw, at the source size for videos: (H, W, 3) uint8 with the mask (policy size, scaled
    up nearest) filled with ``mean_rgb`` (0..1; ``None`` = mid grey) or blurred."""
    import cv2

    h, w = rgb.shape[:2]
    big = cv2.resize(mask.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    out = rgb.copy()
    if fill == "blur":
        mh, mw = mask.shape
        sigma = _blur_sigma(mh, mw) * h / mh
        out[big] = cv2.GaussianBlur(rgb, (0, 0), sigmaX=sigma)[big]
    else:
        colour = np.asarray(mean_rgb if mean_rgb is not None else (0.5, 0.5, 0.5), dtype=np.float64)
        out[big] = np.clip(np.round(colour * 255.0), 0, 255).astype(np.uint8)
    return out


class Ablation:
    """Edits one camera of a normalised batch and measures the target's change (see the module docstring).

    Args:
        policy: an ``ACTPolicy`` in eval mode.
        camera: the camera key to edit.
        fill: ``mean`` or ``blur``.
        target: what "the action changed" means (default: L2 change of the executed chunk).
        batch_size: rows per forward pass.

    Cost: two forwards per edited row (the unedited reference and the edit). Owns no hooks.
    """

    def __init__(self, policy, camera: str, fill: str = "mean", target: ActionTarget = DEFAULT_PERTURBATION_TARGET,
                 batch_size: int = 64) -> None:
        self._io = ACTInputs(policy, "Ablation")
        self._io.validate(target)
        if camera not in self._io.camera_keys:
            raise ValueError(f"Ablation: camera '{camera}' is not one of the policy's {list(self._io.camera_keys)}")
        if fill not in FILLS:
            raise ValueError(f"Ablation: fill must be one of {', '.join(FILLS)}, got {fill!r}")
        self.camera = camera
        self.fill = fill
        self.target = target
        self.batch_size = int(batch_size)
        self.image_hw = tuple(self._io.image_shapes[camera])
        self._ci = self._io.camera_keys.index(camera)

    def run(self, batch: dict[str, Tensor], masks: Sequence[np.ndarray | None]) -> np.ndarray:
        """(B,) float64 change of the target per row (NaN for a row whose mask is ``None``).

        Args:
            batch: the normalised (preprocessed) batch of B observations.
            masks: per row, an (H, W) bool mask at the policy's image size of this camera, or ``None``.
        """
        io = self._io
        images, extras = io.split_for(batch, len(masks), "masks")
        out = np.full(images[0].shape[0], np.nan)
        rows = [i for i, m in enumerate(masks) if m is not None]
        for start in range(0, len(rows), self.batch_size):
            part = rows[start : start + self.batch_size]
            index = torch.as_tensor(part, dtype=torch.long, device=images[0].device)
            sel_images = [x.index_select(0, index) for x in images]
            sel_extras = [t.index_select(0, index) for t in extras]
            edited = sel_images[self._ci].clone()
            for r, i in enumerate(part):
                mask = np.asarray(masks[i], dtype=bool)
                if mask.shape != self.image_hw:
                    raise ValueError(f"Ablation: mask {i} is {mask.shape}; expected {self.image_hw} (the policy's size)")
                m = torch.from_numpy(mask).to(edited.device)
                x = edited[r]
                fill = (_gaussian_blur(x, _blur_sigma(*self.image_hw)) if self.fill == "blur"
                        else torch.zeros_like(x))
                x[:, m] = fill[:, m]
            with torch.no_grad():
                reference = io.chunk(sel_images, sel_extras)
                changed = io.chunk([edited if j == self._ci else x for j, x in enumerate(sel_images)], sel_extras)
            change = self.target.change(changed, reference, io.n_action_steps).float().cpu().numpy()
            out[part] = change.astype(np.float64)
        return out

    def close(self) -> None:
        """Nothing to release (no hooks); kept for the GradCAM-shaped interface."""
