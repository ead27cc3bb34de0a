"""REPRODUCTION (baseline for benchmark 2, not act_interp_ros code): the per-tick approach of the
``ACTPolicyWithAttention`` wrapper of *physical-AI-interpretability* (villekuosmanen), re-implemented
from its README / overview and its published ``act_attention_mapper.py`` so it can be timed beside ours.

What one ``select_action`` of that wrapper does, step for step (kept here on purpose - it is the cost
being measured):

1. copy the raw observation and, **for every camera, run the ResNet backbone once more on that image**
   just to read the layer4 feature-map size (h, w) - that size is needed to cut the encoder token
   sequence into per-camera maps; ``_get_image_spatial_shapes`` in the original;
2. register a forward hook on the last decoder layer's cross-attention (``multihead_attn``), which
   LeRobot already calls with ``need_weights=True`` (head-averaged weights), copying them to the CPU;
3. preprocess, then ``policy.select_action`` under ``torch.inference_mode`` followed by ``policy.reset()``
   so the model runs every tick (the README's "modify LeRobot to run inference at every timestep");
4. remove the hook, then map the (B, chunk, tokens) weights to per-camera (h, w) maps: mean over the
   decoder queries, take batch element 0, min-max normalise globally over all maps and the proprio token.

Differences from the original that do not change the cost: LeRobot 0.4.4 names the backbone
``policy.model.backbone`` (the original reaches it as ``model.vision_encoder.resnet_feature_extractor``
on the author's fork), and the fork-specific ``observation.state.pos`` key rename is dropped (our raw
observations already carry ``observation.state``). Printing and the drawing helpers are left out.

act_interp_ros reads the feature-map sizes from a hook on the backbone call the forward pass makes
anyway (``act_interp_ros.core.attention.ForwardCapture``), so it needs no extra backbone pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


class PeerACTPolicyWithAttentionReproduction:
    """Timing reproduction of physical-AI-interpretability's ``ACTPolicyWithAttention.select_action``."""

    def __init__(self, policy, preprocessor) -> None:
        self.policy = policy
        self.preprocessor = preprocessor
        self.config = policy.config
        self.camera_keys = list(self.config.image_features)
        self.target_layer = policy.model.decoder.layers[-1].multihead_attn
        self.backbone = policy.model.backbone  # original: model.vision_encoder.resnet_feature_extractor

    def select_action(self, observation: dict[str, Any]) -> tuple[torch.Tensor, list[np.ndarray | None], float]:
        """Raw observation -> (action (1, A), per-camera maps, normalised proprio attention)."""
        observation = observation.copy()
        shapes = self._feature_shapes([observation[k] for k in self.camera_keys if k in observation])

        captured: list[torch.Tensor] = []

        def hook(_module, _args, output):
            if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
                captured.append(output[1].detach().cpu())

        handle = self.target_layer.register_forward_hook(hook)
        try:
            batch = self.preprocessor(observation)
            with torch.inference_mode():
                action = self.policy.select_action(batch)
                self.policy.reset()  # empty the queue so the model runs again next tick
        finally:
            handle.remove()
        if not captured:
            return action, [None] * len(self.camera_keys), 0.0
        maps, proprio = self._map_attention(captured[0], shapes)
        return action, maps, proprio

    def _feature_shapes(self, images: list[torch.Tensor]) -> list[tuple[int, int]]:
        """The extra work: one backbone pass per camera, only to learn each feature map's (h, w)."""
        device = next(self.backbone.parameters()).device
        shapes = []
        with torch.no_grad():
            for img in images:
                x = (img.unsqueeze(0) if img.dim() == 3 else img).to(device)
                fmap = self.backbone(x)["feature_map"]
                shapes.append((int(fmap.shape[2]), int(fmap.shape[3])))
        return shapes

    def _map_attention(self, attention: torch.Tensor, shapes: list[tuple[int, int]]) -> tuple[list[np.ndarray], float]:
        """(B, [heads,] chunk, tokens) -> per-camera maps + proprio, min-max normalised together."""
        if attention.dim() == 4:
            attention = attention.mean(dim=1)
        n_prefix = 1
        proprio_idx = None
        if self.config.robot_state_feature:
            proprio_idx, n_prefix = n_prefix, n_prefix + 1
        if self.config.env_state_feature:
            n_prefix += 1
        proprio = float(attention[:, :, proprio_idx].mean(dim=1)[0]) if proprio_idx is not None else 0.0
        raw: list[np.ndarray] = []
        start = n_prefix
        for h, w in shapes:
            end = start + h * w
            raw.append(attention[:, :, start:end].mean(dim=1)[0].reshape(h, w).cpu().numpy())
            start = end
        lo = min([proprio] + [float(m.min()) for m in raw])
        hi = max([proprio] + [float(m.max()) for m in raw])
        if hi > lo:
            return [(m - lo) / (hi - lo) for m in raw], (proprio - lo) / (hi - lo)
        return [np.zeros_like(m, dtype=np.float32) for m in raw], 0.0
