"""Which video decoder reads this dataset's videos: probed once per process (torchcodec, then pyav)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from act_interp_ros.dataset.errors import DatasetError, first_line

logger = logging.getLogger(__name__)

#: Decoder candidates, in the order the probe tries them.
DEFAULT_VIDEO_BACKENDS: tuple[str, ...] = ("torchcodec", "pyav")
_PROBED_BACKENDS: dict[tuple[str, ...], str] = {}
_TORCHVISION_VIDEO_WARNING = r".*video decoding and encoding capabilities of torchvision are deprecated.*"


# ---------------------------------------------------------------------------------------- decoder
@contextmanager
def quiet_torchvision_video() -> Iterator[None]:
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
            with quiet_torchvision_video():
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
