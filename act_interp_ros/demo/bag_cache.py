"""The demo's synthetic SO-101 bag, written once per layout and cached (``$ACT_INTERP_CACHE/demo_bags``).

Held-out scene seeds (``DEMO_SEED_BASE`` ...), front + wrist 480x640 rgb8 images and /joint_states at 30 Hz,
mcap, ~3 s pick episodes back to back. The cache key hashes the layout and the generator's source files; the
three most recently used bags are kept.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

#: Each bag episode is this long: approach, descend, grasp, lift, carry (the phases the model learned).
EPISODE_SECONDS = 3.0
FPS = 30.0
IMAGE_SIZE = (480, 640)
#: Scene seeds of the demo bag: disjoint from training (0...), metrics (1e6...) and map tests (2e6...).
DEMO_SEED_BASE = 3_000_000
#: Files whose bytes decide the demo bag (its cache key hashes them).
BAG_KEY_SOURCES = ("synthetic/__init__.py", "synthetic/arm.py", "synthetic/expert.py", "synthetic/scene.py",
                   "synthetic/scene_state.py", "synthetic/cameras.py",
                   "bag/synthetic_bag.py")
BAG_CACHE_KEEP = 3
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _tqdm(enabled: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, dynamic_ncols=True, **kwargs)


@dataclass(frozen=True)
class DemoBag:
    path: Path
    seed: int
    n_episodes: int
    n_frames: int
    fps: float
    image_size: tuple[int, int]
    start_ns: int
    built: bool

    @property
    def seconds(self) -> float:
        return self.n_episodes * self.n_frames / self.fps


def bag_layout(seconds: float) -> tuple[int, int]:
    """(episodes, frames per episode) for a bag of about ``seconds``: ~3 s pick episodes back to back."""
    n_episodes = max(1, int(round(seconds / EPISODE_SECONDS)))
    n_frames = max(2, int(round(seconds * FPS / n_episodes)))
    return n_episodes, n_frames


def bag_cache_root() -> Path:
    from act_interp_ros.proofs.model_cache import cache_root

    return cache_root().parent / "demo_bags"


def ensure_demo_bag(seconds: float, *, rebuild: bool = False, progress: bool = True) -> DemoBag:
    """Return the cached demo bag for ``seconds`` (written first when missing or ``rebuild``)."""
    from act_interp_ros.bag.synthetic_bag import DEFAULT_START_NS, write_synthetic_bag
    from act_interp_ros.proofs.model_cache import file_lock

    n_episodes, n_frames = bag_layout(seconds)
    spec = {"seed": DEMO_SEED_BASE, "n_episodes": n_episodes, "n_frames": n_frames, "fps": FPS,
            "image_size": list(IMAGE_SIZE), "storage": "mcap", "compressed": False, "start_ns": DEFAULT_START_NS}
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    for rel in BAG_KEY_SOURCES:
        h.update(rel.encode())
        h.update((_PACKAGE_DIR / rel).read_bytes())
    key = h.hexdigest()[:16]
    root = bag_cache_root()
    final = root / key
    marker = final / "demo_bag.json"

    def result(built: bool) -> DemoBag:
        os.utime(marker)  # least recently used eviction
        return DemoBag(final / "bag", DEMO_SEED_BASE, n_episodes, n_frames, FPS, IMAGE_SIZE, DEFAULT_START_NS, built)

    if marker.is_file() and not rebuild:
        return result(False)
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f"{key}.lock"):
        if marker.is_file() and not rebuild:
            return result(False)
        total = n_episodes * n_frames
        logger.info("writing the demo bag (%d episode(s) x %d frames, front + wrist %dx%d rgb8 + /joint_states, "
                    "30 Hz, mcap) to %s", n_episodes, n_frames, IMAGE_SIZE[1], IMAGE_SIZE[0], final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            with _tqdm(progress, total=total, desc="demo bag", unit="frame") as bar:
                write_synthetic_bag(tmp / "bag", storage="mcap", compressed=False, n_frames=n_frames,
                                    image_size=IMAGE_SIZE, seed=DEMO_SEED_BASE, n_episodes=n_episodes, fps=FPS,
                                    start_time_ns=DEFAULT_START_NS, progress=lambda n: bar.update(1))
            (tmp / "demo_bag.json").write_text(json.dumps({"key": key, **spec}, indent=2))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _evict_old_bags(root, keep=BAG_CACHE_KEEP)
    return result(True)


def _evict_old_bags(root: Path, keep: int) -> None:
    bags = sorted((d for d in root.iterdir() if (d / "demo_bag.json").is_file()),
                  key=lambda d: (d / "demo_bag.json").stat().st_mtime, reverse=True)
    for old in bags[keep:]:
        logger.info("removing the old demo bag %s", old)
        shutil.rmtree(old, ignore_errors=True)
