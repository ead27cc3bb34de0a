"""What every offline replay takes: the common options and their checks, the side/faithfulness schedule, and
the errors of a run that cannot go on (one line each)."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from act_interp_ros.core.ablation import AblationSpec
from act_interp_ros.core.region_move import MoveSpec
from act_interp_ros.offline import outputs as out
from act_interp_ros.offline.regions import RegionSet
from act_interp_ros.pipeline.side_methods import ALL_METHODS
from act_interp_ros.runtime.side_rate import AUTO, MAX_AUTO_RATE_HZ
from act_interp_ros.settings import NodeSettings

__all__ = ["NO_OUTPUTS", "NoActionError", "OfflineOptions", "ReplayError", "TickSchedule", "check_options",
           "check_out_dir", "methods_for", "region_columns_for", "side_every_for"]


class ReplayError(RuntimeError):
    """The replay cannot run on this input (input, policy and configuration disagree); one clear line."""


class NoActionError(ReplayError):
    """No tick of the run computed an action, so the run wrote no output (the command line exits 2)."""


#: How every line about a run without any action ends (such a run commits nothing into the output directory).
NO_OUTPUTS = "no outputs were written"


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
        ablate: edit this region of one camera on every tick and record how much the executed chunk changes
            (:class:`~act_interp_ros.core.ablation.AblationSpec`; ``None`` = no edit).
        move: move this region of one camera on every tick (and by the opposite shift, the control) and record
            whether the executed chunk follows it (:class:`~act_interp_ros.core.region_move.MoveSpec`; ``None`` =
            no move).
        regions: named boxes (``--regions FILE``): per tick and region, each map's mass, density and lift, and the
            chunk's change when the box is ablated (:mod:`~act_interp_ros.offline.regions`; ``None`` = none).
        save_maps: write every map of every tick to ``maps.npz`` per sequence (``--save-maps``).
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
    ablate: AblationSpec | None = None
    move: MoveSpec | None = None
    regions: RegionSet | None = None
    save_maps: bool = False


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
    spec = options.ablate
    if spec is not None:
        if not isinstance(spec, AblationSpec):
            raise ReplayError(f"ablate must be an AblationSpec (AblationSpec.parse_box / parse_top), got {spec!r}")
        if spec.method is not None and spec.method not in ("attention", *ALL_METHODS):
            raise ReplayError(f"--ablate-top '{spec.label}': map '{spec.method}' unknown; expected one of attention, "
                              f"{', '.join(ALL_METHODS)}")
    if options.regions is not None and not isinstance(options.regions, RegionSet):
        raise ReplayError(f"regions must be a RegionSet (RegionSet.load), got {options.regions!r}")
    if options.move is not None and not isinstance(options.move, MoveSpec):
        raise ReplayError(f"move must be a MoveSpec (MoveSpec.parse), got {options.move!r}")


def region_columns_for(options: OfflineOptions, methods: Sequence[str]) -> list[str]:
    """The per-tick table's ``--regions`` columns (attention and each side method; none without regions)."""
    from act_interp_ros.offline.regions import region_columns

    return region_columns(options.regions, ["attention", *methods]) if options.regions is not None else []


def check_out_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ReplayError(f"output path '{out_dir}' exists and is not a directory")


def side_every_for(options: OfflineOptions, settings: NodeSettings, rate_hz: float, methods: Sequence[str],
                   env_state: bool = False) -> int:
    """Side methods (and, for ``env_state`` policies, the env-state sensitivity) every N ticks: the option, else
    ``round(rate / side_rate_hz)`` (0 = never; ``auto``: the live rule's 2 Hz cap, a replay has no real time)."""
    if not methods and not env_state:
        return 0
    if options.side_every is not None:
        return int(options.side_every)
    side_rate = MAX_AUTO_RATE_HZ if settings.side_rate_hz == AUTO else settings.side_rate_hz
    if side_rate <= 0:
        return 0
    return max(1, round(rate_hz / side_rate))


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
