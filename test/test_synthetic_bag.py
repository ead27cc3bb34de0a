"""Synthetic SO-101 bags: both storages x both image transports, read back with rosbags."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from rosbags.image import message_to_cvimage
from rosbags.rosbag2 import Reader
from rosbags.typesys import Stores, get_typestore

from act_interp_ros.bag.synthetic_bag import (
    DEFAULT_START_NS,
    FRAME_IDS,
    iter_synthetic_frames,
    write_synthetic_bag,
)
from act_interp_ros.cli.make_bag import main as make_bag_main

N = 12
HW = (48, 64)
TS = get_typestore(Stores.ROS2_HUMBLE)  # reading with the oldest supported store proves compatibility
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]


def _read(path):
    out: dict[str, list] = {}
    with Reader(path) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        counts = {c.topic: c.msgcount for c in reader.connections}
        for conn, t_ns, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t_ns, TS.deserialize_cdr(raw, conn.msgtype)))
    return types, counts, out


def _custom_data(path) -> dict:
    """The generator parameters recorded in metadata.yaml (rosbag2 custom_data)."""
    meta = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    return json.loads(meta["custom_data"]["act_interp_ros.synthetic"])


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("compressed", [False, True])
def test_bag_round_trip(tmp_path, storage, compressed):
    path = write_synthetic_bag(tmp_path / "bag", storage=storage, compressed=compressed, n_frames=N, image_size=HW,
                               seed=2)
    assert (path / "metadata.yaml").is_file()
    assert list(path.glob("*.mcap" if storage == "mcap" else "*.db3"))
    types, counts, msgs = _read(path)
    suffix = "/compressed" if compressed else ""
    img_type = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    cams = {"front": f"/camera/front/image_raw{suffix}", "wrist": f"/camera/wrist/image_raw{suffix}"}
    assert types == {cams["front"]: img_type, cams["wrist"]: img_type, "/joint_states": "sensor_msgs/msg/JointState"}
    assert all(c == N for c in counts.values()) and all(len(v) == N for v in msgs.values())

    frames = list(iter_synthetic_frames(n_frames=N, image_size=HW, seed=2))
    for cam, topic in cams.items():
        stamps = np.array([_stamp_ns(m) for _, m in msgs[topic]])
        assert [t for t, _ in msgs[topic]] == list(stamps)  # header stamp == bag receive time
        assert stamps[0] == DEFAULT_START_NS
        np.testing.assert_allclose(np.diff(stamps) / 1e9, 1 / 30, atol=1e-6)  # monotonic, 30 Hz
        for k, (_, msg) in enumerate(msgs[topic]):
            assert msg.header.frame_id == FRAME_IDS[cam]
            img = message_to_cvimage(msg, "rgb8")
            assert img.shape == (*HW, 3)
            expected = frames[k].images[cam]
            if compressed:
                assert msg.format.startswith("rgb8; jpeg")
                assert np.abs(img.astype(int) - expected.astype(int)).mean() < 6.0
            else:
                assert msg.encoding == "rgb8" and msg.step == HW[1] * 3
                assert np.array_equal(img, expected)

    js = msgs["/joint_states"]
    js_stamps = np.array([_stamp_ns(m) for _, m in js])
    assert [t for t, _ in js] == list(js_stamps)
    cam_stamps = np.array([_stamp_ns(m) for _, m in msgs[cams["front"]]])
    np.testing.assert_array_equal(js_stamps - cam_stamps, 2_000_000)  # 2 ms after its frame
    for k, (_, msg) in enumerate(js):
        assert list(msg.name) == JOINTS
        np.testing.assert_allclose(msg.position, frames[k].position_rad)
        np.testing.assert_allclose(msg.position * 57.29577951308232, frames[k].state)
    gripper = np.array([m.position[5] for _, m in js])
    assert gripper.min() >= 0.0 and gripper.max() <= 1.7453292519943295 + 1e-9


def test_bag_is_deterministic_and_seeded(tmp_path):
    a = write_synthetic_bag(tmp_path / "a", n_frames=4, image_size=HW, seed=5)
    b = write_synthetic_bag(tmp_path / "b", n_frames=4, image_size=HW, seed=5)
    c = write_synthetic_bag(tmp_path / "c", n_frames=4, image_size=HW, seed=6)
    data = [[bytes(m.data) for _, m in _read(p)[2]["/camera/front/image_raw"]] for p in (a, b, c)]
    assert data[0] == data[1] and data[0] != data[2]


def test_episodes_back_to_back_and_duration(tmp_path):
    path = write_synthetic_bag(tmp_path / "bag", storage="sqlite3", duration_s=0.2, n_episodes=2, image_size=HW,
                               seed=1, episode_gap_s=0.5)
    _, counts, msgs = _read(path)
    assert set(counts.values()) == {12}  # 2 x round(0.2 * 30)
    stamps = np.array([_stamp_ns(m) for _, m in msgs["/camera/wrist/image_raw"]])
    gaps = np.diff(stamps) / 1e9
    np.testing.assert_allclose(gaps[:5], 1 / 30, atol=1e-6)
    assert gaps[5] == pytest.approx(1 / 30 + 0.5, abs=1e-6)
    # the second episode restarts from (near) home with another cube layout
    js = [m.position for _, m in msgs["/joint_states"]]
    assert np.abs(js[6] - js[5]).max() > 0.02
    assert _custom_data(path)["n_episodes"] == 2


def test_existing_output_is_refused(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        write_synthetic_bag(tmp_path / "bag", n_frames=2, image_size=HW)
    with pytest.raises(ValueError, match="storage"):
        write_synthetic_bag(tmp_path / "other", storage="rosbag1", n_frames=2, image_size=HW)


def test_cli(tmp_path, caplog):
    out = tmp_path / "cli_bag"
    args = [str(out), "--storage", "sqlite3", "--compressed", "--frames", "3", "--height", "24", "--width", "32",
            "--seed", "4", "--quiet"]
    assert make_bag_main(args) == 0
    types, counts, _ = _read(out)
    assert set(types) == {"/camera/front/image_raw/compressed", "/camera/wrist/image_raw/compressed", "/joint_states"}
    assert set(counts.values()) == {3}
    assert make_bag_main(args) == 1  # exists
    assert "already exists" in caplog.text
    with pytest.raises(SystemExit) as exc:
        make_bag_main([str(tmp_path / "x"), "--storage", "zip"])
    assert exc.value.code == 2
    meta = _custom_data(out)
    assert meta["seed"] == 4 and meta["n_frames"] == 3 and meta["compressed"] is True
