"""The env-state known-answer ACT: a coordinate-conditioned pick in which only the coordinates name the target.

Task (:mod:`act_interp_ros.synthetic.coordinate_task`): the known-answer scene with two identical-looking
cubes; the scripted expert picks the target, and the policy gets the target's (x, y) in metres (robot
base frame) as ``observation.environment_state``. The image alone cannot say which cube to take.

* :func:`ensure_env_state_model` trains a small ACT with LeRobot's own ``ACTPolicy``, processors and
  optimiser (inputs: front camera 96x128, ``observation.state``, ``observation.environment_state``) once
  per machine and caches it like the known-answer model, under
  ``$ACT_INTERP_CACHE/env_state/<key>/pretrained_model`` (a normal LeRobot checkpoint) with
  ``metrics.json`` (held-out action error vs baselines, loss curve, timings). ``<key>`` hashes the scene,
  expert, training and this module's sources plus :class:`EnvStateSpec`.
* :mod:`act_interp_ros.proofs.coordinate_use` evaluates such a checkpoint against the known answer (kept
  apart so that evaluation changes do not invalidate the cached weights).

Training reuses :mod:`act_interp_ros.proofs.training` (rendering, stats, batches, config, metrics) and adds
the env-state feature; that module is not modified, so the known-answer model's cache stays valid.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from lerobot.utils.constants import OBS_ENV_STATE

from act_interp_ros.proofs import known_answer as ka
from act_interp_ros.proofs import model_metrics, training
from act_interp_ros.proofs.training import CAMERA_PREFIX, EVAL_SEED_BASE, FrameSet, KnownAnswerSpec
from act_interp_ros.synthetic import JOINT_NAMES, SceneConfig
from act_interp_ros.synthetic.coordinate_task import (
    ENV_STATE_DIM,
    ENV_STATE_NAMES,
    ENV_STATE_UNITS,
    coordinate_scene_config,
    env_state_of,
)

logger = logging.getLogger(__name__)

#: Training episodes use ``TRAIN_SEED_BASE + i`` like the known-answer model (same layouts, other colours).
TRAIN_SEED_BASE = training.TRAIN_SEED_BASE
#: Held-out episodes of the action error in ``metrics.json``.
METRICS_SEED_BASE = 3 * EVAL_SEED_BASE
#: Sources whose bytes decide the trained weights (the cache key hashes them).
KEY_SOURCES = (*ka.KEY_SOURCES, "synthetic/coordinate_task.py", "proofs/env_state_model.py")
CACHE_SUBDIR = "env_state"


@dataclass(frozen=True)
class EnvStateSpec(KnownAnswerSpec):
    """Hyperparameters of the env-state model: the :class:`KnownAnswerSpec` fields (96x128 front camera and
    600 steps here, to keep the cold build at a few minutes on 2 CPU cores), plus

    env_state_normalization: ``"MEAN_STD"`` (default) or ``"MIN_MAX"`` adds an ``ENV`` entry to the
        config's ``normalization_mapping`` (stats from the training frames); ``None`` keeps LeRobot's ACT
        default, whose mapping has **no** ``ENV`` entry, so the coordinates reach the model unnormalised
        (metres). With ``None`` this task's model collapses: it ignores the coordinates and reaches
        between the cubes (:data:`LEROBOT_DEFAULT_ENV_SPEC`, see ``test/test_env_state_known_answer.py``).

    The scene is :func:`~act_interp_ros.synthetic.coordinate_task.coordinate_scene_config` (two
    identical cubes). All fields enter the cache key.
    """

    image_size: tuple[int, int] = (96, 128)
    train_steps: int = 600
    env_state_normalization: str | None = "MEAN_STD"

    def scene_config(self) -> SceneConfig:
        return coordinate_scene_config(tuple(self.image_size))


#: The env-state model: coordinates normalised (MEAN_STD); it acts on them.
DEFAULT_ENV_SPEC = EnvStateSpec()
#: The same with LeRobot 0.4.4's default ACT normalisation (env state not normalised): mode collapse.
LEROBOT_DEFAULT_ENV_SPEC = EnvStateSpec(env_state_normalization=None)


@dataclass
class EnvFrameSet(FrameSet):
    """A :class:`~act_interp_ros.proofs.training.FrameSet` plus ``env_state``: (N, 2) float32 target (x, y), m."""

    env_state: np.ndarray | None = None


# ------------------------------------------------------------------------------------------- data
def render_env_frames(
    seeds: list[int], spec: EnvStateSpec, steps: list[int] | None = None, progress: bool = False,
) -> EnvFrameSet:
    """:func:`training.render_frames` in the two-identical-cubes scene, with each frame's env state."""
    frames = training.render_frames(seeds, spec, steps=steps, progress=progress, desc="rendering coordinate task")
    env = np.stack([env_state_of(frames.episodes[e]) for e in frames.episode]).astype(np.float32)
    return EnvFrameSet(**vars(frames), env_state=env)


def env_stats(frames: EnvFrameSet, spec: EnvStateSpec) -> dict[str, dict[str, torch.Tensor]]:
    """:func:`training.compute_stats` plus mean/std/min/max of the env state (metres)."""
    stats = training.compute_stats(frames, spec)
    v = frames.env_state.astype(np.float64)
    stats[OBS_ENV_STATE] = {name: torch.tensor(fn(v, axis=0), dtype=torch.float32)
                            for name, fn in (("mean", np.mean), ("std", np.std), ("min", np.min), ("max", np.max))}
    return stats


def env_batch(frames: EnvFrameSet, idx: np.ndarray, spec: EnvStateSpec, with_action: bool = True,
              env_state: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """:func:`training.raw_batch` plus ``observation.environment_state`` (B, 2) in metres.

    ``env_state`` (N, 2) replaces the frames' own coordinates (e.g. the other cube's, to test the model).
    """
    batch = training.raw_batch(frames, idx, spec, with_action=with_action)
    env = frames.env_state if env_state is None else np.asarray(env_state, dtype=np.float32)
    batch[OBS_ENV_STATE] = torch.from_numpy(env[idx])
    return batch


def make_env_config(spec: EnvStateSpec):
    """``ACTConfig``: :func:`training.make_config` with the env-state input (state, env state, cameras)."""
    from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature

    config = training.make_config(spec)
    feats = config.input_features
    env = {OBS_ENV_STATE: PolicyFeature(FeatureType.ENV, (ENV_STATE_DIM,))}
    config.input_features = {
        **{k: f for k, f in feats.items() if not k.startswith(CAMERA_PREFIX)}, **env,
        **{k: f for k, f in feats.items() if k.startswith(CAMERA_PREFIX)},
    }
    if spec.env_state_normalization is not None:
        mode = NormalizationMode(spec.env_state_normalization)
        config.normalization_mapping = {**config.normalization_mapping, FeatureType.ENV.value: mode}
    return config


# --------------------------------------------------------------------------------------- training
def train_env_model(spec: EnvStateSpec, frames: EnvFrameSet) -> training.TrainResult:
    """Train ``ACTPolicy`` on the coordinate task as ``lerobot-train`` would (preset AdamW, grad clipping)."""
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    t0 = time.perf_counter()
    config = make_env_config(spec)
    torch.manual_seed(spec.seed)
    policy = ACTPolicy(config)
    pre, post = make_pre_post_processors(config, dataset_stats=env_stats(frames, spec))
    preset = config.get_optimizer_preset()
    optimizer = preset.build(policy.get_optim_params())
    rng = np.random.default_rng(spec.seed)
    losses = np.zeros(spec.train_steps, np.float32)
    every = max(1, spec.train_steps // 10)
    policy.train()
    for i in range(spec.train_steps):
        loss, _ = policy.forward(pre(env_batch(frames, rng.integers(0, len(frames), spec.batch_size), spec)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if preset.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(policy.parameters(), preset.grad_clip_norm)
        optimizer.step()
        losses[i] = loss.item()
        if (i + 1) % every == 0:
            logger.info("env-state ACT: step %d/%d loss %.4f (%.0f s)", i + 1, spec.train_steps,
                        losses[i + 1 - every:i + 1].mean(), time.perf_counter() - t0)
    policy.eval()
    return training.TrainResult(policy, pre, post, losses, time.perf_counter() - t0, 0.0)


@torch.no_grad()
def predict_env_chunks(policy, preprocessor, postprocessor, frames: EnvFrameSet, spec: EnvStateSpec,
                       env_state: np.ndarray | None = None, batch_size: int = 64) -> np.ndarray:
    """(N, chunk_size, 6) predicted chunks in policy units; ``env_state`` (N, 2) overrides the coordinates."""
    out = []
    for start in range(0, len(frames), batch_size):
        idx = np.arange(start, min(start + batch_size, len(frames)))
        chunk = policy.predict_action_chunk(preprocessor(env_batch(frames, idx, spec, False, env_state)))
        out.append(unnormalise_chunk(postprocessor, chunk))
    return np.concatenate(out)


def unnormalise_chunk(postprocessor, chunk: torch.Tensor) -> np.ndarray:
    """(B, chunk, A) normalised -> (B, chunk, A) float32 numpy in policy units."""
    b, c, a = chunk.shape
    return postprocessor(chunk.reshape(b * c, a)).detach().cpu().numpy().reshape(b, c, a).astype(np.float32)


# ------------------------------------------------------------------------------------------ cache
def cache_key(spec: EnvStateSpec = DEFAULT_ENV_SPEC) -> str:
    """16 hex digits over :data:`KEY_SOURCES`, the spec and the lerobot/torch versions."""
    return ka.cache_key(spec, sources=KEY_SOURCES)


def cache_root() -> Path:
    """``$ACT_INTERP_CACHE/env_state`` or ``~/.cache/act_interp_ros/env_state``."""
    return ka.cache_root().parent / CACHE_SUBDIR


def ensure_env_state_model(progress: bool = False, spec: EnvStateSpec = DEFAULT_ENV_SPEC,
                           cache_dir: str | os.PathLike[str] | None = None) -> ka.KnownAnswerModel:
    """The cached env-state model (``.path`` = its ``pretrained_model/``), trained first if absent.

    Same cache discipline as :func:`known_answer.ensure_known_answer_model`: lock file, atomic directory.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    key = cache_key(spec)
    final, built = ka.build_once(root, key, lambda out: build_env_state_model(out, spec, progress, key),
                                 what="the env-state model")
    return ka.KnownAnswerModel(final / "pretrained_model", json.loads((final / ka.METRICS_FILE).read_text()),
                               key, built)


def build_env_state_model(out_dir: str | os.PathLike[str], spec: EnvStateSpec = DEFAULT_ENV_SPEC,
                          progress: bool = False, key: str | None = None) -> dict[str, Any]:
    """Render, train, measure the held-out action error; write ``out_dir/{pretrained_model, metrics.json}``."""
    out = Path(out_dir)
    with ka.deterministic_torch(threads=2):
        t0 = time.perf_counter()
        frames = render_env_frames([TRAIN_SEED_BASE + i for i in range(spec.n_train_episodes)], spec,
                                   progress=progress)
        data_s = time.perf_counter() - t0
        logger.info("rendered %d coordinate-task frames in %.0f s", len(frames), data_s)
        result = train_env_model(spec, frames)
        t1 = time.perf_counter()
        held_out = render_env_frames([METRICS_SEED_BASE + i for i in range(spec.n_eval_episodes)], spec)
        predicted = predict_env_chunks(result.policy, result.preprocessor, result.postprocessor, held_out, spec)
        errors = model_metrics.action_error_metrics(predicted, held_out, frames.action.mean(0), JOINT_NAMES)
        eval_s = time.perf_counter() - t1
    env_state = {"names": list(ENV_STATE_NAMES), "units": ENV_STATE_UNITS,
                 "frame": "robot base (x forward, y left, z up)"}
    return ka.save_build(out, result, spec, key, errors, len(frames), (data_s, eval_s, t0), what="env-state model",
                         env_state=env_state)


__all__ = [
    "DEFAULT_ENV_SPEC",
    "LEROBOT_DEFAULT_ENV_SPEC",
    "EnvFrameSet",
    "EnvStateSpec",
    "build_env_state_model",
    "cache_key",
    "cache_root",
    "env_batch",
    "env_stats",
    "ensure_env_state_model",
    "make_env_config",
    "predict_env_chunks",
    "render_env_frames",
    "train_env_model",
    "unnormalise_chunk",
]
