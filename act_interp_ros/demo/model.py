"""The demo's model: the cached known-answer ACT (or a user's ``--policy``) and its summary numbers."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

from act_interp_ros.demo.errors import DemoError

logger = logging.getLogger(__name__)


def ensure_model(policy: Path | None, rebuild: bool, progress: bool) -> dict[str, Any]:
    """The known-answer model (or ``policy``): {"path", "key", "built_now", "metrics"}."""
    if policy is not None:
        if not (policy / "config.json").is_file():
            raise DemoError(f"--policy {policy}: not a LeRobot pretrained_model directory (no config.json)")
        return {"path": policy.resolve(), "key": None, "built_now": False, "metrics": {}}
    from act_interp_ros.proofs import known_answer

    if rebuild:
        old = known_answer.cache_root() / known_answer.cache_key()
        if old.exists():
            logger.info("--rebuild: removing the cached model %s", old)
            shutil.rmtree(old)
    model = known_answer.ensure_known_answer_model(progress=progress)
    return {"path": model.path, "key": model.key, "built_now": model.built, "metrics": model.metrics}


def model_summary(model: dict[str, Any]) -> dict[str, Any]:
    m = model["metrics"] or {}
    err = m.get("held_out_action_error") or {}
    out: dict[str, Any] = {"path": str(model["path"]), "key": model["key"], "built_now": model["built_now"]}
    chunk = err.get("chunk") or {}  # error over the whole predicted chunk (metrics.json of known_answer)
    if chunk:
        out["held_out_action_mae"] = {
            "model": chunk.get("model", {}).get("overall"),
            "mean_action_baseline": chunk.get("mean_action_baseline", {}).get("overall"),
            "hold_state_baseline": chunk.get("hold_state_baseline", {}).get("overall"),
            "ratio_to_mean_baseline": chunk.get("model_to_mean_baseline"),
            "n_frames": err.get("n_frames"),
            "units": "policy units (deg; gripper 0..100), over the predicted chunk",
        }
    if m.get("seconds"):
        out["build_seconds"] = m["seconds"]
    return out
