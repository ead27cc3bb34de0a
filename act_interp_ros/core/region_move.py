"""Counterfactual frames: move a region of one camera's image and measure whether the executed chunk follows it.

Removing a suspect can miss a shortcut that agrees with the object (with the shadow gone the policy falls back on
the cube); moving it does not: a policy that reads the target's position from the shadow heads elsewhere when the
shadow moves. :class:`RegionMove` edits every row of a normalised batch twice at the policy's image size:

1. cut the box out; fill the hole from its surroundings (:func:`fill_hole`: each pixel the mean of the linear
   interpolation between the box's left and right border columns and between its top and bottom border rows);
2. paste the cut region shifted by ``(dx, dy)`` (the **move**), and, on a second copy, by the **control** shift
   ``(-dx, -dy)`` (the opposite move; pixels pushed off the image are dropped).

With C0 the unedited chunk, Cm the moved one and Cc the control one (each compared by the target's change,
default the L2 change of the executed part of the chunk, normalised units, as ``--ablate``):

* ``change`` = |Cm - C0|: how much the move changes the chunk (its size);
* ``control_change`` = |Cc - C0|;
* ``vs_control`` = |Cm - Cc|: how much the chunk depends on *where* the region goes;
* ``follow`` = vs_control / (change + control_change), in [0, 1] (triangle inequality): 1 when the two shifts
  push the chunk in opposite directions (it follows the region), 0 when both edits change it the same way (it
  reacts to the cut and paste, not to the region's position).

Boxes and shifts are given in source pixels (``front:x,y,w,h:dx,dy``) and scaled to the policy's image size.
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

__all__ = ["MoveResult", "MoveSpec", "RegionMove", "fill_hole", "move_region", "moved_frame", "scaled_move"]

_CAMERA_PREFIX = "observation.images."
_EXPECTED = "expected CAMERA:x,y,w,h:dx,dy, e.g. front:40,30,24,20:16,0"


@dataclass(frozen=True)
class MoveSpec:
    """Which region of which camera to move, and by how much (source pixels).

    Attributes:
        camera: the policy's camera key (``observation.images.front``).
        box: (x, y, w, h) of the region.
        shift: (dx, dy) of the move; the control move is ``(-dx, -dy)``.
    """

    camera: str
    box: tuple[int, int, int, int]
    shift: tuple[int, int]

    @property
    def label(self) -> str:
        """How the command line spells it (``front:40,30,24,20:16,0``)."""
        cam = self.camera[len(_CAMERA_PREFIX):] if self.camera.startswith(_CAMERA_PREFIX) else self.camera
        return f"{cam}:{','.join(map(str, self.box))}:{self.shift[0]},{self.shift[1]}"

    @property
    def control_shift(self) -> tuple[int, int]:
        return (-self.shift[0], -self.shift[1])

    @classmethod
    def parse(cls, text: str) -> MoveSpec:
        """``CAMERA:x,y,w,h:dx,dy`` -> spec; ValueError with one line for anything else."""
        parts = str(text).split(":")
        if len(parts) != 3 or not parts[0].strip():
            raise ValueError(f"--move '{text}': {_EXPECTED}")
        box, shift = _ints(parts[1]), _ints(parts[2])
        if box is None or len(box) != 4 or box[0] < 0 or box[1] < 0 or box[2] < 1 or box[3] < 1:
            raise ValueError(f"--move '{text}': the box must be 4 integers x,y >= 0 and w,h >= 1; {_EXPECTED}")
        if shift is None or len(shift) != 2 or shift == (0, 0):
            raise ValueError(f"--move '{text}': the shift must be 2 integers dx,dy, not both 0; {_EXPECTED}")
        name = parts[0].strip()
        camera = name if name.startswith(_CAMERA_PREFIX) else _CAMERA_PREFIX + name
        return cls(camera, box, shift)  # type: ignore[arg-type]


def _ints(text: str) -> tuple[int, ...] | None:
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        return None


def scaled_move(spec: MoveSpec, source_hw: tuple[int, int], policy_hw: tuple[int, int]
                ) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """The spec at the policy's size: ((x0, y0, x1, y1) clipped to the image, at least one pixel; (dx, dy)).
    ValueError when the box starts outside the source image."""
    (sh, sw), (h, w) = source_hw, policy_hw
    x, y, bw, bh = spec.box
    if x >= sw or y >= sh:
        raise ValueError(f"the box {x},{y},{bw},{bh} starts outside the {sw}x{sh} (WxH) image")
    x0, y0 = int(math.floor(x * w / sw)), int(math.floor(y * h / sh))
    x1 = max(x0 + 1, int(math.ceil(min(x + bw, sw) * w / sw)))
    y1 = max(y0 + 1, int(math.ceil(min(y + bh, sh) * h / sh)))
    return (x0, y0, x1, y1), (int(round(spec.shift[0] * w / sw)), int(round(spec.shift[1] * h / sh)))


def fill_hole(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """(H, W, C) float image with the box (x0, y0, x1, y1) filled from its border: each pixel the mean of the
    linear interpolation between the columns left/right of the box and between the rows above/below it (a side
    outside the image is left out; a box covering the whole image is filled with the image's mean)."""
    out = np.array(image, dtype=np.float64, copy=True)
    h, w = out.shape[:2]
    x0, y0, x1, y1 = box
    bh, bw = y1 - y0, x1 - x0
    guesses = []
    left = out[y0:y1, x0 - 1] if x0 > 0 else None  # (bh, C)
    right = out[y0:y1, x1] if x1 < w else None
    if left is not None or right is not None:
        a, b = (left if left is not None else right), (right if right is not None else left)
        t = ((np.arange(bw) + 1.0) / (bw + 1.0))[None, :, None]  # (1, bw, 1)
        guesses.append(a[:, None] * (1 - t) + b[:, None] * t)
    top = out[y0 - 1, x0:x1] if y0 > 0 else None  # (bw, C)
    bottom = out[y1, x0:x1] if y1 < h else None
    if top is not None or bottom is not None:
        a, b = (top if top is not None else bottom), (bottom if bottom is not None else top)
        t = ((np.arange(bh) + 1.0) / (bh + 1.0))[:, None, None]  # (bh, 1, 1)
        guesses.append(a[None] * (1 - t) + b[None] * t)
    out[y0:y1, x0:x1] = np.mean(guesses, axis=0) if guesses else out.mean(axis=(0, 1))
    return out


def move_region(image: np.ndarray, box: tuple[int, int, int, int], shift: tuple[int, int]) -> np.ndarray:
    """(H, W, C) image -> float64 copy with the box (x0, y0, x1, y1) cut out, its hole filled (:func:`fill_hole`)
    and its content pasted shifted by (dx, dy) (clipped to the image)."""
    src = np.asarray(image, dtype=np.float64)
    h, w = src.shape[:2]
    x0, y0, x1, y1 = box
    patch = src[y0:y1, x0:x1].copy()
    out = fill_hole(src, box)
    dx, dy = shift
    tx0, ty0 = max(0, x0 + dx), max(0, y0 + dy)
    tx1, ty1 = min(w, x1 + dx), min(h, y1 + dy)
    if tx1 > tx0 and ty1 > ty0:
        out[ty0:ty1, tx0:tx1] = patch[ty0 - (y0 + dy):ty1 - (y0 + dy), tx0 - (x0 + dx):tx1 - (x0 + dx)]
    return out


def moved_frame(rgb: np.ndarray, spec: MoveSpec) -> np.ndarray:
    """What the policy saw under the move, at the source size for videos: (H, W, 3) uint8."""
    h, w = rgb.shape[:2]
    box, shift = scaled_move(spec, (h, w), (h, w))
    return np.clip(np.round(move_region(rgb, box, shift)), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class MoveResult:
    """Per row (B,) float64, NaN where the row was not edited (see the module docstring)."""

    change: np.ndarray
    control_change: np.ndarray
    vs_control: np.ndarray

    @property
    def follow(self) -> np.ndarray:
        """(B,) vs_control / (change + control_change) in [0, 1] (NaN where nothing changed)."""
        den = self.change + self.control_change
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, self.vs_control / den, np.nan)


class RegionMove:
    """Moves a region of one camera of a normalised batch and measures the chunk (see the module docstring).

    Args:
        policy: an ``ACTPolicy`` in eval mode.
        spec: the camera, box and shift.
        target: what "the action changed" means (default: L2 change of the executed chunk).
        batch_size: rows per forward pass.

    Cost: three forwards per edited row (unedited, moved, control). Owns no hooks.
    """

    def __init__(self, policy, spec: MoveSpec, target: ActionTarget = DEFAULT_PERTURBATION_TARGET,
                 batch_size: int = 64) -> None:
        self._io = ACTInputs(policy, "RegionMove")
        self._io.validate(target)
        if spec.camera not in self._io.camera_keys:
            raise ValueError(f"RegionMove: camera '{spec.camera}' is not one of the policy's "
                             f"{list(self._io.camera_keys)}")
        self.spec = spec
        self.target = target
        self.batch_size = int(batch_size)
        self.image_hw = tuple(self._io.image_shapes[spec.camera])
        self._ci = self._io.camera_keys.index(spec.camera)

    def run(self, batch: dict[str, Tensor], source_hw: Sequence[tuple[int, int] | None]) -> MoveResult:
        """Per row, the source image size (H, W) the box is given in, or ``None`` to leave the row out."""
        io = self._io
        images, extras = io.split_for(batch, len(source_hw), "source sizes")
        n = images[0].shape[0]
        out = {k: np.full(n, np.nan) for k in ("change", "control_change", "vs_control")}
        rows = [i for i, s in enumerate(source_hw) if s is not None]
        for start in range(0, len(rows), self.batch_size):
            part = rows[start:start + self.batch_size]
            index = torch.as_tensor(part, dtype=torch.long, device=images[0].device)
            sel_images = [x.index_select(0, index) for x in images]
            sel_extras = [t.index_select(0, index) for t in extras]
            moved, control = [], []
            for r, i in enumerate(part):
                box, shift = scaled_move(self.spec, tuple(source_hw[i]), self.image_hw)
                x = sel_images[self._ci][r].permute(1, 2, 0).cpu().numpy()  # (H, W, C)
                for target, s in ((moved, shift), (control, (-shift[0], -shift[1]))):
                    target.append(torch.from_numpy(move_region(x, box, s)).permute(2, 0, 1))
            edits = [torch.stack(e).to(dtype=images[0].dtype, device=images[0].device) for e in (moved, control)]
            with torch.no_grad():
                reference = io.chunk(sel_images, sel_extras)
                chunks = [io.chunk([e if j == self._ci else x for j, x in enumerate(sel_images)], sel_extras)
                          for e in edits]
            steps = io.n_action_steps
            for key, (a, b) in (("change", (chunks[0], reference)), ("control_change", (chunks[1], reference)),
                                ("vs_control", (chunks[0], chunks[1]))):
                out[key][part] = self.target.change(a, b, steps).float().cpu().numpy().astype(np.float64)
        return MoveResult(out["change"], out["control_change"], out["vs_control"])

    def close(self) -> None:
        """Nothing to release (no hooks)."""
