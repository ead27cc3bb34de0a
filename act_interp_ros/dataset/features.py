"""Check a dataset's features against an ACT policy config (LeRobot ``ACTConfig``).

The policy needs, by key: every camera of ``config.image_features`` (3, H, W), ``observation.state`` when
``config.robot_state_feature`` is set, ``observation.environment_state`` when ``config.env_state_feature``
is set, and ``action`` (recorded actions are compared with the predicted ones). A dataset camera may be
fed to a policy camera of another name through ``camera_map`` (policy key -> dataset key).

Two kinds of difference are reported separately:

* **mismatches** (missing feature, wrong vector length, a camera that is not an image, a mapped camera
  that does not exist): the dataset cannot be used -> :class:`DatasetError`, one line listing them all;
* **size differences** (a camera of another H x W): usable when the caller resizes -> reported in
  :attr:`FeatureMatch.resize` (and logged); an error only with ``allow_resize=False``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from act_interp_ros.dataset.errors import DatasetError
from act_interp_ros.dataset.source import ACTION, OBS_ENV_STATE, OBS_STATE, image_hw

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FeatureMatch:
    """How dataset features feed a policy.

    Attributes:
        camera_map: policy camera key -> dataset camera key (identity unless mapped), in policy order.
        resize: policy camera key -> ((H, W) in the dataset, (H, W) the policy expects), for cameras whose
            frames must be resized (empty when all sizes match).
        state_key / env_state_key: dataset key feeding the policy's state / env-state token, or ``None``
            when the policy has none.
        action_key: dataset key of the recorded action.
        unused: dataset features the policy does not read (cameras and vectors), for information.
    """

    camera_map: dict[str, str]
    resize: dict[str, tuple[tuple[int, int], tuple[int, int]]] = field(default_factory=dict)
    state_key: str | None = OBS_STATE
    env_state_key: str | None = None
    action_key: str = ACTION
    unused: tuple[str, ...] = ()

    @property
    def needs_resize(self) -> bool:
        return bool(self.resize)

    def policy_images(self, images: Mapping[str, Any]) -> dict[str, Any]:
        """Dataset camera key -> image  ==>  policy camera key -> image (what ``ObservationBuilder`` takes)."""
        return {policy_key: images[ds_key] for policy_key, ds_key in self.camera_map.items()}


def _shape_str(shape: Any) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _hw_str(hw: tuple[int, int]) -> str:
    return f"{hw[0]}x{hw[1]}"


def _vector_len(feature: Mapping[str, Any]) -> int:
    n = 1
    for s in feature["shape"]:
        n *= int(s)
    return n


def check_policy_features(
    features: Mapping[str, Mapping[str, Any]] | Any,
    config: Any,
    *,
    camera_map: Mapping[str, str] | None = None,
    allow_resize: bool = True,
) -> FeatureMatch:
    """Match a dataset's features to a policy config; raise one :class:`DatasetError` line on mismatch.

    Args:
        features: LeRobot feature dict (``meta/info.json`` ``features``) or an object with ``.features``
            (e.g. :class:`~act_interp_ros.dataset.source.LeRobotDatasetSource`).
        config: the policy config (``ACTConfig`` or anything with ``image_features``,
            ``robot_state_feature``, ``env_state_feature``, ``action_feature``).
        camera_map: policy camera key -> dataset camera key for cameras named differently.
        allow_resize: ``False`` turns camera size differences into errors.
    Returns:
        :class:`FeatureMatch` (camera mapping, cameras to resize, keys).
    """
    feats: Mapping[str, Mapping[str, Any]] = getattr(features, "features", features)
    camera_map = dict(camera_map or {})
    problems: list[str] = []
    size_problems: list[str] = []
    dataset_cams = [k for k, f in feats.items() if f.get("dtype") in ("image", "video")]

    image_features = dict(getattr(config, "image_features", {}) or {})
    unknown = [k for k in camera_map if k not in image_features]
    if unknown:
        problems.append(
            f"camera map names {', '.join(unknown)}, which the policy does not have "
            f"(policy cameras: {', '.join(image_features) or 'none'})"
        )
    mapping: dict[str, str] = {}
    resize: dict[str, tuple[tuple[int, int], tuple[int, int]]] = {}
    for key, pf in image_features.items():
        want_hw = (int(pf.shape[-2]), int(pf.shape[-1]))
        ds_key = camera_map.get(key, key)
        via = f" (mapped from {key})" if ds_key != key else ""
        ft = feats.get(ds_key)
        if ft is None:
            problems.append(
                f"camera {ds_key}{via} is missing (policy expects {_shape_str(pf.shape)}, "
                f"dataset cameras: {', '.join(dataset_cams) or 'none'})"
            )
            continue
        if ft.get("dtype") not in ("image", "video"):
            problems.append(f"{ds_key}{via} is {ft.get('dtype')}, expected an image or video feature")
            continue
        try:
            have_hw = image_hw(ft)
        except DatasetError as exc:
            problems.append(f"{ds_key}{via}: {exc}")
            continue
        mapping[key] = ds_key
        if have_hw != want_hw:
            resize[key] = (have_hw, want_hw)
            size_problems.append(f"{ds_key}{via} is {_hw_str(have_hw)}, policy expects {_hw_str(want_hw)}")

    def vector(policy_feature: Any, ds_key: str, what: str) -> str | None:
        if policy_feature is None:
            return None
        want = int(policy_feature.shape[0])
        ft = feats.get(ds_key)
        if ft is None:
            problems.append(f"{ds_key} ({what}) is missing (policy expects {_shape_str(policy_feature.shape)})")
            return None
        if ft.get("dtype") in ("image", "video", "string"):
            problems.append(
                f"{ds_key} is {ft.get('dtype')}, expected a numeric vector {_shape_str(policy_feature.shape)}"
            )
            return None
        have = _vector_len(ft)
        if have != want:
            problems.append(
                f"{ds_key} has shape {_shape_str(ft['shape'])}, policy expects {_shape_str(policy_feature.shape)}"
            )
            return None
        return ds_key

    state_key = vector(getattr(config, "robot_state_feature", None), OBS_STATE, "joint state")
    env_key = vector(getattr(config, "env_state_feature", None), OBS_ENV_STATE, "environment state")
    action_key = vector(getattr(config, "action_feature", None), ACTION, "recorded action")

    if problems or (size_problems and not allow_resize):
        listed = problems + ([f"size: {p} (resizing disabled)" for p in size_problems] if not allow_resize else [])
        raise DatasetError("dataset features do not match the policy: " + "; ".join(listed))
    if size_problems:
        logger.warning("camera sizes differ from the policy's, frames will be resized: %s", "; ".join(size_problems))
    used = set(mapping.values()) | {k for k in (state_key, env_key, action_key) if k}
    meta_keys = {"timestamp", "frame_index", "episode_index", "index", "task_index"}
    unused = tuple(k for k in feats if k not in used and k not in meta_keys)
    return FeatureMatch(
        camera_map=mapping,
        resize=resize,
        state_key=state_key,
        env_state_key=env_key,
        action_key=action_key or ACTION,
        unused=unused,
    )
