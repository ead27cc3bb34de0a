"""Overlay encoding into rclpy Image / CompressedImage messages (round trip through the ROS-free decoder)."""

from __future__ import annotations

import array

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CompressedImage as RclpyCompressedImage
from sensor_msgs.msg import Image as RclpyImage
from std_msgs.msg import Header

from act_interp_ros.inputs.image_decoding import decode_image
from act_interp_ros.ros.image_encoding import encode_compressed, encode_rgb_image
from test_image_decoding import known_rgb


def test_encode_rgb_image_round_trip_and_header():
    rgb = known_rgb(480, 640)
    header = Header(frame_id="front_optical")
    header.stamp.sec, header.stamp.nanosec = 42, 123
    msg = encode_rgb_image(rgb, header)
    assert isinstance(msg, RclpyImage)
    assert (msg.height, msg.width, msg.encoding, msg.step, msg.is_bigendian) == (480, 640, "rgb8", 1920, 0)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec, msg.header.frame_id) == (42, 123, "front_optical")
    assert msg.header is not header
    assert isinstance(msg.data, array.array) and msg.data.typecode == "B"
    np.testing.assert_array_equal(decode_image(msg), rgb)
    # non-contiguous input (a crop) works too
    crop = rgb[10:20, 5:15]
    np.testing.assert_array_equal(decode_image(encode_rgb_image(crop, None)), crop)
    with pytest.raises(ValueError, match=r"expected an \(H, W, 3\) uint8 RGB image, got shape \(4, 4\) uint8"):
        encode_rgb_image(np.zeros((4, 4), np.uint8), header)


def test_encode_compressed_round_trip():
    rgb = cv2.resize(known_rgb(), (64, 48), interpolation=cv2.INTER_NEAREST)
    header = Header(frame_id="wrist")
    msg = encode_compressed(rgb, header, fmt="png")
    assert isinstance(msg, RclpyCompressedImage) and msg.format == "rgb8; png compressed bgr8"
    assert msg.header.frame_id == "wrist"
    np.testing.assert_array_equal(decode_image(msg), rgb)
    msg = encode_compressed(rgb, header, quality=95)
    assert msg.format == "rgb8; jpeg compressed bgr8"
    assert np.abs(decode_image(msg).astype(int) - rgb.astype(int)).mean() < 6
