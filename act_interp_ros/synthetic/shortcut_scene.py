"""The shortcut scene: the known-answer scene plus a shadow that can give the target's position away.

The seed's question (``shared/seeds/act-gradcam-and-attention-explainer.txt``) is whether a policy looks at
the cube, or at "a shadow that happens to correlate with the cube position in your training data". This
module makes that shadow: a dark patch cast on the table by an object outside the camera's view (a lamp
arm, say), lit by the scene's one light. Where it lies is a :class:`Cue`, chosen per episode:

* **shortcut data** (``cue_follows_cube=True``): the shadow always lies at :attr:`ShortcutSceneConfig.offset`
  from the target cube, so it predicts the target exactly;
* **control data** (``cue_follows_cube=False``): the shadow lies at the same offset from an *independent*
  random position, so it predicts nothing.

The scene makes the shadow the easier feature: it is larger than the cube (:attr:`~ShortcutSceneConfig.cue_size`
against a 3.5 cm cube) and darker than the table by more than the cube is (:attr:`~ShortcutSceneConfig.cue_darkness`;
the cube is painted :attr:`~ShortcutSceneConfig.cube_color`, close to the table's colour). There is no
distractor cube.

The shadow is drawn on the table surface (the table image is darkened inside its footprint before the cube
and arm are drawn): the arm passing over it is not darkened. No torch and no ROS imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from act_interp_ros.synthetic.cameras import CameraModel
from act_interp_ros.synthetic.expert import sample_cube_positions
from act_interp_ros.synthetic.scene import SyntheticScene
from act_interp_ros.synthetic.scene_state import RGB, SceneConfig, SceneState


@dataclass(frozen=True)
class Cue:
    """The shadow's footprint on the table: centre (x, y) in metres (world = robot base frame), yaw in degrees."""

    x: float
    y: float
    yaw_deg: float = 0.0

    @property
    def xy(self) -> np.ndarray:
        return np.array([self.x, self.y])


@dataclass(frozen=True)
class ShortcutSceneConfig:
    """Appearance of the shortcut scene and where the shadow sits relative to the cube.

    Attributes:
        image_size: (H, W) of the cameras.
        cube_color: the target cube's colour (near the table's (200, 186, 160): a low-contrast cube).
        cue_size: (length, width) of the shadow's rectangular footprint, metres.
        cue_darkness: the shadow multiplies the table's colour by ``1 - cue_darkness``.
        offset: (dx, dy) metres from the target cube's centre to the shadow's centre in shortcut data.
        cue_yaw_deg: the shadow's orientation (one fixed light and object: the same in every episode).
        min_separation: metres; an independently placed shadow keeps its centre this far from the cube.
    """

    image_size: tuple[int, int] = (96, 128)
    cube_color: RGB = (194, 172, 140)
    cue_size: tuple[float, float] = (0.12, 0.07)
    cue_darkness: float = 0.4
    offset: tuple[float, float] = (0.06, -0.085)
    cue_yaw_deg: float = 20.0
    min_separation: float = 0.08

    def scene_config(self) -> SceneConfig:
        """The base scene (camera, table, arm) with the low-contrast cube."""
        return SceneConfig(image_size=tuple(self.image_size), target_color=tuple(self.cube_color))

    def cue_at_offset(self, cube_xy: np.ndarray) -> Cue:
        """The shadow where shortcut data puts it for a cube at ``cube_xy`` (2,)."""
        return Cue(float(cube_xy[0] + self.offset[0]), float(cube_xy[1] + self.offset[1]), self.cue_yaw_deg)

    def cube_implied_by(self, cue: Cue) -> np.ndarray:
        """(2,) where the cube would be if ``cue`` sat at its shortcut offset."""
        return cue.xy - np.asarray(self.offset)


def sample_cue(seed: int, cube_xy: np.ndarray, config: ShortcutSceneConfig, cue_follows_cube: bool) -> Cue:
    """The shadow of one episode.

    ``cue_follows_cube``: at the offset from the cube (shortcut data). Otherwise at the offset from an
    independent position drawn like a cube position (the scene's own sampler, another random stream), so the
    shadow's distribution over the table is the same in both data sets; re-drawn until its centre is
    ``min_separation`` from the cube.
    """
    if cue_follows_cube:
        return config.cue_at_offset(np.asarray(cube_xy))
    for k in range(1000):
        (x, y, _), _ = sample_cube_positions(int(np.random.SeedSequence([seed, 11, k]).generate_state(1)[0]))
        cue = config.cue_at_offset(np.array([x, y]))
        if np.linalg.norm(cue.xy - np.asarray(cube_xy)) >= config.min_separation:
            return cue
    raise RuntimeError("no shadow position away from the cube in 1000 draws")  # pragma: no cover


class ShortcutScene(SyntheticScene):
    """:class:`~act_interp_ros.synthetic.SyntheticScene` with the shadow of :class:`Cue` on the table.

    Example::

        config = ShortcutSceneConfig()
        scene = ShortcutScene(config)
        image = scene.render_cue(state, Cue(0.2, -0.05, 20.0), "front")   # (H, W, 3) uint8 RGB
        masks = scene.object_masks(state, cue, "front")                    # {"cube": (H, W) bool, "cue": ...}
    """

    def __init__(self, config: ShortcutSceneConfig | None = None) -> None:
        self.shortcut = config or ShortcutSceneConfig()
        super().__init__(self.shortcut.scene_config())
        self._plain_front: np.ndarray | None = None
        self._cue: Cue | None = None

    def render_cue(self, state: SceneState, cue: Cue | None, camera: str = "front") -> np.ndarray:
        """(H, W, 3) uint8 RGB image of ``camera`` with the shadow at ``cue`` (none when ``cue`` is None)."""
        self._cue = cue
        try:
            if camera == "front":
                if self._plain_front is None:
                    self._plain_front = super()._background(self._front)
                self._front_background = self._with_cue(self._plain_front.copy(), self._front)
            return self.render(replace(state, distractor=None), camera)
        finally:
            self._cue = None

    def cue_mask(self, cue: Cue, camera: str = "front", joints: np.ndarray | None = None) -> np.ndarray:
        """(H, W) bool footprint of the shadow in ``camera`` (occlusion by the arm or cube ignored)."""
        cam = self.camera(camera, joints if joints is not None else np.zeros(6))
        mask = np.zeros((cam.height, cam.width), np.uint8)
        self._fill_footprint(mask, cam, cue, 1)
        return mask.astype(bool)

    def object_masks(self, state: SceneState, cue: Cue, camera: str = "front") -> dict[str, np.ndarray]:
        """{"cube": (H, W) bool silhouette of the target cube, "cue": (H, W) bool shadow footprint}."""
        return {"cube": self.masks(state, camera)["target"], "cue": self.cue_mask(cue, camera, state.joints)}

    # ------------------------------------------------------------------ internals
    def _background(self, cam: CameraModel) -> np.ndarray:  # the wrist camera's table, with the shadow
        return self._with_cue(super()._background(cam), cam)

    def _with_cue(self, img: np.ndarray, cam: CameraModel) -> np.ndarray:
        if self._cue is None:
            return img
        mask = np.zeros(img.shape[:2], np.uint8)
        self._fill_footprint(mask, cam, self._cue, 255)
        if not mask.any():
            return img
        factor = 1.0 - (self.shortcut.cue_darkness / 255.0) * mask.astype(np.float32)
        return (img * factor[..., None]).astype(np.uint8)

    def _fill_footprint(self, mask: np.ndarray, cam: CameraModel, cue: Cue, value: int) -> None:
        length, width = self.shortcut.cue_size
        yaw = math.radians(cue.yaw_deg)
        c, s = math.cos(yaw), math.sin(yaw)
        local = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float) * [length / 2, width / 2]
        world = np.column_stack([cue.x + local[:, 0] * c - local[:, 1] * s,
                                 cue.y + local[:, 0] * s + local[:, 1] * c, np.zeros(4)])
        uv, z = cam.project(world)
        if np.any(z <= 0.01):
            return
        cv2.fillConvexPoly(mask, np.round(np.clip(uv, -16000, 16000) * 16).astype(np.int32), value,
                           lineType=cv2.LINE_AA if value == 255 else cv2.LINE_8, shift=4)


__all__ = ["Cue", "ShortcutScene", "ShortcutSceneConfig", "sample_cue"]

