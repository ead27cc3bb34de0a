"""Image conversion: every supported encoding decodes to the known RGB image, for rclpy messages and for
rosbags-deserialised messages; row padding, compressed jpeg/png, clear errors.

cv_bridge is NOT installed in this environment, so the backend that runs here is "rosbags-image"
(`test_backend_here_is_rosbags_image` asserts it). The cv_bridge selection logic is exercised with
stand-in `cv_bridge` modules: a broken one (NumPy 2 ABI failure on first conversion) must be rejected,
and a working one must be used and fall back per encoding when it fails.
"""
from __future__ import annotations

import array
import sys
import types

import cv2
import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage as RclpyCompressedImage
from sensor_msgs.msg import Image as RclpyImage
from std_msgs.msg import Header

from act_interp_ros.inputs import image_decoding as ic
from act_interp_ros.inputs.image_decoding import (
    SUPPORTED_ENCODINGS,
    ImageDecodeError,
    backend_name,
    backend_reason,
    decode_image,
    set_backend,
)

TYPESTORE = get_typestore(Stores.ROS2_HUMBLE)
H, W = 6, 8


def known_rgb(h: int = H, w: int = W) -> np.ndarray:
    """(h, w, 3) uint8 with distinct colours; pixel pairs (2k, 2k+1) share a colour so YUV 4:2:2 is lossless."""
    y, x = np.mgrid[0:h, 0:w]
    pair = x // 2
    r = (40 + 50 * pair + 7 * y) % 256
    g = (200 - 30 * y + 11 * pair) % 256
    b = (90 + 25 * pair * y) % 256
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def gray_of(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., 1].copy()


def rgb_to_yuv(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """BT.601 limited range (what OpenCV's YUV 4:2:2 decoders expect)."""
    r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    return tuple(np.clip(np.round(c), 0, 255).astype(np.uint8) for c in (y, u, v))


def pack_yuv422(rgb: np.ndarray, order: str) -> np.ndarray:
    y, u, v = rgb_to_yuv(rgb)
    out = np.empty((rgb.shape[0], rgb.shape[1] * 2), np.uint8)
    y0, y1, uu, vv = y[:, 0::2], y[:, 1::2], u[:, 0::2], v[:, 0::2]
    planes = {"yuyv": (y0, uu, y1, vv), "uyvy": (uu, y0, vv, y1)}[order]
    for i, p in enumerate(planes):
        out[:, i::4] = p
    return out


def raw_payload(rgb: np.ndarray, encoding: str, big_endian: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(payload rows (H, row_bytes) uint8, expected RGB) for an encoding."""
    gray = gray_of(rgb)
    alpha = np.full(rgb.shape[:2] + (1,), 77, np.uint8)
    eight = {
        "rgb8": (rgb, rgb),
        "bgr8": (rgb[..., ::-1], rgb),
        "rgba8": (np.concatenate([rgb, alpha], -1), rgb),
        "bgra8": (np.concatenate([rgb[..., ::-1], alpha], -1), rgb),
        "mono8": (gray, np.repeat(gray[..., None], 3, -1)),
        "yuv422_yuy2": (pack_yuv422(rgb, "yuyv"), rgb),
        "yuyv": (pack_yuv422(rgb, "yuyv"), rgb),
        "yuv422": (pack_yuv422(rgb, "uyvy"), rgb),
        "uyvy": (pack_yuv422(rgb, "uyvy"), rgb),
    }
    if encoding in eight:
        arr, expected = eight[encoding]
        return np.ascontiguousarray(arr).reshape(rgb.shape[0], -1), expected
    # 16 bit: v * 257 maps exactly back to v with the 255/65535 scaling
    base, _ = raw_payload(rgb, encoding.replace("16", "8"))
    wide = base.astype(np.uint16) * 257
    wide = wide.astype(">u2" if big_endian else "<u2")
    expected = raw_payload(rgb, encoding.replace("16", "8"))[1]
    return wide.view(np.uint8).reshape(rgb.shape[0], -1), expected


def with_padding(rows: np.ndarray, pad: int) -> np.ndarray:
    if pad == 0:
        return rows
    junk = np.full((rows.shape[0], pad), 0xAB, np.uint8)
    return np.concatenate([rows, junk], axis=1)


def rclpy_image(rows: np.ndarray, encoding: str, w: int, big_endian: bool = False) -> RclpyImage:
    msg = RclpyImage(height=rows.shape[0], width=w, encoding=encoding, is_bigendian=int(big_endian),
                     step=rows.shape[1])
    msg.header.stamp.sec, msg.header.frame_id = 5, "cam"
    msg.data = array.array("B", rows.tobytes())
    return msg


def rosbags_image(rows: np.ndarray, encoding: str, w: int, big_endian: bool = False):
    """A rosbags Image as the replay tool gets it: serialised to CDR and deserialised back."""
    t = TYPESTORE.types
    msg = t["sensor_msgs/msg/Image"](
        header=t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=5, nanosec=0), frame_id="cam"),
        height=rows.shape[0], width=w, encoding=encoding, is_bigendian=int(big_endian), step=rows.shape[1],
        data=np.ascontiguousarray(rows).reshape(-1))
    return TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def rosbags_compressed(data: bytes, fmt: str):
    t = TYPESTORE.types
    msg = t["sensor_msgs/msg/CompressedImage"](
        header=t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=0), frame_id="cam"),
        format=fmt, data=np.frombuffer(data, np.uint8))
    return TYPESTORE.deserialize_cdr(TYPESTORE.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


def rclpy_compressed(data: bytes, fmt: str) -> RclpyCompressedImage:
    msg = RclpyCompressedImage(format=fmt)
    msg.data = array.array("B", data)
    return msg


MAKERS = {"rclpy": rclpy_image, "rosbags": rosbags_image}
CMAKERS = {"rclpy": rclpy_compressed, "rosbags": rosbags_compressed}


@pytest.fixture(autouse=True)
def default_backend():
    set_backend(None)
    yield
    set_backend(None)


def test_backend_here_is_rosbags_image():
    assert backend_name() == "rosbags-image"
    assert "cv_bridge unusable" in backend_reason()


@pytest.mark.parametrize("kind", sorted(MAKERS))
@pytest.mark.parametrize("encoding", SUPPORTED_ENCODINGS)
@pytest.mark.parametrize("pad", [0, 5])
def test_decode_every_encoding(kind, encoding, pad):
    rgb = known_rgb()
    rows, expected = raw_payload(rgb, encoding)
    if pad and encoding.endswith("16"):
        pad = 6  # keep 16-bit rows 2-byte aligned, as real drivers do
    msg = MAKERS[kind](with_padding(rows, pad), encoding, W)
    out = decode_image(msg)
    assert out.shape == (H, W, 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous and out.flags.writeable
    if encoding in ("yuv422_yuy2", "yuyv", "yuv422", "uyvy"):
        assert np.abs(out.astype(int) - expected.astype(int)).max() <= 3
    else:
        np.testing.assert_array_equal(out, expected)


def test_decoded_array_does_not_alias_the_message():
    rgb = known_rgb()
    msg = rclpy_image(rgb.reshape(H, -1), "rgb8", W)
    out = decode_image(msg)
    out[:] = 0
    assert bytes(msg.data) == rgb.tobytes()


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_big_endian_mono16_and_scaling(kind):
    rgb = known_rgb()
    rows, expected = raw_payload(rgb, "mono16", big_endian=True)
    np.testing.assert_array_equal(decode_image(MAKERS[kind](rows, "mono16", W, big_endian=True)), expected)
    # scaling is 255/65535 with rounding: 0->0, 128->0, 129->1, 32896->128, 65535->255
    values = np.array([[0, 128, 129, 32896, 65535, 1000, 2000, 60000]], dtype="<u2")
    out = decode_image(MAKERS[kind](values.view(np.uint8).reshape(1, -1), "mono16", 8))
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 128, 255, 4, 8, 233])


@pytest.mark.parametrize("kind", sorted(CMAKERS))
@pytest.mark.parametrize("fmt", ["jpeg", "rgb8; jpeg compressed bgr8", "bgr8; jpeg compressed bgr8", ""])
def test_decode_jpeg_is_close(kind, fmt):
    rgb = cv2.resize(known_rgb(), (64, 48), interpolation=cv2.INTER_NEAREST)
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    out = decode_image(CMAKERS[kind](data.tobytes(), fmt))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - rgb.astype(int)).mean() < 6


@pytest.mark.parametrize("kind", sorted(CMAKERS))
@pytest.mark.parametrize("fmt", ["png", "rgb8; png compressed bgr8"])
def test_decode_png_is_exact_including_gray_rgba_and_16bit(kind, fmt):
    rgb = known_rgb()
    make = CMAKERS[kind]
    png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    np.testing.assert_array_equal(decode_image(make(png, fmt)), rgb)
    gray = gray_of(rgb)
    png = cv2.imencode(".png", gray)[1].tobytes()
    np.testing.assert_array_equal(decode_image(make(png, "mono8; png compressed mono8")),
                                  np.repeat(gray[..., None], 3, -1))
    bgra = np.concatenate([rgb[..., ::-1], np.full((H, W, 1), 9, np.uint8)], -1)
    np.testing.assert_array_equal(decode_image(make(cv2.imencode(".png", bgra)[1].tobytes(), fmt)), rgb)
    bgr16 = rgb[..., ::-1].astype(np.uint16) * 257
    np.testing.assert_array_equal(decode_image(make(cv2.imencode(".png", bgr16)[1].tobytes(), fmt)), rgb)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_raw_errors(kind):
    make = MAKERS[kind]
    rows = known_rgb().reshape(H, -1)
    with pytest.raises(ImageDecodeError) as info:
        decode_image(make(rows, "32FC1", W))
    assert str(info.value).startswith("unsupported image encoding '32FC1'; supported: rgb8, bgr8, rgba8, bgra8, "
                                      "mono8, mono16")
    assert "yuv422_yuy2" in str(info.value)
    with pytest.raises(ImageDecodeError, match=r"image data has 141 bytes; expected height\*step = 6\*24 = 144"):
        decode_image(_with_fields(make(rows, "rgb8", W), data=rows.reshape(-1)[:-3]))
    with pytest.raises(ImageDecodeError, match=r"image has zero size \(height=0, width=8\); expected both > 0"):
        decode_image(_with_fields(make(rows, "rgb8", W), height=0, data=np.zeros(0, np.uint8)))
    with pytest.raises(ImageDecodeError, match=r"rgb8 image step 20 is smaller than width\*bytes_per_pixel = "
                                               r"8\*3 = 24"):
        decode_image(_with_fields(make(rows, "rgb8", W), step=20))
    yuv = pack_yuv422(known_rgb(H, W), "yuyv")[:, :-2]
    with pytest.raises(ImageDecodeError, match=r"yuyv image width must be even .*got 7"):
        decode_image(make(yuv, "yuyv", 7))


def _with_fields(msg, **fields):
    for k, v in fields.items():
        if k == "data" and isinstance(msg, RclpyImage):
            v = array.array("B", np.asarray(v, np.uint8).tobytes())
        setattr(msg, k, v)
    return msg


@pytest.mark.parametrize("kind", sorted(CMAKERS))
def test_compressed_errors(kind):
    make = CMAKERS[kind]
    png = cv2.imencode(".png", known_rgb())[1].tobytes()
    with pytest.raises(ImageDecodeError, match=r"cannot decode CompressedImage \(format 'jpeg', 40 bytes\): data "
                                               r"is corrupt or not jpeg/png"):
        decode_image(make(b"\xff\xd8" + b"\x00" * 38, "jpeg"))
    with pytest.raises(ImageDecodeError, match=r"cannot decode CompressedImage"):
        decode_image(make(png[: len(png) // 3], "png"))  # truncated
    with pytest.raises(ImageDecodeError, match=r"has no data; expected jpeg or png bytes"):
        decode_image(make(b"", "jpeg"))
    with pytest.raises(ImageDecodeError, match=r"unsupported CompressedImage format '16UC1; compressedDepth png'"):
        decode_image(make(png, "16UC1; compressedDepth png"))


def test_not_an_image_message():
    with pytest.raises(ImageDecodeError, match=r"expected a sensor_msgs/Image .* got Header without 'encoding'"):
        decode_image(Header())


# ----------------------------------------------------------------------------- cv_bridge selection


def _fake_cv_bridge(imgmsg_to_cv2) -> types.ModuleType:
    mod = types.ModuleType("cv_bridge")

    class CvBridgeError(Exception):
        pass

    class CvBridge:
        def imgmsg_to_cv2(self, img_msg, desired_encoding="passthrough"):
            return imgmsg_to_cv2(img_msg, desired_encoding, CvBridgeError)

    mod.CvBridge, mod.CvBridgeError = CvBridge, CvBridgeError
    return mod


def test_broken_cv_bridge_numpy2_abi_falls_back_to_rosbags(monkeypatch):
    def broken(msg, desired, err):  # what apt cv_bridge built for NumPy 1.x does under NumPy 2
        raise AttributeError("_ARRAY_API not found")

    monkeypatch.setitem(sys.modules, "cv_bridge", _fake_cv_bridge(broken))
    assert set_backend("auto") == "rosbags-image"
    assert "cv_bridge unusable (AttributeError: _ARRAY_API not found)" in backend_reason()
    rgb = known_rgb()
    np.testing.assert_array_equal(decode_image(rclpy_image(rgb[..., ::-1].reshape(H, -1), "bgr8", W)), rgb)
    with pytest.raises(ImageDecodeError, match="image backend 'cv_bridge' was requested but cv_bridge unusable"):
        set_backend("cv_bridge")


def test_working_cv_bridge_is_used_and_falls_back_per_encoding(monkeypatch, caplog):
    calls = []

    def bgr_only(msg, desired, err):  # a cv_bridge that handles bgr8 but not yuyv
        calls.append(msg.encoding)
        if msg.encoding != "bgr8" or desired != "rgb8":
            raise err(f"Unsupported conversion from [{msg.encoding}] to [{desired}]")
        im = np.ndarray((msg.height, msg.width, 3), np.uint8, buffer=msg.data)
        return np.ascontiguousarray(im[..., ::-1])

    monkeypatch.setitem(sys.modules, "cv_bridge", _fake_cv_bridge(bgr_only))
    assert set_backend(None) == "cv_bridge" and backend_name() == "cv_bridge"
    rgb = known_rgb()
    np.testing.assert_array_equal(decode_image(rosbags_image(rgb[..., ::-1].reshape(H, -1), "bgr8", W)), rgb)
    yuv = rclpy_image(pack_yuv422(rgb, "yuyv"), "yuyv", W)
    with caplog.at_level("WARNING", logger=ic.__name__):
        for _ in range(3):
            assert np.abs(decode_image(yuv).astype(int) - rgb.astype(int)).max() <= 3
    assert calls.count("yuyv") == 1, "a failing encoding is not retried with cv_bridge"
    assert sum("cv_bridge failed on a yuyv image" in r.getMessage() for r in caplog.records) == 1
    # validation happens before cv_bridge: errors are the same on every backend
    with pytest.raises(ImageDecodeError, match="unsupported image encoding 'foo'"):
        decode_image(rclpy_image(rgb.reshape(H, -1), "foo", W))
