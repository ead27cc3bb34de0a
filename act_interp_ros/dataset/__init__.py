"""ROS-free LeRobotDataset input: read episodes frame by frame, check features against a policy, build
synthetic datasets. See :mod:`act_interp_ros.dataset.source` for the reader and
:mod:`act_interp_ros.dataset.replay` for replaying episodes through a policy (``act_interp_replay --dataset``)."""

from __future__ import annotations

from act_interp_ros.dataset.errors import DatasetError
from act_interp_ros.dataset.features import FeatureMatch, check_policy_features
from act_interp_ros.dataset.source import (
    DEFAULT_VIDEO_BACKENDS,
    DatasetFrame,
    EpisodeInfo,
    EpisodeReader,
    LeRobotDatasetSource,
    format_indices,
    probe_video_backend,
)

__all__ = [
    "DEFAULT_VIDEO_BACKENDS",
    "DatasetError",
    "DatasetFrame",
    "EpisodeInfo",
    "EpisodeReader",
    "FeatureMatch",
    "LeRobotDatasetSource",
    "check_policy_features",
    "format_indices",
    "probe_video_backend",
]
