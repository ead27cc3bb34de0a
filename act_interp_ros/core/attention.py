"""Capture ACT's decoder cross-attention and turn it into per-camera maps and per-group fractions.

One :class:`ForwardCapture` owns every hook the wrapper needs and removes them on :meth:`close`:

* a forward pre-hook on ``model.decoder.layers[k].multihead_attn`` asks ``nn.MultiheadAttention`` for
  per-head weights (``average_attn_weights=False``; the attention *output* is unchanged);
* a forward hook on the same module stores the weights ``(B, n_heads, chunk_size, n_tokens)``;
* a forward hook on ``model.backbone`` stores each camera's feature-map size (h, w).

Hooks record only inside :meth:`ForwardCapture.recording` and only for the thread that opened it, so a
GradCAM pass or a control forward running concurrently on the same weights is never mixed in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from act_interp_ros.core.token_layout import TokenLayout


@dataclass(frozen=True)
class AttentionOptions:
    """Which part of the cross-attention to show.

    Attributes:
        decoder_layer: index into ``model.decoder.layers`` (-1 = last, the one that drives the action).
        heads: subset of head indices to average; ``None`` = all heads.
        query: one decoder query (= action timestep within the chunk) to show; ``None`` = mean over all.
    """

    decoder_layer: int = -1
    heads: tuple[int, ...] | None = None
    query: int | None = None


@dataclass
class CaptureRecord:
    """What one forward pass recorded."""

    weights: Tensor | None = None  # (B, n_heads, chunk_size, n_tokens), on the model's device
    feature_shapes: list[tuple[int, int]] = field(default_factory=list)


class ForwardCapture:
    """Owns the attention/backbone hooks of one ACT model (see module docstring)."""

    def __init__(self, model: torch.nn.Module, options: AttentionOptions = AttentionOptions()) -> None:
        layers = model.decoder.layers
        if not -len(layers) <= options.decoder_layer < len(layers):
            raise ValueError(
                f"attention decoder_layer {options.decoder_layer} out of range: the model has "
                f"{len(layers)} decoder layer(s) (valid: {-len(layers)}..{len(layers) - 1})"
            )
        mha = layers[options.decoder_layer].multihead_attn
        if options.heads is not None:
            bad = [h for h in options.heads if not 0 <= h < mha.num_heads]
            if bad or not options.heads:
                raise ValueError(f"attention heads {list(options.heads)} invalid: the model has {mha.num_heads} heads")
        self.options = options
        self.n_heads = mha.num_heads
        self._local = threading.local()
        self._handles = [
            mha.register_forward_pre_hook(self._before_attention, with_kwargs=True),
            mha.register_forward_hook(self._after_attention),
        ]
        backbone = getattr(model, "backbone", None)
        if backbone is not None:
            self._handles.append(backbone.register_forward_hook(self._after_backbone))

    def __getstate__(self) -> dict:
        # Hooks hold bound methods of this object, so deep-copying a wrapped policy copies it too;
        # the copy gets a fresh thread-local and is inert (nothing records into it).
        return {**self.__dict__, "_local": None, "_handles": []}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local = threading.local()

    @contextmanager
    def recording(self) -> Iterator[CaptureRecord]:
        """Record the hooks' data for forward passes run by this thread inside the block."""
        record = CaptureRecord()
        self._local.record = record
        try:
            yield record
        finally:
            self._local.record = None

    def _active(self) -> CaptureRecord | None:
        return getattr(self._local, "record", None)

    def _before_attention(self, _module, args, kwargs):
        if self._active() is None:
            return None
        kwargs = dict(kwargs)
        kwargs["need_weights"] = True
        kwargs["average_attn_weights"] = False
        return args, kwargs

    def _after_attention(self, _module, _args, output) -> None:
        record = self._active()
        if record is not None:
            record.weights = output[1].detach()

    def _after_backbone(self, _module, _args, output) -> None:
        record = self._active()
        if record is not None:
            record.feature_shapes.append(tuple(output["feature_map"].shape[-2:]))

    def close(self) -> None:
        """Remove every hook; the model behaves exactly as before wrapping."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def reduce_weights(weights: Tensor, options: AttentionOptions) -> Tensor:
    """(B, n_heads, chunk_size, n_tokens) -> (B, n_tokens): mean over the chosen heads and queries.

    Each row of the result is a probability distribution over encoder tokens (sums to 1).
    """
    if options.heads is not None:
        weights = weights[:, list(options.heads)]
    weights = weights.mean(dim=1)  # (B, chunk_size, n_tokens)
    if options.query is not None:
        if not -weights.shape[1] <= options.query < weights.shape[1]:
            raise ValueError(f"attention query {options.query} out of range for chunk_size {weights.shape[1]}")
        return weights[:, options.query]
    return weights.mean(dim=1)


@dataclass(frozen=True)
class Interpretation:
    """One observation's decoder cross-attention, in two conventions.

    Attributes:
        layout: token layout of this forward pass.
        token_weights: (n_tokens,) attention over encoder tokens, reduced over heads/queries; sums to 1.
        fractions: raw attention fraction per group - ``"latent"``, ``"state"`` (proprio),
            ``"env_state"`` (when present) and each camera key; they sum to 1. ``fractions["state"]`` is
            the number published as proprio attention: the share of the decoder's attention that went to
            the joint-state token.
        camera_maps: camera key -> (h_i, w_i) float32 map, **globally** normalised: every image token and
            the state/env-state tokens divided by the largest of them, so 1.0 marks the most-attended of
            those tokens across all cameras and maps are comparable between cameras.
        proprio: the state token on that same global scale (border intensity), ``None`` without state.
        env_state: the env-state token on that global scale, ``None`` without env state.
    """

    layout: TokenLayout
    token_weights: np.ndarray
    fractions: dict[str, float]
    camera_maps: dict[str, np.ndarray]
    proprio: float | None
    env_state: float | None


def interpret(token_weights: np.ndarray, layout: TokenLayout) -> Interpretation:
    """Split a (n_tokens,) attention distribution into groups and per-camera maps."""
    if token_weights.shape != (layout.n_tokens,):
        raise RuntimeError(
            f"attention has {token_weights.shape[-1]} encoder tokens but the layout expects {layout.n_tokens} "
            f"(1 latent + {int(layout.has_state)} state + {int(layout.has_env_state)} env + cameras "
            f"{dict(zip(layout.camera_keys, layout.feature_shapes))})"
        )
    w = token_weights.astype(np.float64)
    fractions = {"latent": float(w[0])}
    scored: list[np.ndarray] = []
    if layout.state_index is not None:
        fractions["state"] = float(w[layout.state_index])
        scored.append(w[layout.state_index : layout.state_index + 1])
    if layout.env_state_index is not None:
        fractions["env_state"] = float(w[layout.env_state_index])
        scored.append(w[layout.env_state_index : layout.env_state_index + 1])
    slices = layout.camera_slices
    for key in layout.camera_keys:
        fractions[key] = float(w[slices[key]].sum())
        scored.append(w[slices[key]])
    peak = float(np.concatenate(scored).max()) if scored else 0.0
    scale = 1.0 / peak if peak > 0 else 0.0
    maps = {
        key: (w[slices[key]] * scale).astype(np.float32).reshape(h, wd)
        for key, (h, wd) in zip(layout.camera_keys, layout.feature_shapes)
    }
    proprio = float(w[layout.state_index] * scale) if layout.state_index is not None else None
    env = float(w[layout.env_state_index] * scale) if layout.env_state_index is not None else None
    return Interpretation(layout, token_weights.astype(np.float32), fractions, maps, proprio, env)
