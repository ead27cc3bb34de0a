"""Every map method of a known-answer policy on held-out frames
(:class:`~act_interp_ros.proofs.map_scores.MapEvaluation`), cached per model and evaluation code."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from act_interp_ros.proofs import training
from act_interp_ros.proofs.map_baselines import replace_maps
from act_interp_ros.proofs.map_scores import MapEvaluation, MapScores, map_mass, object_coverage, spearman
from act_interp_ros.proofs.model_cache import MAPS_SEED_BASE, KnownAnswerModel
from act_interp_ros.proofs.result_cache import cached_result, import_closure
from act_interp_ros.proofs.training import KnownAnswerSpec

logger = logging.getLogger(__name__)

#: Methods :func:`evaluate_maps` can score; token-grid maps first, then pixel maps.
METHODS = ("attention", "attention_executed", "gradcam", "gradient_x_input", "integrated_gradients", "occlusion")


PIXEL_METHODS = ("gradient_x_input", "integrated_gradients", "occlusion")


#: Scored when ``methods`` is not given (occlusion and integrated gradients cost many forwards: ask for them).
DEFAULT_METHODS = ("attention", "attention_executed", "gradcam", "gradient_x_input")


def evaluate_maps(
    model_path: str | os.PathLike[str],
    n_frames: int = 64,
    seed: int = 0,
    gradcam_target: Any = None,
    random_seed: int = 12345,
    gradcam_layer: str = "layer4",
    **options: Any,
) -> MapEvaluation:
    """Score the maps of a known-answer checkpoint on held-out frames.

    Frames: ``n_frames`` new episodes (seeds ``MAPS_SEED_BASE + 1000 * seed + i``, never used in
    training), one frame each, drawn from the approach phase - the arm is moving towards the target
    and the target's position is what decides the action. See the module docstring for the scoring;
    ``options`` are :func:`evaluate_policy_maps`'s keyword arguments (methods, targets, occlusion grid,
    deletion test).

    Randomisation check: the same architecture with freshly initialised weights (``ACTPolicy(config)``
    with ``torch.manual_seed(random_seed)``, not trained; the trained normalisation stats are kept) is
    run on the same frames and each map is rank-correlated (Spearman) with the trained model's map.
    """
    from act_interp_ros.core import InterpretableACT

    wrapped = InterpretableACT.from_pretrained(os.fspath(model_path), device="cpu")
    try:
        return evaluate_policy_maps(
            wrapped.policy, wrapped.preprocessor, n_frames, seed, gradcam_target, random_seed, gradcam_layer, **options)
    finally:
        wrapped.close()


def evaluate_policy_maps(
    policy, preprocessor, n_frames: int = 64, seed: int = 0, gradcam_target: Any = None, random_seed: int = 12345,
    gradcam_layer: str = "layer4", methods: tuple[str, ...] = DEFAULT_METHODS, attribution_target: Any = None,
    occlusion_patch: int | None = None, occlusion_stride: int | None = None, faithfulness: bool = True,
    deletion_random_draws: int = 8, occlusion_fill: float | str = 0.0, baseline: str | None = None,
) -> MapEvaluation:
    """:func:`evaluate_maps` on an in-memory policy and preprocessor.

    Args:
        methods: subset of :data:`METHODS`.
        gradcam_target: GradCAM's target (default ``GradCAMTarget()``, first_action_sum).
        attribution_target: the pixel methods' :class:`~act_interp_ros.core.ActionTarget`; ``None`` = each
            method's default (gradient methods ``DEFAULT_GRADIENT_TARGET``, occlusion
            ``DEFAULT_PERTURBATION_TARGET``).
        occlusion_patch, occlusion_stride: occlusion grid (``None`` = ``PixelOcclusion``'s defaults).
        occlusion_fill: ``PixelOcclusion``'s fill (0 = the mean colour, ``"blur"``).
        faithfulness: run the deletion test on every method's trained-model maps.
        deletion_random_draws: random draws per frame of the deletion test.
        baseline: ``"uniform"`` | ``"random"``: score a uniform / seeded-noise map (seed ``random_seed``) of
            each map's shape in place of the trained model's (:mod:`~act_interp_ros.proofs.map_baselines`).
    """
    import torch
    from lerobot.policies.act.modeling_act import ACTPolicy

    from act_interp_ros.core import GradCAMTarget

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown map method(s) {unknown or list(methods)}; expected a subset of {', '.join(METHODS)}")
    methods = tuple(m for m in METHODS if m in methods)
    target = gradcam_target if gradcam_target is not None else GradCAMTarget()
    spec = spec_of(policy)
    cams = list(spec.cameras)
    frames = approach_frames(spec, n_frames, seed)
    makers = map_makers(methods, target, gradcam_layer, attribution_target, occlusion_patch, occlusion_stride,
                         occlusion_fill)

    torch.manual_seed(random_seed)
    random_policy = ACTPolicy(policy.config)
    random_policy.eval()
    trained_maps = policy_maps(policy, preprocessor, frames, spec, makers)
    if baseline is not None:
        trained_maps = replace_maps(trained_maps, baseline, random_seed)
    random_maps = policy_maps(random_policy, preprocessor, frames, spec, makers)
    deletion = (
        deletion_results(policy, preprocessor, frames, spec, trained_maps, deletion_random_draws)
        if faithfulness else {}
    )

    from act_interp_ros.synthetic import SyntheticScene

    scene = SyntheticScene(spec.scene_config())
    masks = [
        {c: scene.masks(frames.episodes[frames.episode[i]].scene_state(int(frames.step[i])), c) for c in cams}
        for i in range(len(frames))
    ]
    scores: list[MapScores] = []
    grids: dict[str, tuple[int, int]] = {}
    for method in methods:
        pixel = method in PIXEL_METHODS
        for cam in cams:
            t_mass, u_mass, ratios, d_mass, wins, corrs = [], [], [], [], [], []
            for i in range(len(frames)):
                m = trained_maps[method][i][cam]
                if pixel:
                    cov_t = masks[i][cam]["target"].astype(np.float64)
                    cov_d = masks[i][cam]["distractor"].astype(np.float64)
                else:
                    grids[cam] = m.shape
                    cov_t = object_coverage(masks[i][cam]["target"], m.shape)
                    cov_d = object_coverage(masks[i][cam]["distractor"], m.shape)
                if cov_t.sum() > 0:
                    mt = map_mass(m, cov_t)
                    t_mass.append(mt)
                    u_mass.append(cov_t.mean())
                    ratios.append(mt / cov_t.mean())
                    if cov_d.sum() > 0:
                        md = map_mass(m, cov_d)
                        d_mass.append(md)
                        wins.append(mt > md)
                r = spearman(m, random_maps[method][i][cam])
                if np.isfinite(r):
                    corrs.append(r)
            tm, um = _mean(t_mass), _mean(u_mass)
            faith = deletion.get(method, {}).get(cam)
            scores.append(MapScores(
                method=method, camera=cam, n_frames=len(t_mass), target_mass=tm, uniform_mass=um,
                ratio_vs_uniform=tm / um if um > 0 else float("nan"),
                median_frame_ratio=float(np.median(ratios)) if ratios else float("nan"),
                distractor_mass=_mean(d_mass), n_pairs=len(wins),
                target_beats_distractor=_mean([float(w) for w in wins]),
                rank_corr_random=_mean(corrs), n_rank=len(corrs),
                resolution="pixel" if pixel else "token",
                faithfulness_ratio=faith.ratio if faith else float("nan"),
                faithfulness_median_frame_ratio=float(np.nanmedian(faith.frame_ratios())) if faith else float("nan"),
                deletion_top=[float(v) for v in faith.top_curve] if faith else [],
                deletion_random=[float(v) for v in faith.random_curve] if faith else [],
                n_faithfulness=faith.n if faith else 0,
            ))
    from act_interp_ros.core.faithfulness import DEFAULT_FRACTIONS

    return MapEvaluation(
        scores=scores,
        n_frames=len(frames),
        seeds=[int(e.seed) for e in frames.episodes],
        steps=[int(s) for s in frames.step],
        grid=grids,
        gradcam_target=getattr(target, "kind", str(target)),
        gradcam_layer=gradcam_layer,
        region="token maps: object silhouette downsampled to the token grid by area (cv2.INTER_AREA); "
        "pixel maps: the silhouette mask",
        targets={m: _target_name(makers[m].target) for m in methods},
        deletion_fractions=list(DEFAULT_FRACTIONS) if faithfulness else [],
        deletion_cell=8 if faithfulness else 0,
        deletion_random_draws=deletion_random_draws if faithfulness else 0,
        occlusion_window=dict(makers["occlusion"].window) if "occlusion" in makers else {},
        extra={"baseline": baseline} if baseline else {},
    )


#: Source files whose bytes decide the map evaluation's numbers (its cache key hashes them): this module's import
#: closure inside the package (test/test_result_cache.py checks it against an independent walk).
EVALUATION_SOURCES = import_closure(__name__)


#: The evaluation the README, the demo summary and the known-answer test report (one cached computation).
STANDARD_EVALUATION: dict[str, Any] = {
    "n_frames": 64, "seed": 0, "methods": ("attention", "attention_executed", "gradcam", "gradient_x_input"),
    "deletion_random_draws": 4,
}
#: Occlusion in the known-answer test: the first 32 of those frames, 16 px patches at stride 16 (80 forwards per
#: frame instead of 285 at the default stride 8).
OCCLUSION_EVALUATION: dict[str, Any] = {"n_frames": 32, "seed": 0, "methods": ("occlusion",), "occlusion_patch": 16,
                                        "occlusion_stride": 16, "deletion_random_draws": 4}
#: The same evaluation of the baseline maps (``baseline="uniform"`` | ``"random"``): every token-grid and pixel
#: criterion of the known-answer test (occlusion's maps are pixel maps like gradient x input's).
BASELINE_EVALUATION: dict[str, Any] = {**STANDARD_EVALUATION, "methods": ("attention", "gradcam", "gradient_x_input")}


def cached_map_evaluation(model: KnownAnswerModel, **kwargs: Any) -> MapEvaluation:
    """:func:`evaluate_maps` of ``model``, computed once per model, arguments and evaluation code.

    The result is stored as JSON beside the checkpoint (``maps-<key>.json``); the demo and the known-answer
    test share it, so the evaluation (about a minute on 2 cores) runs once per machine.
    """
    return cached_result(model.path.parent, "maps", kwargs, EVALUATION_SOURCES,
                         lambda: evaluate_maps(model.path, **kwargs), MapEvaluation.from_dict, MapEvaluation.as_dict)


def spec_of(policy) -> KnownAnswerSpec:
    """The scene/data part of the spec a known-answer policy was trained with (cameras, image size, chunk)."""
    sizes = {tuple(f.shape[-2:]) for f in policy.config.image_features.values()}
    if len(sizes) != 1:
        raise ValueError(f"known-answer evaluation expects one image size for all cameras, got {sizes}")
    cams = tuple(k[len(training.CAMERA_PREFIX):] for k in policy.config.image_features)
    return KnownAnswerSpec(image_size=sizes.pop(), cameras=cams, chunk_size=policy.config.chunk_size)


def approach_frames(spec: KnownAnswerSpec, n_frames: int, seed: int) -> training.FrameSet:
    """One approach-phase frame from each of ``n_frames`` held-out episodes."""
    from act_interp_ros.synthetic import PHASES

    rng = np.random.default_rng(seed)
    approach = PHASES.index("approach")
    seeds = [MAPS_SEED_BASE + 1000 * seed + i for i in range(n_frames)]
    parts = []
    for s in seeds:
        ep = training.simulate(s, spec)
        steps = np.nonzero(ep.phase == approach)[0]
        t = int(rng.choice(steps)) if len(steps) else 0
        parts.append(training.render_frames([s], spec, steps=[t]))
    return _concat(parts)


def _concat(parts: list[training.FrameSet]) -> training.FrameSet:
    return training.FrameSet(
        images={c: np.concatenate([p.images[c] for p in parts]) for c in parts[0].images},
        state=np.concatenate([p.state for p in parts]),
        chunk=np.concatenate([p.chunk for p in parts]),
        chunk_is_pad=np.concatenate([p.chunk_is_pad for p in parts]),
        episode=np.arange(len(parts)),
        step=np.concatenate([p.step for p in parts]),
        episodes=[p.episodes[0] for p in parts],
    )


@dataclass
class MapMaker:
    """How to build one method's maps (for :func:`policy_maps`): ``make(policy)`` -> an object with
    ``attribute(batch, target)`` / ``close()``."""

    make: Any
    target: Any
    window: dict[str, tuple[int, int]] = field(default_factory=dict)


def map_makers(methods, gradcam_target, gradcam_layer: str, attribution_target, occlusion_patch, occlusion_stride,
               occlusion_fill=0.0) -> dict[str, MapMaker]:
    """{method: how to build its maps} for :func:`policy_maps` (arguments as :func:`evaluate_policy_maps`'s)."""
    from act_interp_ros.core import (
        DEFAULT_GRADIENT_TARGET,
        DEFAULT_PERTURBATION_TARGET,
        GradCAM,
        PixelGradientXInput,
        PixelIntegratedGradients,
        PixelOcclusion,
    )

    makers: dict[str, MapMaker] = {}
    for m in methods:
        if m == "attention":
            makers[m] = MapMaker(None, "decoder cross-attention (mean over heads and queries)")
        elif m == "attention_executed":
            makers[m] = MapMaker(None, "decoder cross-attention (mean over heads and the executed queries)")
        elif m == "gradcam":
            makers[m] = MapMaker(lambda p: GradCAM(p, target_layer=gradcam_layer), gradcam_target)
        elif m == "gradient_x_input":
            makers[m] = MapMaker(PixelGradientXInput, attribution_target or DEFAULT_GRADIENT_TARGET)
        elif m == "integrated_gradients":
            makers[m] = MapMaker(PixelIntegratedGradients, attribution_target or DEFAULT_GRADIENT_TARGET)
        elif m == "occlusion":
            maker = MapMaker(lambda p: PixelOcclusion(p, patch=occlusion_patch, stride=occlusion_stride,
                                                    fill=occlusion_fill),
                           attribution_target or DEFAULT_PERTURBATION_TARGET)
            maker.window = {}
            makers[m] = maker
    return makers


def _target_name(target) -> str:
    if isinstance(target, str):
        return target
    joint = getattr(target, "joint", None)
    return f"{target.kind}" + (f"[{joint}]" if joint is not None else "")


def policy_maps(policy, preprocessor, frames: training.FrameSet, spec: KnownAnswerSpec, makers: dict[str, MapMaker],
                batch_size: int = 32) -> dict[str, list[dict[str, np.ndarray]]]:
    """{method: [ {short camera name: map} per frame ]} for one policy (token grid or pixel maps)."""
    from act_interp_ros.core import InterpretableACT

    from act_interp_ros.core import AttentionOptions

    attention = {m: InterpretableACT(policy, preprocessor, attention=AttentionOptions(query=q))
                 for m, q in (("attention", None), ("attention_executed", "executed")) if m in makers}
    explainers = {m: mk.make(policy) for m, mk in makers.items() if m not in attention}
    out: dict[str, list[dict[str, np.ndarray]]] = {m: [] for m in makers}
    short = len(training.CAMERA_PREFIX)
    try:
        for name, ex in explainers.items():
            if hasattr(ex, "windows"):
                makers[name].window = {k[short:]: v for k, v in ex.windows.items()}
        for start in range(0, len(frames), batch_size):
            idx = np.arange(start, min(start + batch_size, len(frames)))
            batch = preprocessor(training.raw_batch(frames, idx, spec, with_action=False))
            for m, wrapped in attention.items():
                _, interps = wrapped.predict_chunk(batch)
                out[m].extend({k[short:]: v for k, v in it.camera_maps.items()} for it in interps)
            for name, ex in explainers.items():
                t0 = time.perf_counter()
                maps = ex.attribute(batch, makers[name].target)
                logger.debug("%s: %d frames in %.1f s", name, len(idx), time.perf_counter() - t0)
                out[name].extend({k[short:]: v for k, v in m.items()} for m in maps)
    finally:
        for ex in explainers.values():
            ex.close()
        for wrapped in attention.values():
            wrapped.close()
    return out


def deletion_results(policy, preprocessor, frames: training.FrameSet, spec: KnownAnswerSpec, maps, random_draws: int,
                     batch_size: int = 16) -> dict[str, dict[str, Any]]:
    """{method: {short camera name: DeletionResult}} of the trained model's maps.

    Every method's test uses the same seed, so all methods are compared with the same random cells.
    """
    from act_interp_ros.core import DeletionResult, DeletionTest

    out: dict[str, dict[str, Any]] = {}
    prefix = training.CAMERA_PREFIX
    for method, per_frame in maps.items():
        test = DeletionTest(policy, n_random=random_draws, seed=0)  # same seed: every method meets the same draws
        parts: dict[str, list] = {}
        t0 = time.perf_counter()
        for start in range(0, len(frames), batch_size):
            idx = np.arange(start, min(start + batch_size, len(frames)))
            batch = preprocessor(training.raw_batch(frames, idx, spec, with_action=False))
            res = test.run(batch, [{prefix + c: m for c, m in per_frame[i].items()} for i in idx])
            for key, r in res.items():
                parts.setdefault(key[len(prefix):], []).append(r)
        out[method] = {c: DeletionResult.concatenate(p) for c, p in parts.items()}
        logger.info("deletion test of %s: %d frames in %.0f s", method, len(frames), time.perf_counter() - t0)
    return out


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")
