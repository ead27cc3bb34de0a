"""Decoder cross-attention maps checked against an independent recomputation of the weights."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from act_interp_ros.core import AttentionOptions, InterpretableACT
from act_interp_ros.core.attention import interpret
from act_interp_ros.core.token_layout import TokenLayout
from engine_helpers import make_wrapped, random_batches, unwrapped_batch


def recompute_cross_attention(wrapped: InterpretableACT, batch: dict, layer: int = -1) -> torch.Tensor:
    """(B, n_heads, chunk, n_tokens) softmax(QK^T/sqrt(d)) from the module's own inputs and in-proj weights."""
    mha = wrapped.policy.model.decoder.layers[layer].multihead_attn
    seen = {}

    def grab(_m, _args, kwargs):
        seen["query"], seen["key"] = kwargs["query"].detach(), kwargs["key"].detach()

    handle = mha.register_forward_pre_hook(grab, with_kwargs=True)
    try:
        wrapped.policy.predict_action_chunk(unwrapped_batch(wrapped, batch))
    finally:
        handle.remove()
    return _softmax_attention(mha, seen)


@torch.no_grad()
def _softmax_attention(mha, seen) -> torch.Tensor:
    e, h = mha.embed_dim, mha.num_heads
    w_q, w_k = mha.in_proj_weight[:e], mha.in_proj_weight[e : 2 * e]
    b_q, b_k = mha.in_proj_bias[:e], mha.in_proj_bias[e : 2 * e]
    q = seen["query"] @ w_q.T + b_q  # (L, B, E)
    k = seen["key"] @ w_k.T + b_k  # (S, B, E)
    L, B, _ = q.shape
    S = k.shape[0]
    q = q.reshape(L, B, h, e // h).permute(1, 2, 0, 3)  # (B, H, L, d)
    k = k.reshape(S, B, h, e // h).permute(1, 2, 0, 3)  # (B, H, S, d)
    return torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(e // h), dim=-1)


def feature_shape(wrapped: InterpretableACT, key: str) -> tuple[int, int]:
    h, w = wrapped.image_shapes[key]
    return tuple(wrapped.policy.model.backbone(torch.zeros(1, 3, h, w))["feature_map"].shape[-2:])


@pytest.mark.parametrize("state_dim,env_dim", [(6, 0), (0, 0), (6, 2), (0, 3)])
def test_maps_match_independent_recomputation(state_dim, env_dim):
    wrapped = make_wrapped(state_dim=state_dim, env_state_dim=env_dim, seed=state_dim + env_dim)
    batch = random_batches(wrapped, 1, seed=1)[0]
    interp = wrapped.select_action(batch).interpretation
    expected = recompute_cross_attention(wrapped, batch).mean(dim=(1, 2))[0].numpy()  # (n_tokens,) all queries

    np.testing.assert_allclose(interp.token_weights, expected, rtol=1e-4, atol=1e-6)
    layout = interp.layout
    assert layout.camera_keys == ("observation.images.front", "observation.images.wrist")
    assert layout.feature_shapes == tuple(feature_shape(wrapped, k) for k in layout.camera_keys)
    assert layout.feature_shapes[0] != layout.feature_shapes[1]

    # Groups: [latent, state?, env?, front h0*w0, wrist h1*w1]
    n = expected.shape[0]
    idx = 1
    assert interp.fractions["latent"] == pytest.approx(expected[0], rel=1e-4)
    assert interp.lifts["latent"] == pytest.approx(expected[0] * n, rel=1e-4)
    for group, dim in (("state", state_dim), ("env_state", env_dim)):
        if dim:
            assert interp.fractions[group] == pytest.approx(expected[idx], rel=1e-4)
            assert interp.lifts[group] == pytest.approx(expected[idx] * n, rel=1e-4)  # one token of n
            idx += 1
        else:
            assert group not in interp.fractions and group not in interp.lifts
    cams = {}
    for key in layout.camera_keys:
        h, w = feature_shape(wrapped, key)
        cams[key] = expected[idx : idx + h * w].reshape(h, w)  # row-major (h w) flattening
        idx += h * w
        assert interp.fractions[key] == pytest.approx(cams[key].sum(), rel=1e-4)
        assert interp.lifts[key] == pytest.approx(cams[key].sum() / (h * w / n), rel=1e-4)
    assert idx == n
    assert sum(interp.fractions.values()) == pytest.approx(1.0, abs=1e-5)

    peak = np.concatenate([c.ravel() for c in cams.values()]).max()  # global scale: the hottest image token
    for key in layout.camera_keys:
        np.testing.assert_allclose(interp.camera_maps[key], cams[key] / peak, rtol=1e-4, atol=1e-6)
        per_camera = interp.maps("per_camera")[key]
        np.testing.assert_allclose(per_camera, cams[key] / cams[key].max(), rtol=1e-4, atol=1e-6)
    all_values = np.concatenate([m.ravel() for m in interp.camera_maps.values()])
    assert all_values.max() == pytest.approx(1.0) and all_values.min() >= 0.0


def test_head_query_and_layer_options():
    base = make_wrapped(n_decoder_layers=2, seed=5)
    batch = random_batches(base, 1, seed=2)[0]
    weights_last = recompute_cross_attention(base, batch, layer=-1)[0]  # (H, L, S)
    weights_first = recompute_cross_attention(base, batch, layer=0)[0]

    cases = [
        (AttentionOptions(heads=(1, 3), query=None), weights_last[[1, 3]].mean(dim=(0, 1))),
        (AttentionOptions(query=4), weights_last[:, 4].mean(dim=0)),
        (AttentionOptions(decoder_layer=0, query=None), weights_first.mean(dim=(0, 1))),
        (AttentionOptions(query="executed"), weights_last[:, : base.config.n_action_steps].mean(dim=(0, 1))),
        (AttentionOptions(decoder_layer=0, heads=(2,), query=0), weights_first[2, 0]),
    ]
    for options, expected in cases:
        wrapped = InterpretableACT(base.policy, base.preprocessor, base.postprocessor, options)
        try:
            interp = wrapped.select_action(batch).interpretation
        finally:
            wrapped.close()
            base.reset()
        np.testing.assert_allclose(interp.token_weights, expected.numpy(), rtol=1e-4, atol=1e-6, err_msg=str(options))
        assert sum(interp.fractions.values()) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "options,match",
    [
        (AttentionOptions(decoder_layer=3), "out of range"),
        (AttentionOptions(heads=(9,)), "heads"),
    ],
)
def test_bad_attention_options_are_clear(options, match):
    base = make_wrapped()
    with pytest.raises(ValueError, match=match):
        InterpretableACT(base.policy, attention=options)


def test_no_extra_backbone_pass_and_one_forward_per_tick():
    wrapped = make_wrapped(chunk_size=6, n_action_steps=3)
    calls = {"backbone": 0, "model": 0}
    model = wrapped.policy.model
    hooks = [
        model.backbone.register_forward_hook(lambda *_: calls.__setitem__("backbone", calls["backbone"] + 1)),
        model.register_forward_hook(lambda *_: calls.__setitem__("model", calls["model"] + 1)),
    ]
    try:
        for i, batch in enumerate(random_batches(wrapped, 7)):
            before = dict(calls)
            result = wrapped.select_action(batch, force_model_run=True)
            assert result.interpretation is not None
            assert calls["model"] - before["model"] == 1, f"tick {i}: expected exactly one forward"
            assert calls["backbone"] - before["backbone"] == 2, "one backbone pass per camera, no extra"
    finally:
        for h in hooks:
            h.remove()


def test_hooks_are_removed_on_close():
    wrapped = make_wrapped()
    mha = wrapped.policy.model.decoder.layers[-1].multihead_attn
    assert mha._forward_hooks and mha._forward_pre_hooks
    wrapped.close()
    assert not mha._forward_hooks and not mha._forward_pre_hooks
    assert not wrapped.policy.model.backbone._forward_hooks


def test_uniform_attention_is_all_ones_and_layout_mismatch_is_reported():
    layout = TokenLayout(True, False, ("a", "b"), ((2, 2), (1, 3)))
    uniform = np.full(layout.n_tokens, 1.0 / layout.n_tokens, dtype=np.float32)
    interp = interpret(uniform, layout)
    assert interp.fractions["state"] == pytest.approx(1 / 9)  # the border of a uniform map is faint
    assert all(v == pytest.approx(1.0) for v in interp.lifts.values()), "uniform attention: every lift is 1"
    assert all(np.allclose(m, 1.0) for m in interp.camera_maps.values())
    assert interp.camera_maps["b"].shape == (1, 3)
    with pytest.raises(RuntimeError, match="layout expects 9"):
        interpret(uniform[:-1], layout)
