"""GradCAM against an independent autograd computation; isolation from the control loop and threads."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from act_interp_ros.core import GradCAM, GradCAMTarget
from engine_helpers import assert_control_unchanged, make_wrapped, random_batches, run_beside_control_loop

TARGETS = [
    GradCAMTarget(),
    GradCAMTarget("joint", joint=2),
    GradCAMTarget("chunk_sum"),
    GradCAMTarget("chunk_l2"),
]


def reference_gradcam(policy, batch, score_fn) -> dict[str, np.ndarray]:
    """The seed's recipe on a private copy: forward hook appends, full backward hook prepends,
    loss.backward(), alpha = spatial mean of gradients, ReLU(sum alpha*A), divide by max."""
    policy = copy.deepcopy(policy)
    layer = policy.model.backbone.layer4
    acts, grads = [], []
    hooks = [
        layer.register_forward_hook(lambda _m, _i, out: acts.append(out.detach())),
        layer.register_full_backward_hook(lambda _m, _gi, go: grads.insert(0, go[0].detach())),
    ]
    try:
        inputs = dict(batch)
        inputs["observation.images"] = [batch[k] for k in policy.config.image_features]
        with torch.enable_grad():
            chunk = policy.model(inputs)[0]
            score_fn(chunk).sum().backward()
    finally:
        for h in hooks:
            h.remove()
    out = {}
    for key, a, g in zip(policy.config.image_features, acts, grads):
        cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1))[0]
        out[key] = (cam / cam.max()).numpy() if cam.max() > 0 else cam.numpy()
    return out


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.kind)
def test_gradcam_matches_independent_autograd(target):
    wrapped = make_wrapped(seed=11)
    batch = random_batches(wrapped, 1, seed=2)[0]
    cam = GradCAM(wrapped.policy)
    ours = cam.attribute(batch, target)[0]
    expected = reference_gradcam(wrapped.policy, batch, target.score)
    assert list(ours) == list(expected) == list(wrapped.camera_keys)
    for key in ours:
        assert ours[key].shape == expected[key].shape  # front 3x4, wrist 2x3: order matters
        np.testing.assert_allclose(ours[key], expected[key], rtol=1e-3, atol=1e-5, err_msg=key)
        assert ours[key].min() >= 0 and ours[key].max() == pytest.approx(1.0)
    cam.close()
    assert not wrapped.policy.model.backbone.layer4._forward_hooks


def test_gradcam_leaves_queue_parameters_and_grads_untouched():
    wrapped = make_wrapped(chunk_size=6, n_action_steps=4)
    batches = random_batches(wrapped, 2, seed=3)
    wrapped.select_action(batches[0])
    queue_before = [a.clone() for a in wrapped.policy._action_queue]
    params_before = {n: p.detach().clone() for n, p in wrapped.policy.named_parameters()}
    GradCAM(wrapped.policy).attribute(batches[1], GradCAMTarget("chunk_l2"))
    assert all(p.grad is None for p in wrapped.policy.parameters())
    queue_after = list(wrapped.policy._action_queue)
    assert len(queue_after) == len(queue_before)
    for a, b in zip(queue_after, queue_before):
        torch.testing.assert_close(a, b)
    for name, p in wrapped.policy.named_parameters():
        assert torch.equal(p, params_before[name]), name


def test_bad_targets_are_clear():
    with pytest.raises(ValueError, match="expected one of"):
        GradCAMTarget("mean")
    with pytest.raises(ValueError, match="needs a joint index"):
        GradCAMTarget("joint")
    wrapped = make_wrapped()
    with pytest.raises(ValueError, match="has no layer 'layer9'"):
        GradCAM(wrapped.policy, target_layer="layer9")


def test_gradcam_and_control_loop_on_two_threads_do_not_mix():
    """GradCAM on one thread while the control loop runs forwards on the same weights on another:
    every GradCAM equals its single-threaded result, and actions/maps equal a quiet run's."""
    wrapped = make_wrapped(chunk_size=6, n_action_steps=3, seed=21)
    probe = random_batches(wrapped, 1, seed=9)[0]
    cam = GradCAM(wrapped.policy)
    expected_cam = cam.attribute(probe)[0]
    cams, results, expected = run_beside_control_loop(wrapped, lambda: cam.attribute(probe)[0])
    assert len(cams) >= 2, "GradCAM should have run several times while the control loop ran"
    for got in cams:
        for key in expected_cam:
            np.testing.assert_allclose(got[key], expected_cam[key], rtol=1e-4, atol=1e-6)
    assert_control_unchanged(wrapped, results, expected)
