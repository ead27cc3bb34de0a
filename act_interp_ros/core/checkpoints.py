"""Build small, real LeRobot ACT checkpoints locally (tests, benchmarks, demo).

Nothing is downloaded: the ResNet backbone is randomly initialised (``pretrained_backbone_weights=None``)
and the checkpoint is written with LeRobot's own ``save_pretrained`` for the policy and both processor
pipelines, so it loads through exactly the code a user's trained ``pretrained_model/`` goes through.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SO101_CAMERAS: dict[str, tuple[int, int]] = {
    "observation.images.front": (96, 128),
    "observation.images.wrist": (96, 128),
}


@dataclass
class SmallACTSpec:
    """Shape of a small ACT used where a full-size one (dim 512, 480x640) would be too slow.

    Attributes:
        cameras: policy camera key -> (H, W) of the images the policy expects.
        state_dim: length of `observation.state` (0 = the policy has no proprio token).
        env_state_dim: length of `observation.environment_state` (0 = no env-state token).
        action_dim: length of `action`.
        dim_model, n_heads, dim_feedforward, n_encoder_layers, n_decoder_layers: transformer sizes.
        chunk_size, n_action_steps: action chunking; temporal_ensemble_coeff requires n_action_steps=1.
        stats: optional dataset stats {feature: {"mean": Tensor, "std": Tensor}}; defaults to identity
            normalisation for state/action and ImageNet-like stats for images.
    """

    cameras: dict[str, tuple[int, int]] = field(default_factory=lambda: dict(SO101_CAMERAS))
    state_dim: int = 6
    env_state_dim: int = 0
    action_dim: int = 6
    dim_model: int = 32
    n_heads: int = 4
    dim_feedforward: int = 64
    n_encoder_layers: int = 1
    n_decoder_layers: int = 1
    chunk_size: int = 10
    n_action_steps: int = 5
    temporal_ensemble_coeff: float | None = None
    vision_backbone: str = "resnet18"
    seed: int = 0
    stats: dict[str, dict[str, torch.Tensor]] | None = None


def make_act_config(spec: SmallACTSpec, device: str = "cpu"):
    """Return an ``ACTConfig`` for ``spec`` (no pretrained backbone weights)."""
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.act.configuration_act import ACTConfig

    inputs: dict[str, PolicyFeature] = {}
    if spec.state_dim:
        inputs["observation.state"] = PolicyFeature(FeatureType.STATE, (spec.state_dim,))
    if spec.env_state_dim:
        inputs["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (spec.env_state_dim,))
    for key, (h, w) in spec.cameras.items():
        inputs[key] = PolicyFeature(FeatureType.VISUAL, (3, h, w))
    return ACTConfig(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (spec.action_dim,))},
        pretrained_backbone_weights=None,
        vision_backbone=spec.vision_backbone,
        dim_model=spec.dim_model,
        n_heads=spec.n_heads,
        dim_feedforward=spec.dim_feedforward,
        n_encoder_layers=spec.n_encoder_layers,
        n_decoder_layers=spec.n_decoder_layers,
        n_vae_encoder_layers=1,
        chunk_size=spec.chunk_size,
        n_action_steps=spec.n_action_steps,
        temporal_ensemble_coeff=spec.temporal_ensemble_coeff,
        device=device,
    )


def default_stats(config) -> dict[str, dict[str, torch.Tensor]]:
    """Normalisation stats for a config: ImageNet mean/std for images, mean 0 / std 1 otherwise."""
    stats: dict[str, dict[str, torch.Tensor]] = {}
    for key, feat in {**config.input_features, **config.output_features}.items():
        if key.startswith("observation.images."):
            stats[key] = {
                "mean": torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1),
                "std": torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1),
            }
        else:
            stats[key] = {"mean": torch.zeros(feat.shape), "std": torch.ones(feat.shape)}
    return stats


def build_policy(spec: SmallACTSpec, device: str = "cpu"):
    """Return ``(policy, preprocessor, postprocessor)`` freshly initialised from ``spec``."""
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    config = make_act_config(spec, device)
    torch.manual_seed(spec.seed)
    policy = ACTPolicy(config)
    pre, post = make_pre_post_processors(config, dataset_stats=spec.stats or default_stats(config))
    policy.eval()
    return policy, pre, post


def save_checkpoint(out_dir: str | Path, policy, preprocessor, postprocessor) -> Path:
    """Write a LeRobot ``pretrained_model/`` directory with LeRobot's own ``save_pretrained``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    preprocessor.save_pretrained(out)
    postprocessor.save_pretrained(out)
    logger.info("saved ACT checkpoint to %s", out)
    return out


def build_act_checkpoint(out_dir: str | Path, spec: SmallACTSpec | None = None) -> Path:
    """Build a small random-weight ACT checkpoint at ``out_dir`` and return its path."""
    policy, pre, post = build_policy(spec or SmallACTSpec())
    return save_checkpoint(out_dir, policy, pre, post)
