"""What a bag replay takes and gives: its options (checked, one line each), its summary, and the lines that
explain a run in which no tick could act."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass


from act_interp_ros.bag.replay.plan import CLOCKS
from act_interp_ros.offline import options as offline_options
from act_interp_ros.offline.options import OfflineOptions, ReplayError
from act_interp_ros.offline.summary import TickSummary
from act_interp_ros.settings import DEFAULT_NODE_NAME

@dataclass(kw_only=True)
class ReplayOptions(OfflineOptions):
    """How to replay a bag: the common :class:`~act_interp_ros.offline.options.OfflineOptions` (batch size,
    methods, side schedule, faithfulness samples, outputs, device, progress, Rerun) plus:

    Attributes:
        start_s, end_s: replay only [start, end] seconds after the first camera/joint-state message.
        rate_hz: tick rate; ``None`` = the config's ``control_rate_hz``.
        tick_times_ns: explicit tick times on the clock axis instead of the regular grid (e.g. the live
            node's, from its ``~/tick_status``).
        clock: ``"log"`` (default) or ``"header"``; see :mod:`.plan`.
        write_bag: write the output bag.
        node_name: namespace of the output topics in the output bag.
    """

    start_s: float | None = None
    end_s: float | None = None
    rate_hz: float | None = None
    tick_times_ns: Sequence[int] | None = None
    clock: str = "log"
    write_bag: bool = True
    node_name: str = "/" + DEFAULT_NODE_NAME


@dataclass(kw_only=True)
class ReplaySummary(TickSummary):
    """What a bag replay did; ``to_dict()`` is what ``summary.json`` holds (the common fields of
    :class:`~act_interp_ros.offline.summary.TickSummary` plus the bag's)."""

    bag: str
    policy: str
    out_dir: str
    clock: str
    rate_hz: float
    batch_size: int
    side_every: int
    start_ns: int
    end_ns: int
    methods: list[str]
    input_topics: dict[str, str]
    output_topics: dict[str, str]
    output_counts: dict[str, int]


def no_action_hint(kinds: Collection[str]) -> str:
    """What to try, after the reasons, when no tick computed an action (``kinds``: the skip kinds seen)."""
    if set(kinds) == {"future"}:
        return ("; every input was stamped in the future of the bag's log time: the stamps come from another "
                "clock, replay with --clock header")
    return ""


def zero_stamp_problem(zero: Sequence[str], stamped: Sequence[str], clock: str) -> str | None:
    """One line when some topics' header stamps are all 0 (``zero``, of the ``stamped`` topics), else None.

    The freshness gate skips an input stamped 0 (``unstamped``), live and offline, so no tick of such a bag
    can compute an action on either clock; ``--clock header`` has no time axis when every stamp is 0.
    """
    if not zero:
        return None
    if set(zero) == set(stamped):
        text = f"every header stamp in the bag is 0 ({', '.join(zero)}): the publisher does not stamp its messages"
        if clock == "header":
            text += "; --clock header has no time to tick on, use --clock log (ticks on the recorder's log times)"
    else:
        text = (f"the header stamps of {', '.join(zero)} are all 0: the publisher of "
                f"{'this topic' if len(zero) == 1 else 'these topics'} does not stamp its messages")
    return (f"{text}; the freshness gate skips inputs stamped 0 (unstamped) on either clock, like the node, so no "
            f"tick can compute an action until the publisher stamps them (header.stamp = when the data was taken); "
            f"{offline_options.NO_OUTPUTS}")


def check_options(options: ReplayOptions) -> None:
    offline_options.check_options(options)
    if options.clock not in CLOCKS:
        raise ReplayError(f"clock must be one of {', '.join(CLOCKS)}, got {options.clock!r}")
    if options.rate_hz is not None and not (math.isfinite(options.rate_hz) and options.rate_hz > 0):
        raise ReplayError(f"rate must be a finite number of Hz > 0, got {options.rate_hz!r}")
    for name in ("start_s", "end_s"):
        v = getattr(options, name)
        if v is not None and not (math.isfinite(v) and v >= 0):
            raise ReplayError(f"--{name[:-2]} must be a number of seconds >= 0, got {v!r}")
    if options.start_s is not None and options.end_s is not None and options.end_s <= options.start_s:
        raise ReplayError(f"--end ({options.end_s} s) must be after --start ({options.start_s} s)")
