"""Build LeRobot raw observations from numpy camera frames and joint vectors, with clear errors.

LeRobot's convention (what the preprocessor expects, unbatched)::

    observation.images.<cam>      float32 (3, H, W) in [0, 1], RGB
    observation.state             float32 (state_dim,)   dataset units
    observation.environment_state float32 (env_dim,)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import cv2
import numpy as np
import torch

logger = logging.getLogger(__name__)


class ObservationError(ValueError):
    """An observation does not match what the policy expects; the message says what and how."""


def image_to_tensor(rgb: np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32 in [0, 1], on ``device``.

    The uint8 image is copied to the device first (a quarter of the float bytes) and converted there, so on a
    GPU the conversion (and the preprocessor's normalisation after it) runs on the GPU. The values are the
    same on every device (a float32 division is exact IEEE arithmetic everywhere).
    """
    t = torch.from_numpy(np.ascontiguousarray(rgb))
    if device is not None and torch.device(device).type != "cpu":
        t = t.to(device, non_blocking=True)
    return t.permute(2, 0, 1).float().div_(255.0)


class ObservationBuilder:
    """Validates and converts one tick's inputs for a given policy config.

    Args:
        config: the policy's ``ACTConfig``.
        resize: when a camera frame's size differs from the policy's, resize it (logging one warning per
            camera) if True, else raise :class:`ObservationError`.
        device: build the tensors on this device (the policy's): images go as uint8 and are converted there.
    """

    def __init__(self, config, resize: bool = True, device: torch.device | str | None = None) -> None:
        self.device = device
        self.image_shapes = {k: tuple(f.shape[-2:]) for k, f in config.image_features.items()}
        self.state_dim = int(config.robot_state_feature.shape[0]) if config.robot_state_feature else 0
        self.env_dim = int(config.env_state_feature.shape[0]) if config.env_state_feature else 0
        self.resize = resize
        self.resized_cameras: set[str] = set()

    def prepare_image(self, key: str, rgb: np.ndarray) -> np.ndarray:
        """Check an (H, W, 3) uint8 frame for camera ``key`` and resize it to the policy's size if allowed."""
        if key not in self.image_shapes:
            raise ObservationError(f"unknown camera '{key}'; the policy expects {sorted(self.image_shapes)}")
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ObservationError(f"camera '{key}': expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        want_h, want_w = self.image_shapes[key]
        if rgb.shape[:2] == (want_h, want_w):
            return rgb
        if not self.resize:
            raise ObservationError(
                f"camera '{key}': image is {rgb.shape[1]}x{rgb.shape[0]} but the policy expects "
                f"{want_w}x{want_h}; enable image_resize or publish the trained resolution"
            )
        if key not in self.resized_cameras:
            self.resized_cameras.add(key)
            logger.warning(
                "camera '%s': resizing %dx%d frames to the policy's %dx%d (warned once)",
                key, rgb.shape[1], rgb.shape[0], want_w, want_h,
            )
        return cv2.resize(rgb, (want_w, want_h), interpolation=cv2.INTER_AREA)

    def build(
        self,
        images: Mapping[str, np.ndarray],
        state: np.ndarray | None = None,
        env_state: np.ndarray | None = None,
    ) -> dict[str, torch.Tensor]:
        """Return the raw observation dict; raises :class:`ObservationError` on any mismatch."""
        missing = sorted(set(self.image_shapes) - set(images))
        if missing:
            raise ObservationError(f"missing camera image(s) {missing}; the policy expects {sorted(self.image_shapes)}")
        obs = {key: image_to_tensor(self.prepare_image(key, images[key]), self.device) for key in self.image_shapes}
        for name, value, dim, key in (
            ("state", state, self.state_dim, "observation.state"),
            ("environment state", env_state, self.env_dim, "observation.environment_state"),
        ):
            if dim == 0:
                continue
            if value is None:
                raise ObservationError(f"the policy needs a {name} vector of length {dim}, got none")
            arr = np.asarray(value, dtype=np.float32).reshape(-1)
            if arr.shape != (dim,):
                raise ObservationError(f"{name} has {arr.size} values; the policy expects {dim}")
            if not np.all(np.isfinite(arr)):
                raise ObservationError(f"{name} contains non-finite values: {arr.tolist()}")
            obs[key] = torch.from_numpy(arr) if self.device is None else torch.from_numpy(arr).to(self.device)
        return obs
