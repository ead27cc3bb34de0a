"""Replay videos: one attention mp4 per camera and one grid mp4 (rows = cameras, columns = attention | each
side method, e.g. GradCAM | gradient x input).

With ``--ablate``, ``ablated_<camera>.mp4`` shows that camera's frames as the edit left them, with the chunk's
change. Every tick writes exactly one frame to every video (frame count = tick count, frame rate = control
rate), so video time is bag time. A skipped tick shows the camera's latest frame dimmed, with the
reason; before a camera's first frame it is black. A side-method column holds that method's latest
overlay (its label says at which time it was computed) between side ticks.

Encoding: H.264 (yuv420p, plays in browsers) through PyAV when its libx264 encoder is available, else
MPEG-4 part 2 through OpenCV's ``VideoWriter``.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from collections.abc import Sequence

import cv2
import numpy as np

from act_interp_ros.offline.outputs import (
    GRID_VIDEO_NAME,
    TickRecord,
    ablated_video_name,
    camera_video_name,
    moved_video_name,
)
from act_interp_ros.core.render import draw_label
from act_interp_ros.pipeline.side_methods import LABELS

logger = logging.getLogger(__name__)

GRID_CELL_MAX_W = 320
BAR_H = 22
ABLATED = "ablated:"  # the key of the --ablate video's writer (camera keys never start with it)
MOVED = "moved:"  # the key of the --move video's writer


def _even(n: int) -> int:
    return max(2, n - n % 2)


def placeholder(frame: np.ndarray | None, size_hw: tuple[int, int], text: str) -> np.ndarray:
    """A dimmed copy of ``frame`` (or black) at ``size_hw`` with ``text`` drawn on it."""
    h, w = size_hw
    if frame is None:
        out = np.zeros((h, w, 3), dtype=np.uint8)
    else:
        out = fit(frame, size_hw) // 3
    draw_label(out, text[:80])
    return out


def fit(rgb: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize to exactly ``size_hw`` when needed (area interpolation when shrinking)."""
    h, w = size_hw
    if rgb.shape[:2] == (h, w):
        return rgb
    interp = cv2.INTER_AREA if rgb.shape[0] > h else cv2.INTER_LINEAR
    return cv2.resize(rgb, (w, h), interpolation=interp)


class Mp4Writer:
    """Writes (H, W, 3) uint8 RGB frames of a fixed even size to an mp4 file."""

    def __init__(self, path: Path, fps: float, size_hw: tuple[int, int]) -> None:
        self.path = Path(path)
        self.size_hw = (_even(size_hw[0]), _even(size_hw[1]))
        self.frames = 0
        self._av = None
        self._cv = None
        try:
            import av  # noqa: PLC0415

            container = av.open(str(self.path), mode="w", format="mp4")
            try:
                stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                stream.height, stream.width = self.size_hw
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "veryfast", "crf": "23", "threads": "1"}
            except Exception:
                container.close()
                raise
            self._av, self._stream = container, stream
        except Exception as exc:  # noqa: BLE001 - no PyAV / no libx264: fall back to OpenCV
            logger.debug("PyAV/libx264 unavailable (%s); writing %s with OpenCV mp4v", exc, self.path.name)
            self.path.unlink(missing_ok=True)
            h, w = self.size_hw
            self._cv = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
            if not self._cv.isOpened():
                raise RuntimeError(f"cannot open a video writer for '{self.path}' (no PyAV libx264, no OpenCV mp4v)")

    def write(self, rgb: np.ndarray) -> None:
        frame = np.ascontiguousarray(fit(rgb, self.size_hw))
        if self._av is not None:
            import av  # noqa: PLC0415

            for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                self._av.mux(packet)
        else:
            self._cv.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        if self._av is not None:
            for packet in self._stream.encode():
                self._av.mux(packet)
            self._av.close()
            self._av = None
        if self._cv is not None:
            self._cv.release()
            self._cv = None

    def abort(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - best effort while another error propagates
            logger.debug("closing partial video %s failed", self.path, exc_info=True)


class ReplayVideos:
    """The per-camera attention videos and the grid video of one replay.

    Args:
        directory: where to write (the staging directory).
        camera_keys / camera_names: policy keys and short names, same order.
        frame_sizes: camera key -> (H, W) of the source frames (the per-camera video size).
        fps: frame rate (the control rate).
        methods: side methods with a grid column each (in order).
        ablated: camera key whose ``--ablate``-edited frames get their own video (``ablated_<camera>.mp4``).
        moved: camera key whose ``--move``-edited frames get their own video (``moved_<camera>.mp4``).
    """

    def __init__(self, directory: Path, camera_keys: Sequence[str], camera_names: Sequence[str],
                 frame_sizes: dict[str, tuple[int, int]], fps: float, methods: Sequence[str] = (),
                 ablated: str | None = None, moved: str | None = None) -> None:
        self.keys = list(camera_keys)
        self.names = dict(zip(camera_keys, camera_names))
        self.methods = list(methods)
        self.ablated = ablated
        self.moved = moved
        self.writers: dict[str, Mp4Writer] = {}
        self._last_frame: dict[str, np.ndarray] = {}
        self._last_side: dict[str, dict[str, np.ndarray]] = {m: {} for m in self.methods}
        self.file_names: list[str] = []
        try:
            for key in self.keys:
                name = camera_video_name(self.names[key])
                self.writers[key] = Mp4Writer(directory / name, fps, frame_sizes[key])
                self.file_names.append(name)
            h0, w0 = frame_sizes[self.keys[0]]
            cw = min(GRID_CELL_MAX_W, w0)
            self.cell = (_even(round(h0 * cw / w0)), _even(cw))
            n_cols = 1 + len(self.methods)
            grid_hw = (BAR_H + self.cell[0] * len(self.keys), self.cell[1] * n_cols)
            self.grid = Mp4Writer(directory / GRID_VIDEO_NAME, fps, grid_hw)
            self.file_names.append(GRID_VIDEO_NAME)
            if ablated is not None:
                name = ablated_video_name(self.names[ablated])
                self.writers[ABLATED] = Mp4Writer(directory / name, fps, frame_sizes[ablated])
                self.file_names.append(name)
            if moved is not None:
                name = moved_video_name(self.names[moved])
                self.writers[MOVED] = Mp4Writer(directory / name, fps, frame_sizes[moved])
                self.file_names.append(name)
        except BaseException:
            self.abort()
            raise

    def on_tick(self, rec: TickRecord) -> None:
        for key, frame in rec.frames.items():
            self._last_frame[key] = frame.rgb
        for method, overlays in rec.side_overlays.items():
            self._last_side.setdefault(method, {}).update(overlays)
        cells: list[np.ndarray] = []
        for key in self.keys:
            writer = self.writers[key]
            if rec.skipped or key not in rec.overlays:
                view = placeholder(self._last_frame.get(key), writer.size_hw,
                                   f"t={rec.rel_s:.2f}s skipped: {rec.skip_reason or 'no output'}")
            else:
                view = rec.overlays[key]
            writer.write(view)
            row = [fit(view, self.cell)]
            for method in self.methods:
                last = self._last_side[method].get(key)
                if last is not None:
                    row.append(fit(last, self.cell))
                else:
                    row.append(placeholder(self._last_frame.get(key), self.cell, f"{LABELS[method]}: none yet"))
            cells.append(np.concatenate(row, axis=1))
        body = np.concatenate(cells, axis=0)
        bar = np.zeros((BAR_H, body.shape[1], 3), dtype=np.uint8)
        if rec.skipped:
            text = f"tick {rec.index}  t={rec.rel_s:.2f}s  skipped: {rec.skip_reason}"
        else:
            fr = rec.interpretation.fractions if rec.interpretation is not None else {}
            text = f"tick {rec.index}  t={rec.rel_s:.2f}s"
            if "state" in fr:
                text += f"  proprio {fr['state']:.0%}"
            text += "".join(f"  {self.names[k]} {fr[k]:.0%}" for k in self.keys if k in fr)
        draw_label(bar, text[:100], y=4, scale=0.4)
        self.grid.write(np.concatenate([bar, body], axis=0))
        if self.ablated is not None:
            self._write_ablated(rec)
        if self.moved is not None:
            self._write_moved(rec)

    def _write_moved(self, rec: TickRecord) -> None:
        writer = self.writers[MOVED]
        if rec.moved_frame is None:
            reason = rec.skip_reason if rec.skipped else "no frame of the moved camera on this tick"
            view = placeholder(self._last_frame.get(self.moved), writer.size_hw, f"t={rec.rel_s:.2f}s {reason}")
        else:
            view = rec.moved_frame.copy()
            draw_label(view, f"t={rec.rel_s:.2f}s change {rec.move_change:.2f} vs opposite {rec.move_vs_control:.2f}",
                       y=4, scale=0.4)
        writer.write(view)

    def _write_ablated(self, rec: TickRecord) -> None:
        writer = self.writers[ABLATED]
        if rec.ablated_frame is None:
            reason = rec.skip_reason if rec.skipped else "the edited region is not on this tick"
            view = placeholder(self._last_frame.get(self.ablated), writer.size_hw, f"t={rec.rel_s:.2f}s {reason}")
        else:
            view = rec.ablated_frame.copy()
            draw_label(view, f"t={rec.rel_s:.2f}s change {rec.ablation_change:.2f}", y=4, scale=0.4)
        writer.write(view)

    def close(self) -> list[str]:
        for writer in (*self.writers.values(), self.grid):
            writer.close()  # the per-camera videos, the ablated one included
        return list(self.file_names)

    def abort(self) -> None:
        for writer in (*self.writers.values(), *([self.grid] if hasattr(self, "grid") else [])):
            writer.abort()
