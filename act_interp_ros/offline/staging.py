"""The outputs of one offline run, staged so that they appear together or not at all: :class:`StagedRun` (the
run's staging area and Rerun file) and :class:`SequenceOutputs` (one sequence's videos, table and plots)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from act_interp_ros.offline import outputs as out
from act_interp_ros.offline import plots
from act_interp_ros.offline.options import NO_OUTPUTS, NoActionError, OfflineOptions
from act_interp_ros.offline.records import TickRecord
from act_interp_ros.offline.rerun_ticks import RerunTicks, open_rerun
from act_interp_ros.offline.saved_maps import SavedMaps
from act_interp_ros.offline.summary import TickStats, TickSummary
from act_interp_ros.settings import NodeSettings

__all__ = ["SequenceOutputs", "StagedRun", "write_summary"]


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
        ablate = options.ablate
        self.stats = TickStats(ablation=ablate.label if ablate is not None else None,
                               move=options.move.label if options.move is not None else None, regions=options.regions)
        self.maps = SavedMaps() if options.save_maps else None
        self.videos = None
        if options.write_video:
            from act_interp_ros.offline.videos import ReplayVideos

            self.videos = ReplayVideos(self.dir, table.camera_keys, table.camera_names, frame_sizes, fps,
                                       methods=methods, ablated=ablate.camera if ablate is not None else None,
                                       moved=options.move.camera if options.move is not None else None)

    def on_tick(self, rec: TickRecord) -> None:
        self.stats.add(rec)
        self.table.add(rec)
        if self.maps is not None:
            self.maps.add(rec)
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
        if self.maps is not None:
            self.maps.write(self.dir / out.MAPS_NAME)
            names.append(out.MAPS_NAME)
        if opts.write_table:
            name = out.table_name(opts.table_format)
            self.table.write(self.dir / name, opts.table_format)
            names.append(name)
        if opts.write_plot:
            plots.write_attention_plot(self.table, self.dir / out.PLOT_NAME, title=f"ACT attention over {self.title}")
            names.append(out.PLOT_NAME)
            if self.options.ablate is not None:
                plots.write_ablation_plot(self.table, self.dir / out.ABLATION_PLOT_NAME, self.options.ablate.label,
                                          title=f"Chunk change under --ablate, {self.title} (| = new chunk)")
                names.append(out.ABLATION_PLOT_NAME)
            if self.options.move is not None:
                plots.write_move_plot(self.table, self.dir / out.MOVE_PLOT_NAME, self.options.move.label,
                                      title=f"Chunk change under --move, {self.title} (| = new chunk)")
                names.append(out.MOVE_PLOT_NAME)
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
