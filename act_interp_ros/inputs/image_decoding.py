"""ROS image messages -> numpy (H, W, 3) uint8 RGB (the engine's image format), without ROS.

Decoding works on rclpy messages (`sensor_msgs.msg.Image` / `CompressedImage`) and on rosbags
deserialised messages alike (duck typing on `encoding/height/width/step/data/is_bigendian` or
`format/data`); it needs neither rclpy nor cv_bridge, so the node, the offline replay and the demo share it.

Backends for raw `sensor_msgs/Image` (picked once, on first use; `backend_name()` tells which):
  * "cv_bridge"      when `cv_bridge` imports AND a tiny bgr8->rgb8 conversion round-trips. apt's
                     cv_bridge is built against NumPy 1.x and often breaks under NumPy 2 (which LeRobot
                     needs), failing only on first conversion, hence the probe. If it fails on a later
                     message, that encoding falls back to the built-in path (warned once).
  * "rosbags-image"  otherwise: `rosbags.image` for dtype/endianness/colour conversion, after this
                     module has validated the message and removed row padding.
  Compressed images are always decoded with `cv2.imdecode` (same result on every backend).
  Set ACT_INTERP_IMAGE_BACKEND=rosbags-image (or cv_bridge) to force a backend.

Encoding overlays into ROS messages lives in :mod:`act_interp_ros.ros.image_encoding` (it needs rclpy).
"""
from __future__ import annotations

import array
import logging
import os
import re
import threading
from typing import Any

import cv2
import numpy as np

__all__ = [
    "ImageDecodeError",
    "SUPPORTED_ENCODINGS",
    "backend_name",
    "backend_reason",
    "decode_image",
    "set_backend",
]

_LOG = logging.getLogger(__name__)

BACKEND_CV_BRIDGE = "cv_bridge"
BACKEND_ROSBAGS = "rosbags-image"
BACKEND_ENV = "ACT_INTERP_IMAGE_BACKEND"

# encoding -> (bytes per sample, samples per pixel). YUV 4:2:2 packs 2 bytes per pixel.
_ENCODINGS: dict[str, tuple[int, int]] = {
    "rgb8": (1, 3),
    "bgr8": (1, 3),
    "rgba8": (1, 4),
    "bgra8": (1, 4),
    "mono8": (1, 1),
    "mono16": (2, 1),
    "rgb16": (2, 3),
    "bgr16": (2, 3),
    "rgba16": (2, 4),
    "bgra16": (2, 4),
    "yuv422_yuy2": (1, 2),  # Y0 U Y1 V (YUYV); ROS alias of "yuyv"
    "yuyv": (1, 2),
    "yuv422": (1, 2),  # U Y0 V Y1 (UYVY): ROS defines "yuv422" as the deprecated alias of "uyvy"
    "uyvy": (1, 2),
}
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_ENCODINGS)
_YUV = ("yuv422_yuy2", "yuyv", "yuv422", "uyvy")
_NON_IMAGE_CODECS = re.compile(r"compresseddepth|h264|h265|hevc|theora|av1|vp8|vp9|ffmpeg|zstd")


class ImageDecodeError(ValueError):
    """An image message cannot be turned into an RGB array (the message says why and what is expected)."""


# --------------------------------------------------------------------------------------------------
# Backend selection


class _Backend:
    def __init__(self, name: str, reason: str, bridge: Any = None) -> None:
        self.name = name
        self.reason = reason
        self.bridge = bridge
        self.failed_encodings: set[str] = set()


_backend: _Backend | None = None
_backend_lock = threading.Lock()


class _ProbeImage:
    """Minimal duck-typed sensor_msgs/Image used to probe cv_bridge without rclpy."""

    def __init__(self, data: bytes, height: int, width: int, encoding: str) -> None:
        self.height = height
        self.width = width
        self.encoding = encoding
        self.is_bigendian = 0
        self.step = len(data) // height
        self.data = array.array("B", data)


def _probe_cv_bridge() -> tuple[Any, str]:
    """Return (bridge or None, reason). Never raises."""
    try:
        import cv_bridge  # noqa: PLC0415  (optional system package)

        bridge = cv_bridge.CvBridge()
        expected = np.array([[[10, 20, 30], [40, 50, 60]], [[70, 80, 90], [100, 110, 120]]], np.uint8)
        bgr = np.ascontiguousarray(expected[..., ::-1])
        try:
            from sensor_msgs.msg import Image  # noqa: PLC0415

            msg: Any = Image(height=2, width=2, encoding="bgr8", is_bigendian=0, step=6)
            msg.data = array.array("B", bgr.tobytes())
        except ImportError:
            msg = _ProbeImage(bgr.tobytes(), 2, 2, "bgr8")
        out = np.asarray(bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8"))
        if out.shape != expected.shape or out.dtype != np.uint8 or not np.array_equal(out, expected):
            return None, "cv_bridge probe conversion returned a wrong image"
        return bridge, "cv_bridge imported and its probe conversion succeeded"
    except Exception as err:  # ImportError, AttributeError (NumPy 2 ABI), RuntimeError, CvBridgeError...
        first_line = (str(err).strip().splitlines() or [""])[0]
        return None, f"cv_bridge unusable ({type(err).__name__}: {first_line})"


def _select(name: str | None) -> _Backend:
    choice = (name or os.environ.get(BACKEND_ENV, "") or "auto").strip().lower()
    if choice in ("rosbags", "rosbags-image", "rosbags_image", "builtin"):
        return _Backend(BACKEND_ROSBAGS, f"forced ({BACKEND_ENV} or set_backend)")
    if choice not in ("auto", "cv_bridge"):
        raise ValueError(f"image backend ({BACKEND_ENV} or set_backend) must be 'auto', 'cv_bridge' or "
                         f"'rosbags-image', got {choice!r}")
    bridge, reason = _probe_cv_bridge()
    if bridge is not None:
        return _Backend(BACKEND_CV_BRIDGE, reason, bridge)
    if choice == "cv_bridge":
        raise ImageDecodeError(f"image backend 'cv_bridge' was requested but {reason}")
    _LOG.info("image conversion: using rosbags-image backend: %s", reason)
    return _Backend(BACKEND_ROSBAGS, reason)


def _get_backend() -> _Backend:
    global _backend
    backend = _backend
    if backend is None:
        with _backend_lock:
            if _backend is None:
                _backend = _select(None)
            backend = _backend
    return backend


def set_backend(name: str | None = None) -> str:
    """(Re)select the backend: None/"auto" probes cv_bridge, or force "cv_bridge"/"rosbags-image".

    Returns the backend name now in use.
    """
    global _backend
    with _backend_lock:
        _backend = _select(name)
        return _backend.name


def backend_name() -> str:
    """Name of the backend in use, "cv_bridge" or "rosbags-image" (selected on first call; log it once)."""
    return _get_backend().name


def backend_reason() -> str:
    """Why the current backend was chosen (e.g. the cv_bridge import error)."""
    return _get_backend().reason


# --------------------------------------------------------------------------------------------------
# Decoding


class _RawView:
    """Validated, padding-free view of a raw Image for rosbags.image (duck-typed message)."""

    __slots__ = ("data", "encoding", "height", "is_bigendian", "step", "width")

    def __init__(self, data: np.ndarray, encoding: str, height: int, width: int, step: int,
                 is_bigendian: int) -> None:
        self.data = data
        self.encoding = encoding
        self.height = height
        self.width = width
        self.step = step
        self.is_bigendian = is_bigendian


def _as_bytes(data: Any, what: str) -> np.ndarray:
    """Message `data` (array.array('B'), bytes, numpy uint8, list) -> 1-D uint8 view without copying."""
    if isinstance(data, np.ndarray):
        if data.dtype != np.uint8:
            raise ImageDecodeError(f"{what} data must be uint8 bytes, got a {data.dtype} array")
        return data.reshape(-1)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError):
        try:
            return np.asarray(data, dtype=np.uint8).reshape(-1)
        except (TypeError, ValueError, OverflowError) as err:
            raise ImageDecodeError(f"{what} data must be a byte sequence, got {type(data).__name__}") from err


def _field(msg: Any, name: str) -> Any:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageDecodeError(
            f"expected a sensor_msgs/Image (encoding, height, width, step, data) or CompressedImage "
            f"(format, data) message, got {type(msg).__name__} without '{name}'") from None


def _validated_raw(msg: Any) -> tuple[_RawView, np.ndarray]:
    """Check a raw Image and return (padding-free view, original byte buffer)."""
    raw_encoding = str(_field(msg, "encoding"))
    encoding = raw_encoding.strip().lower()
    height, width, step = int(_field(msg, "height")), int(_field(msg, "width")), int(_field(msg, "step"))
    data = _field(msg, "data")
    big = int(bool(getattr(msg, "is_bigendian", 0)))
    if encoding not in _ENCODINGS:
        raise ImageDecodeError(f"unsupported image encoding {raw_encoding!r}; supported: "
                               f"{', '.join(SUPPORTED_ENCODINGS)} (or use a CompressedImage topic)")
    if height <= 0 or width <= 0:
        raise ImageDecodeError(f"image has zero size (height={height}, width={width}); expected both > 0")
    sample, samples = _ENCODINGS[encoding]
    if encoding in _YUV and width % 2:
        raise ImageDecodeError(f"{encoding} image width must be even (2 pixels share U/V), got {width}")
    row_bytes = width * sample * samples
    if step < row_bytes:
        raise ImageDecodeError(f"{encoding} image step {step} is smaller than width*bytes_per_pixel = "
                               f"{width}*{sample * samples} = {row_bytes}")
    buf = _as_bytes(data, "Image")
    if buf.size != height * step:
        raise ImageDecodeError(f"image data has {buf.size} bytes; expected height*step = {height}*{step} = "
                               f"{height * step} ({encoding} {width}x{height})")
    if step != row_bytes:
        rows = np.ascontiguousarray(buf.reshape(height, step)[:, :row_bytes]).reshape(-1)
    else:
        rows = buf
    return _RawView(rows, encoding, height, width, row_bytes, big), buf


def _builtin_raw(view: _RawView) -> np.ndarray:
    from rosbags.image import image_to_cvimage  # noqa: PLC0415  (imports cv2; cheap after first time)

    if view.encoding in ("mono16", "rgb16", "bgr16", "rgba16", "bgra16"):
        # Scale 16 -> 8 bit with rounding ourselves (rosbags truncates); colour order via rosbags below.
        img16 = image_to_cvimage(view)  # native byte order, (H, W) or (H, W, C) uint16
        img8 = ((img16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        enc8 = view.encoding.replace("16", "8")
        return _to_rgb_8bit(img8, enc8)
    return image_to_cvimage(view, "rgb8")


def _to_rgb_8bit(img: np.ndarray, encoding: str) -> np.ndarray:
    if encoding == "rgb8":
        return img
    code = {"bgr8": cv2.COLOR_BGR2RGB, "rgba8": cv2.COLOR_RGBA2RGB, "bgra8": cv2.COLOR_BGRA2RGB,
            "mono8": cv2.COLOR_GRAY2RGB}[encoding]
    return cv2.cvtColor(img, code)


def _finish(out: Any, buf: np.ndarray | None, height: int, width: int) -> np.ndarray:
    out = np.asarray(out)
    if out.shape != (height, width, 3) or out.dtype != np.uint8:
        raise ImageDecodeError(f"image conversion produced shape {out.shape} {out.dtype}; expected "
                               f"({height}, {width}, 3) uint8")
    if (buf is not None and np.may_share_memory(out, buf)) or not out.flags.writeable or not out.flags.c_contiguous:
        out = np.array(out, copy=True, order="C")
    return out


def _decode_raw(msg: Any) -> np.ndarray:
    view, buf = _validated_raw(msg)
    backend = _get_backend()
    if backend.bridge is not None and view.encoding not in backend.failed_encodings:
        try:
            out = backend.bridge.imgmsg_to_cv2(msg, desired_encoding="rgb8")
            return _finish(out, buf, view.height, view.width)
        except Exception as err:  # cv_bridge errors, NumPy 2 AttributeErrors, wrong output
            backend.failed_encodings.add(view.encoding)
            _LOG.warning("cv_bridge failed on a %s image (%s: %s); decoding %s with the built-in "
                         "rosbags-image path from now on", view.encoding, type(err).__name__, err, view.encoding)
    try:
        out = _builtin_raw(view)
    except ImageDecodeError:
        raise
    except Exception as err:  # rosbags ImageError, cv2.error
        raise ImageDecodeError(f"cannot convert {view.encoding} image to rgb8: {type(err).__name__}: {err}") from err
    return _finish(out, buf, view.height, view.width)


def _decode_compressed(msg: Any) -> np.ndarray:
    fmt = str(_field(msg, "format"))
    if _NON_IMAGE_CODECS.search(fmt.lower()):
        raise ImageDecodeError(f"unsupported CompressedImage format {fmt!r}; supported: jpeg and png "
                               f"(image_transport 'compressed'), not depth or video codecs")
    buf = _as_bytes(_field(msg, "data"), "CompressedImage")
    if buf.size == 0:
        raise ImageDecodeError(f"CompressedImage (format {fmt!r}) has no data; expected jpeg or png bytes")
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise ImageDecodeError(f"cannot decode CompressedImage (format {fmt!r}, {buf.size} bytes): data is "
                               f"corrupt or not jpeg/png")
    if img.dtype == np.uint16:
        img = ((img.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise ImageDecodeError(f"CompressedImage (format {fmt!r}) decoded to {img.dtype}; expected 8 or "
                               f"16 bit images")
    if img.ndim == 2:
        out = cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    elif img.shape[2] == 3:
        out = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    elif img.shape[2] == 4:
        out = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB)
    elif img.shape[2] == 1:
        out = cv2.cvtColor(img[:, :, 0], cv2.COLOR_GRAY2RGB)
    else:
        raise ImageDecodeError(f"CompressedImage (format {fmt!r}) has {img.shape[2]} channels; expected "
                               f"1, 3 or 4")
    return _finish(out, None, img.shape[0], img.shape[1])


def decode_image(msg: Any) -> np.ndarray:
    """sensor_msgs/Image or CompressedImage (rclpy or rosbags) -> (H, W, 3) uint8 RGB, C-contiguous, owned.

    Raw encodings: see SUPPORTED_ENCODINGS (16-bit scaled by 255/65535, rounded; row padding
    (step > width * bytes per pixel) removed; is_bigendian honoured). Compressed: jpeg/png (any
    `format` string such as "jpeg", "rgb8; jpeg compressed bgr8", "png").
    Raises ImageDecodeError for unsupported encodings/formats, size mismatches and corrupt data.
    """
    if hasattr(msg, "format") and not hasattr(msg, "encoding"):
        return _decode_compressed(msg)
    return _decode_raw(msg)
