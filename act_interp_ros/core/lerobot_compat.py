"""Every difference between the supported LeRobot releases (0.4.4 to 0.6.x), in one place.

The rest of the package imports LeRobot's stable API (``ACTPolicy``, ``make_pre_post_processors``,
``PolicyFeature``, ...) directly; what moved or changed between releases goes through this module:

* ``config.json``: a newer LeRobot writes fields an older one does not know (0.6 added
  ``pretrained_revision``). :func:`read_act_config` drops the ones that cannot change the model (one INFO
  line naming them) and refuses any other unknown field with one line: which field, which LeRobot wrote it,
  which to install.
* Dataset metadata readers: ``lerobot.datasets.utils`` (0.4) -> ``lerobot.datasets.io_utils`` (0.6).
* ``LeRobotDataset.create``: ``vcodec=`` (0.4) -> ``rgb_encoder=RGBEncoderConfig(vcodec=...)`` (0.6).

The processor files (``policy_preprocessor.json``, ``policy_postprocessor.json`` and their safetensors)
are written identically by 0.4.4, 0.5.1 and 0.6.1 (test/fixtures/lerobot_versions/), so they need no
translation; the ACT model itself is the same in all of them.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import inspect
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

from packaging.version import Version

logger = logging.getLogger(__name__)

#: The releases this package is tested with (setup.py allows ``>=MIN,<CAP``).
MIN_VERSION = (0, 4, 4)
CAP_VERSION = (0, 7)
TESTED_VERSIONS = ("0.4.4", "0.5.1", "0.6.1")

#: ``config.json`` fields added by a newer LeRobot that cannot change the model's actions:
#: field -> (first LeRobot that writes it, why it is safe to drop).
NEUTRAL_NEW_FIELDS: dict[str, tuple[str, str]] = {
    "pretrained_revision": ("0.6", "the Hub revision it was downloaded from; this checkpoint is read locally"),
}


class LeRobotCompatError(RuntimeError):
    """A checkpoint or dataset needs a LeRobot other than the installed one; the message says which."""


def lerobot_version() -> str:
    """The installed LeRobot's version string (``"0.6.1"``)."""
    return importlib.metadata.version("lerobot")


def is_supported(version: str | None = None) -> bool:
    """Whether ``version`` (default: the installed LeRobot) is in the tested range."""
    v = Version(version or lerobot_version()).release
    return MIN_VERSION <= v < CAP_VERSION


# --------------------------------------------------------------------------------------- policy config
def _act_config_fields() -> set[str]:
    from lerobot.policies.act.configuration_act import ACTConfig

    return {f.name for f in dataclasses.fields(ACTConfig)}


def config_fields_to_drop(raw: dict[str, Any]) -> list[str]:
    """The fields of a ``config.json`` dict that the installed LeRobot does not know and that are safe to drop.

    Raises:
        LeRobotCompatError: a field the installed LeRobot does not know and whose effect on the model is
            unknown (one line: the field, which LeRobot wrote it, which to install).
    """
    known = _act_config_fields()
    unknown = sorted(k for k in raw if k != "type" and k not in known)
    refused = [k for k in unknown if k not in NEUTRAL_NEW_FIELDS]
    if refused:
        installed = lerobot_version()
        newest = TESTED_VERSIONS[-1]
        writer = ("a LeRobot newer than the installed " + installed
                  if Version(installed) < Version(newest) else "a LeRobot newer than " + newest)
        raise LeRobotCompatError(
            f"config.json field(s) {', '.join(refused)} were written by {writer} and cannot be honoured by LeRobot "
            f"{installed}; install the LeRobot that trained the policy (lerobot=={newest} needs Python >= 3.12), "
            f"or re-save the checkpoint with lerobot {installed}")
    return unknown


def read_act_config(path: str | Path):
    """Parse ``path/config.json`` with the installed LeRobot, whichever supported LeRobot wrote it.

    Returns:
        the ``PreTrainedConfig`` subclass LeRobot builds (``ACTConfig`` for an ACT checkpoint).
    Raises:
        LeRobotCompatError: a field the installed LeRobot cannot honour.
        Exception: whatever LeRobot's own parser raises for a malformed file.
    """
    from lerobot.configs.policies import PreTrainedConfig

    path = Path(path)
    raw = json.loads((path / "config.json").read_text())
    drop = config_fields_to_drop(raw) if raw.get("type") == "act" else []
    if not drop:
        return PreTrainedConfig.from_pretrained(str(path))
    logger.info("config.json: dropped %s (written by LeRobot >= %s; no effect on the model's actions under "
                "LeRobot %s)", ", ".join(drop), min(NEUTRAL_NEW_FIELDS[k][0] for k in drop), lerobot_version())
    with tempfile.TemporaryDirectory(prefix="act_interp_config_") as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps({k: v for k, v in raw.items() if k not in drop}))
        return PreTrainedConfig.from_pretrained(tmp)


# --------------------------------------------------------------------------------------------- datasets
def dataset_metadata_readers() -> tuple[Callable[[Path], Any], Callable[[Path], Any]]:
    """``(load_tasks, load_episodes)``: LeRobot's readers of ``meta/tasks.parquet`` and ``meta/episodes/``."""
    try:
        from lerobot.datasets.io_utils import load_episodes, load_tasks  # 0.6
    except ImportError:
        from lerobot.datasets.utils import load_episodes, load_tasks  # 0.4
    return load_tasks, load_episodes


def create_dataset(repo_id: str, fps: int, features: dict, *, root: Path, robot_type: str, use_videos: bool,
                   vcodec: str):
    """``LeRobotDataset.create`` with the video codec passed the way the installed LeRobot takes it."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    params = inspect.signature(LeRobotDataset.create).parameters
    kwargs: dict[str, Any] = {}
    if "vcodec" in params:
        kwargs["vcodec"] = vcodec
    elif "rgb_encoder" in params:
        from lerobot.configs import RGBEncoderConfig

        kwargs["rgb_encoder"] = RGBEncoderConfig(vcodec=vcodec)
    else:
        raise LeRobotCompatError(f"LeRobot {lerobot_version()}'s LeRobotDataset.create takes neither vcodec nor "
                                 f"rgb_encoder; supported: lerobot {TESTED_VERSIONS}")
    return LeRobotDataset.create(repo_id, int(fps), features, root=root, robot_type=robot_type,
                                 use_videos=use_videos, **kwargs)
