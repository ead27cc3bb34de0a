"""What each model of the shortcut pair uses, established by intervention, and whether the maps say so.

On held-out approach-phase frames (episodes never used in training, the shadow at its training offset: in
distribution for both models):

* **intervention**: move only the shadow (the cube stays), and move only the cube (the shadow stays), each to
  where another held-out layout puts it (at least :data:`MIN_MOVE` m away), and measure the mean absolute
  change of the predicted chunk (policy units). A model follows what moves its chunk more.
* **the light moves**: on the shadow-moved frames, where does the chunk head? Its end point (the last
  action's tool centre point, forward kinematics, on the table plane) is compared with the cube and with
  the position the shadow implies (shadow minus the training offset: where the cube would be).
* **maps**: each method's mass on the shadow's footprint against its mass on the cube's silhouette, per frame
  (pixel maps at pixel resolution, token maps on the token grid by area, as
  :mod:`act_interp_ros.proofs.map_scores`), on the in-distribution frames and on the shadow-moved frames;
  and the deletion test's faithfulness ratio on the in-distribution frames.

:func:`cached_shortcut_evaluation` stores the result beside the checkpoint (one computation per machine, shared
by the tests and the demo).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from act_interp_ros.proofs import model_metrics
from act_interp_ros.proofs.map_evaluation import (
    PIXEL_METHODS,
    deletion_results,
    map_makers,
    policy_maps,
)
from act_interp_ros.proofs.map_baselines import replace_maps
from act_interp_ros.proofs.map_scores import map_mass, object_coverage
from act_interp_ros.proofs.model_cache import KnownAnswerModel
from act_interp_ros.proofs.result_cache import cached_result, import_closure
from act_interp_ros.proofs.shortcut_model import (
    EVALUATION_SEED_BASE,
    CueFrameSet,
    ShortcutSpec,
    episode_cue,
    render_cue_frames,
)
from act_interp_ros.synthetic import PHASES, forward_kinematics
from act_interp_ros.synthetic.shortcut_scene import ShortcutScene

#: metres: an intervention moves the shadow or the cube at least this far ...
MIN_MOVE = 0.06
#: ... and keeps the shadow's centre this far from the cube's (their footprints do not overlap).
MIN_GAP = 0.085
#: Map methods scored by default (occlusion costs ~300 forwards per frame at 96x128; it runs offline).
METHODS = ("attention", "gradcam", "gradient_x_input", "occlusion")
#: The evaluation the tests, the demo and the README report (one cached computation per model).
#: Occlusion uses 12 px patches at stride 12 (88 forwards per frame at 96x128, against 315 at the default
#: stride 6).
STANDARD_SHORTCUT_EVALUATION: dict[str, Any] = {"n_frames": 48, "seed": 0, "methods": METHODS,
                                                "deletion_random_draws": 4, "occlusion_patch": 12,
                                                "occlusion_stride": 12}
#: Source files whose bytes decide this evaluation's numbers (its cache key hashes them): this module's import
#: closure inside the package.
SHORTCUT_EVALUATION_SOURCES = import_closure(__name__)
#: The same evaluation of the baseline maps (``baseline="uniform"`` | ``"random"``): the pixel maps the suite's
#: criteria judge (occlusion's maps are pixel maps like gradient x input's).
BASELINE_SHORTCUT_EVALUATION: dict[str, Any] = {**STANDARD_SHORTCUT_EVALUATION, "methods": ("gradient_x_input",)}


@dataclass
class MapContrast:
    """One map method on a set of frames: its mass on the shadow against its mass on the cube.

    Attributes:
        cue_mass / cube_mass: mean share of the (non-negative) map inside the shadow's footprint / the cube.
        cue_area / cube_area: mean area fraction of each (what a uniform map gives).
        cue_beats_cube: share of frames whose map has more mass on the shadow than on the cube (the issue's
            criterion).
        cue_beats_cube_per_area: share of frames whose map is denser (mass per unit area) on the shadow than on
            the cube. The shadow covers about 3x the cube's pixels, so on mass alone even a uniform map would
            prefer the shadow; density alone favours the small cube wherever a map is smooth. Both are reported.
        faithfulness_ratio: deletion AUC(top cells) / AUC(random cells); NaN where not run.
    """

    method: str
    resolution: str
    n_frames: int
    cue_mass: float
    cube_mass: float
    cue_area: float
    cube_area: float
    cue_beats_cube: float
    cue_beats_cube_per_area: float
    faithfulness_ratio: float = float("nan")


@dataclass
class ShortcutEvaluation:
    """Result of :func:`evaluate_shortcut_model` for one model of the pair.

    Attributes:
        model: "shortcut" | "control".
        n_frames: held-out frames (one per episode).
        chunk_error: held-out chunk MAE (policy units), shadow at its offset (from ``metrics.json``).
        cue_moved / cube_moved: mean |chunk change| (policy units) when only the shadow / only the cube moves.
        heads_for_cue: share of shadow-moved frames whose chunk end point lies nearer the position the shadow
            implies than the cube; ``nearer_cue``: nearer the shadow itself than the cube.
        end_to_cube_m / end_to_implied_m: median distances (m) of that end point, on the shadow-moved frames.
        maps / maps_moved: one :class:`MapContrast` per method, in distribution / with the shadow moved.
    """

    model: str
    key: str
    n_frames: int
    chunk_error: float
    cue_moved: float
    cube_moved: float
    heads_for_cue: float
    nearer_cue: float
    end_to_cube_m: float
    end_to_implied_m: float
    maps: list[MapContrast] = field(default_factory=list)
    maps_moved: list[MapContrast] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def follows(self) -> str:
        """What moves the chunk more: "shadow" or "cube"."""
        return "shadow" if self.cue_moved > self.cube_moved else "cube"

    @property
    def intervention_ratio(self) -> float:
        """The followed feature's effect over the other's (>= 1)."""
        hi, lo = max(self.cue_moved, self.cube_moved), min(self.cue_moved, self.cube_moved)
        return hi / max(lo, 1e-9)

    def contrast(self, method: str, moved: bool = False) -> MapContrast:
        for c in self.maps_moved if moved else self.maps:
            if c.method == method:
                return c
        raise KeyError(f"no {method!r} scores; have {[c.method for c in self.maps]}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShortcutEvaluation:
        fields = dict(data)
        fields["maps"] = [MapContrast(**m) for m in data["maps"]]
        fields["maps_moved"] = [MapContrast(**m) for m in data["maps_moved"]]
        return cls(**fields)


def spec_of_model(model: KnownAnswerModel) -> ShortcutSpec:
    """The :class:`ShortcutSpec` a cached model was trained with (``metrics.json``'s ``spec``)."""
    raw = dict(model.metrics["spec"])
    return ShortcutSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


# ------------------------------------------------------------------------------------------- frames
def evaluation_frames(spec: ShortcutSpec, n_frames: int, seed: int = 0) -> CueFrameSet:
    """One approach-phase frame from each of ``n_frames`` held-out episodes, the shadow at its offset."""
    rng = np.random.default_rng(seed)
    approach = PHASES.index("approach")
    parts = []
    for i in range(n_frames):
        s = EVALUATION_SEED_BASE + 1000 * seed + i
        episode, _ = episode_cue(s, spec, cue_follows_cube=True)
        steps = np.nonzero(episode.phase == approach)[0]
        t = int(rng.choice(steps)) if len(steps) else 0
        parts.append(render_cue_frames([s], spec, steps=[t], cue_follows_cube=True))
    return _concat(parts)


def moved_frames(frames: CueFrameSet, spec: ShortcutSpec, moved: str) -> tuple[CueFrameSet, list]:
    """``frames`` re-rendered with only the shadow (``moved="cue"``) or only the cube (``"cube"``) moved.

    Each frame's moved object goes where another frame's layout puts it, at least :data:`MIN_MOVE` from where
    it was and :data:`MIN_GAP` from the object that stays. Returns (frames, per-frame scene states).
    """
    config = spec.shortcut_config()
    scene = ShortcutScene(config)
    states = [frames.episodes[int(frames.episode[i])].scene_state(int(frames.step[i])) for i in range(len(frames))]
    cubes = [st.target.center[:2] for st in states]
    new_states, new_cues = [], []
    for i, st in enumerate(states):
        cue = frames.cue_of(i)
        for k in range(1, len(states)):
            j = (i + k) % len(states)
            if np.linalg.norm(cubes[j] - cubes[i]) < MIN_MOVE:
                continue
            if moved == "cue":
                cand_cue, cand_state = config.cue_at_offset(cubes[j]), st
            elif moved == "cube":
                cand_cue, cand_state = cue, replace(st, target=states[j].target)
            else:
                raise ValueError(f"moved must be 'cue' or 'cube', got {moved!r}")
            if np.linalg.norm(cand_cue.xy - cand_state.target.center[:2]) >= MIN_GAP:
                break
        else:
            raise ValueError("no held-out layout moves it far enough; use more frames")
        new_states.append(cand_state)
        new_cues.append(cand_cue)
    images = {c: np.stack([scene.render_cue(s, q, c) for s, q in zip(new_states, new_cues)]) for c in spec.cameras}
    out = replace(frames, images=images, cues=new_cues, episode=np.arange(len(frames)))
    return out, new_states


def chunk_end_xy(chunks: np.ndarray, spec: ShortcutSpec) -> np.ndarray:
    """(N, chunk, 6) chunks (policy units) -> (N, 2) the last action's tool centre point on the table (m)."""
    geometry = spec.scene_config().geometry
    return np.stack([forward_kinematics(c[-1], geometry).tcp[:2] for c in chunks])


# ----------------------------------------------------------------------------------------- evaluate
def evaluate_shortcut_model(
    model: KnownAnswerModel, n_frames: int = 48, seed: int = 0, methods: tuple[str, ...] = METHODS,
    deletion_random_draws: int = 4, occlusion_patch: int | None = None, occlusion_stride: int | None = None,
    baseline: str | None = None, baseline_seed: int = 12345,
) -> ShortcutEvaluation:
    """Intervention, chunk end points and map contrasts of one model of the pair (see the module docstring).

    ``baseline``: ``"uniform"`` | ``"random"``: score a uniform / seeded-noise map (``baseline_seed``) of each
    map's shape in place of the model's, in and out of distribution (:mod:`~act_interp_ros.proofs.map_baselines`).
    """
    from act_interp_ros.core import GradCAMTarget, InterpretableACT

    spec = spec_of_model(model)
    wrapped = InterpretableACT.from_pretrained(os.fspath(model.path), device="cpu")
    try:
        policy, pre, post = wrapped.policy, wrapped.preprocessor, wrapped.postprocessor
        frames = evaluation_frames(spec, n_frames, seed)
        base_states = [frames.episodes[int(frames.episode[i])].scene_state(int(frames.step[i]))
                       for i in range(len(frames))]
        base = model_metrics.predict_chunks(policy, pre, post, frames, spec)
        effects, moved_sets = {}, {}
        for what in ("cue", "cube"):
            changed, states = moved_frames(frames, spec, what)
            chunks = model_metrics.predict_chunks(policy, pre, post, changed, spec)
            effects[what] = float(np.abs(chunks - base).mean())
            moved_sets[what] = (changed, states, chunks)
        cue_frames, cue_states, cue_chunks = moved_sets["cue"]
        ends = chunk_end_xy(cue_chunks, spec)
        cubes = np.stack([s.target.center[:2] for s in cue_states])
        implied = np.stack([spec.shortcut_config().cube_implied_by(c) for c in cue_frames.cues])
        cue_xy = np.stack([c.xy for c in cue_frames.cues])
        to_cube = np.linalg.norm(ends - cubes, axis=1)
        to_implied = np.linalg.norm(ends - implied, axis=1)
        to_cue = np.linalg.norm(ends - cue_xy, axis=1)

        makers = map_makers(methods, GradCAMTarget(), "layer4", None, occlusion_patch, occlusion_stride)
        maps = policy_maps(policy, pre, frames, spec, makers)
        if baseline is not None:
            maps = replace_maps(maps, baseline, baseline_seed)
        faith = (deletion_results(policy, pre, frames, spec, maps, deletion_random_draws)
                 if deletion_random_draws else {})
        moved_maps = policy_maps(policy, pre, cue_frames, spec, makers)
        if baseline is not None:
            moved_maps = replace_maps(moved_maps, baseline, baseline_seed + 1)
    finally:
        wrapped.close()
    scene = ShortcutScene(spec.shortcut_config())
    cam = spec.cameras[0]
    masks = [scene.object_masks(s, frames.cue_of(i), cam) for i, s in enumerate(base_states)]
    moved_masks = [scene.object_masks(s, cue_frames.cue_of(i), cam) for i, s in enumerate(cue_states)]
    return ShortcutEvaluation(
        model=spec.name, key=model.key, n_frames=len(frames),
        chunk_error=float(model.metrics["held_out_action_error"]["chunk"]["model"]["overall"]),
        cue_moved=effects["cue"], cube_moved=effects["cube"],
        heads_for_cue=float(np.mean(to_implied < to_cube)), nearer_cue=float(np.mean(to_cue < to_cube)),
        end_to_cube_m=float(np.median(to_cube)), end_to_implied_m=float(np.median(to_implied)),
        maps=[_contrast(m, [f[cam] for f in maps[m]], masks, faith.get(m, {}).get(cam)) for m in methods],
        maps_moved=[_contrast(m, [f[cam] for f in moved_maps[m]], moved_masks, None) for m in methods],
        settings={"n_frames": n_frames, "seed": seed, "methods": list(methods), "min_move_m": MIN_MOVE,
                  "min_gap_m": MIN_GAP,
                  "deletion_random_draws": deletion_random_draws, "camera": cam,
                  "occlusion_window": dict(getattr(makers.get("occlusion"), "window", {}) or {}),
                  "baseline": baseline},
    )


def cached_shortcut_evaluation(model: KnownAnswerModel, **kwargs: Any) -> ShortcutEvaluation:
    """:func:`evaluate_shortcut_model`, computed once per model, arguments and evaluation code (JSON beside the
    checkpoint, ``shortcut-eval-<key>.json``)."""
    return cached_result(model.path.parent, "shortcut-eval", kwargs, SHORTCUT_EVALUATION_SOURCES,
                         lambda: evaluate_shortcut_model(model, **kwargs), ShortcutEvaluation.from_dict,
                         ShortcutEvaluation.as_dict)


def pair_table(evaluations: dict[str, ShortcutEvaluation]) -> str:
    """Markdown: one row per (model, method) with the intervention, end points and map contrasts."""
    rows = ["| model | follows (intervention) | chunk error | heads for the shadow when it moves | map "
            "| shadow > cube: mass (per area) | shadow / cube mass (area) "
            "| shadow > cube, shadow moved: mass (per area) "
            "| faithfulness |",
            "|---|---|---|---|---|---|---|---|---|"]
    for name, ev in evaluations.items():
        for k, c in enumerate(ev.maps):
            moved = ev.contrast(c.method, moved=True)
            head = (f"{ev.follows} ({ev.intervention_ratio:.1f}x: shadow {ev.cue_moved:.2f}, cube {ev.cube_moved:.2f})"
                    if k == 0 else "")
            faith = f"{c.faithfulness_ratio:.2f}x" if np.isfinite(c.faithfulness_ratio) else "-"
            rows.append(
                f"| {name if k == 0 else ''} | {head} | {f'{ev.chunk_error:.2f}' if k == 0 else ''} "
                f"| {f'{100 * ev.heads_for_cue:.0f}%' if k == 0 else ''} | {c.method} "
                f"| {100 * c.cue_beats_cube:.0f}% ({100 * c.cue_beats_cube_per_area:.0f}%) "
                f"| {c.cue_mass:.3f} / {c.cube_mass:.3f} ({c.cue_area:.3f} / {c.cube_area:.3f}) "
                f"| {100 * moved.cue_beats_cube:.0f}% ({100 * moved.cue_beats_cube_per_area:.0f}%) | {faith} |")
    return "\n".join(rows)


# ------------------------------------------------------------------------------------------ helpers
def _contrast(method: str, maps: list[np.ndarray], masks: list[dict[str, np.ndarray]], faith) -> MapContrast:
    pixel = method in PIXEL_METHODS
    cue_mass, cube_mass, cue_area, cube_area, wins, dense_wins = [], [], [], [], [], []
    for m, mk in zip(maps, masks):
        cov = {k: mk[k].astype(np.float64) if pixel else object_coverage(mk[k], m.shape) for k in ("cue", "cube")}
        if cov["cue"].sum() == 0 or cov["cube"].sum() == 0:
            continue
        q, b = map_mass(m, cov["cue"]), map_mass(m, cov["cube"])
        cue_mass.append(q)
        cube_mass.append(b)
        cue_area.append(cov["cue"].mean())
        cube_area.append(cov["cube"].mean())
        wins.append(float(q > b))
        # denser on the shadow: its lift over uniform beats the cube's (an exact tie, as a uniform map gives up to
        # rounding, is no win)
        dense_wins.append(float(q / cov["cue"].mean() > (1 + 1e-9) * b / cov["cube"].mean()))
    return MapContrast(
        method=method, resolution="pixel" if pixel else "token", n_frames=len(wins),
        cue_mass=_mean(cue_mass), cube_mass=_mean(cube_mass), cue_area=_mean(cue_area), cube_area=_mean(cube_area),
        cue_beats_cube=_mean(wins), cue_beats_cube_per_area=_mean(dense_wins),
        faithfulness_ratio=float(faith.ratio) if faith is not None else float("nan"))


def _concat(parts: list[CueFrameSet]) -> CueFrameSet:
    return CueFrameSet(
        images={c: np.concatenate([p.images[c] for p in parts]) for c in parts[0].images},
        state=np.concatenate([p.state for p in parts]), chunk=np.concatenate([p.chunk for p in parts]),
        chunk_is_pad=np.concatenate([p.chunk_is_pad for p in parts]), episode=np.arange(len(parts)),
        step=np.concatenate([p.step for p in parts]), episodes=[p.episodes[0] for p in parts],
        cues=[p.cues[0] for p in parts])


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


__all__ = [
    "METHODS",
    "MIN_MOVE",
    "BASELINE_SHORTCUT_EVALUATION",
    "SHORTCUT_EVALUATION_SOURCES",
    "STANDARD_SHORTCUT_EVALUATION",
    "MapContrast",
    "ShortcutEvaluation",
    "cached_shortcut_evaluation",
    "chunk_end_xy",
    "evaluate_shortcut_model",
    "evaluation_frames",
    "moved_frames",
    "pair_table",
    "spec_of_model",
]
