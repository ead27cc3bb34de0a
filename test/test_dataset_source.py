"""LeRobotDataset input layer: synthetic datasets written with LeRobot, read back through LeRobot.

Two small datasets (2 episodes of 10 and 7 frames, front + wrist cameras at 48x64) are built once per
module with :func:`build_synthetic_dataset`: one with the cameras as AV1 video, one with PNG images in the
parquet files. Frames read back must equal the builder's source frames (exactly for PNG, closely for
video); every bad input must fail with one :class:`DatasetError` line before any frame is yielded.
"""

from __future__ import annotations

import json
import re
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from act_interp_ros.dataset import DatasetError, LeRobotDatasetSource, format_indices, probe_video_backend
from act_interp_ros.dataset import video_backend
from act_interp_ros.dataset.synthetic import DEFAULT_TASK, build_synthetic_dataset
from act_interp_ros.synthetic import JOINT_NAMES

pytestmark = pytest.mark.timeout(300)

SIZE = (48, 64)
STEPS = [10, 7]
CAMERAS = ("front", "wrist")
KEYS = tuple(f"observation.images.{c}" for c in CAMERAS)
VIDEO_MEAN_ABS_TOL = 8.0  # AV1 (CRF 30, yuv420p) at 48x64: measured ~3-5 grey levels mean abs error


@pytest.fixture(scope="module")
def video_ds(tmp_path_factory):
    return build_synthetic_dataset(tmp_path_factory.mktemp("ds") / "video", n_episodes=2, episode_steps=STEPS,
                                   image_size=SIZE, cameras=CAMERAS, use_videos=True, env_state=True, seed=3)


@pytest.fixture(scope="module")
def image_ds(tmp_path_factory):
    return build_synthetic_dataset(tmp_path_factory.mktemp("ds") / "image", n_episodes=2, episode_steps=STEPS,
                                   image_size=SIZE, cameras=CAMERAS, use_videos=False, env_state=False, seed=3)


def _copy(ds, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(ds.root, dst)
    return dst


def _assert_one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.strip() == msg and msg, repr(msg)
    return msg


# ------------------------------------------------------------------------------------------ metadata
def test_metadata(video_ds, image_ds):
    for ds, storage in ((video_ds, "video"), (image_ds, "image")):
        src = LeRobotDatasetSource.open(ds.root)
        assert src.fps == 30
        assert src.camera_keys == KEYS
        assert src.video_keys == (KEYS if storage == "video" else ())
        assert src.episode_indices == (0, 1)
        assert src.episode_lengths == {0: 10, 1: 7}
        assert src.image_sizes == {k: SIZE for k in KEYS}
        assert src.feature_shapes["observation.state"] == (6,)
        assert src.feature_shapes["action"] == (6,)
        assert src.has_env_state is (storage == "video")
        assert src.feature_names("action") == [f"{j}.pos" for j in JOINT_NAMES]
        info = src.episode_info(1)
        assert (info.length, info.tasks, info.duration_s) == (7, (DEFAULT_TASK,), pytest.approx(7 / 30))


def test_format_indices():
    assert format_indices([5, 0, 1, 2, 7, 8]) == "0-2, 5, 7-8"
    assert format_indices([]) == "none"


# ------------------------------------------------------------------------------------------ frames
def _check_non_image_fields(frames, ds, episode: int, with_env: bool) -> None:
    src_ep = ds.episodes[episode]
    assert [f.frame_index for f in frames] == list(range(STEPS[episode]))
    assert [f.episode_index for f in frames] == [episode] * STEPS[episode]
    np.testing.assert_allclose([f.timestamp for f in frames], np.arange(STEPS[episode]) / 30, atol=1e-6)
    assert [f.index for f in frames] == list(range(sum(STEPS[:episode]), sum(STEPS[: episode + 1])))
    np.testing.assert_array_equal(np.stack([f.state for f in frames]), src_ep.state.astype(np.float32))
    np.testing.assert_array_equal(np.stack([f.action for f in frames]), src_ep.action.astype(np.float32))
    assert all(f.task == DEFAULT_TASK for f in frames)
    if with_env:
        expected = np.concatenate([src_ep.target_pos, src_ep.distractor_pos], axis=1).astype(np.float32)
        np.testing.assert_array_equal(np.stack([f.env_state for f in frames]), expected)
    else:
        assert all(f.env_state is None for f in frames)


def test_png_storage_reads_back_exactly(image_ds):
    src = LeRobotDatasetSource.open(image_ds.root)
    for episode in src.episode_indices:
        frames = list(src.iter_frames(episode))
        _check_non_image_fields(frames, image_ds, episode, with_env=False)
        for key in KEYS:
            got = np.stack([f.images[key] for f in frames])
            assert got.dtype == np.uint8 and got.shape == (STEPS[episode], *SIZE, 3)
            np.testing.assert_array_equal(got, image_ds.source_images(episode, key))


def test_video_storage_reads_back_closely_and_in_order(video_ds):
    src = LeRobotDatasetSource.open(video_ds.root)
    for episode in src.episode_indices:
        frames = list(src.iter_frames(episode))
        _check_non_image_fields(frames, video_ds, episode, with_env=True)
        for key in KEYS:
            got = np.stack([f.images[key] for f in frames]).astype(np.float64)
            want = video_ds.source_images(episode, key).astype(np.float64)
            assert got.shape == want.shape == (STEPS[episode], *SIZE, 3)
            # distance of every decoded frame to every source frame: small on the diagonal, and the
            # diagonal is each row's minimum (frames decoded in order, none repeated or skipped)
            dist = np.abs(got[:, None] - want[None]).mean(axis=(2, 3, 4))
            diag = np.diag(dist)
            assert diag.max() < VIDEO_MEAN_ABS_TOL, (key, diag)
            assert list(dist.argmin(axis=1)) == list(range(len(frames))), (key, dist.round(1))


def test_builder_is_deterministic(tmp_path, image_ds):
    again = build_synthetic_dataset(tmp_path / "again", n_episodes=1, episode_steps=4, image_size=SIZE,
                                    cameras=("front",), use_videos=False, seed=3)
    other = build_synthetic_dataset(tmp_path / "other", n_episodes=1, episode_steps=4, image_size=SIZE,
                                    cameras=("front",), use_videos=False, seed=4)
    frames = list(LeRobotDatasetSource.open(again.root).iter_frames(0))
    np.testing.assert_array_equal(np.stack([f.images[KEYS[0]] for f in frames]), image_ds.source_images(0, KEYS[0])[:4])
    np.testing.assert_array_equal(np.stack([f.state for f in frames]),
                                  image_ds.episodes[0].state[:4].astype(np.float32))
    assert not np.array_equal(other.source_images(0, KEYS[0]), again.source_images(0, KEYS[0]))
    assert not list(tmp_path.glob(".*partial*")), "the builder left its staging directory"
    with pytest.raises(FileExistsError):
        build_synthetic_dataset(again.root, n_episodes=1, episode_steps=2, image_size=SIZE, use_videos=False)


# ------------------------------------------------------------------------------------------ decoder probe
def _torchcodec_decodes(path: Path) -> bool:
    from lerobot.datasets.video_utils import decode_video_frames

    try:
        decode_video_frames(path, [0.0], 1e-4, "torchcodec")
        return True
    except Exception:  # noqa: BLE001
        return False


def _first_video(ds) -> Path:
    return next(ds.root.glob("videos/observation.images.front/*/*.mp4"))


def test_probe_picks_a_working_decoder(video_ds, caplog):
    path = _first_video(video_ds)
    caplog.set_level(logging.INFO, logger="act_interp_ros.dataset.video_backend")
    chosen = probe_video_backend(path, 0.0, use_cache=False)
    if _torchcodec_decodes(path):
        assert chosen == "torchcodec"
    else:  # this machine: torchcodec imports but cannot load FFmpeg
        assert chosen == "pyav"
        assert any("'torchcodec' cannot decode" in r.getMessage() for r in caplog.records)
        assert any("using 'pyav'" in r.getMessage() for r in caplog.records)


def test_probe_falls_back_and_caches(video_ds, caplog):
    path = _first_video(video_ds)
    video_backend.clear_backend_cache()
    caplog.set_level(logging.INFO, logger="act_interp_ros.dataset.video_backend")
    candidates = ("no_such_backend", "pyav")
    assert probe_video_backend(path, 0.0, candidates=candidates) == "pyav"
    assert any("'no_such_backend' cannot decode" in r.getMessage() for r in caplog.records)
    caplog.clear()
    assert probe_video_backend(path, 0.0, candidates=candidates) == "pyav"  # cached: no second probe
    assert not [r for r in caplog.records if r.name == "act_interp_ros.dataset.source"]
    video_backend.clear_backend_cache()


def test_probe_on_unreadable_video_is_one_line(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(DatasetError) as exc:
        probe_video_backend(bad, 0.0, candidates=("pyav",), use_cache=False)
    msg = _assert_one_line(exc)
    assert "cannot decode video" in msg and "bad.mp4" in msg and "pyav:" in msg


def test_source_uses_probed_decoder(video_ds):
    video_backend.clear_backend_cache()
    src = LeRobotDatasetSource.open(video_ds.root)
    assert src.video_backend is None  # probed on the first episode opened
    src.open_episode(0)
    assert src.video_backend == ("torchcodec" if _torchcodec_decodes(_first_video(video_ds)) else "pyav")
    forced = LeRobotDatasetSource.open(video_ds.root, video_backend="pyav")
    assert forced.open_episode(1).dataset.video_backend == "pyav"


# ------------------------------------------------------------------------------------------ bad inputs
def test_missing_root(tmp_path):
    for spec in (tmp_path / "nope", "./definitely/not/here"):
        with pytest.raises(DatasetError) as exc:
            LeRobotDatasetSource.open(spec)
        assert "does not exist" in _assert_one_line(exc)
    assert not (tmp_path / "nope").exists()  # LeRobot would have created it
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.from_root(tmp_path / "nope")
    assert "does not exist" in _assert_one_line(exc)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.from_root(a_file)
    assert "is not a directory" in _assert_one_line(exc)


def test_not_a_lerobot_dataset(tmp_path):
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.open(tmp_path)
    assert "is not a LeRobotDataset: meta/info.json is missing" in _assert_one_line(exc)
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "info.json").write_text("{not json")
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.open(tmp_path)
    assert "is not readable JSON" in _assert_one_line(exc)


def test_old_format_version(image_ds, tmp_path):
    root = _copy(image_ds, tmp_path)
    info = json.loads((root / "meta" / "info.json").read_text())
    info["codebase_version"] = "v2.1"
    (root / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.open(root)
    msg = _assert_one_line(exc)
    assert "v2.1" in msg and "v3.0" in msg and "convert" in msg


def test_incomplete_metadata(image_ds, tmp_path):
    root = _copy(image_ds, tmp_path)
    (root / "meta" / "tasks.parquet").unlink()
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.open(root)
    assert "meta/tasks.parquet is missing" in _assert_one_line(exc)


def test_corrupt_episode_metadata(image_ds, tmp_path):
    root = _copy(image_ds, tmp_path)
    next((root / "meta" / "episodes").glob("*/*.parquet")).write_bytes(b"garbage" * 50)
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.open(root)
    assert "cannot read the metadata" in _assert_one_line(exc)


def test_hub_repo_id_offline_is_one_line(monkeypatch):
    from lerobot.utils.constants import HF_LEROBOT_HOME

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = "act-interp-ros-tests/never-downloaded-dataset"
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.open(repo)
    msg = _assert_one_line(exc)
    assert repo in msg and "offline" in msg and "local dataset root" in msg
    assert not (Path(HF_LEROBOT_HOME) / repo).exists()


def test_hub_repo_id_from_lerobot_cache_offline(image_ds, tmp_path, monkeypatch):
    """A hub dataset already in LeRobot's cache reads offline; an uncached episode file fails in one line."""
    import lerobot.utils.constants as constants

    repo = "someone/cached-dataset"
    shutil.copytree(image_ds.root, tmp_path / repo)
    monkeypatch.setattr(constants, "HF_LEROBOT_HOME", tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    src = LeRobotDatasetSource.open(repo)
    assert src.is_hub and src.root == tmp_path / repo and src.repo_id == repo
    frames = list(src.iter_frames(1))
    np.testing.assert_array_equal(frames[-1].images[KEYS[0]], image_ds.source_images(1, KEYS[0])[-1])
    next((tmp_path / repo / "data").glob("*/*.parquet")).unlink()
    with pytest.raises(DatasetError) as exc:
        src.iter_frames(0)
    msg = _assert_one_line(exc)
    assert "cannot load episode 0" in msg and "offline" in msg.lower()


def test_wrong_episode_index(image_ds):
    src = LeRobotDatasetSource.open(image_ds.root)
    with pytest.raises(DatasetError) as exc:
        src.open_episode(5)
    msg = _assert_one_line(exc)
    assert "episode 5 does not exist" in msg and "it has episodes 0-1" in msg
    with pytest.raises(DatasetError) as exc:
        src.iter_frames(-1)
    assert "episode -1 does not exist" in _assert_one_line(exc)
    with pytest.raises(DatasetError) as exc:
        src.select_episodes([1, 9, 12])
    assert "episodes 9, 12 do not exist" in _assert_one_line(exc)
    assert src.select_episodes([1, 0, 1]) == [1, 0]
    assert src.select_episodes(None) == [0, 1]


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_parquet_fails_before_any_frame(image_ds, tmp_path, damage):
    root = _copy(image_ds, tmp_path)
    data = next((root / "data").glob("*/*.parquet"))
    raw = data.read_bytes()
    data.write_bytes(b"\x00garbage\x00" * 64 if damage == "garbage" else raw[: len(raw) // 2])
    src = LeRobotDatasetSource.open(root)  # metadata is intact
    with pytest.raises(DatasetError) as exc:
        src.iter_frames(0)  # raises at the call: no iterator, no frame
    msg = _assert_one_line(exc)
    assert "corrupt data file" in msg and data.name in msg


def test_missing_data_rows(image_ds, tmp_path):
    import pyarrow.parquet as pq

    root = _copy(image_ds, tmp_path)
    data = next((root / "data").glob("*/*.parquet"))
    table = pq.read_table(data)
    pq.write_table(table.slice(0, 6), data)  # episode 0 has 10 frames; keep 6
    with pytest.raises(DatasetError) as exc:
        LeRobotDatasetSource.open(root).open_episode(0)
    msg = _assert_one_line(exc)
    assert "holds 6 frames of episode 0" in msg and "10 frames" in msg


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing"])
def test_unreadable_video_fails_before_any_frame(video_ds, tmp_path, damage):
    root = _copy(video_ds, tmp_path)
    video = next((root / "videos" / "observation.images.wrist").glob("*/*.mp4"))
    raw = video.read_bytes()
    if damage == "missing":
        video.unlink()
    else:
        video.write_bytes(b"\x00garbage\x00" * 64 if damage == "garbage" else raw[: len(raw) // 2])
    src = LeRobotDatasetSource.open(root, video_backend="pyav")
    with pytest.raises(DatasetError) as exc:
        src.iter_frames(1)  # episode 1 sits at the end of the concatenated video file
    msg = _assert_one_line(exc)
    assert str(video.relative_to(root)) in msg and "observation.images.wrist" in msg
    if damage == "missing":
        assert "is missing" in msg
    else:
        assert "unreadable video" in msg and "episode 1" in msg


def test_truncated_video_caught_at_last_frame(video_ds, tmp_path):
    """Episode 0's first frame still decodes from a half file; the up-front last-frame check fails it."""
    root = _copy(video_ds, tmp_path)
    video = next((root / "videos" / "observation.images.wrist").glob("*/*.mp4"))
    raw = video.read_bytes()
    video.write_bytes(raw[: len(raw) // 2])
    src = LeRobotDatasetSource.open(root, video_backend="pyav")
    with pytest.raises(DatasetError) as exc:
        src.iter_frames(0)
    msg = _assert_one_line(exc)
    assert "unreadable video" in msg and "of episode 0" in msg
    frame = int(re.search(r"frame (\d+) of episode 0", msg).group(1))
    assert frame > 0, msg  # frame 0 decoded: only the up-front check of a later frame can catch this


def test_video_damage_found_by_probe(video_ds, tmp_path):
    root = _copy(video_ds, tmp_path)
    next((root / "videos" / "observation.images.front").glob("*/*.mp4")).write_bytes(b"\x00" * 512)
    src = LeRobotDatasetSource.open(root, backend_candidates=("pyav",))
    video_backend.clear_backend_cache()
    with pytest.raises(DatasetError) as exc:
        src.open_episode(0)
    assert "cannot decode video" in _assert_one_line(exc)
    video_backend.clear_backend_cache()


def test_writing_video_leaves_the_thread_scheduling_unchanged(tmp_path):
    """FFmpeg's SVT-AV1 encoder makes the encoding thread SCHED_FIFO 99 when run as root; the builder gives the
    thread its policy back, so a test or benchmark process does not start nodes under a real-time policy."""
    import os

    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    build_synthetic_dataset(tmp_path / "v", n_episodes=1, episode_steps=4, image_size=SIZE, cameras=("front",),
                            use_videos=True)
    assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == before
