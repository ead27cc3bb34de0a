"""Offline replay of a recorded bag through an interpretable ACT policy (ROS-free: rosbags + torch).

``replay_bag(bag, policy, settings, out_dir, options)`` ticks at the control rate over the bag, runs the
policy on each tick the live node would have run it on, and writes the selected outputs (output bag,
videos, per-tick table, plot, ``summary.json``).

Time rule (``clock="log"``, the default)
    Ticks are placed on the bag's **log (receive) time** axis, from the first camera / joint-state
    message to the last one, every ``1 / control_rate_hz`` seconds. A tick at time ``t`` uses, per
    topic, the latest message *received* by ``t`` (log time <= t), and judges its freshness by its
    **header stamp** with the node's own :class:`~act_interp_ros.freshness.InputGate` (``now = t``).
    This is exactly what the live node sees when the bag is played into it with ``ros2 bag play
    --clock`` / ``act_interp_play`` under ``use_sim_time`` (/clock follows log time, messages arrive at
    their log time, the node keeps the latest message per topic and checks header stamps against ROS
    time), so offline and live runs skip the same ticks for the same reasons.
    ``clock="header"`` instead places ticks on the header-stamp axis and uses, per topic, the message
    with the latest header stamp <= t: useful for bags whose log times are unrelated to the stamps
    (e.g. recorded on another machine, or with simulated stamps); outputs are then recorded at
    ``t + median(log time - header stamp)`` so they still line up with the inputs on playback.

Policy rule
    The policy is reset at the start. Every tick that passes the gate runs one forced forward pass
    (fresh attention each tick) and advances the policy's action queue / temporal ensembler exactly like
    ``select_action``; skipped ticks compute no action and do not advance the queue, as in the node.
    ``batch_size`` > 1 stacks the preprocessed observations of up to N consecutive runnable ticks into
    one ``predict_chunk`` call, then feeds the chunk rows to ``select_from_chunk`` in tick order, so the
    actions equal sequential execution (up to float rounding of the batched forward pass).

Every tick in the range yields outputs or a recorded skip reason.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from act_interp_ros.bag import outputs as out
from act_interp_ros.bag.reader import (
    COMPRESSED_IMAGE_TYPE,
    IMAGE_TYPE,
    JOINT_STATE_TYPE,
    BagError,
    BagReader,
    RawMessage,
    header_stamp_ns,
    open_bag,
)
from act_interp_ros.core import (
    AttentionOptions,
    GradCAM,
    GradCAMTarget,
    InterpretableACT,
    ObservationBuilder,
    ObservationError,
    render_overlay,
)
from act_interp_ros.freshness import InputGate
from act_interp_ros.joint_mapping import ActionError, JointMapping, JointMappingError
from act_interp_ros.ros.image_conversion import ImageDecodeError, decode_image
from act_interp_ros.settings import DEFAULT_NODE_NAME, NodeSettings, camera_name

logger = logging.getLogger(__name__)

CLOCKS = ("log", "header")
NS = 1_000_000_000


class ReplayError(RuntimeError):
    """The replay cannot run on this input (bag, policy and configuration disagree); one clear line."""


@dataclass
class ReplayOptions:
    """How to replay (everything the command line sets besides bag, policy, config and output dir).

    Attributes:
        start_s, end_s: replay only [start, end] seconds after the first camera/joint-state message.
        rate_hz: tick rate; ``None`` = the config's ``control_rate_hz``.
        batch_size: runnable ticks per batched forward pass (1 = sequential).
        gradcam_every: GradCAM every N ticks (tick index % N == 0; 0 = off, 1 = every tick);
            ``None`` = from the config's ``gradcam_rate_hz`` (round(rate / gradcam_rate_hz)).
        clock: ``"log"`` (default) or ``"header"``; see the module docstring.
        write_bag, write_video, write_table, write_plot: which outputs to write.
        table_format: ``"csv"`` or ``"parquet"``.
        strict_size: error out when camera images do not have the policy's size (default: resize, warn once).
            The config's ``image_resize: false`` means the same.
        device: torch device; ``None`` = the config's ``device``.
        progress: show a tqdm progress bar on stderr.
        node_name: namespace of the output topics in the output bag.
    """

    start_s: float | None = None
    end_s: float | None = None
    rate_hz: float | None = None
    batch_size: int = 1
    gradcam_every: int | None = None
    clock: str = "log"
    write_bag: bool = True
    write_video: bool = True
    write_table: bool = True
    write_plot: bool = True
    table_format: str = "csv"
    strict_size: bool = False
    device: str | None = None
    progress: bool = False
    node_name: str = "/" + DEFAULT_NODE_NAME


@dataclass
class ReplaySummary:
    """What a replay did; ``to_dict()`` is what ``summary.json`` holds.

    ``outputs`` maps each output's name to its final path; ``timings`` has wall times (s) and ticks/s.
    """

    bag: str
    policy: str
    out_dir: str
    clock: str
    rate_hz: float
    batch_size: int
    gradcam_every: int
    start_ns: int
    end_ns: int
    ticks: int
    processed: int
    skipped: int
    skipped_by_reason: dict[str, int]
    gradcam_ticks: int
    input_topics: dict[str, str]
    output_topics: dict[str, str]
    output_counts: dict[str, int]
    outputs: dict[str, str]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------------------------------ helpers
@dataclass
class _TopicIndex:
    """Log times and header stamps (ns) of one topic's messages, in log order."""

    topic: str
    msgtype: str
    log_ns: np.ndarray
    stamp_ns: np.ndarray


@dataclass
class _Camera:
    key: str
    name: str
    topic: str
    msgtype: str
    size_hw: tuple[int, int]


@dataclass
class _Pending:
    rec: out.TickRecord
    batch: dict[str, Any] | None = None
    current_ros: np.ndarray | None = None
    wants_gradcam: bool = False


def _resolve_camera(reader: BagReader, key: str, topic: str, transport: str) -> tuple[str, str]:
    """(topic, msgtype) for a camera; falls back to the other transport's topic when only that one exists."""
    want = IMAGE_TYPE if transport == "raw" else COMPRESSED_IMAGE_TYPE
    if topic in reader.topics:
        reader.require_topic(topic, (want,))
        return topic, want
    if transport == "raw":
        alt, alt_type = topic.rstrip("/") + "/compressed", COMPRESSED_IMAGE_TYPE
    else:
        alt, alt_type = topic.rstrip("/").removesuffix("/compressed"), IMAGE_TYPE
    info = reader.topics.get(alt)
    if info is not None and info.msgtype == alt_type and info.count > 0:
        logger.warning("camera '%s': topic '%s' is not in the bag; using '%s' (%s) instead", key, topic, alt, alt_type)
        return alt, alt_type
    raise BagError(
        f"camera '{key}': topic '{topic}' ({want}) is not in the bag (nor '{alt}'); "
        f"{reader.describe_topics()}. Set camera_topics / camera_transports in the config"
    )


def _tick_times(first_ns: int, last_ns: int, rate_hz: float) -> list[int]:
    """Tick times first, first + 1/rate, ... <= last, as exact ceil'd integer ns (never early vs k/rate)."""
    period = Fraction(NS) / Fraction(rate_hz)
    times = (first_ns + math.ceil(k * period) for k in range(int((last_ns - first_ns) / period) + 1))
    return [t for t in times if t <= last_ns]


def _gradcam_every(options: ReplayOptions, settings: NodeSettings, rate_hz: float) -> int:
    if options.gradcam_every is not None:
        return int(options.gradcam_every)
    if settings.gradcam_rate_hz <= 0:
        return 0
    return max(1, round(rate_hz / settings.gradcam_rate_hz))


def _attention_options(settings: NodeSettings) -> AttentionOptions:
    return AttentionOptions(
        decoder_layer=int(settings.attention_decoder_layer),
        heads=tuple(settings.attention_heads) or None,
        query=None if settings.attention_query == -1 else int(settings.attention_query),
    )


def _check_options(options: ReplayOptions) -> None:
    if options.clock not in CLOCKS:
        raise ReplayError(f"clock must be one of {', '.join(CLOCKS)}, got {options.clock!r}")
    if not isinstance(options.batch_size, int) or options.batch_size < 1:
        raise ReplayError(f"batch size must be an integer >= 1, got {options.batch_size!r}")
    if options.gradcam_every is not None and (not isinstance(options.gradcam_every, int) or options.gradcam_every < 0):
        raise ReplayError(f"gradcam-every must be an integer >= 0 (0 = off, 1 = every tick), got {options.gradcam_every!r}")
    if options.table_format not in out.TABLE_FORMATS:
        raise ReplayError(f"table format must be one of {', '.join(out.TABLE_FORMATS)}, got {options.table_format!r}")
    if options.rate_hz is not None and not (math.isfinite(options.rate_hz) and options.rate_hz > 0):
        raise ReplayError(f"rate must be a finite number of Hz > 0, got {options.rate_hz!r}")
    for name in ("start_s", "end_s"):
        v = getattr(options, name)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ReplayError(f"--{name[:-2]} must be a number of seconds >= 0, got {v!r}")
    if options.start_s is not None and options.end_s is not None and options.end_s <= options.start_s:
        raise ReplayError(f"--end ({options.end_s} s) must be after --start ({options.start_s} s)")


# -------------------------------------------------------------------------------------------- core
class _Replay:
    """One replay run (see :func:`replay_bag`)."""

    def __init__(self, reader: BagReader, settings: NodeSettings, options: ReplayOptions) -> None:
        self.reader = reader
        self.settings = settings
        self.options = options
        self.rate_hz = float(options.rate_hz or settings.control_rate_hz)
        self.gradcam_every = _gradcam_every(options, settings, self.rate_hz)
        self.strict = bool(options.strict_size or not settings.image_resize)
        self.warnings: list[str] = []
        self.mapping = JointMapping.from_settings(settings)
        self.cameras: list[_Camera] = []
        for key, topic, transport in zip(settings.camera_keys, settings.camera_topics, settings.camera_transports):
            t, msgtype = _resolve_camera(reader, key, topic, transport)
            if t != topic:
                self.warnings.append(f"camera '{key}': used '{t}' because '{topic}' is not in the bag")
            self.cameras.append(_Camera(key, camera_name(key), t, msgtype, (0, 0)))
        self.joint_topic = settings.joint_state_topic
        reader.require_topic(self.joint_topic, (JOINT_STATE_TYPE,))
        self.topics = [c.topic for c in self.cameras] + [self.joint_topic]
        for topic in self.topics:
            msgtype = reader.topics[topic].msgtype
            if not reader.has_header(msgtype):
                raise BagError(f"topic '{topic}' ({msgtype}) has no std_msgs/Header; cannot judge its freshness")
        labels = {c.topic: c.name for c in self.cameras}
        self.gate = InputGate(settings.max_input_age_s, settings.max_camera_skew_s, labels)

    def attach_policy(self, wrapped: InterpretableACT) -> None:
        """Check the policy against the config and the bag's images (call after :meth:`index`)."""
        self.wrapped = wrapped
        self._check_policy()
        self.builder = ObservationBuilder(wrapped.config, resize=not self.strict)
        for cam in self.cameras:
            want = tuple(wrapped.image_shapes[cam.key])
            if cam.size_hw != want and self.strict:
                raise ReplayError(
                    f"camera '{cam.key}' topic '{cam.topic}': images are {cam.size_hw[1]}x{cam.size_hw[0]} but the "
                    f"policy expects {want[1]}x{want[0]}; without --strict-size (and with image_resize: true) they "
                    "are resized"
                )

    # ------------------------------------------------------------------------------ validation
    def _check_policy(self) -> None:
        w, s = self.wrapped, self.settings
        if set(w.camera_keys) != set(s.camera_keys):
            raise ReplayError(
                f"the policy's cameras {sorted(w.camera_keys)} differ from the config's camera_keys "
                f"{sorted(s.camera_keys)}; list exactly the policy's cameras in camera_keys/camera_topics"
            )
        if w.state_dim != len(s.joint_names):
            raise ReplayError(
                f"the policy's observation.state has {w.state_dim} values but the config lists "
                f"{len(s.joint_names)} joint_names {s.joint_names}"
            )
        if w.action_dim != len(s.joint_names):
            raise ReplayError(
                f"the policy's action has {w.action_dim} values but the config lists "
                f"{len(s.joint_names)} joint_names {s.joint_names}"
            )
        if w.env_state_dim:
            raise ReplayError(
                "the policy needs observation.environment_state, which act_interp_ros cannot take from a bag "
                "(no environment-state topic is configured)"
            )

    # ---------------------------------------------------------------------------------- index
    def index(self) -> None:
        """Pass 1: header stamps and log times of every camera / joint-state message; check first messages."""
        logs: dict[str, list[int]] = {t: [] for t in self.topics}
        stamps: dict[str, list[int]] = {t: [] for t in self.topics}
        first: dict[str, RawMessage] = {}
        for msg in self.reader.messages(self.topics):
            logs[msg.topic].append(msg.log_ns)
            stamps[msg.topic].append(header_stamp_ns(msg.data))
            if msg.topic not in first:
                first[msg.topic] = RawMessage(msg.topic, msg.msgtype, msg.log_ns, bytes(msg.data))
        self.idx = {
            t: _TopicIndex(t, self.reader.topics[t].msgtype, np.asarray(logs[t], dtype=np.int64),
                           np.asarray(stamps[t], dtype=np.int64))
            for t in self.topics
        }
        for t, ix in self.idx.items():
            if len(ix.log_ns) == 0:
                raise BagError(f"topic '{t}' has no messages; {self.reader.describe_topics()}")
        # First messages: decodable, right size (strict), joint names present.
        for cam in self.cameras:
            try:
                rgb = decode_image(self.reader.deserialize(first[cam.topic]))
            except ImageDecodeError as exc:
                raise ReplayError(f"camera '{cam.key}' topic '{cam.topic}': {exc}") from None
            cam.size_hw = (int(rgb.shape[0]), int(rgb.shape[1]))
        js = self.reader.deserialize(first[self.joint_topic])
        try:
            self.mapping.from_joint_state(list(js.name), np.asarray(js.position))
        except JointMappingError as exc:
            raise ReplayError(f"topic '{self.joint_topic}': {exc}") from None

    # ----------------------------------------------------------------------------------- plan
    def plan(self) -> None:
        """Tick times and, per tick and topic, which message (index in log order) it uses."""
        header = self.options.clock == "header"
        axis = {t: (ix.stamp_ns if header else ix.log_ns) for t, ix in self.idx.items()}
        begin = int(min(int(a.min()) for a in axis.values()))
        last = int(max(int(a.max()) for a in axis.values()))
        self.origin_ns = begin
        start = begin + round((self.options.start_s or 0.0) * NS)
        stop = last if self.options.end_s is None else min(last, begin + round(self.options.end_s * NS))
        if start > last:
            raise ReplayError(
                f"--start {self.options.start_s} s is past the end of the bag's camera/joint data "
                f"({(last - begin) / NS:.3f} s long)"
            )
        self.ticks = _tick_times(start, stop, self.rate_hz)
        if not self.ticks:
            raise ReplayError("the selected time range holds no control tick")
        tick_arr = np.asarray(self.ticks, dtype=np.int64)
        self.selection: dict[str, np.ndarray] = {}
        for t, ix in self.idx.items():
            if header:
                order = np.argsort(ix.stamp_ns, kind="stable")
                pos = np.searchsorted(ix.stamp_ns[order], tick_arr, side="right") - 1
                sel = np.where(pos >= 0, order[np.maximum(pos, 0)], -1)
            else:
                sel = np.searchsorted(ix.log_ns, tick_arr, side="right") - 1
            self.selection[t] = sel.astype(np.int64)
        self.last_use: dict[tuple[str, int], int] = {}
        for t, sel in self.selection.items():
            for k, j in enumerate(sel.tolist()):
                if j >= 0:
                    self.last_use[(t, j)] = k
        if header:
            diffs = np.concatenate([ix.log_ns - ix.stamp_ns for ix in self.idx.values()])
            self.log_offset_ns = int(np.median(diffs))
        else:
            self.log_offset_ns = 0
        # Range of log times to read (messages the ticks use) and to copy into the output bag.
        needed_logs = [int(self.idx[t].log_ns[j]) for (t, j) in self.last_use]
        self.read_from_ns = min(needed_logs) if needed_logs else self.ticks[0]
        self.read_to_ns = max(needed_logs) if needed_logs else self.ticks[-1]
        if self.options.start_s is None and self.options.end_s is None:
            self.copy_range = (None, None)
        else:
            age_ns = round(self.settings.max_input_age_s * NS)
            self.copy_range = (self.ticks[0] + self.log_offset_ns - age_ns, self.ticks[-1] + self.log_offset_ns)

    # ------------------------------------------------------------------------------------ run
    def run(self, out_dir: Path) -> ReplaySummary:
        t_indexed = time.perf_counter()
        opts, s, w = self.options, self.settings, self.wrapped
        cam_keys = [c.key for c in self.cameras]
        cam_names = [c.name for c in self.cameras]
        self.table = out.TickTable(cam_keys, cam_names, self.joint_topic, [c.topic for c in self.cameras],
                                   list(s.joint_names), has_state=w.state_dim > 0, has_env_state=w.env_state_dim > 0)
        spec = s.gradcam_target_spec()
        self.target = GradCAMTarget(spec.kind, spec.joint_index)
        try:
            self.gradcam = GradCAM(w.policy, s.gradcam_layer) if self.gradcam_every > 0 else None
        except ValueError as exc:  # no such backbone layer
            raise ReplayError(f"gradcam_layer: {exc}") from None
        stage = out.OutputStage(out_dir)
        self.bag_out = None
        self.videos = None
        self.render = opts.write_bag or opts.write_video
        self.counts = {"processed": 0, "skipped": 0, "gradcam": 0}
        self.skips: dict[str, int] = {}
        self.model_s = 0.0
        staged: list[str] = []
        try:
            if opts.write_bag:
                from act_interp_ros.bag.bag_output import OutputBagWriter

                self.bag_out = OutputBagWriter(
                    stage.path(out.BAG_NAME), self.reader, list(self.reader.topics), node=opts.node_name,
                    camera_keys=cam_keys, camera_names=cam_names, joint_names=s.joint_names,
                    has_state=w.state_dim > 0, has_env_state=w.env_state_dim > 0,
                    gradcam=self.gradcam_every > 0, actions=bool(s.publish_actions))
            if opts.write_video:
                from act_interp_ros.bag.video_output import ReplayVideos

                self.videos = ReplayVideos(stage.dir, cam_keys, cam_names, {c.key: c.size_hw for c in self.cameras},
                                           self.rate_hz, gradcam=self.gradcam_every > 0)
            w.policy.eval()
            w.reset()
            t_loop = time.perf_counter()
            self._stream()
            self.loop_s = time.perf_counter() - t_loop
            if self.bag_out is not None:
                self.bag_out.close()
                staged.append(out.BAG_NAME)
            if self.videos is not None:
                staged += self.videos.close()
            if opts.write_table:
                name = out.table_name(opts.table_format)
                self.table.write(stage.path(name), opts.table_format)
                staged.append(name)
            if opts.write_plot:
                out.write_attention_plot(self.table, stage.path(out.PLOT_NAME),
                                         title=f"ACT attention over {Path(self.reader.path).name}")
                staged.append(out.PLOT_NAME)
            t_done = time.perf_counter()
            committed = stage.commit(staged)
        except BaseException:
            if self.bag_out is not None:
                self.bag_out.abort()
            if self.videos is not None:
                self.videos.abort()
            stage.discard()
            raise
        finally:
            if self.gradcam is not None:
                self.gradcam.close()
        loop_s = max(self.loop_s, 1e-9)
        summary = ReplaySummary(
            bag=str(self.reader.path), policy="", out_dir=str(out_dir), clock=opts.clock, rate_hz=self.rate_hz,
            batch_size=opts.batch_size, gradcam_every=self.gradcam_every,
            start_ns=self.ticks[0], end_ns=self.ticks[-1], ticks=len(self.ticks),
            processed=self.counts["processed"], skipped=self.counts["skipped"],
            skipped_by_reason=dict(sorted(self.skips.items())), gradcam_ticks=self.counts["gradcam"],
            input_topics={c.key: c.topic for c in self.cameras} | {"joint_state": self.joint_topic},
            output_topics=dict(self.bag_out.topics) if self.bag_out is not None else {},
            output_counts=({t: n for t, n in self.bag_out.counts.items() if t in self.bag_out.topics}
                           if self.bag_out is not None else {}),
            outputs={name: str(path) for name, path in committed.items()},
            timings={"index_s": round(self.index_s, 4), "ticks_s": round(loop_s, 4),
                     "model_s": round(self.model_s, 4), "outputs_s": round(t_done - t_indexed - loop_s, 4), "total_s": round(time.perf_counter() - self.t_start, 4),
                     "ticks_per_s": round(len(self.ticks) / loop_s, 3)},
            warnings=self.warnings,
        )
        return summary

    # ------------------------------------------------------------------------------ streaming
    def _stream(self) -> None:
        """Pass 2: read the bag in log order, build ticks as soon as their inputs are read, run the policy."""
        from tqdm import tqdm

        n = len(self.ticks)
        cache: dict[tuple[str, int], Any] = {}
        self.pending: list[_Pending] = []
        next_tick = 0
        copy = self.bag_out is not None
        lo, hi = self.copy_range
        if not copy:  # only the messages the ticks use
            topics, read_from, read_to = self.topics, self.read_from_ns, self.read_to_ns + 1
        elif lo is None:  # the whole bag is copied
            topics, read_from, read_to = None, None, None
        else:
            topics, read_from, read_to = None, min(self.read_from_ns, lo), max(self.read_to_ns, hi) + 1
        # ordinal (index in the topic's log order) of the next message read from each topic
        read = {t: (0 if read_from is None else int(np.searchsorted(self.idx[t].log_ns, read_from, side="left")))
                for t in self.topics}
        bar = tqdm(total=n, unit="tick", disable=not self.options.progress, file=sys.stderr, dynamic_ncols=True,
                   desc="replay", mininterval=0.5)
        self._bar = bar
        try:
            for msg in self.reader.messages(topics, start_ns=read_from, stop_ns=read_to):
                if copy and (lo is None or lo <= msg.log_ns <= hi):
                    self.bag_out.on_input(msg)
                if msg.topic not in read:
                    continue
                j = read[msg.topic]
                read[msg.topic] = j + 1
                if (msg.topic, j) in self.last_use:
                    cache[(msg.topic, j)] = self._decode(msg)
                while next_tick < n and self._ready(next_tick, read):
                    self._build_tick(next_tick, cache)
                    for t in self.topics:
                        jj = int(self.selection[t][next_tick])
                        if jj >= 0 and self.last_use.get((t, jj)) == next_tick:
                            cache.pop((t, jj), None)
                    next_tick += 1
                if next_tick == n and not copy:
                    break
            if next_tick < n:  # pragma: no cover - the index guarantees every selected message is read
                raise BagError(f"bag '{self.reader.path}' changed while it was read (tick {next_tick} of {n} lacks input)")
            self._flush()
            if self.bag_out is not None:
                self.bag_out.input_done()
        finally:
            bar.close()

    def _ready(self, k: int, read: dict[str, int]) -> bool:
        return all(int(self.selection[t][k]) < read[t] for t in self.topics)

    def _decode(self, msg: RawMessage) -> Any:
        """Decoded message used by some tick: (rgb, stamp_ns, frame_id) | joint ROS vector | an error string."""
        try:
            obj = self.reader.deserialize(msg)
        except BagError as exc:
            return f"bad_message:{msg.topic} {exc}"
        stamp = obj.header.stamp.sec * NS + obj.header.stamp.nanosec
        if msg.topic == self.joint_topic:
            try:
                return (self.mapping.from_joint_state(list(obj.name), np.asarray(obj.position)), stamp)
            except JointMappingError as exc:
                return f"joint_state:{msg.topic} {exc}"
        try:
            return (decode_image(obj), stamp, str(obj.header.frame_id))
        except ImageDecodeError as exc:
            return f"image:{msg.topic} {exc}"

    def _build_tick(self, k: int, cache: dict[tuple[str, int], Any]) -> None:
        t_ns = self.ticks[k]
        rec = out.TickRecord(index=k, time_ns=t_ns, rel_s=(t_ns - self.origin_ns) / NS, log_ns=t_ns + self.log_offset_ns)
        decoded: dict[str, Any] = {}
        stamps_s: dict[str, float | None] = {}
        for t in self.topics:
            j = int(self.selection[t][k])
            if j < 0:
                rec.input_stamps_ns[t] = None
                stamps_s[t] = None
                continue
            stamp = int(self.idx[t].stamp_ns[j])
            rec.input_stamps_ns[t] = stamp
            stamps_s[t] = stamp / NS
            decoded[t] = cache[(t, j)]
        for cam in self.cameras:
            d = decoded.get(cam.topic)
            if isinstance(d, tuple):
                rec.frames[cam.key] = out.CameraFrame(cam.key, cam.name, cam.topic, d[0], d[1], d[2])
        decision = self.gate.check(t_ns / NS, stamps_s, [c.topic for c in self.cameras])
        pending = _Pending(rec)
        if not decision.ok:
            rec.skip_reason = decision.reason
        else:
            errors = [d for d in decoded.values() if isinstance(d, str)]
            if errors:
                rec.skip_reason = errors[0]
            else:
                current_ros = decoded[self.joint_topic][0]
                state = self.mapping.ros_to_policy(current_ros).astype(np.float32)
                if self.strict:
                    for cam in self.cameras:
                        got, want = rec.frames[cam.key].rgb.shape[:2], tuple(self.wrapped.image_shapes[cam.key])
                        if got != want:
                            raise ReplayError(
                                f"camera '{cam.key}' topic '{cam.topic}': at t={rec.rel_s:.3f} s the image is "
                                f"{got[1]}x{got[0]} but the policy expects {want[1]}x{want[0]} (--strict-size)")
                try:
                    obs = self.builder.build({key: f.rgb for key, f in rec.frames.items()}, state, None)
                except ObservationError as exc:
                    rec.skip_reason = f"observation: {exc}"
                else:
                    pending.batch = self.wrapped.preprocess(obs)
                    pending.current_ros = current_ros
                    pending.wants_gradcam = self.gradcam_every > 0 and k % self.gradcam_every == 0
        self.pending.append(pending)
        if sum(p.batch is not None for p in self.pending) >= self.options.batch_size:
            self._flush()

    def _flush(self) -> None:
        """Run the model on the pending runnable ticks (one batched forward), then emit all pending ticks."""
        pending, self.pending = self.pending, []
        runnable = [p for p in pending if p.batch is not None]
        if runnable:
            t0 = time.perf_counter()
            w = self.wrapped
            batch = _stack([p.batch for p in runnable])
            with torch.no_grad():
                chunk, interps = w.predict_chunk(batch)
                actions = torch.cat([w.select_from_chunk(chunk[i : i + 1]) for i in range(len(runnable))], dim=0)
            actions_np = w.postprocess(actions)
            for p, interp, action in zip(runnable, interps, actions_np):
                p.rec.interpretation = interp
                p.rec.action = action
            wants = [i for i, p in enumerate(runnable) if p.wants_gradcam]
            if wants and self.gradcam is not None:
                sub = _stack([runnable[i].batch for i in wants])
                maps = self.gradcam.attribute(sub, self.target)
                for i, m in zip(wants, maps):
                    runnable[i].rec.gradcam = m
            self.model_s += time.perf_counter() - t0
        for p in pending:
            self._finish(p)
            self._emit(p.rec)

    def _finish(self, p: _Pending) -> None:
        rec = p.rec
        if rec.skipped or rec.action is None:
            return
        try:
            action_ros = self.mapping.policy_to_ros(rec.action)
            rec.command_ros, rec.command_clamped = self.mapping.limit(action_ros, p.current_ros)
        except ActionError as exc:
            logger.warning("tick %d: no command: %s", rec.index, exc)
        if not self.render:
            return
        interp = rec.interpretation
        alpha = float(self.settings.overlay_alpha)
        for cam in self.cameras:
            frame = rec.frames[cam.key]
            frac = interp.fractions.get(cam.key, 0.0)
            label = f"{cam.name} attn {frac:.0%}"
            if "state" in interp.fractions:
                label += f" proprio {interp.fractions['state']:.0%}"
            rec.overlays[cam.key] = render_overlay(frame.rgb, interp.camera_maps[cam.key], alpha=alpha,
                                                   border=interp.proprio, label=label)
            if rec.gradcam is not None:
                rec.gradcam_overlays[cam.key] = render_overlay(
                    frame.rgb, rec.gradcam[cam.key], alpha=alpha, label=f"{cam.name} GradCAM {rec.rel_s:.2f}s")

    def _emit(self, rec: out.TickRecord) -> None:
        if rec.skipped:
            self.counts["skipped"] += 1
            group = out.reason_group(rec.skip_reason)
            self.skips[group] = self.skips.get(group, 0) + 1
        else:
            self.counts["processed"] += 1
            self.counts["gradcam"] += rec.gradcam is not None
        self.table.add(rec)
        if self.bag_out is not None:
            self.bag_out.on_tick(rec)
        if self.videos is not None:
            self.videos.on_tick(rec)
        self._bar.update(1)


def _stack(batches: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate preprocessed (B=1) batches along dim 0; non-tensor entries are taken from the first."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    return {k: torch.cat([b[k] for b in batches], dim=0) if isinstance(v, torch.Tensor) else v for k, v in first.items()}


# --------------------------------------------------------------------------------------- public API
def replay_bag(
    bag: str | os.PathLike[str],
    policy: str | os.PathLike[str] | InterpretableACT,
    settings: NodeSettings,
    out_dir: str | os.PathLike[str],
    options: ReplayOptions | None = None,
) -> ReplaySummary:
    """Replay ``bag`` through ``policy`` with the node's ``settings``; write outputs into ``out_dir``.

    Args:
        bag: rosbag2 directory, ``.mcap`` or ``.db3`` file.
        policy: a LeRobot ACT ``pretrained_model/`` directory (loaded on ``options.device`` or the config's
            device, with the config's attention options), or an already loaded :class:`InterpretableACT`.
        settings: the live node's settings (``load_settings_yaml("config/so101.yaml", overrides=...)``).
        out_dir: output directory (created if needed); outputs appear there only when the run succeeds.
        options: :class:`ReplayOptions`.
    Returns:
        :class:`ReplaySummary` (also written to ``out_dir/summary.json``).
    Raises:
        BagError, ReplayError: bad input (clear one-line messages);
        act_interp_ros.core.PolicyLoadError: the policy cannot be loaded.
    """
    options = options or ReplayOptions()
    _check_options(options)
    out_path = Path(out_dir)
    if out_path.exists() and not out_path.is_dir():
        raise ReplayError(f"output path '{out_path}' exists and is not a directory")
    with open_bag(bag) as reader:
        replay = _Replay(reader, settings, options)  # inputs are checked before the (slow) policy load
        replay.t_start = time.perf_counter()
        replay.index()
        replay.plan()
        replay.index_s = time.perf_counter() - replay.t_start
        loaded_here = not isinstance(policy, InterpretableACT)
        if loaded_here:
            try:
                wrapped = InterpretableACT.from_pretrained(
                    os.fspath(policy), device=options.device or settings.device, attention=_attention_options(settings))
            except ValueError as exc:  # attention_decoder_layer / attention_heads out of range for this model
                raise ReplayError(str(exc)) from None
            policy_name = os.fspath(policy)
        else:
            wrapped = policy
            policy_name = getattr(policy.config, "pretrained_path", None) or type(policy).__name__
        try:
            replay.attach_policy(wrapped)
            summary = replay.run(out_path)
        finally:
            if loaded_here:
                wrapped.close()
    summary.policy = str(policy_name)
    summary.outputs[out.SUMMARY_NAME] = str(out_path / out.SUMMARY_NAME)
    out.write_json_atomic(out_path / out.SUMMARY_NAME, summary.to_dict())
    logger.info("replayed %d ticks (%d skipped) at %.1f ticks/s into %s", summary.ticks, summary.skipped,
                summary.timings["ticks_per_s"], out_path)
    return summary
