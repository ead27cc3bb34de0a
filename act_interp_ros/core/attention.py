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
from act_interp_ros.settings.vocabulary import OVERLAY_SCALES


EXECUTED = "executed"


@dataclass(frozen=True)
class AttentionOptions:
    """Which part of the cross-attention to show.

    Attributes:
        decoder_layer: index into ``model.decoder.layers`` (-1 = last, the one that drives the action).
        heads: subset of head indices to average; ``None`` = all heads.
        query: which decoder queries (= action timesteps within the chunk) to average: ``None`` (the
            default) = all queries of the chunk; ``"executed"`` = the first ``n_action_steps`` queries, whose
            actions the robot executes in action-queue mode (the first query with temporal ensembling); an
            int = that one query. The default is all queries: on the known-answer model the executed
            queries' map depends less on the learned weights (rank correlation with a random-weights
            model +0.58, against +0.32 for all queries; see the README).
    """

    decoder_layer: int = -1
    heads: tuple[int, ...] | None = None
    query: int | str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.query, str) and self.query != EXECUTED:
            raise ValueError(f"attention query {self.query!r} unknown; expected '{EXECUTED}', None or a query index")


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


def reduce_weights(weights: Tensor, options: AttentionOptions, n_executed: int | None = None) -> Tensor:
    """(B, n_heads, chunk_size, n_tokens) -> (B, n_tokens): mean over the chosen heads and queries.

    ``n_executed``: the policy's ``n_action_steps`` (used by ``query="executed"``; ``None`` = all queries).
    Each row of the result is a probability distribution over encoder tokens (sums to 1).
    """
    if options.heads is not None:
        weights = weights[:, list(options.heads)]
    weights = weights.mean(dim=1)  # (B, chunk_size, n_tokens)
    if options.query == EXECUTED:
        n = weights.shape[1] if n_executed is None else max(1, min(int(n_executed), weights.shape[1]))
        return weights[:, :n].mean(dim=1)
    if options.query is not None:
        if not -weights.shape[1] <= options.query < weights.shape[1]:
            raise ValueError(f"attention query {options.query} out of range for chunk_size {weights.shape[1]}")
        return weights[:, options.query]
    return weights.mean(dim=1)


#: Overlay scales: one scale for every camera (maps comparable across cameras) or one per camera.


@dataclass(frozen=True)
class Interpretation:
    """One observation's decoder cross-attention.

    Attributes:
        layout: token layout of this forward pass.
        token_weights: (n_tokens,) attention over encoder tokens, reduced over heads/queries; sums to 1.
        fractions: raw share of the decoder's attention per group - ``"latent"``, ``"state"`` (proprio),
            ``"env_state"`` (when present) and each camera key; they sum to 1. ``fractions["state"]`` is the
            number published as proprio attention (and the overlay border's intensity).
        lifts: per group, its share divided by its share of the tokens (``fraction / (n_group / n_tokens)``):
            1.0 = as much as a uniform distribution gives that group, 5.0 = five times that. Raw camera
            shares mostly track token counts; lifts do not.
        camera_maps: camera key -> (h_i, w_i) float32 map on the **global** scale: every image token
            divided by the largest image token of all cameras, so 1.0 marks the most-attended image token
            and a hotter front map really means more attention than a cooler wrist map.
    """

    layout: TokenLayout
    token_weights: np.ndarray
    fractions: dict[str, float]
    lifts: dict[str, float]
    camera_maps: dict[str, np.ndarray]

    def maps(self, scale: str = "global") -> dict[str, np.ndarray]:
        """Camera maps on the ``global`` scale (:attr:`camera_maps`) or ``per_camera`` (each map / its own peak,
        so a camera's structure stays visible when another input takes most of the attention)."""
        if scale == "global":
            return self.camera_maps
        if scale != "per_camera":
            raise ValueError(f"overlay scale {scale!r} unknown; expected one of {', '.join(OVERLAY_SCALES)}")
        return {k: m / m.max() if m.max() > 0 else m for k, m in self.camera_maps.items()}


def interpret(token_weights: np.ndarray, layout: TokenLayout) -> Interpretation:
    """Split a (n_tokens,) attention distribution into groups, lifts and per-camera maps."""
    if token_weights.shape != (layout.n_tokens,):
        raise RuntimeError(
            f"attention has {token_weights.shape[-1]} encoder tokens but the layout expects {layout.n_tokens} "
            f"(1 latent + {int(layout.has_state)} state + {int(layout.has_env_state)} env + cameras "
            f"{dict(zip(layout.camera_keys, layout.feature_shapes))})"
        )
    w = token_weights.astype(np.float64)
    n = layout.n_tokens
    fractions = {"latent": float(w[0])}
    counts = {"latent": 1}
    if layout.state_index is not None:
        fractions["state"] = float(w[layout.state_index])
        counts["state"] = 1
    if layout.env_state_index is not None:
        fractions["env_state"] = float(w[layout.env_state_index])
        counts["env_state"] = 1
    slices = layout.camera_slices
    for key, (h, wd) in zip(layout.camera_keys, layout.feature_shapes):
        fractions[key] = float(w[slices[key]].sum())
        counts[key] = h * wd
    lifts = {g: fractions[g] * n / counts[g] for g in fractions}
    image = np.concatenate([w[slices[k]] for k in layout.camera_keys]) if layout.camera_keys else np.zeros(0)
    peak = float(image.max()) if image.size else 0.0
    scale = 1.0 / peak if peak > 0 else 0.0
    maps = {
        key: (w[slices[key]] * scale).astype(np.float32).reshape(h, wd)
        for key, (h, wd) in zip(layout.camera_keys, layout.feature_shapes)
    }
    return Interpretation(layout, token_weights.astype(np.float32), fractions, lifts, maps)
