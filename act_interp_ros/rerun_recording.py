"""Write what the policy looked at into one Rerun recording (``.rrd``), for the Rerun viewer LeRobot users have.

One writer = one recording = one file; nothing is sent to a viewer or over the network (a file sink).
The file is written under a temporary name next to ``path`` and moved into place by :meth:`close`
(``os.replace``, atomic); :meth:`abort` (or leaving a ``with`` block by an exception) deletes it.

Layout. Every episode has its own entity subtree, and every episode restarts the two timelines at 0:

* timelines ``frame_index`` (sequence: frame within the episode) and ``time`` (duration: seconds since
  the episode start, the dataset's timestamp) - the same time axis as ``lerobot-dataset-viz``;
* ``/episode_NNN/camera/<cam>/image``: the camera frame (``rr.Image``, or JPEG ``rr.EncodedImage``);
* ``/episode_NNN/camera/<cam>/overlay/<name>``: any number of named overlays per camera (attention,
  gradcam, gradient_x_input, ...): a rendered (H, W, 3) uint8 image, or an (h, w) float map in [0, 1]
  that is blended over the frame here;
* ``/episode_NNN/action/<joint>/predicted`` and ``.../recorded``: one scalar series each (``rr.Scalars``),
  styled once (static ``rr.SeriesLines``: name, colour);
* ``/episode_NNN/scalar/<name>``: any named series; ``/`` in a name groups series (``attention/front``,
  ``attention/proprio`` -> one plot ``attention``);
* ``/episode_NNN/task``: the task string (static ``rr.TextDocument``).

Why per-episode subtrees on shared, restarting timelines (and not one recording per episode, or one
global timeline): one ``.rrd`` opens as one recording; scrubbing the time cursor moves every episode to the
same moment of its own episode, so episodes can be compared frame for frame; plots have "seconds into
the episode" on their x axis instead of episodes concatenated end to end. The file carries a blueprint
with one tab per episode (camera + overlay views in a grid, one action plot per joint, one plot per
scalar group), so the viewer opens on that layout rather than on its heuristics, which would stack all
overlays of a camera in one view.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from act_interp_ros.settings.vocabulary import CAMERA_KEY_PREFIX

logger = logging.getLogger(__name__)

FRAME_TIMELINE = "frame_index"
TIME_TIMELINE = "time"
PREDICTED_COLOR = (230, 97, 1)
RECORDED_COLOR = (33, 102, 172)

_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-]+")
_counter = itertools.count()


def episode_entity(episode_index: int) -> str:
    """Entity path of an episode's subtree, e.g. ``episode_007``."""
    return f"episode_{int(episode_index):03d}"


def entity_part(name: str) -> str:
    """A name made safe as one entity path part (``observation.images.front`` -> ``front``)."""
    name = str(name)
    if name.startswith(CAMERA_KEY_PREFIX):
        name = name[len(CAMERA_KEY_PREFIX):]
    part = _UNSAFE.sub("_", name).strip("_")
    if not part:
        raise ValueError(f"name {name!r} has no usable characters for an entity path")
    return part


def _scalar_path(name: str) -> tuple[str, str | None]:
    """``"attention/front"`` -> (``"attention/front"``, ``"attention"``); ``"loss"`` -> (``"loss"``, None)."""
    parts = [entity_part(p) for p in str(name).split("/") if p.strip()]
    if not parts:
        raise ValueError(f"scalar name {name!r} is empty")
    return "/".join(parts), (parts[0] if len(parts) > 1 else None)


@dataclass
class _EpisodeLayout:
    """What was logged for one episode (drives the blueprint)."""

    cameras: dict[str, list[str]] = field(default_factory=dict)  # camera -> overlay names
    joints: list[str] = field(default_factory=list)
    scalars: list[str] = field(default_factory=list)  # scalar entity sub-paths
    last_image: dict[str, np.ndarray] = field(default_factory=dict)


class RerunRecordingWriter:
    """Write camera frames, overlays, actions and scalar series of episodes into one ``.rrd`` file.

    Example::

        with RerunRecordingWriter("out/run.rrd", joint_names=source.feature_names("action")) as rrd:
            rrd.begin_episode(3, task=frame.task)
            rrd.log_frame(3, frame.frame_index, frame.timestamp,
                          images={"front": rgb}, overlays={"front": {"attention": overlay_rgb}},
                          predicted_action=pred, recorded_action=frame.action,
                          scalars={"attention/proprio": 0.41, "attention/front": 0.33})
        # out/run.rrd exists only now

    Args:
        path: the ``.rrd`` file to produce (its directory is created).
        application_id: Rerun application id (the viewer groups recordings by it).
        recording_name: shown in the viewer's recording list (default: the file name).
        joint_names: names of the action elements, in order (default ``joint_0`` ...).
        jpeg_quality: JPEG-compress camera frames and overlays at this quality (1-100); ``None`` logs raw
            RGB (exact pixels, ~H*W*3 bytes per image).
        overlay_alpha: heatmap opacity when an overlay is given as an (h, w) map.
        blueprint: write the per-episode tab layout into the file (see module docstring).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        application_id: str = "act_interp_ros",
        recording_name: str | None = None,
        joint_names: Sequence[str] | None = None,
        jpeg_quality: int | None = 90,
        overlay_alpha: float = 0.5,
        blueprint: bool = True,
    ) -> None:
        import rerun as rr

        if jpeg_quality is not None and not 1 <= int(jpeg_quality) <= 100:
            raise ValueError(f"jpeg_quality must be 1..100 or None, got {jpeg_quality}")
        if not 0.0 <= overlay_alpha <= 1.0:
            raise ValueError(f"overlay_alpha must be in [0, 1], got {overlay_alpha}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.jpeg_quality = None if jpeg_quality is None else int(jpeg_quality)
        self.overlay_alpha = float(overlay_alpha)
        self.joint_names = [entity_part(n) for n in joint_names] if joint_names is not None else None
        self._blueprint = blueprint
        self._episodes: dict[int, _EpisodeLayout] = {}
        self._styled: set[str] = set()
        self._closed = False
        self._tmp = self.path.with_name(f".{self.path.name}.partial-{os.getpid()}-{next(_counter)}")
        self._rr = rr
        self._rec = rr.RecordingStream(application_id, recording_id=str(uuid.uuid4()))
        self._rec.save(self._tmp)
        self._rec.send_recording_name(recording_name or self.path.stem)
        logger.debug("rerun recording: writing %s (staged as %s)", self.path, self._tmp)

    # ------------------------------------------------------------------------------ context manager
    def __enter__(self) -> RerunRecordingWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # a writer dropped without close() leaves nothing behind
        try:
            if not self._closed:
                self.abort()
        except Exception:  # noqa: BLE001
            pass

    # ------------------------------------------------------------------------------ logging
    @property
    def episodes(self) -> list[int]:
        """Episode indices logged so far, in first-logged order."""
        return list(self._episodes)

    def begin_episode(self, episode_index: int, *, task: str | None = None) -> None:
        """Declare an episode (optional: :meth:`log_frame` declares it too) and record its task string."""
        self._check_open()
        ep = int(episode_index)
        if ep not in self._episodes:
            self._episodes[ep] = _EpisodeLayout()
        if task is not None:
            self._rec.log(f"{episode_entity(ep)}/task", self._rr.TextDocument(str(task)), static=True)

    def log_frame(
        self,
        episode_index: int,
        frame_index: int,
        time_s: float,
        *,
        images: Mapping[str, np.ndarray] | None = None,
        overlays: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        predicted_action: Sequence[float] | np.ndarray | None = None,
        recorded_action: Sequence[float] | np.ndarray | None = None,
        scalars: Mapping[str, float] | None = None,
    ) -> None:
        """Log one frame of one episode at (``frame_index``, ``time_s``).

        Args:
            episode_index: the episode (its subtree is ``episode_NNN``).
            frame_index: frame within the episode (timeline ``frame_index``).
            time_s: seconds since the episode start (timeline ``time``).
            images: camera name or key -> (H, W, 3) uint8 RGB frame.
            overlays: camera -> {overlay name -> (H, W, 3) uint8 RGB image, or (h, w) float map in [0, 1]
                blended over this frame's (or the camera's latest) image}.
            predicted_action / recorded_action: (A,) per-joint values (policy units, e.g. degrees).
            scalars: name -> value; ``/`` groups names into one plot; non-finite values are not logged.
        """
        self._check_open()
        rr = self._rr
        ep = int(episode_index)
        if ep not in self._episodes:
            self.begin_episode(ep)
        layout = self._episodes[ep]
        base = episode_entity(ep)
        if not math.isfinite(float(time_s)):
            raise ValueError(f"time_s must be finite, got {time_s}")
        self._rec.set_time(FRAME_TIMELINE, sequence=int(frame_index))
        self._rec.set_time(TIME_TIMELINE, duration=float(time_s))

        for cam_name, image in (images or {}).items():
            cam = entity_part(cam_name)
            rgb = _check_image(image, f"image of camera {cam_name}")
            layout.cameras.setdefault(cam, [])
            layout.last_image[cam] = rgb
            self._rec.log(f"{base}/camera/{cam}/image", self._image(rgb))
        for cam_name, named in (overlays or {}).items():
            cam = entity_part(cam_name)
            names = layout.cameras.setdefault(cam, [])
            for ov_name, ov in named.items():
                name = entity_part(ov_name)
                rgb = self._overlay_rgb(ov, layout.last_image.get(cam), f"overlay {ov_name} of camera {cam_name}")
                if name not in names:
                    names.append(name)
                self._rec.log(f"{base}/camera/{cam}/overlay/{name}", self._image(rgb))
        for kind, values, color in (("predicted", predicted_action, PREDICTED_COLOR),
                                    ("recorded", recorded_action, RECORDED_COLOR)):
            if values is None:
                continue
            vec = np.asarray(values, dtype=np.float64).reshape(-1)
            joints = self._joints(len(vec))
            for j, value in zip(joints, vec):
                if j not in layout.joints:
                    layout.joints.append(j)
                if math.isfinite(value):
                    path = f"{base}/action/{j}/{kind}"
                    self._style(path, kind, color)
                    self._rec.log(path, rr.Scalars(float(value)))
        for name, value in (scalars or {}).items():
            sub, _ = _scalar_path(name)
            if sub not in layout.scalars:
                layout.scalars.append(sub)
            value = float(value)
            if math.isfinite(value):
                path = f"{base}/scalar/{sub}"
                self._style(path, sub.rsplit("/", 1)[-1], None)
                self._rec.log(path, rr.Scalars(value))

    # ------------------------------------------------------------------------------ finish
    def close(self) -> Path:
        """Write the blueprint, flush, and move the file into place; returns ``path``."""
        self._check_open()
        try:
            if self._blueprint and self._episodes:
                self._rec.send_blueprint(self.blueprint(), make_active=True, make_default=True)
            self._rec.flush()
            self._rec.disconnect()
            if not self._tmp.is_file():
                raise OSError(f"rerun did not write '{self._tmp}'")
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        logger.info("rerun recording: %s (%d episodes)", self.path, len(self._episodes))
        return self.path

    def abort(self) -> None:
        """Stop writing and delete the partial file; nothing is left at ``path`` by this writer."""
        if self._closed:
            return
        self._closed = True
        try:
            self._rec.disconnect()
        finally:
            self._tmp.unlink(missing_ok=True)
        logger.debug("rerun recording: aborted %s", self.path)

    # ------------------------------------------------------------------------------ blueprint
    def blueprint(self):
        """The viewer layout: one tab per episode (cameras/overlays grid, per-joint action plots, scalars)."""
        import rerun.blueprint as rrb

        tabs = []
        for ep, layout in self._episodes.items():
            base = "/" + episode_entity(ep)
            rows = []
            shares = []
            if layout.cameras:
                views = []
                for cam, overlays in layout.cameras.items():
                    views.append(rrb.Spatial2DView(origin=f"{base}/camera/{cam}/image", name=cam))
                    views += [rrb.Spatial2DView(origin=f"{base}/camera/{cam}/overlay/{o}", name=f"{cam}: {o}")
                              for o in overlays]
                columns = 1 + max(len(o) for o in layout.cameras.values())
                rows.append(rrb.Grid(*views, grid_columns=columns, name="cameras"))
                shares.append(3.0)
            if layout.joints:
                rows.append(rrb.Grid(*[rrb.TimeSeriesView(origin=f"{base}/action/{j}", name=f"action: {j}")
                                       for j in layout.joints],
                                     grid_columns=min(3, len(layout.joints)), name="actions"))
                shares.append(2.0)
            if layout.scalars:
                groups: dict[str, None] = {}
                single: list[str] = []
                for sub in layout.scalars:
                    if "/" in sub:
                        groups.setdefault(sub.split("/", 1)[0], None)
                    else:
                        single.append(sub)
                views = [rrb.TimeSeriesView(origin=f"{base}/scalar/{g}", name=g) for g in groups]
                if single:
                    views.append(rrb.TimeSeriesView(origin=f"{base}/scalar",
                                                    contents=[f"+ {base}/scalar/{s}" for s in single],
                                                    name="scalars"))
                rows.append(rrb.Horizontal(*views, name="scalars"))
                shares.append(1.5)
            tabs.append(rrb.Vertical(*rows, row_shares=shares, name=f"episode {ep}"))
        return rrb.Blueprint(rrb.Tabs(*tabs, active_tab=0), collapse_panels=False)

    # ------------------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"rerun recording '{self.path}' is already closed or aborted")

    def _joints(self, n: int) -> list[str]:
        if self.joint_names is None:
            self.joint_names = [f"joint_{i}" for i in range(n)]
        if len(self.joint_names) != n:
            raise ValueError(f"action has {n} values; expected {len(self.joint_names)} ({', '.join(self.joint_names)})")
        return self.joint_names

    def _style(self, path: str, name: str, color: tuple[int, int, int] | None) -> None:
        if path in self._styled:
            return
        self._styled.add(path)
        lines = self._rr.SeriesLines(names=name, colors=[color] if color is not None else None, widths=1.5)
        self._rec.log(path, lines, static=True)

    def _image(self, rgb: np.ndarray):
        image = self._rr.Image(rgb, color_model="RGB" if rgb.ndim == 3 and rgb.shape[2] == 3 else None)
        if self.jpeg_quality is not None and not (rgb.ndim == 3 and rgb.shape[2] == 4):
            return image.compress(jpeg_quality=self.jpeg_quality)
        return image

    def _overlay_rgb(self, overlay: np.ndarray, base: np.ndarray | None, what: str) -> np.ndarray:
        arr = np.asarray(overlay)
        if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating):
            from act_interp_ros.core.render import colorize, render_overlay

            if base is not None and base.ndim == 3 and base.shape[2] == 3:
                return render_overlay(base, arr, alpha=self.overlay_alpha)
            return colorize(arr, arr.shape)
        return _check_image(arr, what)


def _check_image(image: np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(image)
    ok = arr.dtype == np.uint8 and (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] in (3, 4)))
    if not ok or arr.size == 0:
        raise ValueError(f"{what} has shape {arr.shape} {arr.dtype}; expected (H, W, 3) uint8 RGB")
    return np.ascontiguousarray(arr)
