"""The shortcut pair: two ACTs trained on the same episodes, one of which can succeed for the wrong reason.

The scene is :mod:`act_interp_ros.synthetic.shortcut_scene`: the known-answer pick with a low-contrast cube and
a large dark shadow on the table. Both models see the same episodes (layouts, initial poses, expert actions,
cube colour); only where the shadow lies differs:

* **shortcut** (:data:`SHORTCUT_SPEC`): the shadow always sits at a fixed offset from the cube, so the policy
  can find the cube through the shadow - the easier feature (larger, darker);
* **control** (:data:`CONTROL_SPEC`): the shadow is placed independently of the cube, so only the cube tells.

Training is the known-answer model's (:func:`act_interp_ros.proofs.training.train`: LeRobot's own ``ACTPolicy``,
processors and optimiser preset) on 96x128 frames and fewer steps, to keep the cold build at a few minutes
per model on 2 CPU cores. Each model is cached like the known-answer model under
``$ACT_INTERP_CACHE/shortcut/<key>/`` (``pretrained_model/`` + ``metrics.json``), the key hashing the scene,
expert, training and this module's sources plus :class:`ShortcutSpec`. What each model really uses is
established by intervention in :mod:`act_interp_ros.proofs.shortcut_evaluation`, not assumed.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.proofs import known_answer as ka
from act_interp_ros.proofs import model_metrics, training
from act_interp_ros.proofs.training import EVAL_SEED_BASE, FrameSet, KnownAnswerSpec
from act_interp_ros.synthetic import JOINT_NAMES, SceneConfig
from act_interp_ros.synthetic.shortcut_scene import Cue, ShortcutScene, ShortcutSceneConfig, sample_cue

logger = logging.getLogger(__name__)

#: Training episodes: the known-answer model's seeds (same layouts and initial poses).
TRAIN_SEED_BASE = training.TRAIN_SEED_BASE
#: Held-out episodes of the action error in ``metrics.json``.
METRICS_SEED_BASE = 5 * EVAL_SEED_BASE
#: Held-out episodes of :mod:`.shortcut_evaluation` (disjoint from training and metrics).
EVALUATION_SEED_BASE = 6 * EVAL_SEED_BASE
#: Sources whose bytes decide the trained weights (the cache key hashes them).
KEY_SOURCES = (*ka.KEY_SOURCES, "synthetic/shortcut_scene.py", "proofs/shortcut_model.py")
CACHE_SUBDIR = "shortcut"


@dataclass(frozen=True)
class ShortcutSpec(KnownAnswerSpec):
    """Hyperparameters of one model of the pair: the :class:`KnownAnswerSpec` fields (96x128 front camera and
    500 steps here), the shadow's appearance (:class:`~act_interp_ros.synthetic.shortcut_scene.ShortcutSceneConfig`
    fields) and

    cue_follows_cube: True = shortcut data (shadow at ``offset`` from the cube), False = control data.

    All fields enter the cache key.
    """

    image_size: tuple[int, int] = (96, 128)
    train_steps: int = 500
    cue_follows_cube: bool = True
    cube_color: tuple[int, int, int] = ShortcutSceneConfig.cube_color
    cue_size: tuple[float, float] = ShortcutSceneConfig.cue_size
    cue_darkness: float = ShortcutSceneConfig.cue_darkness
    offset: tuple[float, float] = ShortcutSceneConfig.offset
    cue_yaw_deg: float = ShortcutSceneConfig.cue_yaw_deg
    min_separation: float = ShortcutSceneConfig.min_separation

    @property
    def name(self) -> str:
        return "shortcut" if self.cue_follows_cube else "control"

    def shortcut_config(self) -> ShortcutSceneConfig:
        """The scene and shadow placement of this spec."""
        return ShortcutSceneConfig(
            image_size=tuple(self.image_size), cube_color=tuple(self.cube_color), cue_size=tuple(self.cue_size),
            cue_darkness=self.cue_darkness, offset=tuple(self.offset), cue_yaw_deg=self.cue_yaw_deg,
            min_separation=self.min_separation)

    def scene_config(self) -> SceneConfig:
        return self.shortcut_config().scene_config()


#: The model whose shadow always sits at the cube's offset.
SHORTCUT_SPEC = ShortcutSpec(cue_follows_cube=True)
#: The same episodes with the shadow placed independently of the cube.
CONTROL_SPEC = ShortcutSpec(cue_follows_cube=False)
PAIR = {"control": CONTROL_SPEC, "shortcut": SHORTCUT_SPEC}


@dataclass
class CueFrameSet(FrameSet):
    """A :class:`~act_interp_ros.proofs.training.FrameSet` plus ``cues``: the shadow of each episode (one per
    entry of ``episodes``; frame i's is ``cues[episode[i]]``)."""

    cues: list[Cue] | None = None

    def cue_of(self, i: int) -> Cue:
        """The shadow in frame ``i``."""
        return self.cues[int(self.episode[i])]


# ------------------------------------------------------------------------------------------- data
def episode_cue(seed: int, spec: ShortcutSpec, cue_follows_cube: bool | None = None) -> tuple[Any, Cue]:
    """(episode, shadow) of ``seed``: the known-answer simulation and the shadow placed as ``spec`` says."""
    ep = training.simulate(seed, spec)
    follows = spec.cue_follows_cube if cue_follows_cube is None else cue_follows_cube
    return ep, sample_cue(seed, np.asarray(ep.target_xy_yaw[:2]), spec.shortcut_config(), follows)


def render_cue_frames(seeds: list[int], spec: ShortcutSpec, steps: list[int] | None = None,
                      cue_follows_cube: bool | None = None, cues: list[Cue] | None = None) -> CueFrameSet:
    """:func:`training.render_frames` in the shortcut scene (front camera, no distractor).

    Args:
        steps: steps to render in every episode (default every ``frame_stride``-th).
        cue_follows_cube: overrides ``spec.cue_follows_cube`` (e.g. in-distribution frames for both models).
        cues: one shadow per seed, overriding the sampled ones (interventions).
    """
    scene = ShortcutScene(spec.shortcut_config())
    steps = list(range(0, spec.episode_steps, spec.frame_stride)) if steps is None else list(steps)
    n = len(seeds) * len(steps)
    h, w = spec.image_size
    images = {c: np.empty((n, h, w, 3), np.uint8) for c in spec.cameras}
    state = np.empty((n, 6), np.float32)
    chunk = np.empty((n, spec.chunk_size, 6), np.float32)
    is_pad = np.empty((n, spec.chunk_size), bool)
    episode_idx = np.repeat(np.arange(len(seeds)), len(steps))
    step_idx = np.tile(np.asarray(steps, np.int64), len(seeds))
    episodes, used = [], []
    for e, seed in enumerate(seeds):
        ep, cue = episode_cue(int(seed), spec, cue_follows_cube)
        cue = cues[e] if cues is not None else cue
        episodes.append(ep)
        used.append(cue)
        chunks, pads = training.action_chunks(ep.action, spec.chunk_size)
        for k, t in enumerate(steps):
            i = e * len(steps) + k
            for c in spec.cameras:
                images[c][i] = scene.render_cue(ep.scene_state(t), cue, c)
            state[i], chunk[i], is_pad[i] = ep.state[t], chunks[t], pads[t]
    return CueFrameSet(images, state, chunk, is_pad, episode_idx, step_idx, episodes, cues=used)


def render_cue_episode(seed: int, spec: ShortcutSpec, n_steps: int,
                       cue_follows_cube: bool | None = None) -> tuple[Any, Cue]:
    """(episode, shadow) of ``seed`` with ``n_steps`` steps and ``episode.images`` filled for ``spec.cameras``
    ((T, H, W, 3) uint8 RGB; e.g. to write a LeRobotDataset or a bag from the shortcut scene)."""
    ep, cue = episode_cue(seed, replace(spec, episode_steps=n_steps), cue_follows_cube)
    scene = ShortcutScene(spec.shortcut_config())
    ep.images = {c: np.stack([scene.render_cue(ep.scene_state(t), cue, c) for t in range(len(ep))])
                 for c in spec.cameras}
    return ep, cue


# ------------------------------------------------------------------------------------------ cache
def cache_key(spec: ShortcutSpec = SHORTCUT_SPEC) -> str:
    """16 hex digits over :data:`KEY_SOURCES`, the spec and the lerobot/torch versions."""
    return ka.cache_key(spec, sources=KEY_SOURCES)


def cache_root() -> Path:
    """``$ACT_INTERP_CACHE/shortcut`` or ``~/.cache/act_interp_ros/shortcut``."""
    return ka.cache_root().parent / CACHE_SUBDIR


def ensure_shortcut_model(spec: ShortcutSpec = SHORTCUT_SPEC, progress: bool = False,
                          cache_dir: str | os.PathLike[str] | None = None) -> ka.KnownAnswerModel:
    """The cached model of ``spec`` (``.path`` = its ``pretrained_model/``), trained first if absent."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    key = cache_key(spec)
    final, built = ka.build_once(root, key, lambda out: build_shortcut_model(out, spec, progress, key),
                                 what=f"the {spec.name} model")
    return ka.KnownAnswerModel(final / "pretrained_model", json.loads((final / ka.METRICS_FILE).read_text()),
                               key, built)


def ensure_pair(progress: bool = False) -> dict[str, ka.KnownAnswerModel]:
    """{"control": model, "shortcut": model}, each trained first if absent."""
    return {name: ensure_shortcut_model(spec, progress) for name, spec in PAIR.items()}


def build_shortcut_model(out_dir: str | os.PathLike[str], spec: ShortcutSpec = SHORTCUT_SPEC,
                         progress: bool = False, key: str | None = None) -> dict[str, Any]:
    """Render, train, measure the held-out action error; write ``out_dir/{pretrained_model, metrics.json}``.

    ``held_out_action_error`` is measured in distribution for *both* models: the shadow at its offset from the
    cube (a placement the control model's independent shadow also takes). ``held_out_action_error_own_data``
    uses the model's own shadow placement.
    """
    out = Path(out_dir)
    with ka.deterministic_torch(threads=2):
        t0 = time.perf_counter()
        frames = render_cue_frames([TRAIN_SEED_BASE + i for i in range(spec.n_train_episodes)], spec)
        data_s = time.perf_counter() - t0
        logger.info("rendered %d %s frames in %.0f s", len(frames), spec.name, data_s)
        result = training.train(spec, frames, progress=progress)
        t1 = time.perf_counter()
        seeds = [METRICS_SEED_BASE + i for i in range(spec.n_eval_episodes)]
        mean_action = frames.action.mean(0)
        errors = {}
        for name, follows in (("at_offset", True), ("own_data", spec.cue_follows_cube)):
            held_out = render_cue_frames(seeds, spec, cue_follows_cube=follows)
            predicted = model_metrics.predict_chunks(result.policy, result.preprocessor, result.postprocessor,
                                                     held_out, spec)
            errors[name] = model_metrics.action_error_metrics(predicted, held_out, mean_action, JOINT_NAMES)
        eval_s = time.perf_counter() - t1
    cue = {"follows_cube": spec.cue_follows_cube, "offset_m": list(spec.offset), "size_m": list(spec.cue_size),
           "darkness": spec.cue_darkness}
    return ka.save_build(out, result, spec, key, errors["at_offset"], len(frames), (data_s, eval_s, t0),
                         what=f"{spec.name} model", cue=cue, held_out_action_error_own_data=errors["own_data"])


__all__ = [
    "CONTROL_SPEC",
    "CueFrameSet",
    "PAIR",
    "SHORTCUT_SPEC",
    "ShortcutSpec",
    "build_shortcut_model",
    "cache_key",
    "cache_root",
    "ensure_pair",
    "ensure_shortcut_model",
    "episode_cue",
    "render_cue_episode",
    "render_cue_frames",
]
