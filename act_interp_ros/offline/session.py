"""What the bag replay and the dataset replay share: options and their checks, the side/faithfulness
schedule, the policy, per-sequence outputs (videos, table, plots, Rerun) and the summary fields.

A *sequence* is what one set of per-tick outputs covers: the replayed range of a bag, or one dataset
episode. Each runner turns its input into :class:`~act_interp_ros.offline.records.TickRecord` objects
(through :class:`~act_interp_ros.offline.interpreter.OfflineInterpreter`) and hands them, in tick order,
to a :class:`SequenceOutputs`; everything below that line is common.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from act_interp_ros.core import DeletionTest, InterpretableACT
from act_interp_ros.offline import outputs as out
from act_interp_ros.offline import plots
from act_interp_ros.offline.interpreter import OfflineInterpreter
from act_interp_ros.offline.records import TickRecord
from act_interp_ros.pipeline import TickPipeline
from act_interp_ros.pipeline.policy_setup import env_state_sensitivity
from act_interp_ros.pipeline.side_methods import ALL_METHODS
from act_interp_ros.settings import NodeSettings
from act_interp_ros.offline.summary import (
    TickStats,
    TickSummary,
)
from act_interp_ros.offline.rerun_ticks import (
    open_rerun,
    RerunTicks,
)

__all__ = [
    "NO_OUTPUTS",
    "NoActionError",
    "OfflineOptions",
    "ReplayError",
    "SequenceOutputs",
    "StagedRun",
    "TickSchedule",
    "check_options",
    "make_interpreter",
    "opened_policy",
    "side_every_for",
    "write_summary",
]

logger = logging.getLogger(__name__)


class ReplayError(RuntimeError):
    """The replay cannot run on this input (input, policy and configuration disagree); one clear line."""


class NoActionError(ReplayError):
    """No tick of the run computed an action, so the run wrote no output (the command line exits 2)."""


#: How every line about a run without any action ends (such a run commits nothing into the output directory).
NO_OUTPUTS = "no outputs were written"


# ------------------------------------------------------------------------------------------- options
@dataclass(kw_only=True)
class OfflineOptions:
    """Options every offline replay takes (bag: :class:`~act_interp_ros.bag.replay.ReplayOptions`, dataset:
    :class:`~act_interp_ros.dataset.replay.DatasetReplayOptions`).

    Attributes:
        batch_size: runnable ticks per batched forward pass (1 = sequential; the actions are the same).
        methods: side methods to compute (any of gradcam, gradient_x_input, integrated_gradients, occlusion);
            ``None`` = the config's ``side_methods``.
        side_every: side methods every N ticks (tick index % N == 0; 0 = off, 1 = every tick);
            ``None`` = from the config's ``side_rate_hz`` (round(rate / side_rate_hz)).
        faithfulness_samples: side ticks per sequence (about evenly spread) on which every map's deletion
            test runs (0 = none); each costs ``n_cameras * 4 * (1 + 4)`` forwards per method.
        write_video, write_table, write_plot: which per-sequence outputs to write.
        table_format: ``"csv"`` or ``"parquet"``.
        device: torch device; ``None`` = the config's ``device``.
        progress: show a tqdm progress bar on stderr.
        rerun_path: also write a Rerun recording (``.rrd``) here (``None`` = none).
    """

    batch_size: int = 1
    methods: Sequence[str] | None = None
    side_every: int | None = None
    faithfulness_samples: int = 8
    write_video: bool = True
    write_table: bool = True
    write_plot: bool = True
    table_format: str = "csv"
    device: str | None = None
    progress: bool = False
    rerun_path: str | os.PathLike[str] | None = None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_options(options: OfflineOptions) -> None:
    """Raise :class:`ReplayError` (one line) for a bad common option."""
    if not _is_int(options.batch_size) or options.batch_size < 1:
        raise ReplayError(f"batch size must be an integer >= 1, got {options.batch_size!r}")
    if options.side_every is not None and (not _is_int(options.side_every) or options.side_every < 0):
        raise ReplayError(f"side-every must be an integer >= 0 (0 = off, 1 = every tick), got {options.side_every!r}")
    if options.methods is not None:
        unknown = [m for m in options.methods if m not in ALL_METHODS]
        if unknown:
            raise ReplayError(f"methods {unknown} unknown; expected some of {', '.join(ALL_METHODS)}")
    if not _is_int(options.faithfulness_samples) or options.faithfulness_samples < 0:
        raise ReplayError(f"faithfulness samples must be an integer >= 0, got {options.faithfulness_samples!r}")
    if options.table_format not in out.TABLE_FORMATS:
        raise ReplayError(f"table format must be one of {', '.join(out.TABLE_FORMATS)}, got {options.table_format!r}")
    if options.rerun_path is not None:
        path = Path(options.rerun_path)
        if path.suffix != ".rrd":
            raise ReplayError(f"--rerun must name a Rerun recording file ending in .rrd, got '{path}'")
        if path.is_dir():
            raise ReplayError(f"--rerun '{path}' is a directory; expected a .rrd file path")
        if importlib.util.find_spec("rerun") is None:
            raise ReplayError("--rerun needs the rerun-sdk package (pip install rerun-sdk)")


def check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ReplayError(f"output path '{out_dir}' exists and is not a directory")


def side_every_for(options: OfflineOptions, settings: NodeSettings, rate_hz: float, methods: Sequence[str],
                   env_state: bool = False) -> int:
    """Side methods (and, for ``env_state`` policies, the env-state sensitivity) every N ticks: the option, else
    ``round(rate / side_rate_hz)`` (0 = never)."""
    if not methods and not env_state:
        return 0
    if options.side_every is not None:
        return int(options.side_every)
    if settings.side_rate_hz <= 0:
        return 0
    return max(1, round(rate_hz / settings.side_rate_hz))


def methods_for(options: OfflineOptions, settings: NodeSettings) -> list[str]:
    return list(settings.side_methods if options.methods is None else options.methods)


class TickSchedule:
    """Which ticks of a sequence of ``n_ticks`` get the side methods and the deletion (faithfulness) test.

    Side ticks: ``k % side_every == 0``. Faithfulness: about ``samples`` of the side ticks, evenly spread
    (every ``faith_every``-th one); without side methods, about ``samples`` of all ticks (attention only).
    """

    def __init__(self, n_ticks: int, side_every: int, samples: int) -> None:
        self.side_every = int(side_every)
        if samples <= 0:
            self.faith_every = 0
        else:
            candidates = -(-n_ticks // self.side_every) if self.side_every else n_ticks
            self.faith_every = max(1, -(-candidates // samples))

    def side(self, k: int) -> bool:
        return self.side_every > 0 and k % self.side_every == 0

    def faithfulness(self, k: int) -> bool:
        if not self.faith_every:
            return False
        if self.side_every:
            return k % self.side_every == 0 and (k // self.side_every) % self.faith_every == 0
        return k % self.faith_every == 0


def make_interpreter(wrapped: InterpretableACT, settings: NodeSettings, options: OfflineOptions,
                     methods: Sequence[str], *, faithfulness: bool, pipeline: TickPipeline | None = None,
                     render: bool = True) -> OfflineInterpreter:
    """The offline interpreter for a run (the deletion test only when some tick samples faithfulness; the
    env-state sensitivity for policies with an env state)."""
    deletion = DeletionTest(wrapped.policy, n_random=4, batch_size=64) if faithfulness else None
    return OfflineInterpreter(wrapped, settings, methods=methods, batch_size=options.batch_size, pipeline=pipeline,
                              render=render, deletion=deletion, env_sensitivity=env_state_sensitivity(wrapped, settings))


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


# ------------------------------------------------------------------------------------------- staging
class StagedRun:
    """The outputs of one run: an :class:`~act_interp_ros.offline.outputs.OutputStage` in ``out_dir`` and, with
    ``options.rerun_path``, a Rerun recording (``self.rerun``). :meth:`commit` puts everything in place
    together; leaving the ``with`` block by an exception runs the registered cleanups (:meth:`on_abort`),
    deletes the partial Rerun file and discards the stage, so a failed run leaves no output. A run in which no
    tick computed an action is a failed run: :meth:`commit` raises :class:`NoActionError` instead of
    committing, so the output directory keeps what it held (an earlier run's outputs included).
    """

    def __init__(self, out_dir: Path, options: OfflineOptions, joint_names: Sequence[str], settings: NodeSettings,
                 name: str) -> None:
        self.stage = out.OutputStage(out_dir)
        self.rerun = None
        self._cleanups: list[Callable[[], None]] = []
        if options.rerun_path is not None:
            try:
                self.rerun = open_rerun(options.rerun_path, joint_names, settings, name)
            except BaseException:
                self.stage.abandon()
                raise

    def __enter__(self) -> StagedRun:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def on_abort(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup`` (e.g. closing a partial writer) if the run fails."""
        self._cleanups.append(cleanup)

    def commit(self, staged: Sequence[str], stats: TickStats, hint: str = "") -> dict[str, Path]:
        """Close the Rerun file, commit the staged outputs (removing an earlier run's stale ones); name -> path.

        ``stats`` counts the run's ticks: when none computed an action nothing is committed and
        :class:`NoActionError` says why (``hint``, e.g. what to try, follows the reasons).
        """
        problem = stats.no_action_message()
        if problem is not None:
            raise NoActionError(f"{problem}{hint}; {NO_OUTPUTS}")
        rrd = self.rerun.close() if self.rerun is not None else None
        committed = out.commit_outputs(self.stage, staged, {rrd.name} if rrd is not None else set())
        if rrd is not None:
            committed[rrd.name] = rrd
        self._cleanups.clear()
        return committed

    def abort(self) -> None:
        for cleanup in reversed(self._cleanups):
            cleanup()
        if self.rerun is not None:
            self.rerun.abort()
        self.stage.abandon()


# -------------------------------------------------------------------------------------------- outputs
class SequenceOutputs:
    """The per-tick outputs of one sequence, built inside ``directory`` (in the staging area): the attention
    video per camera and the grid video, the tick table, the attention/faithfulness plot and, when the table
    holds recorded actions, the predicted-vs-recorded action plot; optionally the sequence's episode in a
    Rerun recording.

    Args:
        directory: where the files are built (created).
        table: the sequence's (empty) tick table; its columns say what is recorded.
        options: which outputs to write and the table format.
        frame_sizes: camera key -> (H, W) of the source frames (video sizes).
        fps: video frame rate (the tick rate).
        methods: side methods (a grid column each).
        title: names the sequence in the plots' titles.
        rerun: the sequence's :class:`RerunTicks` (``None`` = no Rerun).
    """

    def __init__(self, directory: Path, table: out.TickTable, options: OfflineOptions, *,
                 frame_sizes: dict[str, tuple[int, int]], fps: float, methods: Sequence[str], title: str,
                 rerun: RerunTicks | None = None) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.table = table
        self.options = options
        self.title = title
        self.rerun = rerun
        self.stats = TickStats()
        self.videos = None
        if options.write_video:
            from act_interp_ros.offline.videos import ReplayVideos

            self.videos = ReplayVideos(self.dir, table.camera_keys, table.camera_names, frame_sizes, fps,
                                       methods=methods)

    def on_tick(self, rec: TickRecord) -> None:
        self.stats.add(rec)
        self.table.add(rec)
        if self.videos is not None:
            self.videos.on_tick(rec)
        if self.rerun is not None:
            self.rerun.on_tick(rec)

    def finish(self) -> list[str]:
        """Close the videos, write the table and plots; returns the file names written (in ``directory``)."""
        names: list[str] = []
        if self.videos is not None:
            names += self.videos.close()
            self.videos = None
        opts = self.options
        if opts.write_table:
            name = out.table_name(opts.table_format)
            self.table.write(self.dir / name, opts.table_format)
            names.append(name)
        if opts.write_plot:
            plots.write_attention_plot(self.table, self.dir / out.PLOT_NAME, title=f"ACT attention over {self.title}")
            names.append(out.PLOT_NAME)
            if self.table.recorded:
                plots.write_action_plot(self.table, self.dir / out.ACTION_PLOT_NAME,
                                      title=f"Predicted vs recorded action, {self.title} (| = new chunk)")
                names.append(out.ACTION_PLOT_NAME)
        return names

    def abort(self) -> None:
        if self.videos is not None:
            self.videos.abort()
            self.videos = None


def write_summary(summary: TickSummary, out_dir: Path) -> None:
    """List ``summary.json`` among the outputs and write it into ``out_dir`` (atomically)."""
    path = Path(out_dir) / out.SUMMARY_NAME
    summary.outputs[out.SUMMARY_NAME] = str(path)
    out.write_json_atomic(path, summary.to_dict())
