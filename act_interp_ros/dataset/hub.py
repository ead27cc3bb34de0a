"""Hub datasets: the metadata from LeRobot's cache when present, else fetched once; one line when offline."""

from __future__ import annotations

import os
from pathlib import Path

from act_interp_ros.dataset.errors import DatasetError, first_line

__all__ = ["hub_metadata_root"]


def hub_metadata_root(repo_id: str) -> Path:
    """LeRobot's cache directory of hub dataset ``repo_id``, with its metadata (fetched when not cached).

    Raises DatasetError (one line) when it is not cached and the hub is offline or cannot be reached.
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
    return cache


def _hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # noqa: BLE001
        return False


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
