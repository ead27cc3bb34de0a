"""Offline replay of a recorded bag through an interpretable ACT policy (ROS-free: rosbags + torch).

``replay_bag(bag, policy, settings, out_dir, options)`` ticks over the bag (:mod:`.plan`), runs each tick
through the node's own pipeline (:mod:`act_interp_ros.pipeline`: the same gate, decoding, joint checks,
observation, plan rule and limits as the live node, so both skip the same ticks for the same reasons), and
writes the selected outputs (output bag, videos, per-tick table, plot, ``summary.json``).

Policy rule: the policy is reset at the start. Every tick that passes the pipeline runs one forward pass
(fresh attention each tick) and advances the policy's action queue / temporal ensembler exactly like
``select_action``; after any tick without an action the plan is reset, as in the node. ``batch_size`` > 1
stacks the preprocessed observations of up to N consecutive runnable ticks into one forward pass and then
feeds the chunk rows to the stepper in tick order, so the actions equal sequential execution (up to float
rounding of the batched forward pass).

Every tick in the range yields outputs or a recorded skip reason.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.offline import outputs as out
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
from act_interp_ros.bag.replay.plan import CLOCKS, NS, PlanError, TickPlan, TopicIndex, build_plan
from act_interp_ros.core import DeletionTest, EnvStateSensitivity, InterpretableACT, SensitivityConfig
from act_interp_ros.env_state_input import ENV_STATE_MESSAGE_TYPES, EnvStateInput, has_header
from act_interp_ros.image_decoding import ImageDecodeError, decode_image
from act_interp_ros.offline.interpreter import OfflineInterpreter, OfflineTick
from act_interp_ros.offline.records import CameraFrame, TickRecord
from act_interp_ros.pipeline import SkipReason, TickPipeline, TickSnapshot, check_policy, load_policy, output_contract
from act_interp_ros.pipeline.side_methods import ALL_METHODS
from act_interp_ros.settings import DEFAULT_NODE_NAME, NodeSettings, SettingsError, camera_name

__all__ = ["ReplayError", "ReplayOptions", "ReplaySummary", "replay_bag"]

logger = logging.getLogger(__name__)


class ReplayError(RuntimeError):
    """The replay cannot run on this input (bag, policy and configuration disagree); one clear line."""


@dataclass
class ReplayOptions:
    """How to replay (everything the command line sets besides bag, policy, config and output dir).

    Attributes:
        start_s, end_s: replay only [start, end] seconds after the first camera/joint-state message.
        rate_hz: tick rate; ``None`` = the config's ``control_rate_hz``.
        tick_times_ns: explicit tick times on the clock axis instead of the regular grid (e.g. the live
            node's, from its ``~/tick_status``).
        batch_size: runnable ticks per batched forward pass (1 = sequential).
        methods: side methods to compute (any of gradcam, gradient_x_input, integrated_gradients, occlusion);
            ``None`` = the config's ``side_methods``.
        side_every: side methods every N ticks (tick index % N == 0; 0 = off, 1 = every tick);
            ``None`` = from the config's ``side_rate_hz`` (round(rate / side_rate_hz)).
        faithfulness_samples: side ticks (about evenly spread) on which every map's deletion test runs
            (0 = none); each costs ``n_cameras * 4 * (1 + 4)`` forwards per method.
        clock: ``"log"`` (default) or ``"header"``; see :mod:`.plan`.
        write_bag, write_video, write_table, write_plot: which outputs to write.
        table_format: ``"csv"`` or ``"parquet"``.
        device: torch device; ``None`` = the config's ``device``.
        progress: show a tqdm progress bar on stderr.
        node_name: namespace of the output topics in the output bag.
    """

    start_s: float | None = None
    end_s: float | None = None
    rate_hz: float | None = None
    tick_times_ns: Sequence[int] | None = None
    batch_size: int = 1
    methods: Sequence[str] | None = None
    side_every: int | None = None
    faithfulness_samples: int = 8
    clock: str = "log"
    write_bag: bool = True
    write_video: bool = True
    write_table: bool = True
    write_plot: bool = True
    table_format: str = "csv"
    device: str | None = None
    progress: bool = False
    node_name: str = "/" + DEFAULT_NODE_NAME


@dataclass
class ReplaySummary:
    """What a replay did; ``to_dict()`` is what ``summary.json`` holds.

    ``skipped_by_kind`` counts skipped ticks per kind of :data:`act_interp_ros.pipeline.SKIP_KINDS` (what
    the node's diagnostics count as ``skipped.<kind>``); ``skipped_by_reason`` per kind and input, with the
    first full reason of each in ``reason_examples``.
    ``outputs`` maps each output's name to its final path; ``timings`` has wall times (s) and ticks/s.
    """

    bag: str
    policy: str
    out_dir: str
    clock: str
    rate_hz: float
    batch_size: int
    side_every: int
    start_ns: int
    end_ns: int
    ticks: int
    processed: int
    skipped: int
    skipped_by_kind: dict[str, int]
    skipped_by_reason: dict[str, int]
    reason_examples: dict[str, str]
    plan_resets: int
    methods: list[str]
    side_ticks: int
    faithfulness: dict[str, Any]
    input_topics: dict[str, str]
    output_topics: dict[str, str]
    output_counts: dict[str, int]
    outputs: dict[str, str]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def no_action_message(self) -> str | None:
        """One line when no tick computed an action (what happened, what to try), else None."""
        if self.processed:
            return None
        ranked = sorted(self.skipped_by_reason.items(), key=lambda kv: -kv[1])
        reasons = ", ".join(f"{k}: {v}" for k, v in ranked)
        text = f"no tick computed an action ({self.ticks} ticks skipped: {reasons})"
        if ranked:
            text += f"; first: {self.reason_examples.get(ranked[0][0], ranked[0][0])}"
        if set(self.skipped_by_kind) == {"future"}:
            text += ("; every input was stamped in the future of the bag's log time: the stamps come from another "
                     "clock, replay with --clock header")
        return text


@dataclass
class _Camera:
    key: str
    name: str
    topic: str
    msgtype: str
    size_hw: tuple[int, int]


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
        f"{reader.describe_topics()}. Set camera_topics / camera_transports in the config")


def _side_every(options: ReplayOptions, settings: NodeSettings, rate_hz: float, methods: Sequence[str]) -> int:
    if not methods:
        return 0
    if options.side_every is not None:
        return int(options.side_every)
    if settings.side_rate_hz <= 0:
        return 0
    return max(1, round(rate_hz / settings.side_rate_hz))


def _check_options(options: ReplayOptions) -> None:
    if options.clock not in CLOCKS:
        raise ReplayError(f"clock must be one of {', '.join(CLOCKS)}, got {options.clock!r}")
    if not isinstance(options.batch_size, int) or options.batch_size < 1:
        raise ReplayError(f"batch size must be an integer >= 1, got {options.batch_size!r}")
    if options.side_every is not None and (not isinstance(options.side_every, int) or options.side_every < 0):
        raise ReplayError(f"side-every must be an integer >= 0 (0 = off, 1 = every tick), got {options.side_every!r}")
    if options.methods is not None:
        unknown = [m for m in options.methods if m not in ALL_METHODS]
        if unknown:
            raise ReplayError(f"methods {unknown} unknown; expected some of {', '.join(ALL_METHODS)}")
    if not isinstance(options.faithfulness_samples, int) or options.faithfulness_samples < 0:
        raise ReplayError(f"faithfulness samples must be an integer >= 0, got {options.faithfulness_samples!r}")
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


class _Replay:
    """One replay run (see :func:`replay_bag`)."""

    def __init__(self, reader: BagReader, settings: NodeSettings, options: ReplayOptions) -> None:
        self.reader = reader
        self.settings = settings
        self.options = options
        self.rate_hz = float(options.rate_hz or settings.control_rate_hz)
        self.methods = list(settings.side_methods if options.methods is None else options.methods)
        self.side_every = _side_every(options, settings, self.rate_hz, self.methods or ["env_state_sensitivity"])
        if self.side_every == 0:
            self.methods = []
        self.warnings: list[str] = []
        self.cameras: list[_Camera] = []
        for key, topic, transport in zip(settings.camera_keys, settings.camera_topics, settings.camera_transports):
            t, msgtype = _resolve_camera(reader, key, topic, transport)
            if t != topic:
                self.warnings.append(f"camera '{key}': used '{t}' because '{topic}' is not in the bag")
            self.cameras.append(_Camera(key, camera_name(key), t, msgtype, (0, 0)))
        self.joint_topic = settings.joint_state_topic
        reader.require_topic(self.joint_topic, (JOINT_STATE_TYPE,))
        self.topics = [c.topic for c in self.cameras] + [self.joint_topic]
        self.env_topic = settings.env_state_topic or None
        if self.env_topic:  # checked against the policy later; an unstamped type is judged by its log time
            reader.require_topic(self.env_topic, (ENV_STATE_MESSAGE_TYPES[settings.env_state_type],))
            self.topics.append(self.env_topic)
        for topic in self.topics:
            msgtype = reader.topics[topic].msgtype
            if topic != self.env_topic and not reader.has_header(msgtype):
                raise BagError(f"topic '{topic}' ({msgtype}) has no std_msgs/Header; cannot judge its freshness")
        self.env_stamped = has_header(settings.env_state_type)
        # The pipeline sees the topics actually read (a compressed fallback keeps its camera key).
        self.pipeline_settings = settings.replace(camera_topics=[c.topic for c in self.cameras])

    # ---------------------------------------------------------------------------------- index
    def index(self) -> None:
        """Pass 1: header stamps and log times of every camera / joint-state message; source image sizes."""
        logs: dict[str, list[int]] = {t: [] for t in self.topics}
        stamps: dict[str, list[int]] = {t: [] for t in self.topics}
        first: dict[str, RawMessage] = {}
        for msg in self.reader.messages(self.topics):
            logs[msg.topic].append(msg.log_ns)
            unstamped = msg.topic == self.env_topic and not self.env_stamped
            stamps[msg.topic].append(msg.log_ns if unstamped else header_stamp_ns(msg.data))
            if msg.topic not in first:
                first[msg.topic] = RawMessage(msg.topic, msg.msgtype, msg.log_ns, bytes(msg.data))
        self.idx = {t: TopicIndex(t, self.reader.topics[t].msgtype, np.asarray(logs[t], dtype=np.int64),
                                  np.asarray(stamps[t], dtype=np.int64)) for t in self.topics}
        for t, ix in self.idx.items():
            if len(ix.log_ns) == 0:
                raise BagError(f"topic '{t}' has no messages; {self.reader.describe_topics()}")
        for cam in self.cameras:  # the video size; an undecodable first frame is a skipped tick later
            try:
                cam.size_hw = decode_image(self.reader.deserialize(first[cam.topic])).shape[:2]
            except (ImageDecodeError, BagError):
                cam.size_hw = (0, 0)

    def plan(self) -> None:
        try:
            self.plan_ = build_plan(self.idx, rate_hz=self.rate_hz, clock=self.options.clock,
                                    start_s=self.options.start_s, end_s=self.options.end_s,
                                    max_input_age_s=self.settings.max_input_age_s,
                                    tick_times_ns=self.options.tick_times_ns)
        except PlanError as exc:
            raise ReplayError(str(exc)) from None

    def attach_policy(self, wrapped: InterpretableACT) -> None:
        """Check the policy against the config (the same check as the node's)."""
        try:
            check_policy(self.settings, wrapped.policy)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None
        self.wrapped = wrapped
        self.pipeline = TickPipeline(self.pipeline_settings, wrapped.config, device=wrapped.device)
        for cam in self.cameras:
            if cam.size_hw == (0, 0):
                cam.size_hw = tuple(wrapped.image_shapes[cam.key])

    # ------------------------------------------------------------------------------------ run
    def run(self, out_dir: Path) -> ReplaySummary:
        t_indexed = time.perf_counter()
        opts, s, w = self.options, self.settings, self.wrapped
        plan = self.plan_
        cam_keys = [c.key for c in self.cameras]
        cam_names = [c.name for c in self.cameras]
        self.contract = output_contract(s, has_state=w.state_dim > 0, has_env_state=w.env_state_dim > 0)
        self.table = out.TickTable(cam_keys, cam_names, self.joint_topic, [c.topic for c in self.cameras],
                                   list(s.joint_names), has_state=w.state_dim > 0, has_env_state=w.env_state_dim > 0,
                                   methods=self.methods)
        self.faith_every = self._faithfulness_stride(len(plan.ticks))
        deletion = (DeletionTest(w.policy, n_random=4, batch_size=64) if self.faith_every else None)
        sensitivity = (EnvStateSensitivity(w.policy, w.preprocessor, SensitivityConfig(
            tuple(s.env_sensitivity_deltas) or (0.01,) * w.env_state_dim), w.postprocessor)
            if w.env_state_dim and self.side_every else None)
        self.interp = OfflineInterpreter(w, s, methods=self.methods, batch_size=opts.batch_size, pipeline=self.pipeline,
                                         render=opts.write_bag or opts.write_video, deletion=deletion,
                                         env_sensitivity=sensitivity)
        stage = out.OutputStage(out_dir)
        self.bag_out = None
        self.videos = None
        self.counts = Counter()
        self.kinds: Counter[str] = Counter()
        self.groups: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        staged: list[str] = []
        try:
            if opts.write_bag:
                from act_interp_ros.bag.bag_output import OutputBagWriter

                self.bag_out = OutputBagWriter(
                    stage.path(out.BAG_NAME), self.reader, list(self.reader.topics), self.contract,
                    node=opts.node_name, settings=s, methods=self.methods)
            if opts.write_video:
                from act_interp_ros.offline.videos import ReplayVideos

                self.videos = ReplayVideos(stage.dir, cam_keys, cam_names, {c.key: c.size_hw for c in self.cameras},
                                           self.rate_hz, methods=self.methods)
            w.policy.eval()
            w.reset()
            t_loop = time.perf_counter()
            self._stream()
            loop_s = time.perf_counter() - t_loop
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
            previous = out.previous_outputs(stage.out_dir)
            committed = stage.commit(staged)
            out.remove_stale_outputs(stage.out_dir, previous, set(committed) | {out.SUMMARY_NAME})
        except BaseException:
            if self.bag_out is not None:
                self.bag_out.abort()
            if self.videos is not None:
                self.videos.abort()
            stage.discard()
            raise
        finally:
            self.interp.close()
        loop_s = max(loop_s, 1e-9)
        return ReplaySummary(
            bag=str(self.reader.path), policy="", out_dir=str(out_dir), clock=opts.clock, rate_hz=self.rate_hz,
            batch_size=opts.batch_size, side_every=self.side_every,
            start_ns=plan.ticks[0], end_ns=plan.ticks[-1], ticks=len(plan.ticks),
            processed=self.counts["processed"], skipped=self.counts["skipped"],
            skipped_by_kind=dict(sorted(self.kinds.items())), skipped_by_reason=dict(sorted(self.groups.items())), reason_examples=dict(sorted(self.examples.items())),
            plan_resets=self.interp.stepper.resets, methods=self.methods, side_ticks=self.counts["side"],
            faithfulness=self.interp.faithfulness_summary(),
            input_topics={c.key: c.topic for c in self.cameras} | {"joint_state": self.joint_topic},
            output_topics=dict(self.bag_out.topics) if self.bag_out is not None else {},
            output_counts=({t: n for t, n in self.bag_out.counts.items() if t in self.bag_out.topics}
                           if self.bag_out is not None else {}),
            outputs={name: str(path) for name, path in committed.items()},
            timings={"index_s": round(self.index_s, 4), "ticks_s": round(loop_s, 4), "model_s": round(self.interp.model_s, 4),
                     "outputs_s": round(t_done - t_indexed - loop_s, 4),
                     "total_s": round(time.perf_counter() - self.t_start, 4),
                     "ticks_per_s": round(len(plan.ticks) / loop_s, 3)},
            warnings=self.warnings,
        )

    # ------------------------------------------------------------------------------ streaming
    def _stream(self) -> None:
        """Pass 2: read the bag in log order, build ticks as soon as their inputs are read, run the policy."""
        from tqdm import tqdm

        plan: TickPlan = self.plan_
        n = len(plan.ticks)
        cache: dict[tuple[str, int], Any] = {}
        next_tick = 0
        copy = self.bag_out is not None
        if not copy:  # only the messages the ticks use
            topics, read_from, read_to = self.topics, plan.read_range[0], plan.read_range[1] + 1
        elif plan.copy_range is None:  # the whole bag is copied
            topics, read_from, read_to = None, None, None
        else:
            lo, hi = plan.copy_range
            topics, read_from, read_to = None, min(plan.read_range[0], lo), max(plan.read_range[1], hi) + 1
            read_to = min(read_to, 2**63 - 1)
        read = {t: (0 if read_from is None else int(np.searchsorted(self.idx[t].log_ns, read_from, side="left")))
                for t in self.topics}
        self._bar = tqdm(total=n, unit="tick", disable=not self.options.progress, file=sys.stderr, dynamic_ncols=True,
                         desc="replay", mininterval=0.5)
        try:
            for msg in self.reader.messages(topics, start_ns=read_from, stop_ns=read_to):
                if copy and (plan.copy_range is None or plan.copy_range[0] <= msg.log_ns <= plan.copy_range[1]):
                    self.bag_out.on_input(msg)
                if msg.topic not in read:
                    continue
                j = read[msg.topic]
                read[msg.topic] = j + 1
                if (msg.topic, j) in plan.last_use:
                    cache[(msg.topic, j)] = self._deserialize(msg)
                while next_tick < n and all(int(plan.selection[t][next_tick]) < read[t] for t in self.topics):
                    self._build_tick(next_tick, cache)
                    for t in self.topics:
                        jj = int(plan.selection[t][next_tick])
                        if jj >= 0 and plan.last_use.get((t, jj)) == next_tick:
                            cache.pop((t, jj), None)
                    next_tick += 1
                if next_tick == n and not copy:
                    break
            if next_tick < n:  # pragma: no cover - the index guarantees every selected message is read
                raise BagError(f"bag '{self.reader.path}' changed while it was read (tick {next_tick} of {n} lacks input)")
            for rec in self.interp.flush():
                self._emit(rec)
            if self.bag_out is not None:
                self.bag_out.input_done()
        finally:
            self._bar.close()

    def _deserialize(self, msg: RawMessage) -> Any:
        """The message object, or an undecodable marker (a bad_input tick, like a message the node cannot use)."""
        try:
            return self.reader.deserialize(msg)
        except BagError as exc:
            return _Undecodable(msg.topic, str(exc))

    def _build_tick(self, k: int, cache: dict[tuple[str, int], Any]) -> None:
        plan: TickPlan = self.plan_
        t_ns = plan.ticks[k]
        rec = TickRecord(index=k, time_ns=t_ns, rel_s=(t_ns - plan.origin_ns) / NS, log_ns=t_ns + plan.log_offset_ns)
        msgs: dict[str, Any] = {}
        for t in self.topics:
            j = int(plan.selection[t][k])
            msgs[t] = cache[(t, j)] if j >= 0 else None
            rec.input_stamps_ns[t] = int(self.idx[t].stamp_ns[j]) if j >= 0 else None
        for cam in self.cameras:
            msg = msgs[cam.topic]
            if msg is not None and not isinstance(msg, _Undecodable):
                try:
                    rgb = self.pipeline.decode_frame(cam.key, msg)
                except ImageDecodeError:
                    rgb = None
                if rgb is not None:
                    rec.frames[cam.key] = CameraFrame(cam.key, cam.name, cam.topic, rgb,
                                                          rec.input_stamps_ns[cam.topic], str(msg.header.frame_id))
        tick = OfflineTick(rec)
        bad = next((m for m in msgs.values() if isinstance(m, _Undecodable)), None)
        if bad is not None:
            kind = {self.joint_topic: "bad_input.joint_state", self.env_topic: "bad_input.env_state"}.get(
                bad.topic, "bad_input.image")
            rec.skip = SkipReason(kind, f"{bad.topic} {bad.error}")
        else:
            env = None
            if self.env_topic and msgs[self.env_topic] is not None:
                env = EnvStateInput(msgs[self.env_topic], rec.input_stamps_ns[self.env_topic])
            snap = TickSnapshot(t_ns, {c.key: msgs[c.topic] for c in self.cameras}, msgs[self.joint_topic], env)
            prepared = self.pipeline.prepare(snap)
            if isinstance(prepared, SkipReason):
                rec.skip = prepared
            else:
                tick.batch = self.wrapped.preprocess(prepared.observation)
                tick.current_ros = prepared.current_ros
                tick.side = self.side_every > 0 and k % self.side_every == 0
                tick.faithfulness = self._faithfulness_tick(k)
        for done in self.interp.add(tick):
            self._emit(done)

    def _faithfulness_stride(self, n_ticks: int) -> int:
        """Every how many candidate ticks the deletion test runs (0 = never)."""
        n = self.options.faithfulness_samples
        if n <= 0:
            return 0
        candidates = -(-n_ticks // self.side_every) if self.side_every else n_ticks
        return max(1, -(-candidates // n))

    def _faithfulness_tick(self, k: int) -> bool:
        if not self.faith_every:
            return False
        if self.side_every:
            return k % self.side_every == 0 and (k // self.side_every) % self.faith_every == 0
        return k % self.faith_every == 0

    def _emit(self, rec: TickRecord) -> None:
        if rec.skipped:
            self.counts["skipped"] += 1
            self.kinds[rec.skip.kind] += 1
            self.groups[rec.skip.group] += 1
            self.examples.setdefault(rec.skip.group, str(rec.skip))
        else:
            self.counts["processed"] += 1
            self.counts["side"] += bool(rec.side_maps)
        self.table.add(rec)
        if self.bag_out is not None:
            self.bag_out.on_tick(rec)
        if self.videos is not None:
            self.videos.on_tick(rec)
        self._bar.update(1)


@dataclass(frozen=True)
class _Undecodable:
    """A bag message that could not be deserialised (counted as bad input of its topic)."""

    topic: str
    error: str


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
            device, with the config's attention options, checked like the node checks it), or an already
            loaded :class:`InterpretableACT`.
        settings: the live node's settings (``load_settings_yaml("config/so101.yaml", overrides=...)``).
        out_dir: output directory (created if needed); outputs appear there only when the run succeeds, and
            outputs of an earlier run that this run does not write are removed.
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
            load_settings = settings.replace(policy_path=os.fspath(policy))
            try:
                wrapped = load_policy(load_settings, device=options.device or settings.device)
            except SettingsError as exc:
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
