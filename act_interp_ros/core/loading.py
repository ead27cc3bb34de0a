"""Load a LeRobot ACT checkpoint (policy + pre/post-processors) with the installed LeRobot's own API.

Checkpoints written by any supported LeRobot (0.4.4 to 0.6.x) load under any supported LeRobot; the
differences between releases live in :mod:`act_interp_ros.core.lerobot_compat`.

A checkpoint is the ``pretrained_model/`` directory that ``lerobot-train`` writes::

    config.json                       policy config ("type": "act")
    model.safetensors                 weights
    policy_preprocessor.json (+ .safetensors)   rename, batch, device, normalise
    policy_postprocessor.json (+ .safetensors)  unnormalise, to CPU

A Hugging Face Hub repo id is accepted too; it only works with network access.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from act_interp_ros.core import lerobot_compat

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.safetensors")
PROCESSOR_FILES = ("policy_preprocessor.json", "policy_postprocessor.json")


class PolicyLoadError(RuntimeError):
    """A checkpoint could not be loaded; the message says what was wrong and what was expected."""


@dataclass
class LoadedPolicy:
    """An ACT policy with the processors it was trained with.

    Attributes:
        policy: ``lerobot.policies.act.modeling_act.ACTPolicy`` in eval mode on ``device``.
        preprocessor: raw observation dict -> normalised batch on ``device`` (adds the batch dim).
        postprocessor: normalised (B, action_dim) action -> action in dataset units on the CPU.
        source: the path or repo id it came from.
        device: torch device string.
    """

    policy: Any
    preprocessor: Any
    postprocessor: Any
    source: str
    device: str


def _check_local_dir(path: Path) -> None:
    if not path.exists():
        raise PolicyLoadError(
            f"policy path '{path}' does not exist; expected a LeRobot checkpoint directory "
            "(e.g. outputs/train/<run>/checkpoints/last/pretrained_model) or a Hub repo id"
        )
    if not path.is_dir():
        raise PolicyLoadError(f"policy path '{path}' is a file; expected the pretrained_model/ directory")
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        if (path / "pretrained_model").is_dir():
            hint = f"; did you mean '{path / 'pretrained_model'}'?"
        else:
            hint = ""
        raise PolicyLoadError(
            f"policy path '{path}' is missing {', '.join(missing)}; expected a LeRobot pretrained_model/ "
            f"directory with {', '.join(REQUIRED_FILES + PROCESSOR_FILES)}{hint}"
        )
    for name in (*REQUIRED_FILES, *PROCESSOR_FILES):
        file = path / name
        if file.is_file() and not os.access(file, os.R_OK):
            raise PolicyLoadError(f"cannot read '{file}': permission denied (the file exists but this user may not "
                                  "read it; check its owner and mode, e.g. chmod a+r)")
    try:
        policy_type = json.loads((path / "config.json").read_text()).get("type")
    except (OSError, ValueError) as exc:
        raise PolicyLoadError(f"cannot read '{path / 'config.json'}': {exc}") from exc
    if policy_type != "act":
        raise PolicyLoadError(
            f"'{path}' holds a '{policy_type}' policy; act_interp_ros needs an ACT policy (config.json "
            "\"type\": \"act\")"
        )
    missing = [name for name in PROCESSOR_FILES if not (path / name).is_file()]
    if missing:
        raise PolicyLoadError(
            f"'{path}' has no {', '.join(missing)}: the normalisation processors are missing. Checkpoints "
            "written by lerobot>=0.4 include them; for an older checkpoint run LeRobot's processor "
            "migration (lerobot/processor/migrate_policy_normalization.py) first"
        )


def load_act_policy(path_or_repo_id: str | os.PathLike[str], device: str | None = None) -> LoadedPolicy:
    """Load an ACT policy and its processors.

    Args:
        path_or_repo_id: a local ``pretrained_model/`` directory or a Hub repo id (``user/name``).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``; ``None`` keeps the checkpoint's device
            when available, else CPU.
    Raises:
        PolicyLoadError: missing path, missing file, not an ACT policy, processors missing, device not
            available, or a Hub id that cannot be fetched (offline).
    """
    import torch
    from lerobot.configs.policies import PreTrainedConfig
    from lerobot.policies.act.configuration_act import ACTConfig
    from lerobot.policies.act.modeling_act import ACTPolicy
    from lerobot.policies.factory import make_pre_post_processors

    source = os.fspath(path_or_repo_id)
    if not source:
        raise PolicyLoadError("policy path is empty; expected a LeRobot pretrained_model/ directory or repo id")
    local = Path(source).expanduser()
    is_local = local.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1
    if is_local:
        _check_local_dir(local)
        source = str(local)
    try:
        config = lerobot_compat.read_act_config(source) if is_local else PreTrainedConfig.from_pretrained(source)
    except lerobot_compat.LeRobotCompatError as exc:
        raise PolicyLoadError(f"'{source}': {exc}") from None
    except Exception as exc:  # noqa: BLE001 - hub/network/parse errors all become one clear message
        if is_local:
            raise PolicyLoadError(f"cannot parse the policy config in '{source}': {exc}") from exc
        raise PolicyLoadError(
            f"could not fetch policy '{source}' from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            "Loading a repo id needs network access; offline, pass a local pretrained_model/ directory"
        ) from exc
    if not isinstance(config, ACTConfig):
        raise PolicyLoadError(f"'{source}' holds a '{config.type}' policy; act_interp_ros needs an ACT policy")

    if device is None:
        device = config.device if config.device else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            device = "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PolicyLoadError(f"device '{device}' requested but CUDA is not available; use device:=cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise PolicyLoadError("device 'mps' requested but MPS is not available; use device:=cpu")
    config.device = device

    try:
        policy = ACTPolicy.from_pretrained(source, config=config)
    except Exception as exc:  # noqa: BLE001
        raise PolicyLoadError(f"could not load the ACT weights from '{source}': {exc}") from exc
    policy.to(device)
    policy.eval()
    try:
        pre, post = make_pre_post_processors(
            config,
            pretrained_path=source,
            preprocessor_overrides={
                "device_processor": {"device": device},
                "normalizer_processor": {"device": device},
            },
        )
    except Exception as exc:  # noqa: BLE001
        raise PolicyLoadError(f"could not load the policy processors from '{source}': {exc}") from exc
    logger.info("loaded ACT policy from %s on %s", source, device)
    return LoadedPolicy(policy=policy, preprocessor=pre, postprocessor=post, source=source, device=device)
