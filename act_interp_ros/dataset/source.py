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
import os
import re
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

from act_interp_ros.core import lerobot_compat
from act_interp_ros.dataset.errors import DatasetError, first_line

logger = logging.getLogger(__name__)

#: Decoder candidates, in the order the probe tries them.
DEFAULT_VIDEO_BACKENDS: tuple[str, ...] = ("torchcodec", "pyav")
SUPPORTED_MAJOR_VERSION = 3

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_PROBED_BACKENDS: dict[tuple[str, ...], str] = {}
_TORCHVISION_VIDEO_WARNING = r".*video decoding and encoding capabilities of torchvision are deprecated.*"


# ---------------------------------------------------------------------------------------- records
@dataclass(frozen=True)
class DatasetFrame:
    """One frame of an episode, as recorded.

    Attributes:
        episode_index: episode the frame belongs to.
        frame_index: 0-based index within the episode (frames come in this order, without gaps).
        index: index of the frame in the whole dataset.
        timestamp: seconds since the episode start, as recorded (``frame_index / fps`` for LeRobot recordings).
        images: dataset camera key (``observation.images.<name>``) -> (H, W, 3) uint8 RGB, at the
            dataset's own size.
        state: (S,) float32 ``observation.state`` (SO-101: joint positions, degrees, gripper 0..100), or
            ``None`` when the dataset has none.
        env_state: (E,) float32 ``observation.environment_state`` or ``None`` when absent.
        action: (A,) float32 recorded ``action`` (same units as the state for SO-101), or ``None``.
        task: the frame's task string.
    """

    episode_index: int
    frame_index: int
    index: int
    timestamp: float
    images: dict[str, np.ndarray]
    state: np.ndarray | None
    env_state: np.ndarray | None
    action: np.ndarray | None
    task: str


@dataclass(frozen=True)
class EpisodeInfo:
    """Metadata of one episode: index, number of frames, tasks, duration (s) = length / fps."""

    index: int
    length: int
    tasks: tuple[str, ...]
    duration_s: float


# ---------------------------------------------------------------------------------------- decoder
@contextmanager
def _quiet_torchvision_video() -> Iterator[None]:
    """Silence torchvision's deprecation warning for its video reader (LeRobot's pyav path uses it)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_TORCHVISION_VIDEO_WARNING, category=UserWarning)
        yield


def probe_video_backend(
    video_path: str | Path,
    timestamp: float = 0.0,
    *,
    candidates: Sequence[str] = DEFAULT_VIDEO_BACKENDS,
    tolerance_s: float = 1e-4,
    use_cache: bool = True,
) -> str:
    """Return the first backend in ``candidates`` that decodes the frame at ``timestamp`` of ``video_path``.

    Each candidate decodes one frame through LeRobot's ``decode_video_frames``; a failure is logged
    (one line: backend and reason) and the next candidate is tried. With ``use_cache`` the result is
    remembered per candidate list for the rest of the process, so the probe runs once.

    Raises:
        DatasetError: no candidate could decode the frame (the video is unreadable or no decoder works).
    """
    key = tuple(candidates)
    if use_cache and key in _PROBED_BACKENDS:
        return _PROBED_BACKENDS[key]
    from lerobot.datasets.video_utils import decode_video_frames

    failures: list[str] = []
    for backend in candidates:
        try:
            with _quiet_torchvision_video():
                frames = decode_video_frames(video_path, [float(timestamp)], tolerance_s, backend)
            if frames.ndim != 4 or frames.shape[0] != 1:
                raise RuntimeError(f"decoded {tuple(frames.shape)}, expected (1, C, H, W)")
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "try the next one"
            reason = first_line(exc)
            failures.append(f"{backend}: {reason}")
            logger.info("video decoder '%s' cannot decode '%s' (%s); trying the next one", backend, video_path, reason)
            continue
        if failures:
            logger.info("video decoder: using '%s' (%s)", backend, "; ".join(failures))
        else:
            logger.info("video decoder: using '%s'", backend)
        if use_cache:
            _PROBED_BACKENDS[key] = backend
        return backend
    raise DatasetError(f"cannot decode video '{video_path}' with any decoder ({'; '.join(failures)})")


def clear_backend_cache() -> None:
    """Forget probed decoders (tests)."""
    _PROBED_BACKENDS.clear()


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


def _to_rgb_uint8(chw: Any) -> np.ndarray:
    """(C, H, W) float tensor in [0, 1] (LeRobot's image format) -> (H, W, 3) uint8 RGB numpy."""
    arr = chw.detach().cpu().numpy() if hasattr(chw, "detach") else np.asarray(chw)
    if arr.ndim != 3:
        raise ValueError(f"image has shape {arr.shape}; expected (C, H, W)")
    u8 = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if u8.shape[2] == 1:
        u8 = np.repeat(u8, 3, axis=2)
    elif u8.shape[2] == 4:
        u8 = u8[:, :, :3]
    return np.ascontiguousarray(u8)


def _vector(item: Mapping[str, Any], key: str) -> np.ndarray | None:
    if key not in item:
        return None
    value = item[key]
    arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
    return np.asarray(arr, dtype=np.float32).reshape(-1)


def _hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # noqa: BLE001
        return False


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
        from lerobot.utils.constants import HF_LEROBOT_HOME

        cache = Path(HF_LEROBOT_HOME) / repo_id
        if not (cache / "meta" / "info.json").is_file():
            if _hub_offline():
                raise DatasetError(
                    f"'{repo_id}' is not a local directory, and as a hub dataset it is not cached ({cache}) "
                    "while the Hugging Face hub is offline (HF_HUB_OFFLINE); pass a local dataset root"
                )
            existed = cache.exists()
            try:
                from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

                LeRobotDatasetMetadata(repo_id)
            except Exception as exc:  # noqa: BLE001 - network/hub errors of all kinds
                if not existed:
                    _remove_empty_tree(cache)
                raise DatasetError(
                    f"'{repo_id}' is not a local directory, and the hub dataset could not be fetched: {first_line(exc)}"
                ) from None
        return cls(cache, repo_id, is_hub=True, **kwargs)

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
        self._check_data_file(episode_index, ep, length)
        video_files = self._check_video_files(episode_index, ep)
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
            with _quiet_torchvision_video():
                return LeRobotDataset(
                    self.repo_id, root=self.root, episodes=[episode_index], video_backend=backend,
                    tolerance_s=self.tolerance_s,
                )
        except Exception as exc:  # noqa: BLE001
            raise DatasetError(
                f"cannot load episode {episode_index} of '{self.root}': {first_line(exc)}"
            ) from None

    def _check_data_file(self, episode_index: int, ep: Mapping[str, Any], length: int) -> None:
        import pyarrow.parquet as pq

        rel = str(self.info["data_path"]).format(
            chunk_index=int(ep["data/chunk_index"]), file_index=int(ep["data/file_index"])
        )
        path = self.root / rel
        if not path.is_file():
            raise DatasetError(f"data file '{path}' of episode {episode_index} is missing")
        needed = ["episode_index", "frame_index", "timestamp", "index", "task_index"]
        needed += [k for k, f in self.features.items() if f.get("dtype") != "video" and k not in needed]
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

    def _check_video_files(self, episode_index: int, ep: Mapping[str, Any]) -> list[tuple[str, Path]]:
        files: list[tuple[str, Path]] = []
        video_path = self.info.get("video_path")
        for key in self.video_keys:
            try:
                rel = str(video_path).format(
                    video_key=key, chunk_index=int(ep[f"videos/{key}/chunk_index"]),
                    file_index=int(ep[f"videos/{key}/file_index"]),
                )
            except (KeyError, TypeError, ValueError):
                raise DatasetError(
                    f"meta/episodes of '{self.root}' has no video location for camera {key} in episode {episode_index}"
                ) from None
            path = self.root / rel
            if not path.is_file():
                raise DatasetError(f"video file '{path}' of camera {key}, episode {episode_index} is missing")
            files.append((key, path))
        return files


class EpisodeReader:
    """A validated episode: ``len(reader)`` frames; iterate (or :meth:`frame`) for :class:`DatasetFrame`."""

    def __init__(self, source: LeRobotDatasetSource, episode_index: int, dataset, length: int) -> None:
        self.source = source
        self.episode_index = episode_index
        self.dataset = dataset
        self.length = length
        self._cameras = source.camera_keys
        self._task_names = None

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[DatasetFrame]:
        for i in range(self.length):
            yield self.frame(i)

    def frame(self, i: int) -> DatasetFrame:
        """Frame ``i`` (0-based within the episode) through ``LeRobotDataset.__getitem__``."""
        if not 0 <= i < self.length:
            raise IndexError(f"frame {i} is outside episode {self.episode_index} (0..{self.length - 1})")
        try:
            with _quiet_torchvision_video():
                item = self.dataset[i]
        except Exception as exc:  # noqa: BLE001 - decoder / parquet / image errors
            culprit = self._failing_video(i)
            if culprit is not None:
                raise DatasetError(culprit) from None
            raise DatasetError(
                f"cannot read frame {i} of episode {self.episode_index} in '{self.source.root}': {first_line(exc)}"
            ) from None
        ep = int(item["episode_index"])
        fi = int(item["frame_index"])
        if ep != self.episode_index or fi != i:
            raise DatasetError(
                f"row {i} of episode {self.episode_index} in '{self.source.root}' is frame {fi} of episode {ep}; "
                "expected frames in order"
            )
        try:
            images = {k: _to_rgb_uint8(item[k]) for k in self._cameras}
        except (KeyError, ValueError) as exc:
            raise DatasetError(
                f"frame {i} of episode {self.episode_index} in '{self.source.root}' has no usable image: "
                f"{first_line(exc)}"
            ) from None
        return DatasetFrame(
            episode_index=ep,
            frame_index=fi,
            index=int(item["index"]),
            timestamp=float(item["timestamp"]),
            images=images,
            state=_vector(item, OBS_STATE),
            env_state=_vector(item, OBS_ENV_STATE),
            action=_vector(item, ACTION),
            task=str(item.get("task", "")),
        )

    def _failing_video(self, i: int) -> str | None:
        """After a failed read: decode frame ``i`` of each camera video alone; describe the first that fails."""
        from lerobot.datasets.video_utils import decode_video_frames

        src = self.source
        ep = src._episode_row(self.episode_index)
        for key in src.video_keys:
            try:
                path = src.root / str(src.info["video_path"]).format(
                    video_key=key, chunk_index=int(ep[f"videos/{key}/chunk_index"]),
                    file_index=int(ep[f"videos/{key}/file_index"]),
                )
                ts = float(ep[f"videos/{key}/from_timestamp"]) + i / src.fps
            except Exception:  # noqa: BLE001
                return None
            try:
                with _quiet_torchvision_video():
                    decode_video_frames(path, [ts], src.tolerance_s, self.dataset.video_backend)
            except Exception as exc:  # noqa: BLE001
                return (f"unreadable video '{path}' (camera {key}): cannot decode frame {i} of episode "
                        f"{self.episode_index} at {ts:.3f} s with {self.dataset.video_backend}: {first_line(exc)}")
        return None


def _remove_empty_tree(path: Path) -> None:
    """Remove ``path`` and its parents up to the first non-empty one (what a failed hub fetch left)."""
    try:
        for sub in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if sub.is_dir():
                sub.rmdir()
        path.rmdir()
        path.parent.rmdir()
    except OSError:
        pass
