"""Where each input lives in ACT's encoder token sequence.

LeRobot's ACT builds the transformer-encoder input as (``modeling_act.ACT.forward``)::

    [latent, (robot_state), (env_state), cam0 h0*w0 ..., cam1 h1*w1 ..., ...]

one token each for the VAE latent, the proprioceptive state and the environment state (when the config
has them), then each camera's layer4 feature map flattened row-major (``b c h w -> (h w) b c``), cameras
in ``config.image_features`` order. The feature-map sizes (h_i, w_i) are read from the same forward pass
(a hook on the backbone), never from an extra backbone run.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TokenLayout:
    """Token indices of each group in the encoder sequence of length ``n_tokens``."""

    has_state: bool
    has_env_state: bool
    camera_keys: tuple[str, ...]
    feature_shapes: tuple[tuple[int, int], ...]  # (h_i, w_i) per camera, in camera_keys order

    @classmethod
    def from_config(cls, config, feature_shapes: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> TokenLayout:
        """Layout for an ``ACTConfig`` and the feature-map sizes captured during the forward pass."""
        keys = tuple(config.image_features)
        if len(feature_shapes) != len(keys):
            raise RuntimeError(
                f"captured {len(feature_shapes)} backbone feature maps for {len(keys)} cameras {list(keys)}; "
                "expected one per camera (was the backbone run more than once per camera?)"
            )
        return cls(
            has_state=config.robot_state_feature is not None,
            has_env_state=config.env_state_feature is not None,
            camera_keys=keys,
            feature_shapes=tuple((int(h), int(w)) for h, w in feature_shapes),
        )

    @property
    def state_index(self) -> int | None:
        return 1 if self.has_state else None

    @property
    def env_state_index(self) -> int | None:
        return 1 + int(self.has_state) if self.has_env_state else None

    @property
    def n_1d_tokens(self) -> int:
        """latent + state? + env_state?"""
        return 1 + int(self.has_state) + int(self.has_env_state)

    @property
    def camera_slices(self) -> dict[str, slice]:
        out: dict[str, slice] = {}
        start = self.n_1d_tokens
        for key, (h, w) in zip(self.camera_keys, self.feature_shapes):
            out[key] = slice(start, start + h * w)
            start += h * w
        return out

    @property
    def n_tokens(self) -> int:
        return self.n_1d_tokens + sum(h * w for h, w in self.feature_shapes)
