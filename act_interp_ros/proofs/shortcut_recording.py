"""The user's offline recipe on a recording of the shadow scene: ``--ablate`` and ``--move`` the shadow (issue 22, 29).

Two held-out episodes of the shortcut scene are written as a LeRobotDataset (20 ticks each) and replayed through
:func:`~act_interp_ros.dataset.replay.replay_dataset` exactly as ``act_interp_replay`` does:

* :func:`ablation_ratios`: ``--ablate`` the shadow's bounding box, then an equal box centred on the cube; the
  ratio of the executed chunk's mean change (shadow box / cube box) per (model, episode);
* :func:`move_results`: ``--move`` the shadow's box by :data:`MOVE_PX` against the opposite shift; the
  summary's ``change``, ``control_change`` and ``vs_control`` per model (mean over the episodes).

Shared by ``test/test_shortcut_pair.py`` and ``bench/training_spread.py`` (the pair's spread over trainings).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.proofs import shortcut_model as sm

__all__ = ["EPISODE_STEPS", "MOVE_PX", "ablation_boxes", "ablation_ratios", "move_results", "move_shift",
           "recording_episodes"]

#: Ticks per recorded episode.
EPISODE_STEPS = 20
#: Held-out episodes (never in training or in the pair's evaluation).
SEED_BASE = 7 * sm.EVAL_SEED_BASE
#: The shadow's shift for ``--move`` (px at 96x128; about 6-8 cm on the table).
MOVE_PX = 20


def ablation_boxes(spec: sm.ShortcutSpec, n: int) -> list[tuple[Any, tuple, tuple]]:
    """(episode, shadow box, equal box on the cube) for the first ``n`` held-out episodes whose two boxes
    (x, y, w, h; the shadow's bounding box, and one of the same size centred on the cube) do not overlap."""
    from act_interp_ros.synthetic.shortcut_scene import ShortcutScene

    scene = ShortcutScene(spec.shortcut_config())
    out = []
    for seed in range(SEED_BASE, SEED_BASE + 50):
        episode, cue = sm.render_cue_episode(seed, spec, EPISODE_STEPS)
        masks = scene.object_masks(episode.scene_state(0), cue, "front")
        ys, xs = np.nonzero(masks["cue"])
        cue_box = (int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        ys, xs = np.nonzero(masks["cube"])
        cx, cy = (xs.min() + xs.max() + 1) // 2, (ys.min() + ys.max() + 1) // 2
        w, h = cue_box[2], cue_box[3]
        cube_box = (int(max(0, cx - w // 2)), int(max(0, cy - h // 2)), w, h)
        in_cube_box = np.zeros_like(masks["cue"])
        in_cube_box[cube_box[1]:cube_box[1] + h, cube_box[0]:cube_box[0] + w] = True
        if not (in_cube_box & masks["cue"]).any() and (in_cube_box & masks["cube"]).sum() == masks["cube"].sum():
            out.append((episode, cue_box, cube_box))
        if len(out) == n:
            return out
    raise AssertionError("fewer than n held-out episodes keep the two boxes apart")


def move_shift(cue_box: tuple, cube_box: tuple, hw: tuple[int, int]) -> tuple[int, int] | None:
    """The first shift of MOVE_PX (then 1.5x, 2x) along an axis or a diagonal that keeps the moved box inside the
    image and off the cube's box, and the opposite (control) box off the cube's box; None when there is none.

    The shadow lies at the image's bottom edge beside the cube in this scene, so the opposite of an upward move
    leaves the image in part: ``--move`` clips the paste, so that control also removes part of the shadow (a
    larger control change: the criterion only gets harder)."""
    x, y, w, h = cue_box
    cx, cy, cw, ch = cube_box

    def apart(nx: int, ny: int) -> bool:
        return nx + w <= cx or cx + cw <= nx or ny + h <= cy or cy + ch <= ny

    def inside(nx: int, ny: int) -> bool:
        return nx >= 0 and ny >= 0 and nx + w <= hw[1] and ny + h <= hw[0]

    for px in (MOVE_PX, MOVE_PX * 3 // 2, MOVE_PX * 2):
        diagonal = int(round(px / 2 ** 0.5))
        for dx, dy in ((px, 0), (-px, 0), (0, -px), (0, px), (-diagonal, -diagonal), (diagonal, -diagonal)):
            if inside(x + dx, y + dy) and apart(x + dx, y + dy) and apart(x - dx, y - dy):
                return dx, dy
    return None


def recording_episodes(spec: sm.ShortcutSpec = sm.SHORTCUT_SPEC, n: int = 2) -> list[tuple[Any, tuple, tuple]]:
    """The first ``n`` of eight held-out episodes whose shadow can be moved (see :func:`move_shift`)."""
    hw = tuple(spec.image_size)
    picked = [p for p in ablation_boxes(spec, 8) if move_shift(p[1], p[2], hw) is not None][:n]
    if len(picked) < n:
        raise AssertionError(f"fewer than {n} of eight held-out episodes leave room to move the shadow")
    return picked


def _dataset(picked: list, workdir: Path, spec: sm.ShortcutSpec):
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset

    return build_synthetic_dataset(workdir / "ds", rendered=[p[0] for p in picked], image_size=tuple(spec.image_size),
                                   cameras=tuple(spec.cameras), use_videos=False)


def ablation_ratios(pair: dict[str, Any], workdir: str | os.PathLike[str], settings_yaml: str | os.PathLike[str],
                    ) -> tuple[dict[tuple[str, int], float], list[str]]:
    """({(model, episode): chunk change with the shadow's box ablated / with an equal box on the cube ablated},
    report lines): ``--ablate`` (mean fill) on two held-out episodes.

    Args:
        pair: {"control": model, "shortcut": model} (:func:`~act_interp_ros.proofs.shortcut_model.ensure_pair`).
        workdir: an empty folder for the dataset and the replays.
        settings_yaml: the node's params file (``config/so101.yaml``).
    """
    from act_interp_ros.core.ablation import AblationSpec
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
    from act_interp_ros.settings import load_settings_yaml

    workdir, spec = Path(workdir), sm.SHORTCUT_SPEC
    picked = recording_episodes(spec)
    ds = _dataset(picked, workdir, spec)
    lines, ratios = [], {}
    for name, model in pair.items():
        settings = load_settings_yaml(settings_yaml, overrides={"policy_path": str(model.path)})
        for ep, (_, cue_box, cube_box) in enumerate(picked):
            means = {}
            for region, box in (("shadow", cue_box), ("cube", cube_box)):
                opts = DatasetReplayOptions(episodes=[ep], methods=[], side_every=0, faithfulness_samples=0,
                                            write_video=False, write_plot=False,
                                            ablate=AblationSpec.parse_box("front:" + ",".join(map(str, box))))
                summary = replay_dataset(ds.root, str(model.path), settings, workdir / f"{name}_{ep}_{region}", opts)
                if not summary.ablation["ticks"] == summary.processed == EPISODE_STEPS:
                    raise AssertionError(f"--ablate ran on {summary.ablation['ticks']} of {EPISODE_STEPS} ticks")
                means[region] = summary.ablation["mean"]
            ratios[(name, ep)] = means["shadow"] / max(means["cube"], 1e-9)
            lines.append(f"{name}, episode {ep}: mean chunk change {means['shadow']:.3f} (shadow box {cue_box}) vs "
                         f"{means['cube']:.3f} (cube box {cube_box}): shadow / cube {ratios[(name, ep)]:.2f}x")
    return ratios, lines


def move_results(pair: dict[str, Any], workdir: str | os.PathLike[str], settings_yaml: str | os.PathLike[str],
                 ) -> tuple[dict[str, dict[str, float]], list[str]]:
    """({model: mean over two held-out episodes of the summary's ``change``, ``control_change``, ``vs_control``},
    report lines): ``--move`` the shadow's box by :data:`MOVE_PX` against the opposite shift (arguments as
    :func:`ablation_ratios`)."""
    from act_interp_ros.core.region_move import MoveSpec
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset
    from act_interp_ros.settings import load_settings_yaml

    workdir, spec = Path(workdir), sm.SHORTCUT_SPEC
    hw = tuple(spec.image_size)
    picked = recording_episodes(spec)
    ds = _dataset(picked, workdir, spec)
    lines, out = [], {}
    for name, model in pair.items():
        settings = load_settings_yaml(settings_yaml, overrides={"policy_path": str(model.path)})
        per_ep = []
        for ep, (_, cue_box, cube_box) in enumerate(picked):
            dx, dy = move_shift(cue_box, cube_box, hw)
            move = MoveSpec.parse(f"front:{','.join(map(str, cue_box))}:{dx},{dy}")
            opts = DatasetReplayOptions(episodes=[ep], methods=[], side_every=0, faithfulness_samples=0,
                                        write_video=False, write_plot=False, move=move)
            summary = replay_dataset(ds.root, str(model.path), settings, workdir / f"{name}_{ep}", opts)
            if not summary.move["ticks"] == summary.processed == EPISODE_STEPS:
                raise AssertionError(f"--move ran on {summary.move['ticks']} of {EPISODE_STEPS} ticks")
            per_ep.append(summary.move)
            m = summary.move
            lines.append(f"{name}, episode {ep}: --move {move.label}: chunk change {m['change']:.3f} (opposite "
                         f"{m['control_change']:.3f}), move vs opposite {m['vs_control']:.3f}, follow {m['follow']:.2f}")
        out[name] = {k: float(np.mean([m[k] for m in per_ep])) for k in ("change", "control_change", "vs_control")}
    s, c = out["shortcut"], out["control"]
    lines.append(f"shortcut / control: move vs opposite {s['vs_control'] / c['vs_control']:.1f}x, chunk change "
                 f"{s['change'] / c['change']:.1f}x")
    return out, lines
