"""The shortcut pair side by side: one picture that shows a policy succeeding for the wrong reason.

:func:`write_comparison` draws a grid: one row per model (control, shortcut), four columns - gradient x input
and attention on a held-out frame with the shadow at its training offset ("in distribution"), then on the same
frame with only the shadow moved ("the light moves"). Every panel marks the cube (green outline), the shadow
(cyan outline), and where the predicted chunk ends (the last action's tool centre point on the table, a white
cross; with the shadow moved, a ring marks where the shadow says the cube is). Maps are drawn as the node draws
its overlays (:func:`~act_interp_ros.pipeline.overlays.display_map`: pixel maps smoothed, each map scaled to its
peak).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from act_interp_ros.core.render import draw_label, render_overlay
from act_interp_ros.proofs import model_metrics
from act_interp_ros.proofs.known_answer import KnownAnswerModel
from act_interp_ros.proofs.shortcut_evaluation import chunk_end_xy, evaluation_frames, moved_frames, spec_of_model
from act_interp_ros.proofs.shortcut_model import CueFrameSet, ShortcutSpec
from act_interp_ros.proofs.training import raw_batch
from act_interp_ros.pipeline.overlays import display_map
from act_interp_ros.synthetic.shortcut_scene import ShortcutScene

CUBE_RGB = (40, 220, 60)
CUE_RGB = (40, 220, 235)
#: Display scale of the 96x128 policy images.
SCALE = 4


@dataclass
class PanelMaps:
    """One model on one frame: (H, W) gradient x input in [0, 1], (h, w) attention token map, (2,) chunk end xy."""

    gradient_x_input: np.ndarray
    attention: np.ndarray
    end_xy: np.ndarray


def model_panels(model: KnownAnswerModel, frame_sets: list[CueFrameSet], spec: ShortcutSpec) -> list[list[PanelMaps]]:
    """Gradient x input, attention and the chunk's end point of ``model`` on every frame of each set (one load)."""
    from act_interp_ros.core import DEFAULT_GRADIENT_TARGET, InterpretableACT, PixelGradientXInput

    wrapped = InterpretableACT.from_pretrained(os.fspath(model.path), device="cpu")
    key = spec.camera_keys[0]
    gxi = PixelGradientXInput(wrapped.policy)
    out = []
    try:
        for frames in frame_sets:
            batch = wrapped.preprocessor(raw_batch(frames, np.arange(len(frames)), spec, with_action=False))
            _, interps = wrapped.predict_chunk(batch)
            pixel = gxi.attribute(batch, DEFAULT_GRADIENT_TARGET)
            chunks = model_metrics.predict_chunks(wrapped.policy, wrapped.preprocessor, wrapped.postprocessor,
                                                  frames, spec)
            ends = chunk_end_xy(chunks, spec)
            out.append([PanelMaps(pixel[i][key], interps[i].camera_maps[key], ends[i]) for i in range(len(frames))])
    finally:
        gxi.close()
        wrapped.close()
    return out


def write_comparison(models: dict[str, KnownAnswerModel], path: str | os.PathLike[str], frame: int = 0,
                     seed: int = 0, n_frames: int = 48) -> Path:
    """Write the comparison PNG for held-out frame ``frame`` (of ``n_frames`` drawn with ``seed``); returns the path.

    ``models``: {"control": ..., "shortcut": ...} (row order).
    """
    spec = spec_of_model(next(iter(models.values())))
    frames = evaluation_frames(spec, n_frames, seed)
    moved, moved_states = moved_frames(frames, spec, "cue")
    pick = np.array([frame])
    one = _take(frames, pick)
    one_moved = _take(moved, pick)
    scene = ShortcutScene(spec.shortcut_config())
    states = [one.episodes[0].scene_state(int(one.step[0])), moved_states[frame]]
    rows = []
    for name, model in models.items():
        panels = [p[0] for p in model_panels(model, [one, one_moved], spec)]
        cells = []
        for k, (fs, state) in enumerate(((one, states[0]), (one_moved, states[1]))):
            image = fs.images[spec.cameras[0]][0]
            cue = fs.cue_of(0)
            implied = spec.shortcut_config().cube_implied_by(cue) if k == 1 else None
            for method in ("gradient_x_input", "attention"):
                heat = getattr(panels[k], method)
                cell = _panel(scene, image, heat, state, cue, panels[k].end_xy, implied,
                              f"{name}: {'gradient x input' if method == 'gradient_x_input' else 'attention'}")
                cells.append(cell)
        rows.append(np.concatenate(_with_gaps(cells, axis=1), axis=1))
    grid = np.concatenate(_with_gaps(rows, axis=0), axis=0)
    header = _header(grid.shape[1], ("in distribution (shadow at its training offset)",
                                     "the light moves (only the shadow moved)"))
    legend = _legend(grid.shape[1])
    out = np.concatenate([header, grid, legend], axis=0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(os.fspath(path), cv2.cvtColor(out, cv2.COLOR_RGB2BGR))
    return path


# ------------------------------------------------------------------------------------------ drawing
def _panel(scene: ShortcutScene, image: np.ndarray, heat: np.ndarray, state, cue, end_xy: np.ndarray,
           implied: np.ndarray | None, label: str) -> np.ndarray:
    h, w = image.shape[:2]
    big = cv2.resize(image, (w * SCALE, h * SCALE), interpolation=cv2.INTER_CUBIC)
    heat = display_map(np.asarray(heat, np.float32))  # pixel maps smoothed as the node draws them
    heat = heat / heat.max() if heat.max() > 0 else heat
    out = render_overlay(big, heat, alpha=0.5)
    masks = scene.object_masks(state, cue, "front")
    for name, color in (("cube", CUBE_RGB), ("cue", CUE_RGB)):
        m = cv2.resize(masks[name].astype(np.uint8), (w * SCALE, h * SCALE), interpolation=cv2.INTER_NEAREST)
        contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, color, 2, lineType=cv2.LINE_AA)
    cam = scene.camera("front", state.joints)
    table = scene.config.cube_size / 2.0  # draw at the cube centre's height
    if implied is not None:
        (u, v), = cam.project(np.array([[implied[0], implied[1], table]]))[0]
        cv2.circle(out, (int(round(u * SCALE)), int(round(v * SCALE))), 3 * SCALE, CUE_RGB, 2, cv2.LINE_AA)
    (u, v), = cam.project(np.array([[end_xy[0], end_xy[1], table]]))[0]
    c = (int(round(u * SCALE)), int(round(v * SCALE)))
    for color, thick in (((0, 0, 0), 5), ((255, 255, 255), 2)):
        cv2.drawMarker(out, c, color, cv2.MARKER_CROSS, 6 * SCALE, thick, cv2.LINE_AA)
    draw_label(out, label, scale=0.5)
    return out


def _header(width: int, titles: tuple[str, str]) -> np.ndarray:
    bar = np.full((34, width, 3), 30, np.uint8)
    half = width // 2
    for k, title in enumerate(titles):
        cv2.putText(bar, title, (k * half + 12, 23), cv2.FONT_HERSHEY_SIMPLEX, 0.62, (255, 255, 255), 1, cv2.LINE_AA)
    return bar


def _legend(width: int) -> np.ndarray:
    bar = np.full((30, width, 3), 30, np.uint8)
    x = 12
    for text, color in (("cube", CUBE_RGB), ("shadow", CUE_RGB),
                        ("where the predicted chunk ends (x)", (255, 255, 255)),
                        ("where the shadow says the cube is (o)", CUE_RGB)):
        cv2.rectangle(bar, (x, 9), (x + 14, 21), color, -1)
        cv2.putText(bar, text, (x + 20, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
        x += 30 + cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5, 1)[0][0]
    return bar


def _with_gaps(parts: list[np.ndarray], axis: int, gap: int = 6) -> list[np.ndarray]:
    out = []
    for k, p in enumerate(parts):
        if k:
            shape = list(p.shape)
            shape[axis] = gap
            out.append(np.full(shape, 30, np.uint8))
        out.append(p)
    return out


def _take(frames: CueFrameSet, idx: np.ndarray) -> CueFrameSet:
    return CueFrameSet(
        images={c: v[idx] for c, v in frames.images.items()}, state=frames.state[idx], chunk=frames.chunk[idx],
        chunk_is_pad=frames.chunk_is_pad[idx], episode=np.arange(len(idx)), step=frames.step[idx],
        episodes=[frames.episodes[int(frames.episode[i])] for i in idx], cues=[frames.cue_of(int(i)) for i in idx])




def write_shortcut_report(out_dir: str | os.PathLike[str], progress: bool = False, frames: tuple[int, ...] = (0, 1)
                          ) -> dict[str, object]:
    """The demo's shortcut part: train (or reuse) the pair, evaluate it (cached) and write to ``out_dir``
    ``shortcut_comparison_<k>.png`` (one per held-out frame in ``frames``) and ``shortcut_summary.md``.

    Returns {"files": [...], "evaluations": {name: ShortcutEvaluation}}.
    """
    from act_interp_ros.proofs import shortcut_evaluation as se
    from act_interp_ros.proofs.shortcut_model import ensure_pair

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    models = ensure_pair(progress=progress)
    evaluations = {name: se.cached_shortcut_evaluation(m, **se.STANDARD_SHORTCUT_EVALUATION)
                   for name, m in models.items()}
    files = [write_comparison(models, out / f"shortcut_comparison_{k}.png", frame=k).name for k in frames]
    lines = ["# The shadow test: control vs shortcut", "",
             "Two ACTs trained on the same episodes; in the shortcut model's data the shadow sits at a fixed "
             "offset from the cube, in the control model's it is placed independently. What each uses is "
             "measured by intervention (move only the shadow / only the cube; mean |chunk change|, policy "
             f"units) on {next(iter(evaluations.values())).n_frames} held-out frames.", "",
             se.pair_table(evaluations), ""]
    for name, m in models.items():
        lines.append(f"- {name}: key {m.key}, trained in {m.metrics['seconds']['total']:.0f} s")
    (out / "shortcut_summary.md").write_text("\n".join(lines) + "\n")
    return {"files": [*files, "shortcut_summary.md"], "evaluations": evaluations}


__all__ = ["PanelMaps", "model_panels", "write_comparison", "write_shortcut_report"]
