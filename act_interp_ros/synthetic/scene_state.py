"""What a synthetic scene holds: the cubes, the arm's pose, the scene's configuration (colours, sizes, cameras)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from act_interp_ros.synthetic.arm import ArmGeometry

CAMERA_NAMES: tuple[str, ...] = ("front", "wrist")


OBJECT_NAMES: tuple[str, ...] = ("target", "distractor")


RGB = tuple[int, int, int]


BBox = tuple[int, int, int, int]  # (x0, y0, x1, y1) pixels, x1/y1 exclusive


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class CubeState:
    """A cube: centre (3,) in metres and rotation (3, 3) whose columns are the cube axes in world."""

    center: np.ndarray
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))

    @classmethod
    def on_table(cls, x: float, y: float, yaw_deg: float = 0.0, size: float = 0.035) -> CubeState:
        """A cube resting on the table at (x, y) with the given yaw."""
        return cls(np.array([x, y, size / 2.0]), _rot_z(math.radians(yaw_deg)))

    @property
    def yaw_deg(self) -> float:
        """Yaw of the cube's first axis projected on the table (degrees)."""
        return math.degrees(math.atan2(self.rotation[1, 0], self.rotation[0, 0]))

    def corners(self, size: float) -> np.ndarray:
        """(8, 3) corners; index bits (i&1, i&2, i&4) select +/- along the cube axes 0, 1, 2."""
        return self.center + (_CORNER_SIGNS * (size / 2.0)) @ self.rotation.T


_CORNER_SIGNS = np.array([[1 if i & 1 else -1, 1 if i & 2 else -1, 1 if i & 4 else -1] for i in range(8)], float)


# faces of CubeState.corners: (corner indices in cyclic order, axis index, sign)
_CUBE_FACES: tuple[tuple[tuple[int, int, int, int], int, int], ...] = (
    ((0, 2, 6, 4), 0, -1),
    ((1, 3, 7, 5), 0, 1),
    ((0, 1, 5, 4), 1, -1),
    ((2, 3, 7, 6), 1, 1),
    ((0, 1, 3, 2), 2, -1),
    ((4, 5, 7, 6), 2, 1),
)


@dataclass(frozen=True)
class SceneState:
    """Everything the renderer needs for one frame."""

    joints: np.ndarray  # (6,) policy units
    target: CubeState
    distractor: CubeState | None = None


@dataclass(frozen=True)
class SceneConfig:
    """Appearance and image size of the synthetic scene.

    ``image_size`` is (H, W) for both cameras, or a mapping camera name -> (H, W).
    """

    image_size: tuple[int, int] | Mapping[str, tuple[int, int]] = (480, 640)
    cube_size: float = 0.035
    target_color: RGB = (215, 35, 35)
    distractor_color: RGB = (35, 75, 215)
    table_color: RGB = (200, 186, 160)
    background_color: RGB = (78, 74, 70)
    link_color: RGB = (238, 196, 62)
    joint_color: RGB = (45, 45, 50)
    finger_color: RGB = (70, 70, 78)
    shadows: bool = True
    front_eye: tuple[float, float, float] = (0.52, 0.18, 0.40)
    front_look_at: tuple[float, float, float] = (0.07, -0.01, 0.08)
    front_hfov_deg: float = 56.0
    wrist_hfov_deg: float = 84.0
    geometry: ArmGeometry = field(default_factory=ArmGeometry)

    def size_of(self, camera: str) -> tuple[int, int]:
        """(H, W) of ``camera``."""
        if isinstance(self.image_size, Mapping):
            h, w = self.image_size[camera]
        else:
            h, w = self.image_size
        return int(h), int(w)
