"""The demo's outputs: videos, the attention plot, PNG stills and the summary, from a :class:`Recording`.

Video time is bag time: every video has one frame per bag camera frame (30 Hz), showing the newest
overlay whose header stamp is not later than that frame (the node stamps overlays with the source
image's stamp). Where the node produced nothing for a while (a skipped tick, start-up) the frame says so.

The encoders and the plot are the offline replay's (:mod:`act_interp_ros.offline.videos`,
:mod:`act_interp_ros.offline.outputs`), so offline and live results look alike.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.offline.outputs import TickTable
from act_interp_ros.offline.plots import write_attention_plot
from act_interp_ros.offline.videos import Mp4Writer, fit, placeholder
from act_interp_ros.core.render import draw_label
from act_interp_ros.demo.recorder import Recording, StampedFrame
from act_interp_ros.pipeline.side_methods import LABELS

logger = logging.getLogger(__name__)

OVERVIEW_VIDEO_NAME = "overview.mp4"
STILLS_PHASES = ("approach", "grasp", "lift", "carry")
#: An overlay older than this (bag seconds) is shown dimmed: the node skipped ticks in between.
HOLD_LIMIT_S = 0.25


def method_video_name(method: str, camera: str) -> str:
    """``<method>_<camera>.mp4`` (``attention_front.mp4``, ``gradient_x_input_front.mp4`` ...)."""
    return f"{method}_{camera}.mp4"


def still_name(index: int, phase: str) -> str:
    return f"still_{index + 1}_{phase}.png"


# --------------------------------------------------------------------------------------- timeline
@dataclass
class DemoTimeline:
    """Bag frames (30 Hz camera frames) with the synthetic episode and expert phase of each.

    stamps_ns: (N,) camera header stamps; episode / step: (N,) int; phase: N phase names;
    episodes: the simulated :class:`~act_interp_ros.synthetic.Episode` per bag episode (for the cube
    boxes); scene: the renderer (box projection).
    """

    start_ns: int
    fps: float
    stamps_ns: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    phase: list[str]
    episodes: list[Any]
    scene: Any
    seeds: list[int]

    @classmethod
    def build(cls, *, seed: int, n_episodes: int, n_frames: int, fps: float, start_ns: int,
              image_size: tuple[int, int]) -> DemoTimeline:
        """The timeline of a bag written by ``write_synthetic_bag`` with these arguments (no gaps)."""
        from act_interp_ros.synthetic import PHASES, SceneConfig, SyntheticScene, simulate_episode

        scene = SyntheticScene(SceneConfig(image_size=tuple(image_size)))
        episodes = [simulate_episode(seed + e, n_frames, scene_config=scene.config, fps=fps) for e in range(n_episodes)]
        n = n_episodes * n_frames
        k = np.arange(n)
        stamps = start_ns + np.round(k / fps * 1e9).astype(np.int64)
        return cls(
            start_ns=start_ns, fps=fps, stamps_ns=stamps, episode=k // n_frames, step=k % n_frames,
            phase=[PHASES[int(episodes[e].phase[s])] for e, s in zip(k // n_frames, k % n_frames)],
            episodes=episodes, scene=scene, seeds=[seed + e for e in range(n_episodes)],
        )

    def __len__(self) -> int:
        return len(self.stamps_ns)

    def index_at(self, t_ns: int) -> int:
        """Index of the last frame stamped at or before ``t_ns`` (clipped to the bag)."""
        i = int(np.searchsorted(self.stamps_ns, t_ns, side="right")) - 1
        return min(max(i, 0), len(self) - 1)

    def rel_s(self, t_ns: int) -> float:
        return (t_ns - self.start_ns) / 1e9

    def boxes(self, index: int, camera: str) -> dict[str, tuple[int, int, int, int] | None]:
        ep = self.episodes[int(self.episode[index])]
        return self.scene.boxes(ep.scene_state(int(self.step[index])), camera)


# ---------------------------------------------------------------------------------------- helpers
class _Latest:
    """Newest frame with stamp <= t, for stamp-sorted frames."""

    def __init__(self, frames: Sequence[StampedFrame]) -> None:
        self.frames = sorted(frames, key=lambda f: f.stamp_ns)
        self.stamps = [f.stamp_ns for f in self.frames]

    def at(self, t_ns: int) -> StampedFrame | None:
        i = bisect.bisect_right(self.stamps, t_ns) - 1
        return self.frames[i] if i >= 0 else None

    def exact(self, t_ns: int) -> StampedFrame | None:
        i = bisect.bisect_left(self.stamps, t_ns)
        return self.frames[i] if i < len(self.stamps) and self.stamps[i] == t_ns else None


def _frame_view(latest: _Latest, t_ns: int, size_hw: tuple[int, int], what: str, hold_limit_s: float) -> np.ndarray:
    f = latest.at(t_ns)
    if f is None:
        return placeholder(None, size_hw, f"{what}: waiting for the node")
    age = (t_ns - f.stamp_ns) / 1e9
    if age > hold_limit_s:
        return placeholder(f.rgb, size_hw, f"{what}: nothing new for {age:.2f} s (ticks skipped)")
    return fit(f.rgb, size_hw)


# ------------------------------------------------------------------------------------------ videos
def write_videos(directory: Path, rec: Recording, timeline: DemoTimeline, cameras: Sequence[str],
                 frame_sizes: dict[str, tuple[int, int]], methods: Sequence[str],
                 proprio_at: Callable[[int], float | None],
                 progress: Callable[[int], None] | None = None) -> list[str]:
    """One video per camera and map (attention, each side method) and the overview grid; returns file names.

    Side methods run at a few Hz: their videos hold each overlay (labelled with its time) until the next one.
    """
    views = {"attention": {c: _Latest(rec.attention.get(c, [])) for c in cameras}}
    views.update({m: {c: _Latest(rec.side.get(m, {}).get(c, [])) for c in cameras} for m in methods})
    writers: dict[str, Mp4Writer] = {}
    names: list[str] = []
    size0 = frame_sizes[cameras[0]]
    cell_w = min(320, size0[1])
    cell = (2 * round(size0[0] * cell_w / size0[1] / 2), cell_w)
    bar_h = 28
    side_limit = max(HOLD_LIMIT_S, 3.0)  # side methods are held between their (slow) ticks
    try:
        for m in views:
            for c in cameras:
                writers[method_video_name(m, c)] = Mp4Writer(directory / method_video_name(m, c), timeline.fps,
                                                             frame_sizes[c])
        overview = Mp4Writer(directory / OVERVIEW_VIDEO_NAME, timeline.fps,
                             (bar_h + cell[0] * len(views), cell[1] * len(cameras)))
        writers[OVERVIEW_VIDEO_NAME] = overview
        for k, t in enumerate(timeline.stamps_ns):
            t = int(t)
            rows = []
            for m, latest in views.items():
                row = []
                for c in cameras:
                    what = f"{c} {LABELS[m]}"
                    if m == "attention":
                        view = _frame_view(latest[c], t, frame_sizes[c], what, HOLD_LIMIT_S)
                    elif (f := latest[c].at(t)) is None:
                        view = placeholder(None, frame_sizes[c], f"{what}: none yet")
                    else:
                        view = _frame_view(latest[c], t, frame_sizes[c], what, side_limit)
                        if (t - f.stamp_ns) / 1e9 <= side_limit:
                            view = draw_label(view.copy(), f"{LABELS[m]} of t={timeline.rel_s(f.stamp_ns):.2f} s",
                                              corner="bl")
                    writers[method_video_name(m, c)].write(view)
                    row.append(draw_label(fit(view, cell), f"{c}: {LABELS[m]}", corner="bl", scale=0.4))
                rows.append(np.concatenate(row, axis=1))
            body = np.concatenate(rows, axis=0)
            bar = np.zeros((bar_h, body.shape[1], 3), np.uint8)
            p = proprio_at(t)
            text = (f"t={timeline.rel_s(t):5.2f}s  episode {int(timeline.episode[k]) + 1}  "
                    f"phase: {timeline.phase[k]}" + (f"  proprio {p:.0%}" if p is not None else ""))
            draw_label(bar, text, scale=0.45)
            overview.write(np.concatenate([bar, body], axis=0))
            if progress is not None:
                progress(1)
        for name, w in writers.items():
            w.close()
            names.append(name)
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    return names


# -------------------------------------------------------------------------------------------- plot
def write_plot(path: Path, rec: Recording, timeline: DemoTimeline, cameras: Sequence[str],
               settings, title: str) -> None:
    """Proprio and per-camera attention shares (the node's Float32 topics) and the latent rest vs bag time.

    Uses the offline replay's plot; one row per received proprio sample (time = receipt on /clock).
    """
    table = TickTable(settings.camera_keys, list(cameras), settings.joint_state_topic, settings.camera_topics,
                      action_names=[], has_state=True, has_env_state=False)
    gc_times = sorted({f.stamp_ns for per_cam in rec.side.values() for c in cameras for f in per_cam.get(c, [])})
    shares = {c: sorted(rec.camera_share.get(c, []), key=lambda s: s.received_ns) for c in cameras}
    share_t = {c: [s.received_ns for s in v] for c, v in shares.items()}
    gi = 0
    for s in sorted(rec.proprio, key=lambda s: s.received_ns):
        row: dict[str, Any] = {"time_s": timeline.rel_s(s.received_ns), "skipped": False, "skip_reason": "",
                               "maps": "", "attn_proprio": s.value, "attn_latent": math.nan}
        for c in cameras:  # the share published by the same tick: the nearest sample within 50 ms
            row[f"attn_{c}"] = math.nan
            j = bisect.bisect_left(share_t[c], s.received_ns)
            near = [k for k in (j - 1, j) if 0 <= k < len(share_t[c])]
            if near:
                k = min(near, key=lambda k: abs(share_t[c][k] - s.received_ns))
                if abs(share_t[c][k] - s.received_ns) < 0.05e9:
                    row[f"attn_{c}"] = shares[c][k].value
        cams = [row[f"attn_{c}"] for c in cameras]
        if not any(math.isnan(v) for v in cams):  # the node has no env-state token: the rest is the latent
            row["attn_latent"] = max(0.0, 1.0 - s.value - sum(cams))
        while gi < len(gc_times) and gc_times[gi] <= s.received_ns:
            row["maps"] = "side"
            gi += 1
        table.rows.append(row)
    write_attention_plot(table, path, title=title)


# ------------------------------------------------------------------------------------------ stills
@dataclass
class Moment:
    """A chosen still: frame ``index`` of the timeline, its stamp, phase and the overlays shown per map."""

    index: int
    stamp_ns: int
    phase: str
    maps: dict[str, dict[str, StampedFrame]]  # map ("attention", side methods) -> camera -> overlay (may lack one)
    max_side_gap_s: float = 0.5  # how far a side-method overlay may be from the moment


def choose_moments(rec: Recording, timeline: DemoTimeline, cameras: Sequence[str], methods: Sequence[str],
                   phases: Sequence[str] = STILLS_PHASES, max_side_gap_s: float = 0.5) -> list[Moment]:
    """One moment per phase, nearest the middle of that phase in its episode.

    Preferred: a side-method tick (overlays of every side method and camera with one stamp) inside the phase,
    shown with the attention overlays of the same stamp. Side methods run at a few Hz, so a short phase may
    hold none: then an attention stamp inside the phase is used with the nearest side-method overlays (at most
    ``max_side_gap_s`` away; their time is printed on the still). Phases without attention overlays are left
    out; a side method without an overlay that near keeps its column, which says so (every still has the same
    layout, also where side methods fell behind on a loaded machine).
    """
    att = {c: _Latest(rec.attention.get(c, [])) for c in cameras}
    side = {m: {c: _Latest(rec.side.get(m, {}).get(c, [])) for c in cameras} for m in methods}
    if not cameras:
        return []
    att_common = set.intersection(*(set(att[c].stamps) for c in cameras))
    side_common = (set.intersection(*(set(side[m][c].stamps) for m in methods for c in cameras)) if methods
                   else set())
    phase_arr = np.array(timeline.phase)

    def best_in_phase(stamps: set[int], phase: str) -> int | None:
        best: tuple[float, int] | None = None
        for t in stamps:
            i = timeline.index_at(t)
            if timeline.phase[i] != phase or timeline.stamps_ns[i] != t:
                continue
            ep = timeline.episode[i]
            steps = timeline.step[(timeline.episode == ep) & (phase_arr == phase)]
            mid = 0.5 * (steps.min() + steps.max())
            score = abs(timeline.step[i] - mid) / max(1.0, float(steps.max() - steps.min()))
            if best is None or (score, t) < best:
                best = (score, t)
        return None if best is None else best[1]

    def nearest(latest: _Latest, t: int) -> StampedFrame | None:
        if not latest.frames:
            return None
        f = min(latest.frames, key=lambda f: abs(f.stamp_ns - t))
        return f if abs(f.stamp_ns - t) <= max_side_gap_s * 1e9 else None

    moments: list[Moment] = []
    for phase in phases:
        t = best_in_phase(side_common & att_common, phase) if methods else None
        if t is None and methods:
            t = best_in_phase(side_common, phase)
        if t is None:
            t = best_in_phase(att_common, phase)
        if t is None:
            continue
        a = {c: att[c].exact(t) or att[c].at(t) for c in cameras}
        if any(v is None for v in a.values()):
            continue
        maps = {"attention": a}
        for m in methods:
            maps[m] = {c: f for c in cameras if (f := side[m][c].exact(t) or nearest(side[m][c], t)) is not None}
        moments.append(Moment(timeline.index_at(t), t, phase, maps, max_side_gap_s))
    return moments


COLUMN_TITLES = {"attention": "decoder cross-attention (this tick)", "gradcam": "GradCAM (layer4, first action)",
                 "gradient_x_input": "gradient x input (pixels, executed action)",
                 "integrated_gradients": "integrated gradients (pixels)", "occlusion": "occlusion (pixels)"}


def write_still(path: Path, moment: Moment, timeline: DemoTimeline, cameras: Sequence[str],
                proprio: float | None, fractions: dict[str, float] | None = None) -> None:
    """PNG: rows = cameras, columns = attention | each side method, target/distractor boxes outlined."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    cols = list(moment.maps)
    h, w = next(iter(moment.maps["attention"].values())).rgb.shape[:2]
    panel_w = 4.6
    fig = Figure(figsize=(panel_w * len(cols) + 0.3, panel_w * h / w * len(cameras) + 1.1), dpi=110,
                 layout="constrained")
    axes = fig.subplots(len(cameras), len(cols), squeeze=False)
    i = moment.index
    t_rel = timeline.rel_s(moment.stamp_ns)
    head = (f"t = {t_rel:.2f} s   episode {int(timeline.episode[i]) + 1}, step {int(timeline.step[i])}   "
            f"phase: {moment.phase}")
    if proprio is not None:
        head += f"   proprio attention {proprio:.0%}"
    fig.suptitle(head, fontsize=12, fontweight="bold")
    for r, cam in enumerate(cameras):
        boxes = timeline.boxes(i, cam)
        for ci, col in enumerate(cols):
            ax = axes[r][ci]
            frame = moment.maps[col].get(cam)
            ax.set_xticks([])
            ax.set_yticks([])
            title = f"{cam}: {COLUMN_TITLES.get(col, col)}"
            if frame is None:  # the side method fell behind: say so in its column
                ax.imshow(np.full((h, w, 3), 40, np.uint8))
                ax.text(w / 2, h / 2, f"no overlay within {moment.max_side_gap_s:g} s of this tick\n(the side "
                        "method fell behind:\nthe node skips it when the CPU is busy)", color="white",
                        ha="center", va="center", fontsize=8)
                ax.set_title(title, fontsize=9)
                continue
            ax.imshow(frame.rgb)
            if col == "attention" and fractions and cam in fractions:
                title += f"\n{fractions[cam]:.0%} of the attention on this camera"
            if frame.stamp_ns != moment.stamp_ns:
                title += f"\n(overlay of t = {timeline.rel_s(frame.stamp_ns):.2f} s)"
            ax.set_title(title, fontsize=9)
            for name, color in (("target", "#00e676"), ("distractor", "#ffffff")):
                b = boxes.get(name)
                if b is None:
                    continue
                x0, y0, x1, y1 = b
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec=color, lw=1.4,
                                       ls="-" if name == "target" else "--"))
                ax.text(x0, max(0, y0 - 4), name, color=color, fontsize=8, va="bottom",
                        bbox=dict(facecolor="black", alpha=0.5, pad=1, lw=0))
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cbar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap="jet"), ax=axes, shrink=0.5, aspect=30, pad=0.01)
    cbar.set_ticks([0.0, 1.0], labels=["low", "high"])
    cbar.set_label("attention: / the most-attended image token;  other maps: / their peak", fontsize=7)
    fig.supxlabel("green box: the red target cube (its position decides the action)    dashed white box: the blue "
                  "distractor (irrelevant)    magenta frame: proprio share of the attention", fontsize=8)
    fig.savefig(path, format="png")


# ----------------------------------------------------------------------------------------- summary
