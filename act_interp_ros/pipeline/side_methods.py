"""The attribution methods computed beside control (live side timer, offline every N ticks), from the settings.

One :class:`SideMethods` owns the method objects of one policy (GradCAM's hook, the pixel methods) and the
target each explains, so the node and the replay build them the same way:

=========================== ============================================= ======================================
method                      object                                        target (settings)
=========================== ============================================= ======================================
``gradcam``                 :class:`~act_interp_ros.core.GradCAM`          ``gradcam_target`` on ``gradcam_layer``
``gradient_x_input``        :class:`~act_interp_ros.core.PixelGradientXInput` (SmoothGrad: ``smoothgrad_samples``)
``integrated_gradients``    :class:`~act_interp_ros.core.PixelIntegratedGradients`  ``attribution_target``
``occlusion``               :class:`~act_interp_ros.core.PixelOcclusion`   ``attribution_target`` (patch, stride)
=========================== ============================================= ======================================

``attribution_target: executed`` (the default) gives each pixel method its own readout of the executed part
of the chunk: the L2 norm for the gradient methods (one backward pass, joints cannot cancel in its value),
the L2 change of the executed chunk for occlusion (a distance: nothing cancels).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from act_interp_ros.core import (
    DEFAULT_GRADIENT_TARGET,
    DEFAULT_PERTURBATION_TARGET,
    ActionTarget,
    GradCAM,
    GradCAMTarget,
    PixelGradientXInput,
    PixelIntegratedGradients,
    PixelOcclusion,
)
from act_interp_ros.settings import NodeSettings

__all__ = ["ALL_METHODS", "LABELS", "OFFLINE_METHODS", "SideMethods", "attribution_target"]

#: Every map method, in display order, with its overlay label.
LABELS = {
    "attention": "attention",
    "gradcam": "GradCAM",
    "gradient_x_input": "grad x input",
    "integrated_gradients": "integrated gradients",
    "occlusion": "occlusion",
}
ALL_METHODS = tuple(m for m in LABELS if m != "attention")
#: Methods meant for offline use (tens to hundreds of forwards per map on a CPU).
OFFLINE_METHODS = ("integrated_gradients", "occlusion")


def attribution_target(settings: NodeSettings, method: str) -> ActionTarget:
    """The target ``method`` explains under ``settings`` (see the module docstring)."""
    if method == "gradcam":
        spec = settings.gradcam_target_spec()
        return GradCAMTarget(spec.kind, spec.joint_index)
    spec = settings.attribution_target_spec()
    if spec.kind == "executed":
        return DEFAULT_PERTURBATION_TARGET if method == "occlusion" else DEFAULT_GRADIENT_TARGET
    return ActionTarget(spec.kind, spec.joint_index)


class SideMethods:
    """The method objects for ``methods`` on ``policy`` (an ACTPolicy); :meth:`close` releases them.

    Args:
        policy: the ACTPolicy (``InterpretableACT.policy``).
        settings: where the targets and method options come from.
        methods: method names (keys of :data:`LABELS` but ``attention``).
    """

    def __init__(self, policy, settings: NodeSettings, methods: Sequence[str]) -> None:
        unknown = [m for m in methods if m not in ALL_METHODS]
        if unknown:
            raise ValueError(f"unknown attribution method(s) {unknown}; expected some of {', '.join(ALL_METHODS)}")
        self.names = list(dict.fromkeys(methods))
        self.targets = {m: attribution_target(settings, m) for m in self.names}
        self.impl: dict[str, object] = {}
        try:
            for m in self.names:
                self.impl[m] = self._build(m, policy, settings)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _build(method: str, policy, s: NodeSettings):
        if method == "gradcam":
            return GradCAM(policy, s.gradcam_layer)
        if method == "gradient_x_input":
            return PixelGradientXInput(policy, smoothgrad_samples=s.smoothgrad_samples)
        if method == "integrated_gradients":
            return PixelIntegratedGradients(policy)
        return PixelOcclusion(policy, patch=s.occlusion_patch_px or None, stride=s.occlusion_stride_px or None)

    def __contains__(self, method: str) -> bool:
        return method in self.impl

    def attribute(self, method: str, batch) -> list[dict[str, np.ndarray]]:
        """``method``'s maps for a normalised batch: one {camera key: (h, w) map in [0, 1]} per element."""
        return self.impl[method].attribute(batch, self.targets[method])

    def close(self) -> None:
        for impl in self.impl.values():
            impl.close()
        self.impl.clear()
