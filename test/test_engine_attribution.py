"""Pixel attribution (gradient x input, SmoothGrad, integrated gradients, occlusion), action targets and the
deletion test, against independent computations; isolation from the control loop and threads."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from act_interp_ros.core import (
    DEFAULT_GRADIENT_TARGET,
    DEFAULT_PERTURBATION_TARGET,
    ActionTarget,
    DeletionResult,
    DeletionTest,
    GradCAM,
    GradCAMTarget,
    PixelGradientXInput,
    PixelIntegratedGradients,
    PixelOcclusion,
)
from act_interp_ros.core.faithfulness import cell_scores
from engine_helpers import assert_control_unchanged, make_wrapped, random_batches, run_beside_control_loop

# Tiny cameras of different sizes: 32x48 is not a whole number of occlusion strides (a cut-off border patch).
TINY_CAMERAS = {"observation.images.front": (32, 48), "observation.images.wrist": (24, 32)}


def tiny(**kwargs):
    kwargs.setdefault("cameras", dict(TINY_CAMERAS))
    kwargs.setdefault("chunk_size", 6)
    kwargs.setdefault("n_action_steps", 3)
    return make_wrapped(**kwargs)


def stacked(wrapped, n: int, seed: int) -> dict[str, torch.Tensor]:
    """One normalised batch of n different observations (different images and states)."""
    parts = random_batches(wrapped, n, seed=seed)
    keys = [*wrapped.camera_keys, "observation.state"]
    return {k: torch.cat([p[k] for p in parts]) for k in keys}


def model_chunk(wrapped, images: list[torch.Tensor], state: torch.Tensor) -> torch.Tensor:
    return wrapped.policy.model({"observation.state": state, "observation.images": images})[0]


def normalised(m: torch.Tensor) -> np.ndarray:
    """(B, H, W) -> divided by each element's max, numpy."""
    return (m / m.flatten(1).amax(dim=1).view(-1, 1, 1)).detach().numpy()


# ------------------------------------------------------------------------------------------ targets
def test_action_target_outputs_match_their_definitions():
    chunk = torch.arange(2 * 5 * 3, dtype=torch.float32).view(2, 5, 3) - 7.0  # (B=2, chunk 5, A=3)
    n = 2
    ex = chunk[:, :n]
    expect = {
        ActionTarget("executed"): ex.flatten(1),
        ActionTarget("executed_joints"): ex.sum(1),
        ActionTarget("executed_l2"): ex.flatten(1).norm(dim=1, keepdim=True),
        ActionTarget("executed_sum"): ex.flatten(1).sum(1, keepdim=True),
        ActionTarget("executed_joint", joint=1): ex[:, :, 1].sum(1, keepdim=True),
        ActionTarget("first_action_sum"): chunk[:, 0].sum(1, keepdim=True),
        ActionTarget("joint", joint=-1): chunk[:, 0, 2:3],
        ActionTarget("chunk_sum"): chunk.flatten(1).sum(1, keepdim=True),
        ActionTarget("chunk_l2"): chunk.flatten(1).norm(dim=1, keepdim=True),
    }
    for target, want in expect.items():
        got = target.outputs(chunk, n)
        torch.testing.assert_close(got, want, msg=target.kind)
        assert got.shape[1] == target.n_outputs(3, n)
    other = chunk.clone()
    other[:, 1, 0] += 3.0  # executed step 1, joint 0
    other[:, 4] += 100.0  # not executed: no executed target may see it
    torch.testing.assert_close(ActionTarget("executed").change(other, chunk, n), torch.full((2,), 3.0))
    torch.testing.assert_close(ActionTarget("executed_joint", joint=0).change(other, chunk, n), torch.full((2,), 3.0))
    assert ActionTarget("executed_joint", joint=1).change(other, chunk, n).abs().max() == 0
    assert DEFAULT_GRADIENT_TARGET == ActionTarget("executed_l2") == ActionTarget()
    assert DEFAULT_PERTURBATION_TARGET == ActionTarget("executed")


def test_gradcam_target_stays_compatible():
    assert GradCAMTarget() == GradCAMTarget("first_action_sum") and isinstance(GradCAMTarget(), ActionTarget)
    chunk = torch.randn(2, 4, 3)
    torch.testing.assert_close(GradCAMTarget().score(chunk), chunk[:, 0].sum(-1))
    torch.testing.assert_close(GradCAMTarget("joint", 2).score(chunk), chunk[:, 0, 2])
    torch.testing.assert_close(GradCAMTarget("chunk_l2", None).score(chunk), chunk.flatten(1).norm(dim=-1))
    # GradCAM also takes the new one-output kinds, reading n_action_steps from the policy
    wrapped = tiny(cameras={"observation.images.front": (64, 96)})
    cam = GradCAM(wrapped.policy)
    maps = cam.attribute(stacked(wrapped, 1, seed=1), ActionTarget("executed_l2"))
    assert maps[0]["observation.images.front"].max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one-output target"):
        cam.attribute(stacked(wrapped, 1, seed=1), ActionTarget("executed_joints"))
    cam.close()


# --------------------------------------------------------------------------------- gradient methods
@pytest.mark.parametrize(
    "target,reduction",
    [
        (ActionTarget("executed_l2"), "sum_abs"),
        (ActionTarget("executed_joints"), "abs_sum"),
        (ActionTarget("joint", joint=2), "sum_abs"),
        (GradCAMTarget(), "abs_sum"),
    ],
    ids=lambda v: getattr(v, "kind", v),
)
def test_gradient_x_input_equals_direct_autograd(target, reduction):
    wrapped = make_wrapped(seed=11, chunk_size=6, n_action_steps=4)  # 96x128 and 64x96 cameras
    batch = stacked(wrapped, 2, seed=2)
    ours = PixelGradientXInput(wrapped.policy, channel_reduction=reduction).attribute(batch, target)

    images = [batch[k].clone().requires_grad_(True) for k in wrapped.camera_keys]
    outputs = target.outputs(model_chunk(wrapped, images, batch["observation.state"]), 4)  # (2, K)
    totals = [torch.zeros(2, *x.shape[-2:]) for x in images]
    for k in range(outputs.shape[1]):
        grads = torch.autograd.grad(outputs[:, k].sum(), images, retain_graph=True)
        for i, (x, g) in enumerate(zip(images, grads)):
            attr = (x * g).detach()
            totals[i] += attr.abs().sum(1) if reduction == "abs_sum" else attr.sum(1).abs()
    assert len(ours) == 2
    for i, key in enumerate(wrapped.camera_keys):
        want = normalised(totals[i])
        for b in range(2):
            assert ours[b][key].shape == want[b].shape == wrapped.image_shapes[key]
            assert ours[b][key].dtype == np.float32
            np.testing.assert_allclose(ours[b][key], want[b], rtol=1e-4, atol=1e-5, err_msg=f"{key}[{b}]")
            assert ours[b][key].min() >= 0 and ours[b][key].max() == pytest.approx(1.0)
    assert all(p.grad is None for p in wrapped.policy.parameters())


def test_smoothgrad_averages_noisy_gradient_x_input():
    wrapped = tiny(seed=4)
    batch = stacked(wrapped, 2, seed=3)  # two different states: catches a mis-ordered expansion
    plain = PixelGradientXInput(wrapped.policy).attribute(batch)
    no_noise = PixelGradientXInput(wrapped.policy, smoothgrad_samples=5, smoothgrad_noise=0.0, smoothgrad_batch=2)
    for got, want in zip(no_noise.attribute(batch), plain):
        for key in want:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-4, atol=1e-5)
    # with noise: the mean of x' * dy/dx' over the same noisy copies, drawn from torch's global RNG
    sg = PixelGradientXInput(wrapped.policy, smoothgrad_samples=3, smoothgrad_noise=0.2, smoothgrad_batch=3)
    torch.manual_seed(7)
    ours = sg.attribute(batch)
    torch.manual_seed(7)
    images = [batch[k] for k in wrapped.camera_keys]
    sigmas = [0.2 * float(x.max() - x.min()) for x in images]
    noisy = [x.repeat_interleave(3, dim=0) + torch.normal(0, torch.full((6, *x.shape[1:]), s)) for x, s in zip(images, sigmas)]
    noisy = [x.requires_grad_(True) for x in noisy]
    y = ActionTarget("executed_l2").outputs(model_chunk(wrapped, noisy, batch["observation.state"].repeat_interleave(3, 0)), 3)
    grads = torch.autograd.grad(y.sum(), noisy)
    for i, key in enumerate(wrapped.camera_keys):
        attr = (noisy[i] * grads[i]).detach().view(2, 3, *noisy[i].shape[1:]).mean(1)  # (2, 3, H, W)
        want = normalised(attr.sum(1).abs())
        for b in range(2):
            np.testing.assert_allclose(ours[b][key], want[b], rtol=1e-3, atol=1e-4)


def test_integrated_gradients_equals_a_direct_riemann_sum():
    wrapped = tiny(seed=5)
    batch = stacked(wrapped, 2, seed=4)
    steps, fill = 4, 0.25
    ig = PixelIntegratedGradients(wrapped.policy, n_steps=steps, method="riemann_right", internal_batch_size=3,
                                  baseline=fill, channel_reduction="abs_sum")
    ours = ig.attribute(batch, ActionTarget("executed_sum"))
    images = [batch[k] for k in wrapped.camera_keys]
    sums = [torch.zeros_like(x) for x in images]
    for s in range(1, steps + 1):
        path = [(fill + s / steps * (x - fill)).requires_grad_(True) for x in images]
        y = ActionTarget("executed_sum").outputs(model_chunk(wrapped, path, batch["observation.state"]), 3)
        for acc, g in zip(sums, torch.autograd.grad(y.sum(), path)):
            acc += g / steps
    for i, key in enumerate(wrapped.camera_keys):
        want = normalised(((images[i] - fill) * sums[i]).abs().sum(1))
        for b in range(2):
            np.testing.assert_allclose(ours[b][key], want[b], rtol=1e-3, atol=1e-4)


# ------------------------------------------------------------------------------------------ occlusion
def naive_occlusion(wrapped, batch, patch: int, stride: int, fill, target: ActionTarget, n_exec: int) -> dict:
    """One forward per patch position, written out: fill the patch, L2 change of the target, average per pixel."""
    keys = list(wrapped.camera_keys)
    images = [batch[k] for k in keys]
    state = batch["observation.state"]
    colour = torch.tensor(fill, dtype=torch.float32).view(1, 3, 1, 1)
    out = {}
    with torch.no_grad():
        reference = model_chunk(wrapped, images, state)
        for ci, key in enumerate(keys):
            h, w = images[ci].shape[-2:]
            total = torch.zeros(images[ci].shape[0], h, w)
            count = torch.zeros(h, w)
            ys = range(0, h - patch + stride, stride) if (h - patch) % stride else range(0, h - patch + 1, stride)
            xs = range(0, w - patch + stride, stride) if (w - patch) % stride else range(0, w - patch + 1, stride)
            for y0 in ys:
                for x0 in xs:
                    occluded = images[ci].clone()
                    occluded[:, :, y0 : y0 + patch, x0 : x0 + patch] = colour
                    current = list(images)
                    current[ci] = occluded
                    change = target.change(model_chunk(wrapped, current, state), reference, n_exec)
                    total[:, y0 : y0 + patch, x0 : x0 + patch] += change.view(-1, 1, 1)
                    count[y0 : y0 + patch, x0 : x0 + patch] += 1
            assert count.min() >= 1
            out[key] = normalised(total / count)
    return out


@pytest.mark.parametrize("target", [DEFAULT_PERTURBATION_TARGET, ActionTarget("joint", joint=1)], ids=lambda t: t.kind)
def test_occlusion_equals_a_naive_loop(target):
    wrapped = tiny(seed=6)
    batch = stacked(wrapped, 2, seed=5)
    fill = [0.3, -0.2, 0.1]
    occ = PixelOcclusion(wrapped.policy, patch=8, stride=6, fill=fill, batch_size=10)
    # 32x48: rows 0,6,..,24 (5) x columns 0,6,..,42 (8, the last cut at the border); 24x32: 4 x 5
    assert occ.n_perturbations() == {"observation.images.front": 40, "observation.images.wrist": 20}
    ours = occ.attribute(batch, target)
    want = naive_occlusion(wrapped, batch, 8, 6, fill, target, 3)
    for key in wrapped.camera_keys:
        for b in range(2):
            np.testing.assert_allclose(ours[b][key], want[key][b], rtol=1e-4, atol=2e-5, err_msg=f"{key}[{b}]")


def test_occlusion_default_grid_scales_with_the_image():
    wrapped = tiny(cameras={"observation.images.front": (128, 160), "observation.images.wrist": (480, 640)})
    occ = PixelOcclusion(wrapped.policy)
    assert occ.windows == {"observation.images.front": (16, 8), "observation.images.wrist": (60, 30)}
    assert occ.n_perturbations() == {"observation.images.front": 15 * 19, "observation.images.wrist": 15 * 21}


# ---------------------------------------------------------------------------------------- isolation
def _all_hooks(module: torch.nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in module.modules()
    )


def test_attribution_leaves_queue_parameters_grads_hooks_and_mode_untouched():
    wrapped = tiny(seed=8, chunk_size=6, n_action_steps=4)
    batches = random_batches(wrapped, 2, seed=3)
    wrapped.select_action(batches[0])
    queue_before = [a.clone() for a in wrapped.policy._action_queue]
    params_before = {n: p.detach().clone() for n, p in wrapped.policy.named_parameters()}
    flags_before = {n: p.requires_grad for n, p in wrapped.policy.named_parameters()}
    hooks_before = _all_hooks(wrapped.policy)
    image_before = batches[1]["observation.images.front"].clone()
    methods = [
        PixelGradientXInput(wrapped.policy),
        PixelGradientXInput(wrapped.policy, smoothgrad_samples=2),
        PixelIntegratedGradients(wrapped.policy, n_steps=3),
        PixelOcclusion(wrapped.policy, patch=16, stride=16),
    ]
    assert _all_hooks(wrapped.policy) == hooks_before
    for method in methods:
        method.attribute(batches[1])
        method.close()
    DeletionTest(wrapped.policy, n_random=1).run(batches[1], PixelGradientXInput(wrapped.policy).attribute(batches[1]))
    assert _all_hooks(wrapped.policy) == hooks_before
    assert not wrapped.policy.training and not wrapped.policy.model.training
    assert all(p.grad is None for p in wrapped.policy.parameters())
    assert {n: p.requires_grad for n, p in wrapped.policy.named_parameters()} == flags_before
    for name, p in wrapped.policy.named_parameters():
        assert torch.equal(p, params_before[name]), name
    queue_after = list(wrapped.policy._action_queue)
    assert len(queue_after) == len(queue_before)
    for a, b in zip(queue_after, queue_before):
        torch.testing.assert_close(a, b)
    assert torch.equal(batches[1]["observation.images.front"], image_before)
    assert not batches[1]["observation.images.front"].requires_grad


@pytest.mark.parametrize("kind", ["gradient_x_input", "occlusion"])
def test_attribution_and_control_loop_on_two_threads_do_not_mix(kind):
    """Attribution on one thread while the control loop runs forwards on the same weights on another:
    every map equals its single-threaded result, and actions/attention equal a quiet run's."""
    wrapped = tiny(chunk_size=6, n_action_steps=3, seed=21)
    probe = random_batches(wrapped, 1, seed=9)[0]
    method = PixelGradientXInput(wrapped.policy) if kind == "gradient_x_input" else PixelOcclusion(wrapped.policy, patch=12, stride=12)
    expected_map = method.attribute(probe)[0]
    # ~0.8 s of control ticks: several attributions overlap them
    maps, results, expected = run_beside_control_loop(wrapped, lambda: method.attribute(probe)[0], n_ticks=40)
    assert len(maps) >= 2, "attribution should have run several times while the control loop ran"
    for got in maps:
        for key in expected_map:
            np.testing.assert_allclose(got[key], expected_map[key], rtol=1e-4, atol=1e-5)
    assert_control_unchanged(wrapped, results, expected)


# ------------------------------------------------------------------------------------- clear errors
def _one_line(excinfo) -> None:
    assert "\n" not in str(excinfo.value), str(excinfo.value)


def test_bad_targets_and_options_are_one_clear_line():
    wrapped = tiny()
    batch = stacked(wrapped, 1, seed=0)
    cases = [
        (lambda: ActionTarget("mean"), ValueError, "expected one of"),
        (lambda: ActionTarget("executed_joint"), ValueError, "needs a joint index"),
        (lambda: ActionTarget("executed_l2", joint=1), ValueError, "takes no joint index"),
        (lambda: PixelGradientXInput(wrapped.policy).attribute(batch, ActionTarget("joint", joint=6)), ValueError,
         "joint 6 out of range for action_dim 6"),
        (lambda: PixelGradientXInput(wrapped.policy).attribute(batch, ActionTarget("executed")), ValueError,
         "has 18 outputs"),
        (lambda: PixelGradientXInput(wrapped.policy).attribute(batch, "executed_l2"), TypeError, "must be an ActionTarget"),
        (lambda: PixelGradientXInput(wrapped.policy, channel_reduction="max"), ValueError, "channel_reduction 'max' unknown"),
        (lambda: PixelGradientXInput(wrapped.policy, smoothgrad_samples=-1), ValueError, "smoothgrad_samples must be"),
        (lambda: PixelGradientXInput(wrapped.policy, smoothgrad_noise=2.0), ValueError, "smoothgrad_noise must be in"),
        (lambda: PixelIntegratedGradients(wrapped.policy, method="simpson"), ValueError, "method 'simpson' unknown"),
        (lambda: PixelIntegratedGradients(wrapped.policy, n_steps=0), ValueError, "must be >= 1"),
        (lambda: PixelOcclusion(wrapped.policy, patch=40), ValueError, "patch <= min\\(H, W\\)"),
        (lambda: PixelOcclusion(wrapped.policy, patch=8, stride=9), ValueError, "stride <= patch"),
        (lambda: PixelOcclusion(wrapped.policy, fill=[0.0, 1.0]), ValueError, "fill must be one finite number or 3"),
        (lambda: PixelOcclusion(wrapped.policy).attribute({k: v for k, v in batch.items() if "wrist" not in k}),
         ValueError, "observation.images.wrist'\\] must be a \\(B, 3, 24, 32\\)"),
        (lambda: PixelOcclusion(wrapped.policy).attribute({**batch, "observation.images.front": batch["observation.images.front"][:, :, :16]}),
         ValueError, "must be a \\(B, 3, 32, 48\\) normalised image tensor, got \\(1, 3, 16, 48\\)"),
        (lambda: PixelGradientXInput(wrapped.policy).attribute({k: v for k, v in batch.items() if k != "observation.state"}),
         ValueError, "observation.state'\\] must be a \\(1, dim\\) tensor"),
        (lambda: DeletionTest(wrapped.policy, fractions=(0.2, 0.1)), ValueError, "fractions must be increasing"),
        (lambda: DeletionTest(wrapped.policy, cell=0), ValueError, "must be >= 1"),
        (lambda: DeletionTest(wrapped.policy).run(batch, []), ValueError, "got 0 maps for a batch of 1"),
    ]
    for make, exc, pattern in cases:
        with pytest.raises(exc, match=pattern) as info:
            make()
            pytest.fail(f"no error for the case expecting {pattern!r}")
        _one_line(info)
    wrapped.policy.train()
    try:
        with pytest.raises(RuntimeError, match="needs the policy in eval mode") as info:
            PixelOcclusion(wrapped.policy).attribute(batch)
        _one_line(info)
    finally:
        wrapped.policy.eval()


# ------------------------------------------------------------------------------------- faithfulness
def blank_except(wrapped, batch, key: str, box: tuple[int, int, int, int]) -> dict:
    """The batch with camera ``key`` set to the fill colour (0, the dataset mean) outside ``box`` (y0, y1, x0, x1)."""
    y0, y1, x0, x1 = box
    image = torch.zeros_like(batch[key])
    image[:, :, y0:y1, x0:x1] = batch[key][:, :, y0:y1, x0:x1] * 4.0  # strong content in the box only
    return {**batch, key: image}


def test_deletion_test_scores_the_truly_influential_region_above_random():
    """Only the box differs from the fill colour, so only cells in the box can change the action when
    filled: a map marking the box must beat random cells, one marking the rest must lose to them, and
    a uniform map (random tie-breaking) must be close to random. The box sits top-left, where a raster
    order tie-break would cheat."""
    wrapped = make_wrapped(seed=3, cameras={"observation.images.front": (64, 96)}, chunk_size=6, n_action_steps=3)
    key = "observation.images.front"
    batch = blank_except(wrapped, stacked(wrapped, 4, seed=1), key, (0, 24, 0, 32))  # 3x4 of the 8x12 cells
    box = np.zeros((64, 96), np.float32)
    box[:24, :32] = 1.0
    test = DeletionTest(wrapped.policy, fractions=(0.05, 0.1, 0.125), n_random=6, seed=0)
    assert test.n_forwards(4) == 4 * 3 * 7
    marks_box = test.run(batch, [{key: box}] * 4)[key]
    marks_rest = test.run(batch, [{key: 1.0 - box}] * 4)[key]
    # uniform: its top cells are one random draw per observation, so use 16 observations (4 x 4) to average
    # draws; a raster-order tie-break would fill the box first (ratio ~8), a fair one gives ~1 +- 0.25
    repeated = {k: v.repeat(4, *([1] * (v.ndim - 1))) for k, v in batch.items()}
    uniform = test.run(repeated, [{key: np.ones_like(box)}] * 16)[key]
    token_map = np.zeros((2, 3), np.float32)  # a coarse (token-grid-like) map, resized bilinearly
    token_map[0, 0] = 1.0
    coarse = test.run(batch, [{key: token_map}] * 4)[key]
    assert marks_box.top.shape == (4, 3) and marks_box.random.shape == (4, 3, 6)
    assert marks_box.random_curve.min() > 0
    assert marks_box.ratio > 2.0, marks_box.ratio
    assert marks_rest.top.max() < 1e-4 and marks_rest.ratio < 0.01, marks_rest.ratio
    assert 0.4 < uniform.ratio < 2.0, uniform.ratio
    assert coarse.ratio > 1.5, coarse.ratio


def test_deletion_result_equals_a_direct_computation():
    wrapped = tiny(seed=2, cameras={"observation.images.front": (32, 48)})
    key = "observation.images.front"
    batch = stacked(wrapped, 1, seed=6)
    saliency = np.arange(32 * 48, dtype=np.float32).reshape(32, 48)[::-1].copy()  # distinct cell means
    scores = cell_scores(saliency.astype(np.float64), 8)  # (4, 6)
    assert scores.shape == (4, 6)
    result = DeletionTest(wrapped.policy, fractions=(0.25, 0.5), n_random=2, fill=[0.5, 0.0, -0.5]).run(batch, [{key: saliency}])[key]
    order = np.argsort(-scores.ravel(), kind="stable")
    with torch.no_grad():
        reference = model_chunk(wrapped, [batch[key]], batch["observation.state"])
        for j, n_cells in enumerate((6, 12)):
            mask = np.zeros(24, bool)
            mask[order[:n_cells]] = True
            pixels = torch.from_numpy(np.kron(mask.reshape(4, 6), np.ones((8, 8))).astype(bool))
            image = batch[key].clone()
            image[0][:, pixels] = torch.tensor([0.5, 0.0, -0.5]).view(3, 1)
            change = DEFAULT_PERTURBATION_TARGET.change(model_chunk(wrapped, [image], batch["observation.state"]), reference, 3)
            assert result.top[0, j] == pytest.approx(float(change[0]), rel=1e-4, abs=1e-6)
    both = DeletionResult.concatenate([result, result])
    assert both.n == 2 and both.ratio == pytest.approx(result.ratio)
