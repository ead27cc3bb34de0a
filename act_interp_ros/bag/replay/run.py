"""Offline replay of a recorded bag through an interpretable ACT policy (ROS-free: rosbags + torch).

``replay_bag(bag, policy, settings, out_dir, options)`` ticks over the bag (:mod:`.plan`), runs each tick
through the node's own pipeline (:mod:`act_interp_ros.pipeline`: the same gate, decoding, joint checks,
observation, plan rule and limits as the live node, so both skip the same ticks for the same reasons), and
writes the selected outputs (output bag, videos, per-tick table, plot, ``summary.json``, optionally a Rerun
recording with the bag as episode 0 on the bag's time axis). :class:`BagSource` supplies only the bag: the
lifecycle (policy, ticks, outputs, summary) is :class:`~act_interp_ros.offline.session.OfflineSession`'s, the
same as the dataset replay's.

Policy rule: the policy is reset at the start. Every tick that passes the pipeline runs one forward pass
(fresh attention each tick) and advances the policy's action queue / temporal ensembler exactly like
``select_action``; after any tick without an action the plan is reset, as in the node. ``batch_size`` > 1
stacks the preprocessed observations of up to N consecutive runnable ticks into one forward pass and then
feeds the chunk rows to the policy step in tick order, so the actions equal sequential execution (up to float
rounding of the batched forward pass).

Every tick in the range yields outputs or a recorded skip reason. A run in which no tick computed an action
(or none can: a topic whose header stamps are all 0) raises :class:`NoActionError`
and writes nothing into the output directory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from act_interp_ros.offline import outputs as out
from act_interp_ros.bag.reader import (
    JOINT_STATE_TYPE,
    BagError,
    BagReader,
    RawMessage,
    header_stamp_ns,
    open_bag,
)
from act_interp_ros.bag.replay.plan import NS, PlanError, TickPlan, TopicIndex, build_plan
from act_interp_ros.core import InterpretableACT
from act_interp_ros.inputs.env_state import ENV_STATE_MESSAGE_TYPES, EnvStateInput, has_header
from act_interp_ros.inputs.image_decoding import ImageDecodeError, decode_image
from act_interp_ros.offline.interpreter import OfflineTick
from act_interp_ros.offline.options import NoActionError, ReplayError, TickSchedule, region_columns_for
from act_interp_ros.offline.records import CameraFrame, TickRecord
from act_interp_ros.offline.session import AttachedPolicy, OfflineSession, ReplaySource, SequenceSpec, SessionResult
from act_interp_ros.offline.summary import TickStats, timings
from act_interp_ros.pipeline import (
    SkipReason,
    TickPipeline,
    TickSnapshot,
    TrainingRangeGuard,
    check_policy,
    load_policy,
    output_contract,
)
from act_interp_ros.settings import NodeSettings, SettingsError, camera_name
from act_interp_ros.bag.replay.options import (
    check_options,
    no_action_hint,
    ReplayOptions,
    ReplaySummary,
    zero_stamp_problem,
)
from act_interp_ros.bag.replay.topics import (
    ReplayCamera,
    resolve_camera,
    Undecodable,
)

__all__ = ["BagSource", "NoActionError", "ReplayError", "replay_bag"]

logger = logging.getLogger(__name__)


class _OutputBag:
    """The output bag as an extra output of the session: inputs copied as the bag is read, outputs per tick."""

    def __init__(self, writer) -> None:
        self.writer = writer

    def on_tick(self, rec: TickRecord) -> None:
        self.writer.on_tick(rec)

    def finish(self) -> list[str]:
        self.writer.input_done()
        self.writer.close()
        return [out.BAG_NAME]

    def abort(self) -> None:
        self.writer.abort()


class BagSource(ReplaySource):
    """A recorded bag as a replay source: one sequence, the replayed range (see :func:`replay_bag`).

    Args:
        bag: rosbag2 directory, ``.mcap`` or ``.db3`` file.
        settings: the live node's settings.
        options: :class:`ReplayOptions` (checked).
    """

    def __init__(self, bag: str | os.PathLike[str], settings: NodeSettings, options: ReplayOptions) -> None:
        self.bag = bag
        self.settings = settings
        self.options = options
        self.joint_names = list(settings.joint_names)
        self.rate_hz = float(options.rate_hz or settings.control_rate_hz)
        self.warnings: list[str] = []
        self.reader: BagReader | None = None
        self.bag_out = None

    # ---------------------------------------------------------------------------------- open
    def open(self) -> None:
        """Open the bag, check its topics, index it (pass 1) and plan the ticks: before the (slow) policy load."""
        self.reader = reader = open_bag(self.bag)
        settings = self.settings
        self.name = Path(reader.path).name
        self.cameras: list[ReplayCamera] = []
        for key, topic, transport in zip(settings.camera_keys, settings.camera_topics, settings.camera_transports):
            t, msgtype = resolve_camera(reader, key, topic, transport)
            if t != topic:
                self.warnings.append(f"camera '{key}': used '{t}' because '{topic}' is not in the bag")
            self.cameras.append(ReplayCamera(key, camera_name(key), t, msgtype, (0, 0)))
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
        self._index()
        try:
            self.plan_ = build_plan(self.idx, rate_hz=self.rate_hz, clock=self.options.clock,
                                    start_s=self.options.start_s, end_s=self.options.end_s,
                                    max_input_age_s=self.settings.max_input_age_s,
                                    tick_times_ns=self.options.tick_times_ns)
        except PlanError as exc:
            raise ReplayError(str(exc)) from None

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()

    def _index(self) -> None:
        """Pass 1: header stamps and log times of every camera / joint-state message; source image sizes.

        Raises NoActionError when a topic's header stamps are all 0 (:func:`zero_stamp_problem`)."""
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
        stamped = [t for t in self.topics if t != self.env_topic or self.env_stamped]
        zero = [t for t in stamped if not self.idx[t].stamp_ns.any()]
        problem = zero_stamp_problem(zero, stamped, self.options.clock)
        if problem is not None:  # before the policy is loaded: no tick could act
            raise NoActionError(problem)
        for cam in self.cameras:  # the video size; an undecodable first frame is a skipped tick later
            try:
                cam.size_hw = decode_image(self.reader.deserialize(first[cam.topic])).shape[:2]
            except (ImageDecodeError, BagError):
                cam.size_hw = (0, 0)

    # -------------------------------------------------------------------------------- policy
    def load_policy(self, path: str) -> InterpretableACT:
        try:
            return load_policy(self.settings.replace(policy_path=path),
                               device=self.options.device or self.settings.device)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None

    def attach(self, wrapped: InterpretableACT) -> AttachedPolicy:
        """Check the policy against the config (the same check as the node's); the node's pipeline and limits."""
        try:
            check_policy(self.settings, wrapped.policy)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None
        self.wrapped = wrapped
        s = self.settings
        guard = TrainingRangeGuard.from_policy(wrapped, s.joint_names, s.training_range_margin,
                                               s.image_stats_tolerance, s.camera_keys)
        for note in guard.notes:
            logger.warning("%s", note)
            self.warnings.append(note)
        logger.info("%s; out_of_range_policy %s", guard.describe(), s.out_of_range_policy)
        self.pipeline = TickPipeline(self.pipeline_settings, wrapped.config, device=wrapped.device, guard=guard)
        for cam in self.cameras:
            if cam.size_hw == (0, 0):
                cam.size_hw = tuple(wrapped.image_shapes[cam.key])
        self.contract = output_contract(s, has_state=wrapped.state_dim > 0, has_env_state=wrapped.env_state_dim > 0)
        return AttachedPolicy(s, self.rate_hz, env_state=bool(s.env_state_topic), command_pipeline=self.pipeline,
                              render=self.options.write_bag)

    # ------------------------------------------------------------------------------ sequences
    def sequences(self, methods: Sequence[str]) -> list[SequenceSpec]:
        """One sequence: the replayed range (Rerun episode 0, on the bag's time axis)."""
        w = self.wrapped
        table = out.TickTable([c.key for c in self.cameras], [c.name for c in self.cameras], self.joint_topic,
                              [c.topic for c in self.cameras], list(self.settings.joint_names),
                              has_state=w.state_dim > 0, has_env_state=w.env_state_dim > 0, methods=list(methods),
                              ablation=self.options.ablate is not None,
                              move=self.options.move is not None,
                              region_columns=region_columns_for(self.options, methods))
        return [SequenceSpec(folder="", title=self.name, episode=0, n_ticks=len(self.plan_.ticks), table=table,
                             frame_sizes={c.key: c.size_hw for c in self.cameras})]

    def extra_outputs(self, stage: out.OutputStage, methods: Sequence[str]) -> list[_OutputBag]:
        if not self.options.write_bag:
            return []
        from act_interp_ros.bag.bag_output import OutputBagWriter

        self.bag_out = OutputBagWriter(stage.path(out.BAG_NAME), self.reader, list(self.reader.topics), self.contract,
                                       node=self.options.node_name, settings=self.settings, methods=list(methods))
        return [_OutputBag(self.bag_out)]

    def ticks(self, seq: SequenceSpec, schedule: TickSchedule) -> Iterator[OfflineTick]:
        """Pass 2: read the bag in log order; each tick as soon as its inputs are read (inputs copied into the
        output bag on the way)."""
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
                yield self._tick(next_tick, cache, schedule)
                for t in self.topics:
                    jj = int(plan.selection[t][next_tick])
                    if jj >= 0 and plan.last_use.get((t, jj)) == next_tick:
                        cache.pop((t, jj), None)
                next_tick += 1
            if next_tick == n and not copy:
                break
        if next_tick < n:  # pragma: no cover - the index guarantees every selected message is read
            raise BagError(f"bag '{self.reader.path}' changed while it was read (tick {next_tick} of {n} lacks input)")

    def _deserialize(self, msg: RawMessage) -> Any:
        """The message object, or an undecodable marker (a bad_input tick, like a message the node cannot use)."""
        try:
            return self.reader.deserialize(msg)
        except BagError as exc:
            return Undecodable(msg.topic, str(exc))

    def _tick(self, k: int, cache: dict[tuple[str, int], Any], schedule: TickSchedule) -> OfflineTick:
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
            if msg is not None and not isinstance(msg, Undecodable):
                try:
                    rgb = self.pipeline.decode_frame(cam.key, msg)
                except ImageDecodeError:
                    rgb = None
                if rgb is not None:
                    rec.frames[cam.key] = CameraFrame(cam.key, cam.name, cam.topic, rgb,
                                                      rec.input_stamps_ns[cam.topic], str(msg.header.frame_id))
        tick = OfflineTick(rec)
        bad = next((m for m in msgs.values() if isinstance(m, Undecodable)), None)
        if bad is not None:
            kind = {self.joint_topic: "bad_input.joint_state", self.env_topic: "bad_input.env_state"}.get(
                bad.topic, "bad_input.image")
            rec.skip = SkipReason(kind, f"{bad.topic} {bad.error}")
            return tick
        env = None
        if self.env_topic and msgs[self.env_topic] is not None:
            env = EnvStateInput(msgs[self.env_topic], rec.input_stamps_ns[self.env_topic])
        snap = TickSnapshot(t_ns, {c.key: msgs[c.topic] for c in self.cameras}, msgs[self.joint_topic], env)
        # Frames are needed only when a forward is due, which the plan decides later: the interpreter's step.
        prepared = self.pipeline.prepare(snap, frames_needed=self.pipeline.settings.fresh_frames_every_tick)
        rec.range_flags = list(self.pipeline.last_flags)
        if isinstance(prepared, SkipReason):
            rec.skip = prepared
        elif prepared.late_frames is not None:
            tick.late_frames = prepared.late_frames
            tick.current_ros = prepared.current_ros
        else:
            tick.batch = self.wrapped.preprocess(prepared.observation)
            tick.current_ros = prepared.current_ros
            tick.side = schedule.side(k)
            tick.faithfulness = schedule.faithfulness(k)
        return tick

    # ------------------------------------------------------------------------------- summary
    def no_action_hint(self, stats: TickStats) -> str:
        return no_action_hint(stats.kinds)

    def summarise(self, result: SessionResult) -> ReplaySummary:
        plan, opts, bag_out = self.plan_, self.options, self.bag_out
        return ReplaySummary(
            bag=str(self.reader.path), policy=result.policy, out_dir=str(result.out_dir), clock=opts.clock,
            rate_hz=self.rate_hz, batch_size=opts.batch_size, side_every=result.side_every,
            start_ns=plan.ticks[0], end_ns=plan.ticks[-1], **result.stats.fields(),
            plan_resets=result.plan_resets, methods=result.methods, faithfulness=result.faithfulness,
            input_topics={c.key: c.topic for c in self.cameras} | {"joint_state": self.joint_topic},
            output_topics=dict(bag_out.topics) if bag_out is not None else {},
            output_counts=({t: n for t, n in bag_out.counts.items() if t in bag_out.topics}
                           if bag_out is not None else {}),
            outputs={name: str(path) for name, path in result.outputs.items()},
            timings=timings(index_s=result.open_s, total_s=result.total_s, loop_s=result.loop_s,
                            model_s=result.model_s, outputs_s=result.run_s - result.loop_s, ticks=len(plan.ticks)),
            warnings=self.warnings,
        )


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
        out_dir: output directory (created if needed); outputs appear there only when the run succeeds (some
            tick computed an action), and outputs of an earlier run that this run does not write are removed.
        options: :class:`ReplayOptions`.
    Returns:
        :class:`ReplaySummary` (also written to ``out_dir/summary.json``).
    Raises:
        BagError, ReplayError: bad input (clear one-line messages); NoActionError (a ReplayError): no tick
        computed an action, nothing was written;
        act_interp_ros.core.PolicyLoadError: the policy cannot be loaded.
    """
    options = options or ReplayOptions()
    check_options(options)
    summary = OfflineSession(BagSource(bag, settings, options), policy, options).run(out_dir)
    logger.info("replayed %d ticks (%d skipped) at %.1f ticks/s into %s", summary.ticks, summary.skipped,
                summary.timings["ticks_per_s"], out_dir)
    return summary
