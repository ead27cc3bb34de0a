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
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from lerobot.utils.constants import ACTION

from act_interp_ros.core import InterpretableACT, ObservationBuilder, ObservationError
from act_interp_ros.dataset.features import FeatureMatch, check_policy_features
from act_interp_ros.dataset.source import LeRobotDatasetSource
from act_interp_ros.offline import outputs as out
from act_interp_ros.offline import plots
from act_interp_ros.offline import session
from act_interp_ros.offline.interpreter import OfflineInterpreter, OfflineTick, faithfulness_summary
from act_interp_ros.offline.records import CameraFrame, TickRecord
from act_interp_ros.offline.rerun_ticks import RerunTicks
from act_interp_ros.offline.session import ReplayError
from act_interp_ros.offline.summary import TickStats, timings
from act_interp_ros.pipeline import SkipReason, TrainingRangeGuard, check_policy_options, load_policy
from act_interp_ros.pipeline.tick import NS, out_of_range_skip
from act_interp_ros.rerun_recording import episode_entity
from act_interp_ros.settings import NodeSettings, SettingsError, camera_name
from act_interp_ros.settings.vocabulary import CAMERA_KEY_PREFIX
from act_interp_ros.dataset.replay_options import (
    check_options,
    DatasetReplayOptions,
    DatasetReplaySummary,
    EpisodeSummary,
)

__all__ = ["DatasetReplayOptions", "DatasetReplaySummary", "EpisodeSummary", "dataset_joint_names",
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


# ---------------------------------------------------------------------------------------------- run
class _DatasetRun:
    """One dataset replay run (see :func:`replay_dataset`)."""

    def __init__(self, source: LeRobotDatasetSource, wrapped: InterpretableACT, settings: NodeSettings,
                 options: DatasetReplayOptions, match: FeatureMatch, joint_names: list[str]) -> None:
        self.source = source
        self.wrapped = wrapped
        self.settings = settings
        self.options = options
        self.match = match
        self.joint_names = joint_names
        self.fps = float(source.fps)
        self.methods = session.methods_for(options, settings)
        self.side_every = session.side_every_for(options, settings, self.fps, self.methods,
                                                 env_state=wrapped.env_state_dim > 0)
        if self.side_every == 0:
            self.methods = []
        self.cam_keys = list(match.camera_map)  # policy order
        self.builder = ObservationBuilder(wrapped.config, resize=bool(settings.image_resize), device=wrapped.device)
        self.builder.resized_cameras.update(match.resize)  # check_policy_features warned about them already
        self.warnings = [f"camera {k}: dataset frames are {a[0]}x{a[1]}, resized to the policy's {b[0]}x{b[1]}"
                         for k, (a, b) in match.resize.items()]
        # the training-range guard, as in the bag replay and the node (the dataset is in policy units already)
        self.guard = TrainingRangeGuard.from_policy(wrapped, joint_names, settings.training_range_margin,
                                                    settings.image_stats_tolerance, self.cam_keys)
        self.skip_out_of_range = settings.out_of_range_policy == "skip"
        for note in self.guard.notes:
            logger.warning("%s", note)
            self.warnings.append(note)

    def run(self, out_dir: Path, episodes: list[int], t_start: float, dataset_name: str,
            policy_name: str) -> DatasetReplaySummary:
        opts = self.options
        interp = session.make_interpreter(self.wrapped, self.settings, opts, self.methods,
                                          faithfulness=opts.faithfulness_samples > 0,
                                          render=opts.write_video or opts.rerun_path is not None)
        from tqdm import tqdm

        lengths = self.source.episode_lengths
        bar = tqdm(total=sum(lengths[e] for e in episodes), unit="frame", disable=not opts.progress, file=sys.stderr,
                   dynamic_ncols=True, desc="replay", mininterval=0.5)
        self.current: session.SequenceOutputs | None = None
        self.overall = TickStats()
        self.results: dict[str, dict[str, list]] = {}
        self.tables: list[tuple[int, out.TickTable]] = []
        summaries: list[EpisodeSummary] = []
        try:
            with session.StagedRun(out_dir, opts, self.joint_names, self.settings, self.source.repo_id) as run:
                run.on_abort(lambda: self.current.abort() if self.current is not None else None)
                self.wrapped.policy.eval()
                for ep in episodes:
                    summaries.append(self._episode(ep, run, out_dir, interp, bar))
                committed = run.commit([episode_entity(ep) for ep in episodes], self.overall)
        finally:
            bar.close()
            interp.close()
        loop_s = sum(s.timings["ticks_s"] for s in summaries)
        warnings = list(self.warnings)
        warnings += [f"episode {s.episode}: {s.no_action_message()}" for s in summaries if s.no_action_message()]
        source = self.source
        return DatasetReplaySummary(
            **self.overall.fields(), plan_resets=interp.plan_resets, faithfulness=faithfulness_summary(self.results),
            outputs={name: str(path) for name, path in committed.items()},
            timings=timings(total_s=time.perf_counter() - t_start, loop_s=loop_s, model_s=interp.model_s,
                                    outputs_s=sum(s.timings["outputs_s"] for s in summaries),
                                    ticks=self.overall.ticks,
                                    read_s=sum(s.timings["read_s"] for s in summaries)),
            warnings=warnings, dataset=dataset_name, repo_id=source.repo_id, root=str(source.root), policy=policy_name,
            out_dir=str(out_dir), fps=source.fps, batch_size=opts.batch_size, side_every=self.side_every,
            methods=self.methods, camera_map=dict(self.match.camera_map),
            resized={k: f"{a[0]}x{a[1]} -> {b[0]}x{b[1]}" for k, (a, b) in self.match.resize.items()},
            video_backend=source.video_backend, joint_names=self.joint_names,
            action_error=plots.action_error_stats(self.tables), episodes=[s.to_dict() for s in summaries],
        )

    def _episode(self, ep: int, run: session.StagedRun, out_dir: Path, interp: OfflineInterpreter,
                 bar) -> EpisodeSummary:
        """Replay one episode into ``stage/episode_NNN/`` (its summary.json included)."""
        t0 = time.perf_counter()
        reader = self.source.open_episode(ep)  # validates the episode's files before any frame
        info = self.source.episode_info(ep)
        task = ", ".join(info.tasks)
        t_open = time.perf_counter()
        name = episode_entity(ep)
        w = self.wrapped
        table = out.TickTable(self.cam_keys, [camera_name(k) for k in self.cam_keys], None, [], self.joint_names,
                              has_state=w.state_dim > 0, has_env_state=w.env_state_dim > 0, methods=self.methods,
                              recorded=True)
        outputs = self.current = session.SequenceOutputs(
            run.stage.path(name), table, self.options,
            frame_sizes={k: self.source.image_sizes[d] for k, d in self.match.camera_map.items()}, fps=self.fps,
            methods=self.methods, title=f"episode {ep} of {self.source.repo_id}",
            rerun=RerunTicks(run.rerun, ep, task=task) if run.rerun is not None else None)
        schedule = session.TickSchedule(len(reader), self.side_every, self.options.faithfulness_samples)
        resets0, model0 = interp.plan_resets, interp.model_s
        interp.reset()  # a fresh plan at the episode start

        def emit(records: list[TickRecord]) -> None:
            for rec in records:
                outputs.on_tick(rec)
                self.overall.add(rec)
                bar.update(1)

        read_s = 0.0
        frames = iter(reader)
        while True:
            t_read = time.perf_counter()
            frame = next(frames, None)
            read_s += time.perf_counter() - t_read
            if frame is None:
                break
            emit(interp.add(self._tick(frame, schedule)))
        emit(interp.flush())
        t_loop = time.perf_counter()
        names = outputs.finish()
        self.current = None
        results = interp.take_deletion_results()
        for method, per_cam in results.items():
            for cam, parts in per_cam.items():
                self.results.setdefault(method, {}).setdefault(cam, []).extend(parts)
        self.tables.append((ep, table))
        summary = EpisodeSummary(
            **outputs.stats.fields(), plan_resets=interp.plan_resets - resets0,
            faithfulness=faithfulness_summary(results),
            outputs={n: str(out_dir / name / n) for n in [*names, out.SUMMARY_NAME]},
            timings=timings(total_s=time.perf_counter() - t0, loop_s=t_loop - t_open,
                                    model_s=interp.model_s - model0, outputs_s=time.perf_counter() - t_loop,
                                    ticks=len(reader), open_s=t_open - t0, read_s=read_s),
            episode=ep, task=task, length=len(reader), duration_s=round(info.duration_s, 6),
            action_error=plots.action_error_stats([(ep, table)]),
        )
        out.write_json_atomic(run.stage.path(name) / out.SUMMARY_NAME, summary.to_dict())
        logger.info("episode %d: %d frames (%d skipped), action MAE %s", ep, summary.ticks, summary.skipped,
                    summary.action_error["all"]["mae"])
        return summary

    def _tick(self, frame, schedule: session.TickSchedule) -> OfflineTick:
        """The tick of one dataset frame: its record (frames, recorded action) and preprocessed batch."""
        t_ns = round(frame.timestamp * NS)
        rec = TickRecord(index=frame.frame_index, time_ns=t_ns, rel_s=frame.timestamp, log_ns=t_ns,
                         recorded_action=frame.action)
        for key, ds_key in self.match.camera_map.items():
            rec.frames[key] = CameraFrame(key, camera_name(key), ds_key, frame.images[ds_key], t_ns, "")
        tick = OfflineTick(rec)
        w = self.wrapped
        if self._range_skip(rec, frame):
            return tick
        try:
            observation = self.builder.build(self.match.policy_images(frame.images),
                                             state=frame.state if w.state_dim else None,
                                             env_state=frame.env_state if w.env_state_dim else None)
        except ObservationError as exc:  # e.g. a non-finite state: this frame computes no action
            rec.skip = SkipReason("bad_input.observation", f"frame {frame.frame_index}: {exc}")
            return tick
        tick.batch = w.preprocess(observation)
        tick.side = schedule.side(frame.frame_index)
        tick.faithfulness = schedule.faithfulness(frame.frame_index)
        return tick

    def _range_skip(self, rec: TickRecord, frame) -> bool:
        """Flag the frame's inputs outside the training range on ``rec``; True when the tick is skipped for it."""
        g, w = self.guard, self.wrapped
        for key, ds_key in self.match.camera_map.items():
            flag = g.check_image(key, camera_name(key), frame.images[ds_key])
            if flag is not None:
                rec.range_flags.append(flag)
        values = []
        if w.state_dim and frame.state is not None and np.all(np.isfinite(frame.state)):
            values += g.check_state(np.asarray(frame.state, dtype=np.float64))
        if w.env_state_dim and frame.env_state is not None and np.all(np.isfinite(frame.env_state)):
            values += g.check_env(np.asarray(frame.env_state, dtype=np.float64))
        rec.range_flags.extend(values)
        if values and self.skip_out_of_range:
            rec.skip = out_of_range_skip(f"frame {frame.frame_index}", values)
            return True
        return False


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
    t_start = time.perf_counter()
    options = options or DatasetReplayOptions()
    check_options(options)
    out_path = Path(out_dir)
    session.check_out_dir(out_path)
    if isinstance(dataset, LeRobotDatasetSource):
        source = dataset
    else:
        source = LeRobotDatasetSource.open(dataset, video_backend=options.video_backend)
    episodes = source.select_episodes(options.episodes)
    joint_names = dataset_joint_names(source)
    ds_settings = dataset_settings(settings, joint_names, source.fps)

    def load(path: str) -> InterpretableACT:
        try:
            return load_policy(ds_settings.replace(policy_path=path), device=options.device or settings.device,
                               check_inputs=False)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None

    with session.opened_policy(policy, load) as (wrapped, policy_name):
        match = check_policy_features(source, wrapped.config, camera_map=normalize_camera_map(options.camera_map),
                                      allow_resize=bool(ds_settings.image_resize))
        try:
            check_policy_options(ds_settings, wrapped.policy)
        except SettingsError as exc:
            raise ReplayError(str(exc)) from None
        run = _DatasetRun(source, wrapped, ds_settings, options, match, joint_names or list(ds_settings.joint_names))
        dataset_name = os.fspath(dataset) if not isinstance(dataset, LeRobotDatasetSource) else str(source.root)
        summary = run.run(out_path, episodes, t_start, dataset_name, str(policy_name))
    session.write_summary(summary, out_path)
    logger.info("replayed %d episode(s), %d frames (%d skipped) at %.1f frames/s into %s", len(episodes),
                summary.ticks, summary.skipped, summary.timings["ticks_per_s"], out_path)
    return summary

