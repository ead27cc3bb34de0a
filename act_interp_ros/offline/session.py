"""One offline replay, whatever it reads: an :class:`OfflineSession` with one lifecycle.

    open the source (check its inputs) -> load and attach the policy -> run the ticks, sequence by sequence
    -> write the outputs (committed together, or none) -> summarise (``summary.json``)

A *source* (:class:`ReplaySource`: a bag, :mod:`act_interp_ros.bag.replay.run`; a LeRobotDataset,
:mod:`act_interp_ros.dataset.replay`) supplies only what differs: how its inputs are checked, which settings the
policy runs under, its sequences and their ticks, extra outputs (the output bag) and its summary's fields.
A *sequence* is what one set of per-tick outputs covers: the replayed range of a bag, or one dataset episode.
Every tick goes through :class:`~act_interp_ros.offline.interpreter.OfflineInterpreter` (the node's own policy
step) and its record, in tick order, to the sequence's outputs.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from act_interp_ros.core import DeletionResult, DeletionTest, InterpretableACT
from act_interp_ros.core.ablation import box_mask
from act_interp_ros.core.region_move import scaled_move
from act_interp_ros.offline import outputs as out
from act_interp_ros.offline.interpreter import OfflineInterpreter, OfflineTick, faithfulness_summary
from act_interp_ros.offline.options import (
    OfflineOptions,
    ReplayError,
    TickSchedule,
    check_out_dir,
    methods_for,
    side_every_for,
)
from act_interp_ros.offline.records import TickRecord
from act_interp_ros.offline.rerun_ticks import RerunTicks
from act_interp_ros.offline.staging import SequenceOutputs, StagedRun, write_summary
from act_interp_ros.offline.summary import TickStats, TickSummary, timings
from act_interp_ros.pipeline import TickPipeline
from act_interp_ros.pipeline.policy_setup import env_state_sensitivity
from act_interp_ros.settings import NodeSettings

__all__ = ["AttachedPolicy", "ExtraOutput", "OfflineSession", "ReplaySource", "SequenceResult", "SequenceSpec",
           "SessionResult", "opened_policy"]

logger = logging.getLogger(__name__)


@dataclass
class AttachedPolicy:
    """How a source runs the attached policy.

    Attributes:
        settings: the settings the ticks run under (a dataset's: its fps and joints).
        rate_hz: the tick rate (side-method schedule, video fps).
        env_state: the policy has an environment state (its sensitivity runs on side ticks).
        command_pipeline: the tick pipeline whose command limits apply (bags: ROS units); ``None`` = actions stay
            in policy units, without a command (datasets).
        render: render overlays even without videos or Rerun (for the output bag).
    """

    settings: NodeSettings
    rate_hz: float
    env_state: bool
    command_pipeline: TickPipeline | None = None
    render: bool = False


@dataclass
class SequenceSpec:
    """One set of per-tick outputs.

    Attributes:
        folder: its folder under the output directory (``""`` = the output directory itself).
        title: names it in the plots' titles.
        episode: its Rerun episode index; task: its Rerun task label.
        n_ticks: how many ticks it has.
        table: its (empty) tick table (the columns say what is recorded).
        frame_sizes: camera key -> (H, W) of the source frames (video sizes).
        data: the source's own handle (a dataset's episode index).
    """

    folder: str
    title: str
    episode: int
    n_ticks: int
    table: out.TickTable
    frame_sizes: dict[str, tuple[int, int]]
    task: str = ""
    data: Any = None
    timings: dict[str, float] = field(default_factory=dict)  # the source's own (open_s, read_s)


@dataclass
class SequenceResult:
    """What one sequence gave: its spec, tick counts, the files written into its folder, its deletion results,
    plan resets, model time and wall times (s)."""

    spec: SequenceSpec
    stats: TickStats
    names: list[str]
    deletion: dict[str, dict[str, list[DeletionResult]]]
    plan_resets: int
    model_s: float
    loop_s: float
    outputs_s: float
    total_s: float

    def timings(self) -> dict[str, float]:
        """The sequence's ``timings`` (s) with ticks/s, and the source's own (open_s, read_s)."""
        return timings(total_s=self.total_s, loop_s=self.loop_s, model_s=self.model_s, outputs_s=self.outputs_s,
                       ticks=self.spec.n_ticks, **self.spec.timings)


@dataclass
class SessionResult:
    """What the whole run gave, for the source's summary.

    Attributes:
        policy: the policy's name (its path); out_dir: the output directory.
        sequences: one result per sequence, in order.
        stats: tick counts over every sequence.
        methods, side_every: the side methods computed and their schedule.
        plan_resets, model_s: over the run.
        faithfulness: method -> camera -> pooled deletion-test result.
        outputs: committed output name -> final path.
        open_s: checking the source's inputs (before the policy load); run_s: from the attached policy to the
            committed outputs; loop_s: ticking (read, model, per-tick outputs); total_s: the whole run.
    """

    policy: str
    out_dir: Path
    sequences: list[SequenceResult]
    stats: TickStats
    methods: list[str]
    side_every: int
    plan_resets: int
    model_s: float
    faithfulness: dict[str, Any]
    outputs: dict[str, Path]
    open_s: float
    run_s: float
    loop_s: float
    total_s: float


class ExtraOutput(Protocol):
    """An output a source adds beside the per-sequence ones (the bag replay's output bag): it sees every record
    first, then is finished (returns the names it staged) or aborted."""

    def on_tick(self, rec: TickRecord) -> None: ...
    def finish(self) -> list[str]: ...
    def abort(self) -> None: ...


class ReplaySource(ABC):
    """What a replay reads. Attributes: ``name`` (the Rerun recording), ``unit`` (the progress bar's),
    ``joint_names`` (policy order), ``warnings`` (for the summary)."""

    name: str = "replay"
    unit: str = "tick"
    joint_names: list[str]
    warnings: list[str]

    def open(self) -> None:
        """Check the inputs before the (slow) policy load; raise one clear line when they cannot be replayed."""

    @abstractmethod
    def load_policy(self, path: str) -> InterpretableACT:
        """Load the policy at ``path`` under this source's settings."""

    @abstractmethod
    def attach(self, wrapped: InterpretableACT) -> AttachedPolicy:
        """Check ``wrapped`` against the inputs; how it runs."""

    @abstractmethod
    def sequences(self, methods: Sequence[str]) -> list[SequenceSpec]:
        """The sequences to replay (after :meth:`attach`); ``methods``: the side methods (table columns)."""

    @abstractmethod
    def ticks(self, seq: SequenceSpec, schedule: TickSchedule) -> Iterator[OfflineTick]:
        """The sequence's ticks in order (skipped ones with ``rec.skip``), scheduled by ``schedule``."""

    def extra_outputs(self, stage: out.OutputStage, methods: Sequence[str]) -> list[ExtraOutput]:
        """Outputs beside the per-sequence ones, staged in ``stage`` (none by default)."""
        return []

    def sequence_done(self, result: SequenceResult, folder: Path, final: Path) -> list[str]:
        """After a sequence's outputs are written in ``folder`` (staged; ``final``: where they will be): more files
        of its own (names)."""
        return []

    def no_action_hint(self, stats: TickStats) -> str:
        """What to try, after the reasons, when no tick computed an action."""
        return ""

    @abstractmethod
    def summarise(self, result: SessionResult) -> TickSummary:
        """The run's summary (``summary.json``)."""

    def close(self) -> None:
        """Release what :meth:`open` opened."""


@contextmanager
def opened_policy(policy: str | os.PathLike[str] | InterpretableACT,
                  load: Callable[[str], InterpretableACT]) -> Iterator[tuple[InterpretableACT, str]]:
    """``(wrapped policy, its name)``: ``policy`` itself when already loaded, else ``load(path)``, closed on exit."""
    if isinstance(policy, InterpretableACT):
        yield policy, str(getattr(policy.config, "pretrained_path", None) or type(policy).__name__)
        return
    wrapped = load(os.fspath(policy))
    try:
        yield wrapped, os.fspath(policy)
    finally:
        wrapped.close()


class OfflineSession:
    """Runs ``source`` through ``policy`` (see the module docstring).

    Args:
        source: what to replay.
        policy: a ``pretrained_model/`` directory (loaded by the source, closed at the end) or a loaded policy.
        options: the common offline options (checked by the caller).
    """

    def __init__(self, source: ReplaySource, policy: str | os.PathLike[str] | InterpretableACT,
                 options: OfflineOptions) -> None:
        self.source = source
        self.policy = policy
        self.options = options
        self.attached: AttachedPolicy | None = None

    def run(self, out_dir: str | os.PathLike[str]) -> TickSummary:
        """Replay into ``out_dir``; returns the summary (also in ``out_dir/summary.json``).

        Outputs appear only when some tick computed an action (else :class:`~.options.NoActionError`), and an
        earlier run's outputs that this run does not write are removed.
        """
        t_start = time.perf_counter()
        out_path = Path(out_dir)
        check_out_dir(out_path)
        try:
            self.source.open()
            open_s = time.perf_counter() - t_start
            with opened_policy(self.policy, self.source.load_policy) as (wrapped, policy_name):
                result = self._run(wrapped, policy_name, out_path, t_start, open_s)
                summary = self.source.summarise(result)
        finally:
            self.source.close()
        write_summary(summary, out_path)
        return summary

    # ---------------------------------------------------------------------------------------- stages
    def _run(self, wrapped: InterpretableACT, policy_name: str, out_path: Path, t_start: float,
             open_s: float) -> SessionResult:
        self.attached = attached = self.source.attach(wrapped)
        t_run = time.perf_counter()
        opts = self.options
        methods = methods_for(opts, attached.settings)
        side_every = side_every_for(opts, attached.settings, attached.rate_hz, methods, env_state=attached.env_state)
        if side_every == 0:
            methods = []
        specs = self.source.sequences(methods)
        self._check_ablation(wrapped, methods, specs)
        self._check_move(wrapped, specs)
        self._check_regions(wrapped)
        deletion = DeletionTest(wrapped.policy, n_random=4, batch_size=64) if opts.faithfulness_samples > 0 else None
        interp = OfflineInterpreter(
            wrapped, attached.settings, methods=methods, batch_size=opts.batch_size,
            pipeline=attached.command_pipeline, deletion=deletion,
            render=attached.render or opts.write_video or opts.rerun_path is not None,
            env_sensitivity=env_state_sensitivity(wrapped, attached.settings), ablation=opts.ablate, move=opts.move,
            regions=opts.regions, rate_hz=attached.rate_hz)
        from tqdm import tqdm

        bar = tqdm(total=sum(s.n_ticks for s in specs), unit=self.source.unit, disable=not opts.progress,
                   file=sys.stderr, dynamic_ncols=True, desc="replay", mininterval=0.5)
        stats = TickStats(ablation=opts.ablate.label if opts.ablate is not None else None,
                          move=opts.move.label if opts.move is not None else None, regions=opts.regions)
        results: list[SequenceResult] = []
        pooled: dict[str, dict[str, list[DeletionResult]]] = {}
        try:
            with StagedRun(out_path, opts, self.source.joint_names, attached.settings, self.source.name) as run:
                extras = self.source.extra_outputs(run.stage, methods)
                for extra in extras:
                    run.on_abort(extra.abort)
                staged: list[str] = []
                wrapped.policy.eval()
                for spec in specs:
                    result = self._sequence(spec, run, interp, extras, methods, side_every, bar, stats)
                    results.append(result)
                    for method, per_cam in result.deletion.items():
                        for cam, parts in per_cam.items():
                            pooled.setdefault(method, {}).setdefault(cam, []).extend(parts)
                    staged += [spec.folder] if spec.folder else result.names
                loop_s = sum(r.loop_s for r in results)
                for extra in extras:
                    staged += extra.finish()
                committed = run.commit(staged, stats, hint=self.source.no_action_hint(stats))
        finally:
            bar.close()
            interp.close()
        now = time.perf_counter()
        return SessionResult(
            policy=str(policy_name), out_dir=out_path, sequences=results, stats=stats, methods=methods,
            side_every=side_every, plan_resets=interp.plan_resets, model_s=interp.model_s,
            faithfulness=faithfulness_summary(pooled), outputs=committed, open_s=open_s, run_s=now - t_run,
            loop_s=loop_s, total_s=now - t_start)

    def _check_ablation(self, wrapped: InterpretableACT, methods: list[str], specs: list[SequenceSpec]) -> None:
        """One line when ``--ablate``/``--ablate-top`` cannot apply: unknown camera, a map not computed, a box
        outside the frames."""
        spec = self.options.ablate
        if spec is None:
            return
        cameras = list(wrapped.image_shapes)
        if spec.camera not in cameras:
            raise ReplayError(f"--ablate '{spec.label}': camera '{spec.camera}' is not one of the policy's "
                              f"{', '.join(cameras)}")
        if spec.method is not None and spec.method != "attention" and spec.method not in methods:
            raise ReplayError(f"--ablate-top '{spec.label}': {spec.method} maps are not computed in this run "
                              f"(side methods: {', '.join(methods) or 'none'}); add it with --methods and set "
                              "--side-every 1 to edit every tick")
        if spec.box is not None:
            for seq in specs:
                try:
                    box_mask(spec.box, seq.frame_sizes[spec.camera], tuple(wrapped.image_shapes[spec.camera]))
                except ValueError as exc:
                    raise ReplayError(f"--ablate '{spec.label}': {exc}") from None

    def _check_regions(self, wrapped: InterpretableACT) -> None:
        """One line when a ``--regions`` region names a camera the policy does not have."""
        regions = self.options.regions
        for r in regions.regions if regions is not None else ():
            if r.camera not in wrapped.image_shapes:
                raise ReplayError(f"--regions '{regions.source}': region '{r.name}': camera '{r.camera}' is not one "
                                  f"of the policy's {', '.join(wrapped.image_shapes)}")

    def _check_move(self, wrapped: InterpretableACT, specs: list[SequenceSpec]) -> None:
        """One line when ``--move`` cannot apply: unknown camera, a box outside the frames."""
        spec = self.options.move
        if spec is None:
            return
        if spec.camera not in wrapped.image_shapes:
            raise ReplayError(f"--move '{spec.label}': camera '{spec.camera}' is not one of the policy's "
                              f"{', '.join(wrapped.image_shapes)}")
        for seq in specs:
            try:
                scaled_move(spec, seq.frame_sizes[spec.camera], tuple(wrapped.image_shapes[spec.camera]))
            except ValueError as exc:
                raise ReplayError(f"--move '{spec.label}': {exc}") from None

    def _sequence(self, spec: SequenceSpec, run: StagedRun, interp: OfflineInterpreter, extras: list[ExtraOutput],
                  methods: list[str], side_every: int, bar, overall: TickStats) -> SequenceResult:
        """Run one sequence's ticks into its outputs (in ``stage/<folder>``)."""
        t0 = time.perf_counter()
        folder = run.stage.path(spec.folder) if spec.folder else run.stage.dir
        outputs = SequenceOutputs(
            folder, spec.table, self.options, frame_sizes=spec.frame_sizes, fps=self.attached.rate_hz,
            methods=methods, title=spec.title,
            rerun=RerunTicks(run.rerun, spec.episode, task=spec.task) if run.rerun is not None else None)
        run.on_abort(outputs.abort)
        schedule = TickSchedule(spec.n_ticks, side_every, self.options.faithfulness_samples)
        resets0, model0 = interp.plan_resets, interp.model_s
        interp.policy.reset()  # a fresh plan at the sequence's start
        interp.reset()

        def emit(records: list[TickRecord]) -> None:
            for rec in records:
                for extra in extras:
                    extra.on_tick(rec)
                outputs.on_tick(rec)
                overall.add(rec)
                bar.update(1)

        for tick in self.source.ticks(spec, schedule):
            emit(interp.add(tick))
        emit(interp.flush())
        t_loop = time.perf_counter()
        names = outputs.finish()
        done = time.perf_counter()
        result = SequenceResult(spec, outputs.stats, names, interp.take_deletion_results(),
                                interp.plan_resets - resets0, interp.model_s - model0,
                                loop_s=t_loop - t0, outputs_s=done - t_loop, total_s=done - t0)
        final = run.stage.out_dir / spec.folder if spec.folder else run.stage.out_dir
        result.names += self.source.sequence_done(result, folder, final)
        return result
