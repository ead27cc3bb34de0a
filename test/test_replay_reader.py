"""Opening bags for offline replay: every storage form, and a clear BagError for each bad input."""

from __future__ import annotations

import shutil

import pytest

from act_interp_ros.bag.reader import BagError, header_stamp_ns, open_bag
from replay_helpers import T0_NS, storage_file, write_minimal_bag


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("reader_bags")
    return {s: write_minimal_bag(root / f"bag_{s}", storage=s) for s in ("mcap", "sqlite3")}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
@pytest.mark.parametrize("form", ["directory", "storage file"])
def test_open_directory_and_storage_file(bags, storage, form):
    path = bags[storage] if form == "directory" else storage_file(bags[storage])
    with open_bag(path) as reader:
        assert set(reader.topics) == {"/camera/front/image_raw", "/camera/wrist/image_raw", "/joint_states"}
        assert reader.topics["/joint_states"].msgtype == "sensor_msgs/msg/JointState"
        assert reader.message_count == 15
        msgs = list(reader.messages(["/camera/front/image_raw"]))
        assert [m.log_ns for m in msgs] == sorted(m.log_ns for m in msgs)
        for m in msgs:  # the fast CDR stamp parser agrees with full deserialisation
            stamp = reader.deserialize(m).header.stamp
            assert header_stamp_ns(m.data) == stamp.sec * 10**9 + stamp.nanosec
        assert header_stamp_ns(msgs[0].data) == T0_NS
        assert reader.has_header("sensor_msgs/msg/Image")


def test_directory_without_metadata_uses_its_single_storage_file(bags, tmp_path):
    crashed = tmp_path / "crashed_recording"
    shutil.copytree(bags["mcap"], crashed)
    (crashed / "metadata.yaml").unlink()
    with open_bag(crashed) as reader:
        assert reader.message_count == 15


def _error(path) -> str:
    with pytest.raises(BagError) as info:
        open_bag(path)
    msg = str(info.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_missing_path(tmp_path):
    msg = _error(tmp_path / "nope")
    assert "does not exist" in msg and "nope" in msg


def test_not_a_bag(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    assert "is not a ROS 2 bag" in _error(text)
    empty_dir = tmp_path / "empty_dir"
    empty_dir.mkdir()
    assert "no metadata.yaml" in _error(empty_dir)


def test_misnamed_bag_file_gets_a_rename_hint(bags, tmp_path):
    renamed = tmp_path / "recording.bin"
    shutil.copy(storage_file(bags["mcap"]), renamed)
    assert "rename it to end in .mcap" in _error(renamed)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_corrupt_files(bags, tmp_path, storage):
    src = storage_file(bags[storage])
    garbage = tmp_path / f"garbage{src.suffix}"
    garbage.write_bytes(b"this is not a bag at all" * 10)
    assert "corrupt" in _error(garbage)
    truncated = tmp_path / f"truncated{src.suffix}"
    truncated.write_bytes(src.read_bytes()[: src.stat().st_size // 3])
    assert "corrupt" in _error(truncated)


def test_empty_bag(tmp_path):
    bag = write_minimal_bag(tmp_path / "empty", messages=False)
    msg = _error(bag)
    assert "is empty" in msg and "/joint_states" in msg


def test_missing_topic_lists_topics_and_types(bags):
    with open_bag(bags["mcap"]) as reader:
        with pytest.raises(BagError) as info:
            reader.require_topic("/camera/top/image_raw", ("sensor_msgs/msg/Image",))
        msg = str(info.value)
        assert "'/camera/top/image_raw'" in msg and "not in the bag" in msg
        assert "/camera/front/image_raw [sensor_msgs/msg/Image, 5 msgs]" in msg
        assert "/joint_states [sensor_msgs/msg/JointState, 5 msgs]" in msg
        with pytest.raises(BagError, match="has type sensor_msgs/msg/JointState, expected"):
            reader.require_topic("/joint_states", ("sensor_msgs/msg/Image",))
