"""Before an episode is read: its data and video files exist and hold what the metadata says (one line if not)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from act_interp_ros.dataset.errors import DatasetError, first_line

if TYPE_CHECKING:
    from act_interp_ros.dataset.source import LeRobotDatasetSource

__all__ = ["check_data_file", "check_video_files"]


def check_data_file(source: LeRobotDatasetSource, episode_index: int, ep: Mapping[str, Any], length: int) -> None:
    """The episode's parquet file exists, has every feature column and exactly its ``length`` frames."""
    import pyarrow.parquet as pq

    rel = str(source.info["data_path"]).format(
        chunk_index=int(ep["data/chunk_index"]), file_index=int(ep["data/file_index"])
    )
    path = source.root / rel
    if not path.is_file():
        raise DatasetError(f"data file '{path}' of episode {episode_index} is missing")
    needed = ["episode_index", "frame_index", "timestamp", "index", "task_index"]
    needed += [k for k, f in source.features.items() if f.get("dtype") != "video" and k not in needed]
    try:
        schema_names = set(pq.read_schema(path).names)
        absent = [c for c in needed if c not in schema_names]
        if absent:
            raise DatasetError(
                f"data file '{path}' has no column{'s' if len(absent) > 1 else ''} {', '.join(absent)}; "
                "meta/info.json lists them as features"
            )
        table = pq.read_table(path, columns=["episode_index", "frame_index"],
                              filters=[("episode_index", "==", episode_index)])
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for corrupt files
        raise DatasetError(f"corrupt data file '{path}': {first_line(exc)}") from None
    frames = np.sort(np.asarray(table.column("frame_index").to_numpy(), dtype=np.int64))
    if len(frames) != length or not np.array_equal(frames, np.arange(length)):
        raise DatasetError(
            f"data file '{path}' holds {len(frames)} frames of episode {episode_index} "
            f"(frame_index 0..{length - 1} expected, meta/episodes says {length} frames)"
        )


def check_video_files(source: LeRobotDatasetSource, episode_index: int, ep: Mapping[str, Any]) -> list[tuple[str, Path]]:
    """(camera key, path) of the episode's video files, each present."""
    files: list[tuple[str, Path]] = []
    video_path = source.info.get("video_path")
    for key in source.video_keys:
        try:
            rel = str(video_path).format(
                video_key=key, chunk_index=int(ep[f"videos/{key}/chunk_index"]),
                file_index=int(ep[f"videos/{key}/file_index"]),
            )
        except (KeyError, TypeError, ValueError):
            raise DatasetError(
                f"meta/episodes of '{source.root}' has no video location for camera {key} in episode {episode_index}"
            ) from None
        path = source.root / rel
        if not path.is_file():
            raise DatasetError(f"video file '{path}' of camera {key}, episode {episode_index} is missing")
        files.append((key, path))
    return files
