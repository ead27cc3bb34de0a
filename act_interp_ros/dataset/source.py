"""Read LeRobotDataset (v3.0) episodes frame by frame through LeRobot's own ``LeRobotDataset``.

::

    source = LeRobotDatasetSource.open("/data/so101_pick")       # a local root, or "owner/name" (hub)
    source.fps, source.camera_keys, source.episode_lengths          # 30, ('observation.images.front',), {0: 312, ...}
    for frame in source.iter_frames(episode_index=3):               # validated before the first frame
        frame.images["observation.images.front"]                    # (H, W, 3) uint8 RGB
        frame.state, frame.action, frame.timestamp, frame.task

Everything that can be checked is checked before the first frame is yielded (episode index, data file
readable and holding the episode's rows, video files present, first and last frame decodable), so a
caller that stages its outputs writes nothing for a bad dataset. Every failure is a
:class:`~act_interp_ros.dataset.errors.DatasetError` with a one-line message.

Video decoding: the first episode opened probes the decoders in order (``torchcodec``, then ``pyav``) by
decoding one real frame through LeRobot's ``decode_video_frames``; the first that works is used for the
rest of the process (``torchcodec`` imports on machines without FFmpeg's shared libraries but fails at
the first frame, hence the probe). ``video_backend=`` skips the probe.

A local root is never sent to the hub: LeRobot falls back to downloading whenever a file it expects is
missing, so the files it would look for are checked here first.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

from act_interp_ros.core import lerobot_compat
from act_interp_ros.dataset.errors import DatasetError, first_line
from act_interp_ros.dataset.file_checks import check_data_file, check_video_files
from act_interp_ros.dataset.hub import hub_metadata_root
from act_interp_ros.dataset.video_backend import (
    DEFAULT_VIDEO_BACKENDS,
    probe_video_backend,
    quiet_torchvision_video,
)
from act_interp_ros.dataset.episode_reader import (
    DatasetFrame,
    EpisodeReader,
)

logger = logging.getLogger(__name__)

SUPPORTED_MAJOR_VERSION = 3

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class EpisodeInfo:
    """Metadata of one episode: index, number of frames, tasks, duration (s) = length / fps."""

    index: int
    length: int
    tasks: tuple[str, ...]
    duration_s: float


# ---------------------------------------------------------------------------------------- helpers
def image_hw(feature: Mapping[str, Any]) -> tuple[int, int]:
    """(H, W) of a LeRobot image/video feature (shape (H, W, C) by ``names``, or (C, H, W))."""
    shape = tuple(int(s) for s in feature["shape"])
    names = list(feature.get("names") or [])
    if len(shape) != 3:
        raise DatasetError(f"image feature has shape {shape}; expected 3 dimensions (H, W, C)")
    if names[:1] == ["channels"] or (not names and shape[0] in (1, 3, 4) and shape[-1] not in (1, 3, 4)):
        return shape[1], shape[2]
    return shape[0], shape[1]


def format_indices(indices: Sequence[int], limit: int = 12) -> str:
    """``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"`` (at most ``limit`` ranges, then ``...``)."""
    values = sorted(set(int(i) for i in indices))
    if not values:
        return "none"
    ranges: list[str] = []
    start = prev = values[0]
    for v in values[1:] + [None]:  # type: ignore[list-item]
        if v is not None and v == prev + 1:
            prev = v
            continue
        ranges.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(ranges[:limit]) + (", ..." if len(ranges) > limit else "")


# ---------------------------------------------------------------------------------------- source
class LeRobotDatasetSource:
    """A LeRobotDataset v3.0 (local root or hub repo id) read through LeRobot's ``LeRobotDataset``.

    Use :meth:`open` (path or repo id), :meth:`from_root` or :meth:`from_hub`. Construction validates the
    metadata (``meta/info.json``, tasks, episodes); :meth:`open_episode` validates one episode's files
    before any frame is read.

    Attributes:
        root: the dataset directory (for a hub dataset, its local cache).
        repo_id: the hub repo id, or ``local/<directory name>`` for a local root.
        is_hub: whether the files come from the hub (downloaded per episode on first use).
    """

    def __init__(
        self,
        root: Path,
        repo_id: str,
        *,
        is_hub: bool = False,
        video_backend: str | None = None,
        tolerance_s: float = 1e-4,
        backend_candidates: Sequence[str] = DEFAULT_VIDEO_BACKENDS,
    ) -> None:
        self.root = Path(root)
        self.repo_id = repo_id
        self.is_hub = is_hub
        self.tolerance_s = float(tolerance_s)
        self._backend = video_backend
        self._candidates = tuple(backend_candidates)
        self.info = self._load_info()
        self.meta = self._load_metadata()
        self._episodes = self._episode_table()

    # ------------------------------------------------------------------------------ constructors
    @classmethod
    def open(cls, dataset: str | Path, **kwargs: Any) -> LeRobotDatasetSource:
        """Open ``dataset``: an existing directory is a local root; ``owner/name`` is a hub repo id.

        ``kwargs`` go to the constructor (``video_backend``, ``tolerance_s``, ``backend_candidates``).
        """
        path = Path(dataset).expanduser()
        if path.exists():
            return cls.from_root(path, **kwargs)
        text = str(dataset)
        if _REPO_ID.match(text) and not text.startswith((".", "/", "~")):
            return cls.from_hub(text, **kwargs)
        raise DatasetError(
            f"dataset root '{path}' does not exist; expected a LeRobotDataset directory (with meta/info.json) "
            "or a Hugging Face hub repo id 'owner/name'"
        )

    @classmethod
    def from_root(cls, root: str | Path, repo_id: str | None = None, **kwargs: Any) -> LeRobotDatasetSource:
        """A local dataset directory (never downloads anything)."""
        root = Path(root).expanduser()
        if not root.exists():
            raise DatasetError(f"dataset root '{root}' does not exist; expected a LeRobotDataset directory")
        if not root.is_dir():
            raise DatasetError(f"dataset root '{root}' is not a directory; expected a LeRobotDataset directory")
        return cls(root, repo_id or f"local/{root.resolve().name}", **kwargs)

    @classmethod
    def from_hub(cls, repo_id: str, **kwargs: Any) -> LeRobotDatasetSource:
        """A hub dataset: metadata now (from LeRobot's cache when present), episode files on first use.

        Fails with one line when the hub cannot be reached (offline) and the dataset is not cached.
        """
        return cls(hub_metadata_root(repo_id), repo_id, is_hub=True, **kwargs)

    # ------------------------------------------------------------------------------ metadata
    def _load_info(self) -> dict[str, Any]:
        info_path = self.root / "meta" / "info.json"
        if not info_path.is_file():
            raise DatasetError(f"'{self.root}' is not a LeRobotDataset: meta/info.json is missing")
        try:
            info = json.loads(info_path.read_text())
        except (OSError, ValueError) as exc:
            raise DatasetError(f"'{info_path}' is not readable JSON: {first_line(exc)}") from None
        if not isinstance(info, dict) or not isinstance(info.get("features"), dict):
            raise DatasetError(f"'{info_path}' has no 'features'; expected LeRobotDataset metadata")
        version = str(info.get("codebase_version", "?"))
        match = re.match(r"v?(\d+)", version)
        if not match or int(match.group(1)) != SUPPORTED_MAJOR_VERSION:
            raise DatasetError(
                f"'{self.root}' is a LeRobotDataset {version}; this tool reads v3.0 (lerobot 0.4 to 0.6) - "
                "convert it with "
                "python -m lerobot.datasets.v30.convert_dataset_v21_to_v30"
            )
        for key in ("fps", "data_path"):
            if key not in info:
                raise DatasetError(f"'{info_path}' has no '{key}'; expected LeRobotDataset v3.0 metadata")
        return info

    def _load_metadata(self):
        tasks = self.root / "meta" / "tasks.parquet"
        if not tasks.is_file():
            raise DatasetError(f"'{self.root}' is not a complete LeRobotDataset: meta/tasks.parquet is missing")
        if not sorted((self.root / "meta" / "episodes").glob("*/*.parquet")):
            raise DatasetError(f"'{self.root}' is not a complete LeRobotDataset: meta/episodes/ has no parquet file")
        from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

        load_tasks, load_episodes = lerobot_compat.dataset_metadata_readers()

        try:  # read the files LeRobot will read, so that a broken one fails here, not in a hub fallback
            load_tasks(self.root)
            load_episodes(self.root)
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(f"cannot read the metadata of '{self.root}' (meta/): {first_line(exc)}") from None
        try:
            return LeRobotDatasetMetadata(self.repo_id, root=self.root)
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(f"cannot read the metadata of '{self.root}': {first_line(exc)}") from None

    def _episode_table(self) -> dict[int, dict[str, Any]]:
        table: dict[int, dict[str, Any]] = {}
        episodes = self.meta.episodes
        for row in range(len(episodes)):
            ep = episodes[row]
            table[int(ep["episode_index"])] = ep
        if not table:
            raise DatasetError(f"'{self.root}' has no episodes")
        return table

    # ------------------------------------------------------------------------------ properties
    @property
    def fps(self) -> int:
        """Frames per second of the recording."""
        return int(self.info["fps"])

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """LeRobot feature dict: key -> {"dtype", "shape", "names", ...}."""
        return self.info["features"]

    @property
    def camera_keys(self) -> tuple[str, ...]:
        """Keys of the image/video features (``observation.images.<name>``), in the dataset's order."""
        return tuple(k for k, f in self.features.items() if f.get("dtype") in ("image", "video"))

    @property
    def video_keys(self) -> tuple[str, ...]:
        """Cameras stored as video (the others are stored as PNG in the parquet files)."""
        return tuple(k for k, f in self.features.items() if f.get("dtype") == "video")

    @property
    def image_sizes(self) -> dict[str, tuple[int, int]]:
        """Camera key -> (H, W) of its frames."""
        return {k: image_hw(self.features[k]) for k in self.camera_keys}

    @property
    def feature_shapes(self) -> dict[str, tuple[int, ...]]:
        """Feature key -> shape as stored in ``meta/info.json`` (images (H, W, C))."""
        return {k: tuple(int(s) for s in f["shape"]) for k, f in self.features.items()}

    def feature_names(self, key: str) -> list[str]:
        """Per-element names of a vector feature (e.g. ``action`` -> ``['shoulder_pan.pos', ...]``).

        Falls back to ``<key>_<i>`` when the dataset records no names.
        """
        feature = self.features.get(key)
        if feature is None:
            raise DatasetError(f"dataset has no feature '{key}'; it has {', '.join(self.features)}")
        names = feature.get("names")
        if isinstance(names, dict):  # older style: {"motors": [...]}
            names = next(iter(names.values()), None)
        size = int(np.prod(feature["shape"]))
        if isinstance(names, (list, tuple)) and len(names) == size:
            return [str(n) for n in names]
        return [f"{key.rsplit('.', 1)[-1]}_{i}" for i in range(size)]

    @property
    def has_state(self) -> bool:
        return OBS_STATE in self.features

    @property
    def has_env_state(self) -> bool:
        return OBS_ENV_STATE in self.features

    @property
    def has_action(self) -> bool:
        return ACTION in self.features

    @property
    def episode_indices(self) -> tuple[int, ...]:
        """Indices of all episodes, ascending."""
        return tuple(sorted(self._episodes))

    @property
    def episode_lengths(self) -> dict[int, int]:
        """Episode index -> number of frames."""
        return {i: int(self._episodes[i]["length"]) for i in self.episode_indices}

    def episode_info(self, episode_index: int) -> EpisodeInfo:
        """Metadata of one episode (raises :class:`DatasetError` for an unknown index)."""
        ep = self._episode_row(episode_index)
        length = int(ep["length"])
        return EpisodeInfo(int(episode_index), length, tuple(ep.get("tasks") or ()), length / self.fps)

    @property
    def video_backend(self) -> str | None:
        """The decoder in use: given, probed (after the first video episode opened), or ``None`` before."""
        return self._backend

    def __repr__(self) -> str:
        return (f"LeRobotDatasetSource(root='{self.root}', repo_id='{self.repo_id}', fps={self.fps}, "
                f"episodes={len(self._episodes)}, cameras={list(self.camera_keys)})")

    # ------------------------------------------------------------------------------ episodes
    def _episode_row(self, episode_index: int) -> dict[str, Any]:
        try:
            return self._episodes[int(episode_index)]
        except (KeyError, TypeError, ValueError):
            raise DatasetError(
                f"episode {episode_index} does not exist in '{self.root}'; it has episodes "
                f"{format_indices(self.episode_indices)}"
            ) from None

    def select_episodes(self, episodes: Sequence[int] | None = None) -> list[int]:
        """Validate a selection (``None`` = all) and return it in the given order, without duplicates."""
        if episodes is None:
            return list(self.episode_indices)
        chosen: list[int] = []
        missing: list[str] = []
        for e in episodes:
            try:
                idx = int(e)
            except (TypeError, ValueError):
                missing.append(repr(e))
                continue
            if idx not in self._episodes:
                missing.append(str(idx))
            elif idx not in chosen:
                chosen.append(idx)
        if missing:
            raise DatasetError(
                f"episode{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                f"{'do' if len(missing) > 1 else 'does'} not exist in '{self.root}'; it has episodes "
                f"{format_indices(self.episode_indices)}"
            )
        if not chosen:
            raise DatasetError("no episode selected; expected at least one episode index")
        return chosen

    def open_episode(self, episode_index: int) -> EpisodeReader:
        """Validate one episode's files and return its reader (nothing decoded beyond first/last frame)."""
        ep = self._episode_row(episode_index)
        episode_index = int(episode_index)
        length = int(ep["length"])
        dataset = None
        if self.is_hub:  # downloads this episode's files when they are not cached yet
            dataset = self._make_dataset(episode_index, "pyav")
        check_data_file(self, episode_index, ep, length)
        video_files = check_video_files(self, episode_index, ep)
        backend = "pyav"
        if video_files:
            key, path = video_files[0]
            backend = self._backend or probe_video_backend(
                path, float(ep[f"videos/{key}/from_timestamp"]), candidates=self._candidates,
                tolerance_s=self.tolerance_s,
            )
            self._backend = backend
        if dataset is None:
            dataset = self._make_dataset(episode_index, backend)
        dataset.video_backend = backend
        if len(dataset) != length:
            raise DatasetError(
                f"episode {episode_index} of '{self.root}' loads {len(dataset)} frames; meta/episodes says {length}"
            )
        reader = EpisodeReader(self, episode_index, dataset, length)
        reader.frame(0)  # decodes every camera: fails here, before anything is yielded
        if length > 1:
            reader.frame(length - 1)  # a truncated video fails at its end
        return reader

    def iter_frames(self, episode_index: int) -> Iterator[DatasetFrame]:
        """Frames of one episode in order; validation runs now (raises before returning the iterator)."""
        return iter(self.open_episode(episode_index))

    def _make_dataset(self, episode_index: int, backend: str):
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        try:
            with quiet_torchvision_video():
                return LeRobotDataset(
                    self.repo_id, root=self.root, episodes=[episode_index], video_backend=backend,
                    tolerance_s=self.tolerance_s,
                )
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(
                f"cannot load episode {episode_index} of '{self.root}': {first_line(exc)}"
            ) from None
