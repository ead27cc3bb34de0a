"""The known-answer model's cache: built once per machine, keyed by the source files that decide its weights
and by its hyperparameters."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


from act_interp_ros.proofs import model_metrics, training
from act_interp_ros.proofs.training import EVAL_SEED_BASE, TRAIN_SEED_BASE, KnownAnswerSpec

logger = logging.getLogger(__name__)


CACHE_ENV = "ACT_INTERP_CACHE"


DEFAULT_SPEC = KnownAnswerSpec()


METRICS_FILE = "metrics.json"


SPEC_FILE = "known_answer.json"


#: Seeds of the held-out episodes that measure the action error in ``metrics.json``.
METRICS_SEED_BASE = EVAL_SEED_BASE


#: :func:`evaluate_maps` seeds start here (disjoint from training and from the metrics episodes).
MAPS_SEED_BASE = 2 * EVAL_SEED_BASE


PACKAGE_DIR = Path(__file__).resolve().parents[1]


#: Source files whose bytes decide the trained weights (the cache key hashes them).
KEY_SOURCES = (
    "synthetic/__init__.py",
    "synthetic/arm.py",
    "synthetic/expert.py",
    "synthetic/scene.py",
    "synthetic/scene_state.py",
    "synthetic/cameras.py",
    "proofs/training.py",
    "proofs/model_metrics.py",  # the held-out metrics stored beside the weights
    "core/checkpoints.py",
)


# --------------------------------------------------------------------------------------------- cache
@dataclass(frozen=True)
class KnownAnswerModel:
    """A built known-answer model.

    Attributes:
        path: the LeRobot ``pretrained_model/`` directory (load it with ``InterpretableACT.from_pretrained``).
        metrics: contents of ``metrics.json`` (action error vs baselines, loss curve, timings).
        key: the cache key (directory name).
        built: True when this call trained it, False when it came from the cache.
    """

    path: Path
    metrics: dict[str, Any]
    key: str
    built: bool = False


def cache_root() -> Path:
    """``$ACT_INTERP_CACHE/known_answer`` or ``~/.cache/act_interp_ros/known_answer``."""
    base = os.environ.get(CACHE_ENV)
    root = Path(base).expanduser() if base else Path.home() / ".cache" / "act_interp_ros"
    return root / "known_answer"


def cache_key(spec: KnownAnswerSpec = DEFAULT_SPEC, sources: tuple[str, ...] = KEY_SOURCES) -> str:
    """16 hex digits: sha256 over the source files' bytes (paths relative to the package), the spec and
    the lerobot/torch versions."""
    import lerobot
    import torch

    h = hashlib.sha256()
    for rel in sources:
        path = PACKAGE_DIR / rel
        h.update(rel.encode())
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
    h.update(json.dumps(spec.to_json(), sort_keys=True).encode())
    h.update(f"lerobot={lerobot.__version__};torch={torch.__version__.split('+')[0]}".encode())
    return h.hexdigest()[:16]


def ensure_known_answer_model(
    progress: bool = True, spec: KnownAnswerSpec = DEFAULT_SPEC, cache_dir: str | os.PathLike[str] | None = None
) -> KnownAnswerModel:
    """Return the cached known-answer model, training it first if this machine has none.

    Concurrent callers (a test run and the demo) wait on a lock file instead of training twice; the
    directory appears atomically (built in a temporary directory, then renamed).

    Args:
        progress: show tqdm bars (rendering, training) and log progress.
        spec: hyperparameters; the default is the model the tests and the demo use.
        cache_dir: override of :func:`cache_root`.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    key = cache_key(spec)
    final, built = build_once(
        root, key, lambda out: build_known_answer_model(out, spec, progress=progress, key=key),
        what="the known-answer model")
    return _load(final, key, built=built)


def build_once(root: Path, key: str, build: Callable[[Path], Any], what: str = "the model") -> tuple[Path, bool]:
    """``root/key``, running ``build(directory)`` first unless a complete build is already there.

    A build is complete when it holds ``pretrained_model/model.safetensors`` and ``metrics.json``.
    Concurrent callers wait on ``root/key.lock`` instead of building twice; the directory appears
    atomically (built in a temporary directory, then renamed). Returns (directory, built by this call).
    """
    final = root / key
    if _complete(final):
        return final, False
    root.mkdir(parents=True, exist_ok=True)
    with file_lock(root / f"{key}.lock"):
        if _complete(final):  # built by another process while we waited
            return final, False
        logger.info("building %s %s in %s (a few minutes on a 2-core CPU)", what, key, final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            build(tmp)
            if final.exists():  # an incomplete leftover (e.g. a killed run): replace it
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return final, True


def build_known_answer_model(
    out_dir: str | os.PathLike[str], spec: KnownAnswerSpec = DEFAULT_SPEC, progress: bool = True, key: str | None = None
) -> dict[str, Any]:
    """Render episodes, train, evaluate the action error and write ``out_dir/{pretrained_model, metrics.json}``.

    Returns the metrics dict.
    """
    out = Path(out_dir)
    with deterministic_torch(threads=2):
        t0 = time.perf_counter()
        train_seeds = [TRAIN_SEED_BASE + i for i in range(spec.n_train_episodes)]
        frames = training.render_frames(train_seeds, spec, progress=progress, desc="rendering training episodes")
        data_s = time.perf_counter() - t0
        logger.info("rendered %d training frames from %d episodes in %.0f s", len(frames), len(train_seeds), data_s)
        result = training.train(spec, frames, progress=progress)
        t1 = time.perf_counter()
        eval_seeds = [METRICS_SEED_BASE + i for i in range(spec.n_eval_episodes)]
        held_out = training.render_frames(eval_seeds, spec, progress=False)
        predicted = model_metrics.predict_chunks(result.policy, result.preprocessor, result.postprocessor, held_out, spec)
        from act_interp_ros.synthetic import JOINT_NAMES

        errors = model_metrics.action_error_metrics(predicted, held_out, frames.action.mean(0), JOINT_NAMES)
        eval_s = time.perf_counter() - t1
    return save_build(out, result, spec, key, errors, len(frames), (data_s, eval_s, t0), what="known-answer model")


def training_environment() -> dict[str, Any]:
    """What decides the trained weights besides the code and spec: library versions, CPU, torch threads."""
    import importlib.metadata
    import platform

    import torch

    cpu = ""
    try:
        cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                    if line.startswith("model name")), "")
    except OSError:
        pass
    return {"lerobot": importlib.metadata.version("lerobot"), "torch": torch.__version__,
            "python": platform.python_version(), "cpu": cpu or platform.processor(), "torch_threads": 2,
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def save_build(
    out: Path, result: training.TrainResult, spec: KnownAnswerSpec, key: str | None, errors: dict[str, Any],
    n_training_frames: int, timings: tuple[float, float, float], what: str = "model", **extra: Any,
) -> dict[str, Any]:
    """Write ``out/pretrained_model`` (LeRobot ``save_pretrained``), ``metrics.json`` and the spec file.

    Args:
        errors: :func:`model_metrics.action_error_metrics` on the held-out frames.
        timings: (render seconds, evaluation seconds, ``time.perf_counter()`` at the build's start).
        **extra: more top-level ``metrics.json`` entries.
    Returns the metrics dict.
    """
    from act_interp_ros.core.checkpoints import save_checkpoint

    data_s, eval_s, t0 = timings
    save_checkpoint(out / "pretrained_model", result.policy, result.preprocessor, result.postprocessor)
    metrics = {
        "key": key,
        "spec": spec.to_json(),
        # CPU training is deterministic on one machine but not across machines: compare this hash to tell
        "weights_sha256": hashlib.sha256((out / "pretrained_model" / "model.safetensors").read_bytes()).hexdigest(),
        "trained_with": training_environment(),
        **extra,
        "units": "policy units (degrees; gripper 0..100)",
        "held_out_action_error": errors,
        "training_loss": model_metrics.loss_summary(result.losses),
        "n_training_frames": n_training_frames,
        "seconds": {
            "render": round(data_s, 1),
            "train": round(result.train_seconds, 1),
            "evaluate": round(eval_s, 1),
            "total": round(time.perf_counter() - t0, 1),
        },
    }
    (out / METRICS_FILE).write_text(json.dumps(metrics, indent=2))
    (out / SPEC_FILE).write_text(json.dumps({"key": key, "spec": spec.to_json()}, indent=2))
    chunk = errors["chunk"]
    logger.info(
        "%s: held-out chunk MAE %.2f vs mean-action baseline %.2f and hold-state baseline "
        "%.2f (policy units); training %.0f s", what, chunk["model"]["overall"],
        chunk["mean_action_baseline"]["overall"], chunk["hold_state_baseline"]["overall"], result.train_seconds,
    )
    return metrics


@contextlib.contextmanager
def deterministic_torch(threads: int = 2):
    """Within the block: ``threads`` torch threads and deterministic algorithms (both restored after)."""
    import torch

    before = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        torch.use_deterministic_algorithms(before[1])


def _complete(d: Path) -> bool:
    return (d / "pretrained_model" / "model.safetensors").is_file() and (d / METRICS_FILE).is_file()


def _load(d: Path, key: str, built: bool) -> KnownAnswerModel:
    return KnownAnswerModel(d / "pretrained_model", json.loads((d / METRICS_FILE).read_text()), key, built)


@contextlib.contextmanager
def file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no cross-process lock
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
