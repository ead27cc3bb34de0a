"""What a dataset replay takes and gives: its options (checked, one line each), the run's summary and each
episode's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


from act_interp_ros.offline import options as offline_options
from act_interp_ros.offline.options import OfflineOptions, ReplayError
from act_interp_ros.offline.summary import TickSummary

@dataclass(kw_only=True)
class DatasetReplayOptions(OfflineOptions):
    """How to replay a dataset: the common :class:`~act_interp_ros.offline.options.OfflineOptions` plus:

    Attributes:
        episodes: episode indices to replay, in this order (``None`` = all).
        camera_map: policy camera key -> dataset camera key, for cameras named differently (short names
            such as ``front`` are accepted on both sides).
        video_backend: decoder (``torchcodec`` or ``pyav``); ``None`` = probe (torchcodec, then pyav).
    """

    episodes: Sequence[int] | None = None
    camera_map: Mapping[str, str] | None = None
    video_backend: str | None = None


@dataclass(kw_only=True)
class EpisodeSummary(TickSummary):
    """One episode's ``summary.json``: the common fields (ticks = frames) plus the episode, its task and the
    per-joint error of the predicted against the recorded action (``action_error``, policy units; see
    :func:`act_interp_ros.offline.plots.action_error_stats`)."""

    episode: int
    task: str
    length: int
    duration_s: float
    action_error: dict[str, Any]


@dataclass(kw_only=True)
class DatasetReplaySummary(TickSummary):
    """The run's ``summary.json``: the common fields over all episodes, what was replayed and how, the
    overall per-joint action error, and every episode's summary (``episodes``)."""

    dataset: str
    repo_id: str
    root: str
    policy: str
    out_dir: str
    fps: int
    batch_size: int
    side_every: int
    methods: list[str]
    camera_map: dict[str, str]
    resized: dict[str, str]
    video_backend: str | None
    joint_names: list[str]
    action_error: dict[str, Any]
    episodes: list[dict[str, Any]]


def check_options(options: DatasetReplayOptions) -> None:
    offline_options.check_options(options)
    if options.episodes is not None:
        bad = [e for e in options.episodes if isinstance(e, bool) or not isinstance(e, int) or e < 0]
        if bad:
            raise ReplayError(f"episodes must be indices >= 0, got {', '.join(map(repr, bad))}")
    if options.video_backend not in (None, "torchcodec", "pyav"):
        raise ReplayError(f"video backend must be torchcodec or pyav, got {options.video_backend!r}")
