"""Train the known-answer ACT on synthetic SO-101 episodes with LeRobot's own policy, processors and optimiser.

Everything that decides the trained weights lives here (and in :mod:`act_interp_ros.synthetic`), so the
cache key of :mod:`act_interp_ros.proofs.known_answer` is a hash of these source files plus
:class:`KnownAnswerSpec`.

Training follows ``lerobot-train`` step by step, without a ``LeRobotDataset`` on disk:

* stats (mean/std/min/max) computed from the generated frames -> ``make_pre_post_processors``;
* each batch ``{images, observation.state, action (B, chunk, 6), action_is_pad (B, chunk)}`` goes through
  the preprocessor (its ``NormalizerProcessorStep`` normalises ``action`` too);
* ``loss, _ = policy.forward(batch)``; AdamW from ``config.get_optimizer_preset()`` on
  ``policy.get_optim_params()``; gradient clipping at the preset's ``grad_clip_norm``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

from act_interp_ros.synthetic import (
    CAMERA_NAMES,
    Episode,
    SceneConfig,
    SyntheticScene,
    sample_cube_positions,
    simulate_episode,
)

logger = logging.getLogger(__name__)

#: LeRobot's camera feature prefix (``observation.images.``).
CAMERA_PREFIX = OBS_IMAGES + "."

#: Seeds of training episodes are ``TRAIN_SEED_BASE + i``; held-out evaluations use other ranges.
TRAIN_SEED_BASE = 0
EVAL_SEED_BASE = 1_000_000


@dataclass(frozen=True)
class KnownAnswerSpec:
    """Every hyperparameter of the known-answer model (all of them enter the cache key).

    Data:
        image_size: (H, W) of both cameras. ResNet-18's layer4 has stride 32, so (128, 160) gives a
            4x5 token grid per camera.
        cameras: short camera names, in policy order.
        n_train_episodes: episodes (= distinct target/distractor layouts) rendered for training.
        episode_steps: 30 Hz steps kept per episode (approach, descend, grasp, lift, part of the carry:
            the phases in which the target's position decides the action).
        frame_stride: render every ``frame_stride``-th step (actions of all steps form the chunks).
        min_cube_distance: metres between target and distractor (the scene's own sampler,
            :func:`~act_interp_ros.synthetic.sample_cube_positions`): far enough apart that they fall in
            different 32-px token cells, so a map *can* tell them apart.
        initial_pose_low / initial_pose_high: the arm starts at a uniformly random pose in this box
            (policy units) instead of near home, so the joint state alone does not reveal where the
            target is: the image must.
    Model (``ACTConfig`` fields):
        chunk_size, n_action_steps, dim_model, n_heads, dim_feedforward, n_encoder_layers,
        n_decoder_layers, use_vae, dropout.
    Optimisation:
        batch_size, train_steps, lr (transformer), lr_backbone, weight_decay, seed.
    Evaluation:
        n_eval_episodes: held-out episodes for the action error in ``metrics.json``.
    """

    image_size: tuple[int, int] = (128, 160)
    cameras: tuple[str, ...] = ("front",)
    n_train_episodes: int = 400
    episode_steps: int = 40
    frame_stride: int = 2
    min_cube_distance: float = 0.09
    initial_pose_low: tuple[float, ...] = (-45.0, -35.0, 70.0, 30.0, -40.0, 0.0)
    initial_pose_high: tuple[float, ...] = (45.0, 20.0, 125.0, 95.0, 40.0, 100.0)
    chunk_size: int = 20
    n_action_steps: int = 10
    dim_model: int = 64
    n_heads: int = 4
    dim_feedforward: int = 128
    n_encoder_layers: int = 1
    n_decoder_layers: int = 1
    use_vae: bool = False
    dropout: float = 0.0
    batch_size: int = 16
    train_steps: int = 800
    lr: float = 1e-4
    lr_backbone: float = 1e-4
    weight_decay: float = 1e-4
    seed: int = 0
    n_eval_episodes: int = 24

    @property
    def camera_keys(self) -> tuple[str, ...]:
        return tuple(CAMERA_PREFIX + c for c in self.cameras)

    def scene_config(self) -> SceneConfig:
        """The synthetic scene the model is trained on (use it for demo bags too)."""
        return SceneConfig(image_size=tuple(self.image_size))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------- data
@dataclass
class FrameSet:
    """Rendered frames of several episodes, flat over (episode, step).

    Attributes:
        images: short camera name -> (N, H, W, 3) uint8 RGB.
        state: (N, 6) float32 joint state, policy units.
        chunk: (N, chunk_size, 6) float32 expert actions from this step on (padded by repetition).
        chunk_is_pad: (N, chunk_size) bool, True past the episode's last step.
        episode: (N,) index into ``episodes``; step: (N,) step within the episode.
        episodes: the (unrendered) simulated episodes, for masks/boxes and cube poses.
    """

    images: dict[str, np.ndarray]
    state: np.ndarray
    chunk: np.ndarray
    chunk_is_pad: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    episodes: list[Episode] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.state.shape[0])

    @property
    def action(self) -> np.ndarray:
        """(N, 6) the expert action issued at each frame."""
        return self.chunk[:, 0]


def action_chunks(actions: np.ndarray, chunk_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(T, A) actions -> ((T, chunk_size, A) chunks, (T, chunk_size) is_pad); pads repeat the last action."""
    t = np.arange(actions.shape[0])[:, None] + np.arange(chunk_size)[None, :]
    pad = t >= actions.shape[0]
    return actions[np.minimum(t, actions.shape[0] - 1)].astype(np.float32), pad


def simulate(seed: int, spec: KnownAnswerSpec, scene_config: SceneConfig | None = None) -> Episode:
    """The (unrendered) episode of ``seed``: cube layout, random initial pose, expert rollout."""
    target, distractor = sample_cube_positions(seed, min_distance=spec.min_cube_distance)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    initial = rng.uniform(spec.initial_pose_low, spec.initial_pose_high)
    return simulate_episode(
        seed, spec.episode_steps, target_xy_yaw=target, distractor_xy_yaw=distractor, initial_state=initial,
        scene_config=scene_config or spec.scene_config(),
    )


def render_frames(
    seeds: list[int],
    spec: KnownAnswerSpec,
    steps: list[int] | None = None,
    progress: bool = False,
    desc: str = "rendering",
) -> FrameSet:
    """Simulate one episode per seed and render the chosen steps (default every ``frame_stride``-th).

    Args:
        seeds: episode seeds (cube layout and initial pose come from the seed).
        steps: explicit steps to render in every episode; default ``range(0, episode_steps, frame_stride)``.
    """
    scene = SyntheticScene(spec.scene_config())
    steps = list(range(0, spec.episode_steps, spec.frame_stride)) if steps is None else list(steps)
    n = len(seeds) * len(steps)
    h, w = spec.image_size
    images = {c: np.empty((n, h, w, 3), np.uint8) for c in spec.cameras}
    state = np.empty((n, 6), np.float32)
    chunk = np.empty((n, spec.chunk_size, 6), np.float32)
    is_pad = np.empty((n, spec.chunk_size), bool)
    episode_idx = np.empty(n, np.int64)
    step_idx = np.empty(n, np.int64)
    episodes: list[Episode] = []
    iterator = _progress(seeds, progress, desc, unit="episode")
    i = 0
    for e, seed in enumerate(iterator):
        ep = simulate(int(seed), spec, scene.config)
        episodes.append(ep)
        chunks, pads = action_chunks(ep.action, spec.chunk_size)
        for t in steps:
            frames = scene.render_all(ep.scene_state(t))
            for c in spec.cameras:
                images[c][i] = frames[c]
            state[i] = ep.state[t]
            chunk[i] = chunks[t]
            is_pad[i] = pads[t]
            episode_idx[i] = e
            step_idx[i] = t
            i += 1
    return FrameSet(images, state, chunk, is_pad, episode_idx, step_idx, episodes)


def compute_stats(frames: FrameSet, spec: KnownAnswerSpec) -> dict[str, dict[str, torch.Tensor]]:
    """LeRobot-style dataset stats (mean/std/min/max) of images, state and action from the training frames."""
    stats: dict[str, dict[str, torch.Tensor]] = {}
    for cam in spec.cameras:
        px = frames.images[cam][::4].reshape(-1, 3).astype(np.float64) / 255.0
        stats[CAMERA_PREFIX + cam] = {
            "mean": torch.tensor(px.mean(0), dtype=torch.float32).view(3, 1, 1),
            "std": torch.tensor(px.std(0), dtype=torch.float32).view(3, 1, 1),
            "min": torch.tensor(px.min(0), dtype=torch.float32).view(3, 1, 1),
            "max": torch.tensor(px.max(0), dtype=torch.float32).view(3, 1, 1),
        }
    valid_actions = frames.chunk[~frames.chunk_is_pad]  # (M, 6)
    for key, values in ((OBS_STATE, frames.state), (ACTION, valid_actions)):
        v = values.astype(np.float64)
        stats[key] = {
            "mean": torch.tensor(v.mean(0), dtype=torch.float32),
            # a joint that never moves (std 0) would divide by ~0: floor it at 1 policy unit
            "std": torch.tensor(np.maximum(v.std(0), 1.0), dtype=torch.float32),
            "min": torch.tensor(v.min(0), dtype=torch.float32),
            "max": torch.tensor(v.max(0), dtype=torch.float32),
        }
    return stats


def raw_batch(frames: FrameSet, idx: np.ndarray, spec: KnownAnswerSpec, with_action: bool = True) -> dict[str, torch.Tensor]:
    """Unnormalised batch for frames ``idx``: images (B, 3, H, W) in [0, 1], state, action chunk, is_pad."""
    batch: dict[str, torch.Tensor] = {
        CAMERA_PREFIX + c: torch.from_numpy(frames.images[c][idx]).permute(0, 3, 1, 2).float().div_(255.0)
        for c in spec.cameras
    }
    batch[OBS_STATE] = torch.from_numpy(frames.state[idx])
    if with_action:
        batch[ACTION] = torch.from_numpy(frames.chunk[idx])
        batch["action_is_pad"] = torch.from_numpy(frames.chunk_is_pad[idx])
    return batch


# --------------------------------------------------------------------------------------- training
def make_config(spec: KnownAnswerSpec):
    """``ACTConfig`` of the known-answer model (built through the engine's small-checkpoint factory)."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, make_act_config

    small = SmallACTSpec(
        cameras={k: tuple(spec.image_size) for k in spec.camera_keys},
        state_dim=6,
        action_dim=6,
        dim_model=spec.dim_model,
        n_heads=spec.n_heads,
        dim_feedforward=spec.dim_feedforward,
        n_encoder_layers=spec.n_encoder_layers,
        n_decoder_layers=spec.n_decoder_layers,
        chunk_size=spec.chunk_size,
        n_action_steps=spec.n_action_steps,
        seed=spec.seed,
    )
    config = make_act_config(small)
    config.use_vae = spec.use_vae
    config.dropout = spec.dropout
    config.optimizer_lr = spec.lr
    config.optimizer_lr_backbone = spec.lr_backbone
    config.optimizer_weight_decay = spec.weight_decay
    return config


@dataclass
class TrainResult:
    """A trained policy with its processors and the training record."""

    policy: Any
    preprocessor: Any
    postprocessor: Any
    losses: np.ndarray  # (train_steps,) training loss per step
    train_seconds: float
    data_seconds: float


def train(spec: KnownAnswerSpec, frames: FrameSet, progress: bool = True) -> TrainResult:
    """Train an ``ACTPolicy`` on ``frames`` (CPU, 2 threads, deterministic for a given spec)."""
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    t0 = time.perf_counter()
    config = make_config(spec)
    stats = compute_stats(frames, spec)
    torch.manual_seed(spec.seed)
    policy = ACTPolicy(config)
    preprocessor, postprocessor = make_pre_post_processors(config, dataset_stats=stats)
    optimizer_cfg = config.get_optimizer_preset()
    optimizer = optimizer_cfg.build(policy.get_optim_params())
    params = [p for p in policy.parameters() if p.requires_grad]
    rng = np.random.default_rng(spec.seed)
    losses = np.zeros(spec.train_steps, np.float32)
    policy.train()
    bar = _progress_bar(spec.train_steps, progress, "training known-answer ACT")
    log_every = max(1, spec.train_steps // 10)
    for step in range(spec.train_steps):
        idx = rng.integers(0, len(frames), spec.batch_size)
        batch = preprocessor(raw_batch(frames, idx, spec))
        loss, _ = policy.forward(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if optimizer_cfg.grad_clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, optimizer_cfg.grad_clip_norm)
        optimizer.step()
        losses[step] = float(loss.detach())
        if bar is not None:
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{losses[max(0, step - 49):step + 1].mean():.3f}")
        if (step + 1) % log_every == 0:
            logger.info(
                "step %d/%d  loss %.4f  (%.0f s)", step + 1, spec.train_steps,
                losses[max(0, step - log_every + 1):step + 1].mean(), time.perf_counter() - t0,
            )
    if bar is not None:
        bar.close()
    policy.eval()
    return TrainResult(policy, preprocessor, postprocessor, losses, time.perf_counter() - t0, 0.0)


# ------------------------------------------------------------------------------------------ utils
def _progress(items, enabled: bool, desc: str, unit: str):
    if not enabled:
        return items
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm ships with lerobot's dependencies
        return items
    return tqdm(items, desc=desc, unit=unit, leave=False)


def _progress_bar(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, desc=desc, unit="step")


__all__ = [
    "CAMERA_NAMES",
    "EVAL_SEED_BASE",
    "FrameSet",
    "KnownAnswerSpec",
    "TRAIN_SEED_BASE",
    "TrainResult",
    "action_chunks",
    "compute_stats",
    "make_config",
    "raw_batch",
    "render_frames",
    "simulate",
    "train",
]
