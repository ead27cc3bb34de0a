"""Occlusion attribution (Captum's Occlusion, Zeiler & Fergus 2014): the change of the executed chunk when
each patch of a camera image is filled, per pixel."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from act_interp_ros.core.action_targets import DEFAULT_PERTURBATION_TARGET, ActionTarget
from act_interp_ros.core.attribution import ACTInputs, Maps, fill_value, normalise_maps


class PixelOcclusion:
    """Occlusion (Zeiler & Fergus 2014) with Captum ``Occlusion``: how much the action changes per patch.

    Every ``patch x patch`` square (all three channels), shifted by ``stride`` until the image is covered
    (Captum cuts the last patch at the border), is filled with ``fill`` (normalised units; 0 = the
    dataset's mean colour; ``"blur"`` = the same image Gaussian-blurred with sigma = patch / 2, which
    removes the patch's shape but keeps its colour) and the policy is run; the patch's score is the target's change
    ``||outputs(x') - outputs(x)||_2`` (default :data:`DEFAULT_PERTURBATION_TARGET`: the L2 change of
    the executed chunk). A pixel's value is the mean score of the patches covering it. One camera is
    occluded at a time, the others keep their image. Perturbations are batched: ``batch_size`` rows per
    forward pass (``batch_size // B`` patches for a batch of B observations).

    Cost per camera of size (H, W): ``(ceil((H - patch) / stride) + 1) * (ceil((W - patch) / stride) + 1)``
    perturbed forwards per batch element (285 at 128x160 with the default 16 / 8: ~3.4 s per map on the
    known-answer model; 315 at 480x640 with 60 / 30: ~2 min per map and camera for a small dim-32 ACT;
    one contended CPU core). An offline method.

    Captum fits as is: the unperturbed chunk is passed as an additional forward argument (Captum
    repeats it with the batched perturbations), so its forward returns the change directly and Captum's
    attribution ``f(x) - f(x') = -change`` is negated.

    Args:
        policy: an ``ACTPolicy`` in eval mode.
        patch: square side in pixels; ``None`` = ``round(min(H, W) / 8)`` per camera (16 at 128x160,
            60 at 480x640) so the grid is the same at any resolution.
        stride: shift in pixels, ``1 <= stride <= patch``; ``None`` = ``patch // 2``.
        fill: one number or one per RGB channel, normalised units, or ``"blur"``.
        batch_size: rows per forward pass.
    """

    def __init__(
        self,
        policy,
        patch: int | None = None,
        stride: int | None = None,
        fill: float | Sequence[float] | str = 0.0,
        batch_size: int = 64,
    ) -> None:
        self._io = ACTInputs(policy, "PixelOcclusion")
        self.policy = policy
        self.camera_keys = self._io.camera_keys
        self.blur = isinstance(fill, str)
        if self.blur and fill != "blur":
            raise ValueError(f"PixelOcclusion: fill must be numbers or 'blur', got {fill!r}")
        self.fill = None if self.blur else fill_value(fill, "PixelOcclusion")
        if batch_size < 1:
            raise ValueError(f"PixelOcclusion: batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.windows: dict[str, tuple[int, int]] = {}
        for key, (h, w) in self._io.image_shapes.items():
            p = max(1, round(min(h, w) / 8)) if patch is None else int(patch)
            s = max(1, p // 2) if stride is None else int(stride)
            if not 1 <= p <= min(h, w) or not 1 <= s <= p:
                raise ValueError(
                    f"PixelOcclusion: need 1 <= stride <= patch <= min(H, W) = {min(h, w)} for {key}, "
                    f"got patch {p}, stride {s}"
                )
            self.windows[key] = (p, s)

    def n_perturbations(self) -> dict[str, int]:
        """camera key -> perturbed forwards per batch element."""
        out = {}
        for key, (h, w) in self._io.image_shapes.items():
            p, s = self.windows[key]
            out[key] = (-(-(h - p) // s) + 1) * (-(-(w - p) // s) + 1)
        return out

    def attribute(self, batch: dict[str, Tensor], target: ActionTarget = DEFAULT_PERTURBATION_TARGET) -> Maps:
        """Maps for a normalised batch: one {camera key: (H, W) float32 in [0, 1]} per batch element."""
        from captum.attr import Occlusion

        io = self._io
        io.check_ready()
        io.validate(target)
        images, extras = io.split(batch)
        n_cams = len(images)
        with torch.no_grad():
            reference = io.chunk(images, extras)  # (B, chunk_size, A)

        def forward(*args: Tensor) -> Tensor:  # (N,) change of the target vs the unperturbed chunk
            chunk = io.chunk(args[:n_cams], args[n_cams:-1])
            return target.change(chunk, args[-1], io.n_action_steps)

        b = images[0].shape[0]
        attrs = Occlusion(forward).attribute(
            images,
            sliding_window_shapes=tuple((3, self.windows[k][0], self.windows[k][0]) for k in self.camera_keys),
            strides=tuple((3, self.windows[k][1], self.windows[k][1]) for k in self.camera_keys),
            baselines=tuple(self._baseline(k, x) for k, x in zip(self.camera_keys, images)),
            additional_forward_args=(*extras, reference),
            perturbations_per_eval=max(1, self.batch_size // b),
        )
        # Captum's attribution is f(x) - f(x') = 0 - change (f(x) is 0 up to float noise): negate.
        maps = [(-a.detach()).mean(dim=1).clamp_min(0.0) for a in attrs]
        return normalise_maps(self.camera_keys, maps)

    def _baseline(self, key: str, x: Tensor) -> Tensor:
        """What fills a patch of camera ``key``: (1, 3, 1, 1)-broadcast colour, or (B, 3, H, W) blurred ``x``."""
        if not self.blur:
            return self.fill.to(x).expand_as(x[0]).unsqueeze(0)
        from torchvision.transforms.functional import gaussian_blur

        sigma = self.windows[key][0] / 2.0
        kernel = 2 * int(round(2 * sigma)) + 1
        return gaussian_blur(x, [kernel, kernel], [sigma, sigma])

    def close(self) -> None:
        """Nothing to release (no hooks); kept for the GradCAM-shaped interface."""


__all__ = ["PixelOcclusion"]
