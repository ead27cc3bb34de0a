"""Offline replay of LeRobotDataset episodes through an interpretable ACT policy (ROS-free).

``replay_dataset(dataset, policy, settings, out_dir, options)`` reads each selected episode frame by frame
through LeRobot's own ``LeRobotDataset`` (:class:`~act_interp_ros.dataset.source.LeRobotDatasetSource`),
runs the policy on every frame at the dataset's fps and writes, per episode, what the bag replay writes
(attention video per camera, grid video, tick table, attention/faithfulness plot, ``summary.json``) plus
the predicted-vs-recorded action plot and the recorded/error columns, and across episodes a
``summary.json`` with per-episode and overall numbers::

    OUT/episode_000/attention_front.mp4, grid.mp4, ticks.csv, attention_plot.png, action_plot.png, summary.json
    OUT/episode_003/...
    OUT/summary.json

Policy rule: the policy's plan (action queue / temporal ensembler) starts fresh at each episode start; within
an episode every frame runs one forward pass (fresh attention) and the action comes from the policy's own
queue, exactly like ``select_action`` (``batch_size`` > 1 batches the forwards; same actions). Actions
stay in dataset units (no ROS command limits). The interpretation schedule is the bag replay's: side
methods every ``side_every`` frames, the deletion test on about ``faithfulness_samples`` of them per
episode (:mod:`act_interp_ros.offline.session`).

Inputs: the dataset's cameras feed the policy's by key (``camera_map`` for other names), and feature names
and shapes are checked against the policy before anything runs (one line listing every difference);
frames of another size are resized like the node does (``image_resize``), or refused when it is false.
All outputs (every episode, the Rerun file) appear only when the whole run succeeded; a run in which no frame
computed an action raises :class:`~act_interp_ros.offline.session.NoActionError` and writes nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from lerobot.utils.constants import ACTION

from act_interp_ros.core import InterpretableACT
from act_interp_ros.dataset.features import check_policy_features
from act_interp_ros.dataset.source import LeRobotDatasetSource
from act_interp_ros.offline import outputs as out
from act_interp_ros.offline import plots
from act_interp_ros.offline.interpreter import OfflineTick, faithfulness_summary
from act_interp_ros.offline.options import ReplayError, TickSchedule, region_columns_for
from act_interp_ros.offline.records import CameraFrame, TickRecord
from act_interp_ros.offline.session import (
    AttachedPolicy,
    OfflineSession,
    ReplaySource,
    SequenceResult,
    SequenceSpec,
    SessionResult,
)
from act_interp_ros.offline.summary import timings
from act_interp_ros.pipeline import (
    SkipReason,
    TickPipeline,
    TrainingRangeGuard,
    check_policy_options,
    load_policy,
)
from act_interp_ros.pipeline.tick import NS
from act_interp_ros.rerun_recording import episode_entity
from act_interp_ros.settings import NodeSettings, SettingsError, camera_name
from act_interp_ros.settings.vocabulary import CAMERA_KEY_PREFIX
from act_interp_ros.dataset.replay_options import (
    check_options,
    DatasetReplayOptions,
    DatasetReplaySummary,
    EpisodeSummary,
)

__all__ = ["DatasetReplayOptions", "DatasetReplaySummary", "DatasetSource", "EpisodeSummary", "dataset_joint_names",
           "dataset_settings", "replay_dataset"]

logger = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ helpers
def dataset_joint_names(source: LeRobotDatasetSource) -> list[str]:
    """Short names of the action's elements: ``shoulder_pan.pos`` -> ``shoulder_pan`` (names as recorded
    when stripping ``.pos`` would make two equal)."""
    if not source.has_action:
        return []
    names = source.feature_names(ACTION)
    short = [n[: -len(".pos")] if n.endswith(".pos") else n for n in names]
    return short if len(set(short)) == len(short) else names


def dataset_settings(settings: NodeSettings, joint_names: Sequence[str], fps: float) -> NodeSettings:
    """The node settings for a dataset: tick rate = the dataset's fps, joints named like the dataset's action.

    Camera, topic, unit and limit parameters do not apply to a dataset (cameras map by key, actions stay in
    dataset units); when the joint count differs from the config's, the per-joint arrays are neutral.
    """
    changes: dict[str, Any] = {"control_rate_hz": float(fps)}
    n = len(joint_names)
    if n:
        changes["joint_names"] = list(joint_names)
        if n != len(settings.joint_names):
            changes |= {"joint_scale": [1.0] * n, "joint_offset": [0.0] * n, "joint_lower_limits": [-1e9] * n,
                        "joint_upper_limits": [1e9] * n, "max_joint_step": [1e9] * n}
    try:
        return settings.replace(**changes)
    except SettingsError as exc:
        raise ReplayError(f"{exc} (the dataset's action joints: {', '.join(joint_names)})") from None


def _camera_key(name: str) -> str:
    name = str(name).strip()
    return name if name.startswith(CAMERA_KEY_PREFIX) else CAMERA_KEY_PREFIX + name


def normalize_camera_map(camera_map: Mapping[str, str] | None) -> dict[str, str]:
    """``{"front": "top"}`` -> ``{"observation.images.front": "observation.images.top"}``."""
    return {_camera_key(k): _camera_key(v) for k, v in (camera_map or {}).items()}


# ------------------------------------------------------------------------------------------- source
class DatasetSource(ReplaySource):
    """LeRobotDataset episodes as a replay source: one sequence per episode, in ``OUT/episode_NNN/``.

    Args:
        dataset: a local root, a hub repo id, or an open :class:`LeRobotDatasetSource`.
        settings: the node's settings (made the dataset's by :func:`dataset_settings` at :meth:`open`).
        options: :class:`DatasetReplayOptions` (checked).
    """

    unit = "frame"

    def __init__(self, dataset: str | os.PathLike[str] | LeRobotDatasetSource, settings: NodeSettings,
                 options: DatasetReplayOptions) -> None:
        self.dataset = dataset
        self.node_settings = settings
        self.options = options
        self.warnings: list[str] = []

    def open(self) -> None:
        """Open the dataset, select the episodes, name the joints (before the policy load)."""
        dataset, options = self.dataset, self.options
        if isinstance(dataset, LeRobotDatasetSource):
            self.source, self.dataset_name = dataset, str(dataset.root)
        else:
            self.source = LeRobotDatasetSource.open(dataset, video_backend=options.video_backend)
            self.dataset_name = os.fspath(dataset)
        self.name = self.source.repo_id
        self.episodes = self.source.select_episodes(options.episodes)
        self.episode_summaries: list[EpisodeSummary] = []
        names = dataset_joint_names(self.source)
        self.settings = dataset_settings(self.node_settings, names, self.source.fps)
        self.joint_names = names or list(self.settings.joint_names)

    def load_policy(self, path: str) -> InterpretableACT:
        try:
            return load_policy(self.settings.replace(policy_path=path),
                               device=self.options.device or self.node_settings.device, check_inputs=False)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None

    def attach(self, wrapped: InterpretableACT) -> AttachedPolicy:
        """Check the dataset's features and the attention options against the policy; the tick pipeline for its
        frames (training-range guard and observation, as in the bag replay and the node; no command limits:
        actions stay in dataset units)."""
        s = self.settings
        self.match = match = check_policy_features(
            self.source, wrapped.config, camera_map=normalize_camera_map(self.options.camera_map),
            allow_resize=bool(s.image_resize))
        try:
            check_policy_options(s, wrapped.policy)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None
        self.wrapped = wrapped
        self.cam_keys = list(match.camera_map)  # policy order
        self.warnings += [f"camera {k}: dataset frames are {a[0]}x{a[1]}, resized to the policy's {b[0]}x{b[1]}"
                          for k, (a, b) in match.resize.items()]
        guard = TrainingRangeGuard.from_policy(wrapped, self.joint_names, s.training_range_margin,
                                               s.image_stats_tolerance, self.cam_keys)
        for note in guard.notes:
            logger.warning("%s", note)
            self.warnings.append(note)
        self.pipeline = TickPipeline(s, wrapped.config, device=wrapped.device, guard=guard)
        self.pipeline.builder.resized_cameras.update(match.resize)  # check_policy_features warned about them
        return AttachedPolicy(s, float(self.source.fps), env_state=wrapped.env_state_dim > 0)

    def sequences(self, methods: Sequence[str]) -> list[SequenceSpec]:
        w, lengths, specs = self.wrapped, self.source.episode_lengths, []
        for ep in self.episodes:
            table = out.TickTable(self.cam_keys, [camera_name(k) for k in self.cam_keys], None, [], self.joint_names,
                                  has_state=w.state_dim > 0, has_env_state=w.env_state_dim > 0,
                                  methods=list(methods), recorded=True, ablation=self.options.ablate is not None,
                                  move=self.options.move is not None,
                                  region_columns=region_columns_for(self.options, methods))
            info = self.source.episode_info(ep)
            specs.append(SequenceSpec(
                folder=episode_entity(ep), title=f"episode {ep} of {self.source.repo_id}", episode=ep,
                n_ticks=lengths[ep], table=table, task=", ".join(info.tasks), data=info,
                frame_sizes={k: self.source.image_sizes[d] for k, d in self.match.camera_map.items()}))
        return specs

    def ticks(self, seq: SequenceSpec, schedule: TickSchedule) -> Iterator[OfflineTick]:
        t0 = time.perf_counter()
        reader = self.source.open_episode(seq.episode)  # validates the episode's files before any frame
        seq.timings["open_s"] = time.perf_counter() - t0
        read_s = 0.0
        frames = iter(reader)
        while True:
            t_read = time.perf_counter()
            frame = next(frames, None)
            read_s += time.perf_counter() - t_read
            seq.timings["read_s"] = read_s
            if frame is None:
                return
            yield self._tick(frame, schedule)

    def _tick(self, frame, schedule: TickSchedule) -> OfflineTick:
        """The tick of one dataset frame: its record (frames, recorded action) and preprocessed batch."""
        t_ns = round(frame.timestamp * NS)
        rec = TickRecord(index=frame.frame_index, time_ns=t_ns, rel_s=frame.timestamp, log_ns=t_ns,
                         recorded_action=frame.action)
        for key, ds_key in self.match.camera_map.items():
            rec.frames[key] = CameraFrame(key, camera_name(key), ds_key, frame.images[ds_key], t_ns, "")
        tick = OfflineTick(rec)
        prepared = self.pipeline.prepare_recorded(self.match.policy_images(frame.images), frame.state,
                                                  frame.env_state, f"frame {frame.frame_index}")
        rec.range_flags = list(self.pipeline.last_flags)
        if isinstance(prepared, SkipReason):
            rec.skip = prepared
            return tick
        tick.batch = self.wrapped.preprocess(prepared.observation)
        tick.side = schedule.side(frame.frame_index)
        tick.faithfulness = schedule.faithfulness(frame.frame_index)
        return tick

    def sequence_done(self, result: SequenceResult, folder: Path, final: Path) -> list[str]:
        """The episode's own ``summary.json``."""
        spec = result.spec
        summary = EpisodeSummary(
            **result.stats.fields(), plan_resets=result.plan_resets,
            faithfulness=faithfulness_summary(result.deletion),
            outputs={n: str(final / n) for n in [*result.names, out.SUMMARY_NAME]},
            timings=result.timings(), episode=spec.episode, task=spec.task, length=spec.n_ticks,
            duration_s=round(spec.data.duration_s, 6), action_error=plots.action_error_stats([(spec.episode, spec.table)]),
        )
        out.write_json_atomic(folder / out.SUMMARY_NAME, summary.to_dict())
        logger.info("episode %d: %d frames (%d skipped), action MAE %s", spec.episode, summary.ticks, summary.skipped,
                    summary.action_error["all"]["mae"])
        self.episode_summaries.append(summary)
        return [out.SUMMARY_NAME]

    def summarise(self, result: SessionResult) -> DatasetReplaySummary:
        summaries, source = self.episode_summaries, self.source
        warnings = list(self.warnings)
        warnings += [f"episode {s.episode}: {s.no_action_message()}" for s in summaries if s.no_action_message()]
        seqs = result.sequences
        return DatasetReplaySummary(
            **result.stats.fields(), plan_resets=result.plan_resets, faithfulness=result.faithfulness,
            outputs={name: str(path) for name, path in result.outputs.items()},
            timings=timings(total_s=result.total_s, loop_s=result.loop_s, model_s=result.model_s,
                            outputs_s=sum(r.outputs_s for r in seqs), ticks=result.stats.ticks,
                            read_s=sum(r.spec.timings.get("read_s", 0.0) for r in seqs)),
            warnings=warnings, dataset=self.dataset_name, repo_id=source.repo_id, root=str(source.root),
            policy=result.policy, out_dir=str(result.out_dir), fps=source.fps, batch_size=self.options.batch_size,
            side_every=result.side_every, methods=result.methods, camera_map=dict(self.match.camera_map),
            resized={k: f"{a[0]}x{a[1]} -> {b[0]}x{b[1]}" for k, (a, b) in self.match.resize.items()},
            video_backend=source.video_backend, joint_names=self.joint_names,
            action_error=plots.action_error_stats([(r.spec.episode, r.spec.table) for r in seqs]),
            episodes=[s.to_dict() for s in summaries],
        )


# --------------------------------------------------------------------------------------- public API
def replay_dataset(
    dataset: str | os.PathLike[str] | LeRobotDatasetSource,
    policy: str | os.PathLike[str] | InterpretableACT,
    settings: NodeSettings,
    out_dir: str | os.PathLike[str],
    options: DatasetReplayOptions | None = None,
) -> DatasetReplaySummary:
    """Replay episodes of ``dataset`` through ``policy``; write per-episode and overall outputs into ``out_dir``.

    Args:
        dataset: a local LeRobotDataset v3.0 root, a hub repo id ``owner/name`` (needs the network unless
            cached), or an open :class:`LeRobotDatasetSource`.
        policy: a LeRobot ACT ``pretrained_model/`` directory or hub repo id (loaded on ``options.device`` or
            the config's device, with the config's attention options), or a loaded :class:`InterpretableACT`.
        settings: the node's settings (attention options, side methods and their schedule, overlay options,
            ``image_resize``); camera, topic, unit and limit parameters do not apply to a dataset.
        out_dir: output directory (created if needed); outputs appear only when the whole run succeeds (some
            frame computed an action), and outputs of an earlier run that this run does not write are removed.
        options: :class:`DatasetReplayOptions`.
    Returns:
        :class:`DatasetReplaySummary` (also written to ``out_dir/summary.json``).
    Raises:
        DatasetError, ReplayError: bad input (one line each); NoActionError (a ReplayError): no frame computed
        an action, nothing was written; act_interp_ros.core.PolicyLoadError: the policy cannot be loaded.
    """
    options = options or DatasetReplayOptions()
    check_options(options)
    summary = OfflineSession(DatasetSource(dataset, settings, options), policy, options).run(out_dir)
    logger.info("replayed %d episode(s), %d frames (%d skipped) at %.1f frames/s into %s", len(summary.episodes),
                summary.ticks, summary.skipped, summary.timings["ticks_per_s"], out_dir)
    return summary
