"""An ACT trained on the simulator's expert demonstrations, cached like the project's other trained models.

The demonstrations are recorded as a LeRobotDataset (:mod:`.recording`) and read back through
``LeRobotDataset`` (as ``lerobot-train`` would read them: decoded video frames); training is the project's
(:func:`act_interp_ros.proofs.training.train`: LeRobot's ``ACTPolicy``, ``make_pre_post_processors`` with the
dataset's stats, the optimiser preset of ``ACTConfig``, gradient clipping), on 2 CPU threads, deterministic.

Cache: ``$ACT_INTERP_CACHE/sim/<key>`` or ``~/.cache/act_interp_ros/sim/<key>`` with ``pretrained_model/``,
``metrics.json`` (costs, loss) and the dataset; ``key`` hashes the files that decide the weights and the spec.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

__all__ = ["SimModelSpec", "ensure_sim_policy", "sim_cache_key"]

logger = logging.getLogger(__name__)
PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: source files whose bytes decide the trained weights
KEY_SOURCES = ("sim/scene.py", "sim/units.py", "sim/simulator.py", "sim/expert.py", "sim/episodes.py",
               "sim/recording.py", "sim/training.py", "dataset/synthetic.py", "proofs/training.py",
               "core/checkpoints.py")


@dataclass(frozen=True)
class SimModelSpec:
    """Demonstrations and model of the sim ACT (every field enters the cache key).

    n_demos: successful expert episodes (seeds from 0). The model fields are ``KnownAnswerSpec``'s.
    """

    n_demos: int = 40
    chunk_size: int = 20
    n_action_steps: int = 10
    dim_model: int = 64
    n_heads: int = 4
    dim_feedforward: int = 128
    n_encoder_layers: int = 1
    n_decoder_layers: int = 1
    batch_size: int = 8
    train_steps: int = 3000  # a 2-core CPU budget: far from a converged ACT (LeRobot's default is 100,000)
    lr: float = 1e-4
    lr_backbone: float = 1e-4
    seed: int = 0

    def training_spec(self, image_size: tuple[int, int]):
        from act_interp_ros.proofs.training import KnownAnswerSpec

        return KnownAnswerSpec(
            image_size=tuple(image_size), cameras=("front", "wrist"), chunk_size=self.chunk_size,
            n_action_steps=self.n_action_steps, dim_model=self.dim_model, n_heads=self.n_heads,
            dim_feedforward=self.dim_feedforward, n_encoder_layers=self.n_encoder_layers,
            n_decoder_layers=self.n_decoder_layers, batch_size=self.batch_size, train_steps=self.train_steps,
            lr=self.lr, lr_backbone=self.lr_backbone, seed=self.seed)


def cache_root() -> Path:
    base = os.environ.get("ACT_INTERP_CACHE")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "act_interp_ros") / "sim"


def sim_cache_key(spec: SimModelSpec) -> str:
    """16 hex digits over the source files, the spec and the mujoco/so101-nexus/lerobot/torch versions."""
    import importlib.metadata as md

    h = hashlib.sha256()
    for rel in KEY_SOURCES:
        h.update(rel.encode())
        h.update((PACKAGE_DIR / rel).read_bytes())
    h.update(json.dumps(asdict(spec), sort_keys=True).encode())
    for dist in ("mujoco", "so101-nexus", "lerobot", "torch"):
        h.update(f"{dist}={md.version(dist)};".encode())
    return h.hexdigest()[:16]


def frames_from_dataset(root: Path, repo_id: str, tspec):
    """The dataset read back through ``LeRobotDataset`` as the training code's ``FrameSet``."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset
    from lerobot.utils.constants import ACTION, OBS_IMAGES, OBS_STATE

    from act_interp_ros.proofs.training import FrameSet, action_chunks

    ds = LeRobotDataset(repo_id, root=root, video_backend="pyav")
    n = ds.num_frames
    h, w = tspec.image_size
    images = {c: np.empty((n, h, w, 3), np.uint8) for c in tspec.cameras}
    state = np.empty((n, 6), np.float32)
    action = np.empty((n, 6), np.float32)
    episode = np.empty(n, np.int64)
    step = np.empty(n, np.int64)
    for i in range(n):
        item = ds[i]
        for c in tspec.cameras:
            images[c][i] = (item[f"{OBS_IMAGES}.{c}"].permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        state[i], action[i] = item[OBS_STATE].numpy(), item[ACTION].numpy()
        episode[i], step[i] = int(item["episode_index"]), int(item["frame_index"])
    chunk = np.empty((n, tspec.chunk_size, 6), np.float32)
    is_pad = np.empty((n, tspec.chunk_size), bool)
    for e in np.unique(episode):
        rows = np.flatnonzero(episode == e)
        rows = rows[np.argsort(step[rows])]
        chunk[rows], is_pad[rows] = action_chunks(action[rows], tspec.chunk_size)
    return FrameSet(images, state, chunk, is_pad, episode, step)


def build_sim_model(out: Path, spec: SimModelSpec, progress: bool = False) -> dict:
    """Record the demonstrations, train, save ``out/{dataset, pretrained_model, metrics.json}``."""
    from act_interp_ros.core.checkpoints import save_checkpoint
    from act_interp_ros.proofs.model_cache import deterministic_torch, training_environment
    from act_interp_ros.proofs.model_metrics import loss_summary
    from act_interp_ros.proofs.training import train
    from act_interp_ros.sim.recording import record_expert_dataset
    from act_interp_ros.sim.scene import SimConfig

    t0 = time.perf_counter()
    config = SimConfig()
    ds = record_expert_dataset(out / "dataset", spec.n_demos, seed=0, config=config)
    record_s = time.perf_counter() - t0
    tspec = spec.training_spec(config.image_size)
    with deterministic_torch(threads=2):
        t1 = time.perf_counter()
        frames = frames_from_dataset(ds.root, ds.repo_id, tspec)
        read_s = time.perf_counter() - t1
        logger.info("sim ACT: %d frames of %d demonstrations (recorded in %.0f s, read back in %.0f s)", len(frames),
                    len(ds.episodes), record_s, read_s)
        result = train(tspec, frames, progress=progress)
    save_checkpoint(out / "pretrained_model", result.policy, result.preprocessor, result.postprocessor)
    metrics = {"spec": asdict(spec), "sim_config": asdict(config), "trained_with": training_environment(),
               "n_training_frames": len(frames), "demo_seeds": [e.seed for e in ds.episodes],
               "expert_failed_seeds": ds.failed_seeds, "training_loss": loss_summary(result.losses),
               "seconds": {"record": round(record_s, 1), "read_dataset": round(read_s, 1),
                           "train": round(result.train_seconds, 1), "total": round(time.perf_counter() - t0, 1)}}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def ensure_sim_policy(spec: SimModelSpec = SimModelSpec(), progress: bool = False) -> tuple[Path, dict]:
    """(``pretrained_model`` directory, metrics) of the cached sim ACT, built first where missing (a lock file
    makes concurrent callers wait instead of building twice)."""
    from act_interp_ros.proofs.model_cache import build_once

    key = sim_cache_key(spec)
    final, _ = build_once(cache_root(), key, lambda out: build_sim_model(out, spec, progress), what="the sim ACT")
    return final / "pretrained_model", json.loads((final / "metrics.json").read_text())
