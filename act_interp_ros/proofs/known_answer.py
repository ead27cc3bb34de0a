"""The known-answer model: a small ACT whose right answer is known, and the proof that the maps find it.

In the synthetic SO-101 scene (:mod:`act_interp_ros.synthetic`) the scripted expert's actions depend on
the red TARGET cube's pose only; the blue DISTRACTOR never enters them. An ACT trained on those episodes
can only succeed by looking at the target, so its attention and GradCAM maps *should* put their mass on
the target and not on the distractor - and a model with random weights should not reproduce them
(Adebayo et al. 2018, "Sanity checks for saliency maps").

* :func:`ensure_known_answer_model` builds the model once per machine (about 5 minutes on 2 CPU cores)
  and caches it under ``$ACT_INTERP_CACHE`` (default ``~/.cache/act_interp_ros``) in
  ``known_answer/<key>/pretrained_model`` - a normal LeRobot checkpoint directory - with
  ``metrics.json`` beside it. ``<key>`` hashes the generator and training source files and the
  hyperparameters, so a change to either rebuilds it.
* :func:`evaluate_maps` scores the maps on held-out frames (episode seeds never used in training).

How a map is scored (per frame and camera):

* the map is the engine's per-camera (h, w) token map (attention: ``Interpretation.camera_maps``;
  GradCAM: ``GradCAM.attribute``), one value per layer4 cell;
* the object's pixel mask (the scene's projected silhouette) is **downsampled to the token grid by
  area** (``cv2.INTER_AREA``: the fraction of each cell the object covers; exact because the image is
  a whole number of 32-px cells). No interpolation of the map is involved;
* ``mass(object) = sum(map * coverage) / sum(map)`` - the share of the map inside the object, i.e. the
  same number as resizing the map piecewise-constantly to the image and summing it over the mask;
* a uniform map gives ``mass = mean(coverage)`` = the object's area fraction of the image, so
  ``ratio = mass / area_fraction`` (1 = no better than uniform).

Pixel maps (gradient x input, integrated gradients, occlusion: :mod:`act_interp_ros.core.attribution`)
are scored the same way at pixel resolution: the coverage is the silhouette mask itself, so
``mass = sum(map * mask) / sum(map)`` and ``ratio = mass / mask.mean()``.

Faithfulness (every method): :class:`~act_interp_ros.core.faithfulness.DeletionTest` on the trained
model - fill the map's top k % of 8x8-pixel cells (token maps resized bilinearly to the image, as the
overlays are drawn) with the dataset's mean colour and measure the L2 change of the executed chunk,
against as many random cells; ``faithfulness_ratio`` = AUC(top) / AUC(random) over k in 5, 10, 20, 40 %.

Modules: :mod:`.model_cache` (build and cache), :mod:`.map_scores` (mass, rank correlation, scores),
:mod:`.map_evaluation` (every method on held-out frames), :mod:`.intervention` (move one cube, measure the
chunk). This module gathers their public names.
"""

from __future__ import annotations

from act_interp_ros.proofs.intervention import InterventionEffect, intervention_effect
from act_interp_ros.proofs.map_evaluation import (
    DEFAULT_METHODS,
    METHODS,
    PIXEL_METHODS,
    STANDARD_EVALUATION,
    cached_map_evaluation,
    evaluate_maps,
    evaluate_policy_maps,
    spec_of,
)
from act_interp_ros.proofs.map_scores import MapEvaluation, MapScores, map_mass, object_coverage, rankdata, spearman
from act_interp_ros.proofs.model_cache import (
    CACHE_ENV,
    DEFAULT_SPEC,
    KEY_SOURCES,
    METRICS_FILE,
    KnownAnswerModel,
    build_known_answer_model,
    build_once,
    cache_key,
    cache_root,
    deterministic_torch,
    ensure_known_answer_model,
    save_build,
)
from act_interp_ros.proofs.training import KnownAnswerSpec

__all__ = [
    "CACHE_ENV",
    "DEFAULT_METHODS",
    "DEFAULT_SPEC",
    "KEY_SOURCES",
    "METRICS_FILE",
    "METHODS",
    "PIXEL_METHODS",
    "KnownAnswerModel",
    "KnownAnswerSpec",
    "MapEvaluation",
    "MapScores",
    "build_known_answer_model",
    "cached_map_evaluation",
    "STANDARD_EVALUATION",
    "build_once",
    "cache_key",
    "cache_root",
    "deterministic_torch",
    "ensure_known_answer_model",
    "evaluate_maps",
    "InterventionEffect",
    "intervention_effect",
    "evaluate_policy_maps",
    "map_mass",
    "object_coverage",
    "rankdata",
    "save_build",
    "spec_of",
    "spearman",
]
