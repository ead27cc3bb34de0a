"""Deterministic synthetic SO-101 tabletop scene: cameras and a fast numpy/OpenCV renderer.

The scene holds a table, a TARGET cube (red by default), a DISTRACTOR cube (blue by default) and the
arm of :mod:`act_interp_ros.synthetic.arm`, seen by two pinhole cameras:

* ``front``: fixed, in front of the robot and slightly to its left, looking down at the table at ~30 deg;
* ``wrist``: rigidly mounted on the gripper, looking along the gripper axis (down while grasping),
  with the fingers at the bottom of the image.

Images are HxWx3 uint8 **RGB**. Rendering is a painter's algorithm over projected primitives: the
table is a perspective warp of a cached texture, then cube/arm shadows, then cube faces, links and
fingers sorted far-to-near. A frame pair costs ~1-2 ms at 96x128 and a few ms at 480x640.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np

from act_interp_ros.synthetic.arm import ArmPose, forward_kinematics
from act_interp_ros.synthetic.scene_state import (
    _CUBE_FACES,
    BBox,
    CAMERA_NAMES,
    RGB,
    SceneConfig,
    SceneState,
)
from act_interp_ros.synthetic.cameras import (
    CameraModel,
    front_camera,
    wrist_camera,
)


_NEAR = 0.01
_TABLE_X = (-0.25, 0.60)  # table extent (metres, world frame)
_TABLE_Y = (-0.45, 0.45)
_LIGHT = np.array([-0.2, 0.15, -1.0]) / np.linalg.norm([-0.2, 0.15, -1.0])  # direction light travels


@lru_cache(maxsize=8)
def _table_texture(mm_per_px: float, color: RGB) -> tuple[np.ndarray, np.ndarray]:
    """Table texture (RGB uint8) and the affine (3, 3) mapping texture pixel (col,row,1) -> world (x,y,1).

    A beige cutting mat with a faint 5 cm grid and a fixed low-frequency mottling (seeded, so every
    process renders identical pixels).
    """
    s = mm_per_px / 1000.0
    w = int(round((_TABLE_Y[1] - _TABLE_Y[0]) / s))
    h = int(round((_TABLE_X[1] - _TABLE_X[0]) / s))
    rng = np.random.default_rng(12345)
    noise = cv2.resize(rng.normal(0.0, 1.0, (24, 24)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    tex = np.empty((h, w, 3), np.float32)
    tex[:] = np.asarray(color, np.float32)
    tex += 6.0 * noise[..., None]
    # row r -> x = x_max - (r + 0.5) s ; col c -> y = y_max - (c + 0.5) s (image "up" = far side of table)
    xs = _TABLE_X[1] - (np.arange(h) + 0.5) * s
    ys = _TABLE_Y[1] - (np.arange(w) + 0.5) * s
    line_w = max(0.0015, 0.6 * s)
    gx = np.abs((xs + 0.025) % 0.05 - 0.025) < line_w
    gy = np.abs((ys + 0.025) % 0.05 - 0.025) < line_w
    tex[gx, :, :] *= 0.86
    tex[:, gy, :] *= 0.86
    tex = np.clip(tex, 0, 255).astype(np.uint8)
    A = np.array([[0.0, -s, _TABLE_X[1] - 0.5 * s], [-s, 0.0, _TABLE_Y[1] - 0.5 * s], [0.0, 0.0, 1.0]])
    return tex, A


_FACE_IDX = np.array([f[0] for f in _CUBE_FACES])  # (6, 4)
_FACE_AXIS = np.array([f[1] for f in _CUBE_FACES])  # (6,)
_FACE_SIGN = np.array([f[2] for f in _CUBE_FACES], float)  # (6,)

# arm point indices in the per-frame point table (see SyntheticScene._arm_points)
_BASE, _BASE_TOP, _SHOULDER, _ELBOW, _WRIST, _PALM, _BAR0, _BAR1, _ROOT0, _ROOT1, _TIP0, _TIP1 = range(12)
_N_ARM = 12


class SyntheticScene:
    """Renderer for the synthetic tabletop scene (both cameras).

    Example::

        scene = SyntheticScene(SceneConfig(image_size=(96, 128)))
        state = SceneState(HOME_POSE, CubeState.on_table(0.2, 0.05), CubeState.on_table(0.18, -0.08))
        images = scene.render_all(state)            # {"front": (96,128,3) uint8, "wrist": ...}
        boxes = scene.boxes(state, "front")         # {"target": (x0,y0,x1,y1) | None, ...}
    """

    def __init__(self, config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        self._front = front_camera(self.config)
        self._front_background: np.ndarray | None = None

    # ------------------------------------------------------------------ cameras
    def camera(self, name: str, joints: np.ndarray) -> CameraModel:
        """Camera model of ``name`` for the given joints (the wrist camera moves with the arm)."""
        if name == "front":
            return self._front
        if name == "wrist":
            return wrist_camera(self.config, forward_kinematics(joints, self.config.geometry))
        raise ValueError(f"unknown camera {name!r}; expected one of {CAMERA_NAMES}")

    # ------------------------------------------------------------------ public API
    def render_all(self, state: SceneState) -> dict[str, np.ndarray]:
        """{camera name: (H, W, 3) uint8 RGB} for both cameras."""
        return self.render_with_boxes(state)[0]

    def render_with_boxes(
        self, state: SceneState
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, BBox | None]]]:
        """Images of both cameras and the object boxes of each (see :meth:`boxes`), in one pass."""
        pose = forward_kinematics(state.joints, self.config.geometry)
        images: dict[str, np.ndarray] = {}
        boxes: dict[str, dict[str, BBox | None]] = {}
        for name in CAMERA_NAMES:
            images[name], boxes[name] = self._render(state, pose, name)
        return images, boxes

    def render(self, state: SceneState, camera: str) -> np.ndarray:
        """(H, W, 3) uint8 RGB image of one camera."""
        if camera not in CAMERA_NAMES:
            raise ValueError(f"unknown camera {camera!r}; expected one of {CAMERA_NAMES}")
        return self._render(state, forward_kinematics(state.joints, self.config.geometry), camera)[0]

    def boxes(self, state: SceneState, camera: str) -> dict[str, BBox | None]:
        """Pixel bounding boxes (x0, y0, x1, y1; x1/y1 exclusive) of target and distractor in ``camera``.

        The box bounds the projected cube (occlusion by the arm is ignored); ``None`` when the cube is
        absent, behind the camera or entirely outside the image.
        """
        cam = self.camera(camera, state.joints)
        out: dict[str, BBox | None] = {}
        for name, cube in (("target", state.target), ("distractor", state.distractor)):
            if cube is None:
                out[name] = None
            else:
                uv, z = cam.project(cube.corners(self.config.cube_size))
                out[name] = _box(uv, z, cam.width, cam.height)
        return out

    def masks(self, state: SceneState, camera: str) -> dict[str, np.ndarray]:
        """Boolean (H, W) silhouettes (convex hull of the projected cube, occlusion ignored)."""
        cam = self.camera(camera, state.joints)
        out: dict[str, np.ndarray] = {}
        for name, cube in (("target", state.target), ("distractor", state.distractor)):
            m = np.zeros((cam.height, cam.width), np.uint8)
            if cube is not None:
                uv, z = cam.project(cube.corners(self.config.cube_size))
                if np.all(z > _NEAR):
                    hull = cv2.convexHull(np.round(uv * 16).astype(np.int32))
                    cv2.fillConvexPoly(m, hull, 1, lineType=cv2.LINE_8, shift=4)
            out[name] = m.astype(bool)
        return out

    # ------------------------------------------------------------------ internals
    def _background(self, cam: CameraModel) -> np.ndarray:
        """Table (perspective-warped texture) and room colour above the horizon / beyond the table."""
        cfg = self.config
        # texture resolution ~ image resolution on the table, to avoid aliasing of the grid at small sizes
        mm_per_px = float(np.clip(250.0 / cam.fx, 1.0, 6.0))
        mm_per_px = round(mm_per_px * 2.0) / 2.0
        tex, A = _table_texture(mm_per_px, cfg.table_color)
        # plane z=0 -> image: K [r1 r2 t]
        M = cam.K @ np.column_stack([cam.R[:, 0], cam.R[:, 1], cam.t]) @ A
        bg = tuple(int(c) for c in cfg.background_color)
        img = cv2.warpPerspective(
            tex, M, (cam.width, cam.height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=bg
        )
        # pixels whose ray does not hit the table plane in front of the camera: world dz >= 0
        coef = cam.R[:, 2] @ np.linalg.inv(cam.K)  # dz(u, v) = coef . (u, v, 1), linear in u and v
        if cam.position[2] <= 0:
            img[:] = bg
            return img
        w1, h1 = cam.width - 1, cam.height - 1
        corners_dz = [coef[0] * u + coef[1] * v + coef[2] for u in (0, w1) for v in (0, h1)]
        if max(corners_dz) >= -1e-6:  # the horizon is in view
            u = np.arange(cam.width, dtype=np.float32)
            v = np.arange(cam.height, dtype=np.float32)
            miss = (coef[0] * u[None, :] + coef[1] * v[:, None] + coef[2]) >= -1e-6
            img[miss] = bg
        return img

    def _arm_points(self, pose: ArmPose) -> np.ndarray:
        """(12, 3) arm points, indexed by the module constants _BASE ... _TIP1."""
        half_bar = 0.5 * self.config.geometry.max_opening * 0.6 * pose.lateral
        return np.stack([
            pose.base, pose.base_top, pose.shoulder, pose.elbow, pose.wrist, pose.palm,
            pose.palm - half_bar, pose.palm + half_bar,
            pose.finger_roots[0], pose.finger_roots[1], pose.finger_tips[0], pose.finger_tips[1],
        ])

    def _render(
        self, state: SceneState, pose: ArmPose, camera: str
    ) -> tuple[np.ndarray, dict[str, BBox | None]]:
        cfg = self.config
        g = cfg.geometry
        if camera == "front":
            cam = self._front
            if self._front_background is None:
                self._front_background = self._background(cam)
            img = self._front_background.copy()
        else:
            cam = wrist_camera(cfg, pose)
            img = self._background(cam)
        on_gripper = camera == "wrist"

        cubes = [(n, c, col) for n, c, col in (("target", state.target, cfg.target_color),
                                                ("distractor", state.distractor, cfg.distractor_color))
                 if c is not None]
        arm = self._arm_points(pose)
        corners = [c.corners(cfg.cube_size) for _, c, _ in cubes]
        pts = np.concatenate([arm, *corners]) if corners else arm
        n_pts = pts.shape[0]
        if cfg.shadows:
            k = pts[:, 2:3] / -_LIGHT[2]
            pts = np.concatenate([pts, pts + _LIGHT[None, :] * k])  # second half: shadows on z = 0
        pc = pts @ cam.R.T + cam.t
        z = pc[:, 2]
        zs = np.where(z > _NEAR, z, 1.0)
        uv = np.stack([cam.fx * pc[:, 0] / zs + cam.cx, cam.fy * pc[:, 1] / zs + cam.cy], axis=1)
        uv = np.clip(uv, -16000.0, 16000.0)

        boxes: dict[str, BBox | None] = {"target": None, "distractor": None}
        for i, (name, _, _) in enumerate(cubes):
            sl = slice(_N_ARM + 8 * i, _N_ARM + 8 * i + 8)
            boxes[name] = _box(uv[sl], z[sl], cam.width, cam.height)

        if cfg.shadows:
            self._draw_shadows(img, cam, uv[n_pts:], z[n_pts:], len(cubes))

        prims: list[tuple[float, int, tuple]] = []
        eye = cam.position
        for i, (_, cube, color) in enumerate(cubes):
            base = _N_ARM + 8 * i
            zc = z[base:base + 8]
            if np.any(zc <= _NEAR):
                continue
            normals = cube.rotation[:, _FACE_AXIS].T * _FACE_SIGN[:, None]  # (6, 3)
            centres = cube.center + normals * (cfg.cube_size / 2.0)
            visible = np.einsum("ij,ij->i", normals, centres - eye) < 0
            shade = 0.55 + 0.45 * np.maximum(0.0, normals @ -_LIGHT)
            col = np.asarray(color, np.float64)
            uvc = np.round(uv[base:base + 8] * 16).astype(np.int32)
            for f in np.nonzero(visible)[0]:
                idx = _FACE_IDX[f]
                c = tuple(int(v) for v in np.clip(col * shade[f], 0, 255))
                prims.append((float(zc[idx].mean()), 0, ("poly", uvc[idx], c)))

        dark, link, finger = cfg.joint_color, cfg.link_color, cfg.finger_color
        segments = [
            (_BASE, _BASE_TOP, 0.045, dark),
            (_BASE_TOP, _SHOULDER, 0.025, link),
            (_SHOULDER, _ELBOW, g.link_radius, link),
            (_ELBOW, _WRIST, g.link_radius * 0.9, link),
            (_BAR0, _BAR1, 0.008, finger),
            (_ROOT0, _TIP0, g.finger_radius, finger),
            (_ROOT1, _TIP1, g.finger_radius, finger),
        ]
        joints = [(_SHOULDER, 0.024), (_ELBOW, 0.021)]
        if not on_gripper:  # the gripper-mounted camera sits on the wrist: do not draw it
            segments.append((_WRIST, _PALM, g.link_radius * 0.8, link))
            joints.append((_WRIST, 0.019))
        for i, j, radius, color in segments:
            self._segment(prims, cam, pc[i], pc[j], radius, color)
        zl = z.tolist()
        for i, radius in joints:
            if zl[i] > _NEAR:
                r = int(min(2000, max(1, round(radius * cam.fx / zl[i]))))
                centre = (int(round(uv[i, 0])), int(round(uv[i, 1])))
                prims.append((zl[i] - 0.002, 2, ("circle", centre, r, dark)))

        prims.sort(key=lambda p: (-p[0], p[1]))
        for _, _, (kind, *args) in prims:
            if kind == "poly":
                cv2.fillConvexPoly(img, args[0], args[1], lineType=cv2.LINE_AA, shift=4)
            elif kind == "line":
                cv2.line(img, args[0], args[1], args[3], args[2], lineType=cv2.LINE_AA)
            else:  # circle
                cv2.circle(img, args[0], args[1], args[2], -1, lineType=cv2.LINE_AA)
        return img, boxes

    @staticmethod
    def _segment(prims: list, cam: CameraModel, c0: np.ndarray, c1: np.ndarray, radius: float, color: RGB) -> None:
        """Segment between camera-frame points drawn as a thick anti-aliased line (near-plane clipped)."""
        x0, y0, z0 = c0.tolist()
        x1, y1, z1 = c1.tolist()
        if z0 <= _NEAR and z1 <= _NEAR:
            return
        if z0 <= _NEAR or z1 <= _NEAR:
            a = (_NEAR - z0) / (z1 - z0)
            xn, yn = x0 + a * (x1 - x0), y0 + a * (y1 - y0)
            if z0 <= _NEAR:
                x0, y0, z0 = xn, yn, _NEAR
            else:
                x1, y1, z1 = xn, yn, _NEAR
        lim = 16000.0
        pa = (int(round(max(-lim, min(lim, cam.fx * x0 / z0 + cam.cx)))),
              int(round(max(-lim, min(lim, cam.fy * y0 / z0 + cam.cy)))))
        pb = (int(round(max(-lim, min(lim, cam.fx * x1 / z1 + cam.cx)))),
              int(round(max(-lim, min(lim, cam.fy * y1 / z1 + cam.cy)))))
        zm = 0.5 * (z0 + z1)
        thick = int(min(255, max(1, round(2.0 * radius * cam.fx / zm))))
        prims.append((zm, 1, ("line", pa, pb, thick, color)))

    def _draw_shadows(self, img: np.ndarray, cam: CameraModel, uv: np.ndarray, z: np.ndarray, n_cubes: int) -> None:
        """Darken the table where cubes and arm cast shadows; ``uv``/``z`` are the shadow points."""
        g = self.config.geometry
        mask = np.zeros(img.shape[:2], np.uint8)
        drawn = False
        for i in range(n_cubes):
            sl = slice(_N_ARM + 8 * i, _N_ARM + 8 * i + 8)
            if np.any(z[sl] <= _NEAR):
                continue
            hull = cv2.convexHull(np.round(uv[sl] * 16).astype(np.int32))
            cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_AA, shift=4)
            drawn = True
        chain = ((_BASE_TOP, _SHOULDER, 0.025), (_SHOULDER, _ELBOW, g.link_radius),
                 (_ELBOW, _WRIST, g.link_radius), (_WRIST, _PALM, g.link_radius * 0.8))
        zl = z.tolist()
        for i, j, radius in chain:
            if zl[i] <= _NEAR or zl[j] <= _NEAR:
                continue
            thick = int(min(255, max(1, round(2.0 * radius * cam.fx / (0.5 * (zl[i] + zl[j]))))))
            a = (int(round(uv[i, 0])), int(round(uv[i, 1])))
            b = (int(round(uv[j, 0])), int(round(uv[j, 1])))
            cv2.line(mask, a, b, 255, thick, lineType=cv2.LINE_AA)
            drawn = True
        if not drawn:
            return
        x0, y0, w, h = cv2.boundingRect(mask)
        if w == 0 or h == 0:
            return
        roi = img[y0:y0 + h, x0:x0 + w]
        factor = 1.0 - (0.35 / 255.0) * mask[y0:y0 + h, x0:x0 + w].astype(np.float32)
        img[y0:y0 + h, x0:x0 + w] = (roi * factor[..., None]).astype(np.uint8)


def _box(uv: np.ndarray, z: np.ndarray, width: int, height: int) -> BBox | None:
    """Clipped integer bounding box of projected points; None when behind the camera or off-image."""
    if np.any(z <= _NEAR):
        return None
    x0 = max(0, math.floor(float(uv[:, 0].min())))
    y0 = max(0, math.floor(float(uv[:, 1].min())))
    x1 = min(width, math.ceil(float(uv[:, 0].max())) + 1)
    y1 = min(height, math.ceil(float(uv[:, 1].max())) + 1)
    if x1 <= x0 or y1 <= y0:
        return None
    return (int(x0), int(y0), int(x1), int(y1))
