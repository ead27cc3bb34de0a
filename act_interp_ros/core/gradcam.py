"""GradCAM on ACT's ResNet backbone (Selvaraju et al. 2017), safe beside a running control loop.

For camera i with layer4 activations A_i (B, C, h, w) and a scalar target y built from the predicted
action chunk::

    alpha_i = mean_{h,w} dy/dA_i            # (B, C, 1, 1) channel importance
    cam_i   = ReLU(sum_c alpha_i * A_i)     # (B, h, w)
    cam_i  /= max(cam_i)                    # per camera, to [0, 1] (all-zero stays zero)

The backbone runs once per camera, in ``config.image_features`` order, so the forward hook appends one
activation per camera in that order. Gradients are taken with ``torch.autograd.grad(y, [A_0, A_1, ...])``,
which returns them in the same order (no backward-hook ordering trap) and never writes any
parameter's ``.grad``. The policy's action queue is not touched (the model is called directly). The hook
records only for the thread running :meth:`GradCAM.attribute`, so a control forward on another thread
using the same weights is never mixed in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from act_interp_ros.core.action_targets import ActionTarget
from act_interp_ros.settings.vocabulary import SCALAR_TARGET_KINDS



@dataclass(frozen=True)
class GradCAMTarget(ActionTarget):
    """An :class:`ActionTarget` whose default stays GradCAM's historical ``first_action_sum``.

    GradCAM needs one scalar per batch element, so it takes the one-output kinds
    (:data:`~act_interp_ros.settings.vocabulary.SCALAR_TARGET_KINDS`): ``first_action_sum`` (default), ``joint``
    (``joint`` index, first action), ``chunk_sum``, ``chunk_l2`` and the ``executed_*`` scalars.
    """

    kind: str = "first_action_sum"


class GradCAM:
    """Owns one forward hook on ``policy.model.backbone.<target_layer>``; :meth:`close` removes it."""

    def __init__(self, policy, target_layer: str = "layer4") -> None:
        backbone = getattr(policy.model, "backbone", None)
        if backbone is None:
            raise ValueError("this ACT policy has no image backbone (no camera inputs); GradCAM needs one")
        try:
            layer = backbone.get_submodule(target_layer)
        except AttributeError as exc:
            names = [n for n, _ in backbone.named_children()]
            raise ValueError(f"backbone has no layer '{target_layer}'; choose one of {names}") from exc
        self.policy = policy
        self.target_layer = target_layer
        self.camera_keys = tuple(policy.config.image_features)
        self._local = threading.local()
        self._handle = layer.register_forward_hook(self._on_forward)

    def __getstate__(self) -> dict:
        # Hooks hold bound methods of this object, so deep-copying a wrapped policy copies it too;
        # the copy gets a fresh thread-local and is inert (nothing records into it).
        return {**self.__dict__, "_local": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    def _on_forward(self, _module, _inputs, output: Tensor):
        acts = getattr(self._local, "acts", None)
        if acts is None:
            return None
        if not output.requires_grad:  # frozen backbone: make the activation a leaf we can differentiate to
            output = output.detach().requires_grad_(True)
        acts.append(output)
        return output

    def attribute(
        self, batch: dict[str, Tensor], target: ActionTarget = GradCAMTarget()
    ) -> list[dict[str, np.ndarray]]:
        """GradCAM maps for a normalised batch: one {camera key: (h, w) float32 in [0,1]} per element."""
        model = self.policy.model
        if model.training:
            raise RuntimeError("GradCAM needs the policy in eval mode (call policy.eval())")
        if target.kind not in SCALAR_TARGET_KINDS:
            raise ValueError(
                f"GradCAM needs a one-output target; '{target.kind}' has several (use one of {', '.join(SCALAR_TARGET_KINDS)})"
            )
        n_executed = self.policy.config.n_action_steps
        inputs = dict(batch)
        inputs["observation.images"] = [batch[k] for k in self.camera_keys]
        if self.policy.config.robot_state_feature is None and "observation.state" not in inputs:
            first = inputs["observation.images"][0]
            inputs["observation.state"] = first.new_zeros((first.shape[0], 0))
        self._local.acts = []
        try:
            with torch.enable_grad():
                chunk = model(inputs)[0]  # (B, chunk_size, action_dim)
                acts = self._local.acts
                if len(acts) != len(self.camera_keys):
                    raise RuntimeError(
                        f"GradCAM hook saw {len(acts)} activations for {len(self.camera_keys)} cameras"
                    )
                score = target.score(chunk, n_executed).sum()  # batch elements are independent: sum keeps per-row grads
                grads = torch.autograd.grad(score, acts)
        finally:
            self._local.acts = None
        return _cams(self.camera_keys, acts, grads)

    def close(self) -> None:
        self._handle.remove()


def gradcam_map(activation: Tensor, gradient: Tensor) -> Tensor:
    """(B, C, h, w) activation and gradient -> (B, h, w) GradCAM normalised per element to [0, 1]."""
    weights = gradient.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    cam = torch.relu((weights * activation).sum(dim=1))  # (B, h, w)
    peak = cam.flatten(1).amax(dim=1).clamp_min(torch.finfo(cam.dtype).tiny).view(-1, 1, 1)
    return cam / peak


def _cams(keys: tuple[str, ...], acts: list[Tensor], grads: tuple[Tensor, ...]) -> list[dict[str, np.ndarray]]:
    per_cam = {k: gradcam_map(a.detach(), g.detach()).float().cpu().numpy() for k, a, g in zip(keys, acts, grads)}
    batch = next(iter(per_cam.values())).shape[0]
    return [{k: per_cam[k][i] for k in keys} for i in range(batch)]
