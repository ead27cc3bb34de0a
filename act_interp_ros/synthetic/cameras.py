"""The scene's pinhole cameras: ``front`` (fixed, looking down at the table) and ``wrist`` (on the gripper)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from act_interp_ros.synthetic.arm import ArmPose
from act_interp_ros.synthetic.scene_state import (
    SceneConfig,
)

@dataclass(frozen=True)
class CameraModel:
    """Pinhole camera: ``p_cam = R @ p_world + t``; pixel ``u = fx X/Z + cx``, ``v = fy Y/Z + cy``.

    Camera axes follow the optical-frame convention (x right, y down, z forward).
    """

    name: str
    height: int
    width: int
    fx: float
    fy: float
    cx: float
    cy: float
    R: np.ndarray  # (3, 3) world -> camera
    t: np.ndarray  # (3,)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def position(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -self.R.T @ self.t

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        """(N, 3) world -> (N, 3) camera coordinates."""
        return np.asarray(pts, dtype=np.float64) @ self.R.T + self.t

    def project(self, pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) world points -> ((N, 2) pixel coordinates, (N,) depth). Depth <= 0 is behind."""
        pc = self.to_camera(pts)
        z = pc[:, 2]
        zs = np.where(np.abs(z) < 1e-9, 1e-9, z)
        uv = np.stack([self.fx * pc[:, 0] / zs + self.cx, self.fy * pc[:, 1] / zs + self.cy], axis=1)
        return uv, z


def _intrinsics(height: int, width: int, hfov_deg: float) -> tuple[float, float, float, float]:
    f = 0.5 * width / math.tan(math.radians(hfov_deg) / 2.0)
    return f, f, (width - 1) / 2.0, (height - 1) / 2.0


def _look_rotation(forward: np.ndarray, down_hint: np.ndarray) -> np.ndarray:
    """Rows (x_c, y_c, z_c) of a world->camera rotation looking along ``forward``."""
    z = forward / np.linalg.norm(forward)
    y = down_hint - np.dot(down_hint, z) * z
    y = y / np.linalg.norm(y)
    x = np.cross(y, z)
    return np.stack([x, y, z])


def front_camera(config: SceneConfig) -> CameraModel:
    """The fixed front camera."""
    h, w = config.size_of("front")
    eye = np.asarray(config.front_eye, dtype=np.float64)
    fwd = np.asarray(config.front_look_at, dtype=np.float64) - eye
    R = _look_rotation(fwd, np.array([0.0, 0.0, -1.0]))
    fx, fy, cx, cy = _intrinsics(h, w, config.front_hfov_deg)
    return CameraModel("front", h, w, fx, fy, cx, cy, R, -R @ eye)


def wrist_camera(config: SceneConfig, pose: ArmPose) -> CameraModel:
    """Camera rigidly attached to the gripper (on its far side), tilted 15 deg towards the fingers.

    The fingers appear at the bottom of the image; with the gripper pointing down, image "up" is away
    from the robot base.
    """
    h, w = config.size_of("wrist")
    eye = pose.wrist + 0.02 * pose.axis + 0.045 * pose.normal
    tilt = math.radians(15.0)
    fwd = math.cos(tilt) * pose.axis - math.sin(tilt) * pose.normal
    R = _look_rotation(fwd, -pose.normal)
    fx, fy, cx, cy = _intrinsics(h, w, config.wrist_hfov_deg)
    return CameraModel("wrist", h, w, fx, fy, cx, cy, R, -R @ eye)
