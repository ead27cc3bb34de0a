"""One validated episode of a LeRobotDataset, frame by frame (:class:`DatasetFrame`: RGB images, state, env
state, action)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_STATE

from act_interp_ros.dataset.errors import DatasetError, first_line
from act_interp_ros.dataset.video_backend import quiet_torchvision_video


if TYPE_CHECKING:
    from act_interp_ros.dataset.source import LeRobotDatasetSource

logger = logging.getLogger(__name__)


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
            with quiet_torchvision_video():
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
                with quiet_torchvision_video():
                    decode_video_frames(path, [ts], src.tolerance_s, self.dataset.video_backend)
            except Exception as exc:  # noqa: BLE001
                return (f"unreadable video '{path}' (camera {key}): cannot decode frame {i} of episode "
                        f"{self.episode_index} at {ts:.3f} s with {self.dataset.video_backend}: {first_line(exc)}")
        return None
