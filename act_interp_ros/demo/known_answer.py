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
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from act_interp_ros.demo import training
from act_interp_ros.demo.training import EVAL_SEED_BASE, TRAIN_SEED_BASE, KnownAnswerSpec

logger = logging.getLogger(__name__)

CACHE_ENV = "ACT_INTERP_CACHE"
DEFAULT_SPEC = KnownAnswerSpec()
METRICS_FILE = "metrics.json"
SPEC_FILE = "known_answer.json"
#: Seeds of the held-out episodes that measure the action error in ``metrics.json``.
METRICS_SEED_BASE = EVAL_SEED_BASE
#: :func:`evaluate_maps` seeds start here (disjoint from training and from the metrics episodes).
MAPS_SEED_BASE = 2 * EVAL_SEED_BASE

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
#: Source files whose bytes decide the trained weights (the cache key hashes them).
KEY_SOURCES = (
    "synthetic/__init__.py",
    "synthetic/arm.py",
    "synthetic/expert.py",
    "synthetic/scene.py",
    "demo/training.py",
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
        path = _PACKAGE_DIR / rel
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
    with _lock(root / f"{key}.lock"):
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
        predicted = training.predict_chunks(result.policy, result.preprocessor, result.postprocessor, held_out, spec)
        from act_interp_ros.synthetic import JOINT_NAMES

        errors = training.action_error_metrics(predicted, held_out, frames.action.mean(0), JOINT_NAMES)
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
        errors: :func:`training.action_error_metrics` on the held-out frames.
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
        "training_loss": training.loss_summary(result.losses),
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
def _lock(path: Path):
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


# ------------------------------------------------------------------------------------- map scoring
def object_coverage(mask: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(H, W) bool mask -> (h, w) float fraction of each token cell covered by the object (area downsampling)."""
    import cv2

    h, w = grid
    return cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA).astype(np.float64)


def map_mass(saliency: np.ndarray, coverage: np.ndarray) -> float:
    """Share of a non-negative (h, w) map inside the region given by per-cell ``coverage`` (0 when the map is 0)."""
    m = np.clip(saliency.astype(np.float64), 0.0, None)
    total = m.sum()
    return float((m * coverage).sum() / total) if total > 0 else 0.0


def rankdata(x: np.ndarray) -> np.ndarray:
    """Average ranks (1..n, ties share the mean rank), like ``scipy.stats.rankdata``."""
    x = np.asarray(x, dtype=np.float64).ravel()
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    sorted_x = x[order]
    boundaries = np.concatenate([[0], np.nonzero(np.diff(sorted_x))[0] + 1, [len(x)]])
    for a, b in zip(boundaries[:-1], boundaries[1:]):
        ranks[order[a:b]] = 0.5 * (a + b - 1) + 1.0
    return ranks


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two equally sized arrays; NaN when either is constant."""
    ra, rb = rankdata(a), rankdata(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


@dataclass
class MapScores:
    """Scores of one method (``attention`` | ``gradcam``) on one camera over the held-out frames.

    Attributes:
        n_frames: frames in which the target is in view (used for the mass numbers).
        target_mass: mean share of the map inside the target.
        uniform_mass: mean target area fraction (what a uniform map gives).
        ratio_vs_uniform: ``target_mass / uniform_mass`` (ratio of the means).
        median_frame_ratio: median over frames of the per-frame ratio.
        distractor_mass: mean share inside the distractor (frames where it is in view).
        n_pairs: frames in which both cubes are in view.
        target_beats_distractor: fraction of those frames with target mass > distractor mass.
        rank_corr_random: mean per-frame Spearman correlation between the trained model's map and the
            random-weights model's map (frames where both maps are non-constant).
        n_rank: number of frames that entered ``rank_corr_random``.
    """

    method: str
    camera: str
    n_frames: int
    target_mass: float
    uniform_mass: float
    ratio_vs_uniform: float
    median_frame_ratio: float
    distractor_mass: float
    n_pairs: int
    target_beats_distractor: float
    rank_corr_random: float
    n_rank: int
    resolution: str = "token"
    faithfulness_ratio: float = float("nan")
    faithfulness_median_frame_ratio: float = float("nan")
    deletion_top: list[float] = field(default_factory=list)
    deletion_random: list[float] = field(default_factory=list)
    n_faithfulness: int = 0


@dataclass
class MapEvaluation:
    """Result of :func:`evaluate_maps`: one :class:`MapScores` per (method, camera).

    ``targets``: method -> the action target its maps explain; ``deletion_fractions`` / ``deletion_cell``:
    the deletion test's settings (empty / 0 when it was not run); ``occlusion_window``: (patch, stride)
    per camera when occlusion was scored.
    """

    scores: list[MapScores]
    n_frames: int
    seeds: list[int]
    steps: list[int]
    grid: dict[str, tuple[int, int]]
    gradcam_target: str
    gradcam_layer: str = "layer4"
    region: str = "object silhouette downsampled to the token grid by area (cv2.INTER_AREA)"
    extra: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, str] = field(default_factory=dict)
    deletion_fractions: list[float] = field(default_factory=list)
    deletion_cell: int = 0
    deletion_random_draws: int = 0
    occlusion_window: dict[str, tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MapEvaluation:
        """Inverse of :meth:`as_dict` (JSON round trip; tuples come back as lists where JSON has no tuple)."""
        fields = dict(data)
        fields["scores"] = [MapScores(**score) for score in data["scores"]]
        fields["grid"] = {k: tuple(v) for k, v in data["grid"].items()}
        fields["occlusion_window"] = {k: tuple(v) for k, v in data.get("occlusion_window", {}).items()}
        return cls(**fields)

    def get(self, method: str, camera: str) -> MapScores:
        for s in self.scores:
            if s.method == method and s.camera == camera:
                return s
        raise KeyError(f"no scores for method={method!r} camera={camera!r}; have {[(s.method, s.camera) for s in self.scores]}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def table(self) -> str:
        """Markdown table of the numbers (for test output and the README)."""
        rows = [
            "| map | resolution | camera | target mass | uniform | ratio vs uniform | target > distractor "
            "| rank corr. vs random weights | faithfulness (deletion AUC top / random) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for s in self.scores:
            faith = f"{s.faithfulness_ratio:.2f}x ({s.n_faithfulness} frames)" if s.n_faithfulness else "-"
            rows.append(
                f"| {s.method} | {s.resolution} | {s.camera} | {s.target_mass:.3f} | {s.uniform_mass:.3f} "
                f"| {s.ratio_vs_uniform:.2f}x | {100 * s.target_beats_distractor:.0f}% ({s.n_pairs} frames) "
                f"| {s.rank_corr_random:+.2f} | {faith} |"
            )
        return "\n".join(rows)

    def deletion_table(self) -> str:
        """Markdown table of the mean deletion curves (change of the executed chunk, normalised units)."""
        if not self.deletion_fractions:
            return "(deletion test not run)"
        ks = " | ".join(f"{100 * k:g} %" for k in self.deletion_fractions)
        rows = [f"| map | camera | curve | {ks} |", "|---|---|---|" + "---|" * len(self.deletion_fractions)]
        for s in self.scores:
            if not s.n_faithfulness:
                continue
            for name, curve in (("top cells", s.deletion_top), ("random cells", s.deletion_random)):
                rows.append(f"| {s.method} | {s.camera} | {name} | " + " | ".join(f"{v:.3f}" for v in curve) + " |")
        return "\n".join(rows)


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
    deletion_random_draws: int = 8, occlusion_fill: float | str = 0.0,
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
    """
    import torch
    from lerobot.policies.act.modeling_act import ACTPolicy

    from act_interp_ros.core import GradCAMTarget

    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"unknown map method(s) {unknown or list(methods)}; expected a subset of {', '.join(METHODS)}")
    methods = tuple(m for m in METHODS if m in methods)
    target = gradcam_target if gradcam_target is not None else GradCAMTarget()
    spec = _spec_of(policy)
    cams = list(spec.cameras)
    frames = _approach_frames(spec, n_frames, seed)
    makers = _map_makers(methods, target, gradcam_layer, attribution_target, occlusion_patch, occlusion_stride,
                         occlusion_fill)

    torch.manual_seed(random_seed)
    random_policy = ACTPolicy(policy.config)
    random_policy.eval()
    trained_maps = _maps(policy, preprocessor, frames, spec, makers)
    random_maps = _maps(random_policy, preprocessor, frames, spec, makers)
    deletion = (
        _deletion(policy, preprocessor, frames, spec, trained_maps, deletion_random_draws) if faithfulness else {}
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
    )


@dataclass
class InterventionEffect:
    """How much the predicted action chunk moves when one cube is moved (the model's causal known answer).

    Attributes:
        n_frames: held-out approach-phase frames.
        target_moved: mean |chunk change| (policy units: deg, gripper 0..100) when only the target cube is
            moved to another held-out layout's target pose (joint state and distractor unchanged).
        distractor_moved: the same when only the distractor is moved.
        ratio: ``target_moved / distractor_moved``.
    """

    n_frames: int
    target_moved: float
    distractor_moved: float
    ratio: float


def intervention_effect(model_path: str | os.PathLike[str], n_frames: int = 32, seed: int = 0) -> InterventionEffect:
    """Move one cube at a time in held-out frames and measure how much the model's action chunk changes.

    This checks the *model* against the known answer before its maps are judged: the expert's actions
    depend on the target only, so a model that learned the task moves its chunk when the target moves and
    barely when the distractor moves. Each frame's cube is moved to the pose that cube has in another
    held-out frame, chosen so that the moved cube stays ``min_cube_distance`` away from the other cube.
    """
    from dataclasses import replace

    from act_interp_ros.core import InterpretableACT
    from act_interp_ros.synthetic import SyntheticScene

    wrapped = InterpretableACT.from_pretrained(os.fspath(model_path), device="cpu")
    try:
        policy, pre, post = wrapped.policy, wrapped.preprocessor, wrapped.postprocessor
        spec = _spec_of(policy)
        cams = list(spec.cameras)
        frames = _approach_frames(spec, n_frames, seed)
        scene = SyntheticScene(spec.scene_config())
        states = [frames.episodes[i].scene_state(int(frames.step[i])) for i in range(len(frames))]
        base = training.predict_chunks(policy, pre, post, frames, spec)  # (N, chunk, 6)
        effects = {}
        for moved, kept in (("target", "distractor"), ("distractor", "target")):
            images = {c: np.empty_like(frames.images[c]) for c in cams}
            for i, st in enumerate(states):
                other = _donor(states, i, moved, kept, spec.min_cube_distance)
                new = replace(st, **{moved: getattr(states[other], moved)})
                for c in cams:
                    images[c][i] = scene.render(new, c)
            changed = replace(frames, images=images)
            chunks = training.predict_chunks(policy, pre, post, changed, spec)
            effects[moved] = float(np.abs(chunks - base).mean())
    finally:
        wrapped.close()
    return InterventionEffect(
        n_frames=len(frames), target_moved=effects["target"], distractor_moved=effects["distractor"],
        ratio=effects["target"] / max(effects["distractor"], 1e-9),
    )


#: Source files whose bytes decide the map evaluation's numbers (its cache key hashes them).
EVALUATION_SOURCES = ("demo/known_answer.py", "core/attention.py", "core/gradcam.py", "core/attribution.py",
                      "core/action_targets.py", "core/faithfulness.py", "core/interpretable_policy.py")


#: The evaluation the README, the demo summary and the known-answer test report (one cached computation).
STANDARD_EVALUATION: dict[str, Any] = {
    "n_frames": 64, "seed": 0, "methods": ("attention", "attention_executed", "gradcam", "gradient_x_input"),
    "deletion_random_draws": 4,
}


def cached_map_evaluation(model: KnownAnswerModel, **kwargs: Any) -> MapEvaluation:
    """:func:`evaluate_maps` of ``model``, computed once per model, arguments and evaluation code.

    The result is stored as JSON beside the checkpoint (``maps-<key>.json``); the demo and the known-answer
    test share it, so the evaluation (about a minute on 2 cores) runs once per machine.
    """
    h = hashlib.sha256(json.dumps(kwargs, sort_keys=True, default=str).encode())
    for rel in EVALUATION_SOURCES:
        h.update(rel.encode())
        h.update((_PACKAGE_DIR / rel).read_bytes())
    path = model.path.parent / f"maps-{h.hexdigest()[:16]}.json"
    if path.is_file():
        try:
            return MapEvaluation.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("ignoring the unreadable cached map evaluation %s (%s)", path, exc)
    evaluation = evaluate_maps(model.path, **kwargs)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(evaluation.as_dict(), default=str))
    os.replace(tmp, path)
    return evaluation


def _spec_of(policy) -> KnownAnswerSpec:
    """The scene/data part of the spec a known-answer policy was trained with (cameras, image size, chunk)."""
    sizes = {tuple(f.shape[-2:]) for f in policy.config.image_features.values()}
    if len(sizes) != 1:
        raise ValueError(f"known-answer evaluation expects one image size for all cameras, got {sizes}")
    cams = tuple(k[len(training.CAMERA_PREFIX):] for k in policy.config.image_features)
    return KnownAnswerSpec(image_size=sizes.pop(), cameras=cams, chunk_size=policy.config.chunk_size)


def _donor(states: list, i: int, moved: str, kept: str, min_distance: float) -> int:
    """Index of the next frame whose ``moved`` cube lies ``min_distance`` (xy) away from frame i's ``kept`` cube."""
    anchor = getattr(states[i], kept).center[:2]
    for k in range(1, len(states)):
        j = (i + k) % len(states)
        if np.linalg.norm(getattr(states[j], moved).center[:2] - anchor) >= min_distance:
            return j
    raise ValueError("no held-out frame places the moved cube away from the other one; use more frames")


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def _approach_frames(spec: KnownAnswerSpec, n_frames: int, seed: int) -> training.FrameSet:
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
class _Maker:
    """How to build one method's maps: ``make(policy)`` -> an object with ``attribute(batch, target)`` / ``close()``."""

    make: Any
    target: Any
    window: dict[str, tuple[int, int]] = field(default_factory=dict)


def _map_makers(methods, gradcam_target, gradcam_layer: str, attribution_target, occlusion_patch, occlusion_stride,
                occlusion_fill=0.0):
    from act_interp_ros.core import (
        DEFAULT_GRADIENT_TARGET,
        DEFAULT_PERTURBATION_TARGET,
        GradCAM,
        PixelGradientXInput,
        PixelIntegratedGradients,
        PixelOcclusion,
    )

    makers: dict[str, _Maker] = {}
    for m in methods:
        if m == "attention":
            makers[m] = _Maker(None, "decoder cross-attention (mean over heads and queries)")
        elif m == "attention_executed":
            makers[m] = _Maker(None, "decoder cross-attention (mean over heads and the executed queries)")
        elif m == "gradcam":
            makers[m] = _Maker(lambda p: GradCAM(p, target_layer=gradcam_layer), gradcam_target)
        elif m == "gradient_x_input":
            makers[m] = _Maker(PixelGradientXInput, attribution_target or DEFAULT_GRADIENT_TARGET)
        elif m == "integrated_gradients":
            makers[m] = _Maker(PixelIntegratedGradients, attribution_target or DEFAULT_GRADIENT_TARGET)
        elif m == "occlusion":
            maker = _Maker(lambda p: PixelOcclusion(p, patch=occlusion_patch, stride=occlusion_stride,
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


def _maps(policy, preprocessor, frames: training.FrameSet, spec: KnownAnswerSpec, makers: dict[str, _Maker],
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


def _deletion(policy, preprocessor, frames: training.FrameSet, spec: KnownAnswerSpec, maps, random_draws: int,
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


__all__ = [
    "CACHE_ENV",
    "DEFAULT_METHODS",
    "DEFAULT_SPEC",
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
    "spearman",
]
