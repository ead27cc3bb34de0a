"""Rerun recording writer: files read back with Rerun's own dataframe API and checked by its CLI."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

rr = pytest.importorskip("rerun")
rdf = pytest.importorskip("rerun.dataframe")

from act_interp_ros.rerun_recording import RerunRecordingWriter, entity_part, episode_entity  # noqa: E402
from replay_helpers import rerun_column  # noqa: E402

pytestmark = pytest.mark.timeout(300)

JOINTS = ["shoulder_pan.pos", "shoulder_lift.pos", "gripper.pos"]
FPS = 30.0
EPISODES = {0: 5, 2: 3}  # episode index -> frames


def _image(ep: int, i: int, cam: str, hw=(12, 16)) -> np.ndarray:
    rng = np.random.default_rng([ep, i, len(cam)])
    return rng.integers(0, 256, (*hw, 3), dtype=np.uint8)


def _heat(ep: int, i: int) -> np.ndarray:
    return np.random.default_rng([ep, i, 99]).random((3, 4))


def _pred(ep: int, i: int) -> np.ndarray:
    return np.array([10.0 * ep + i, -i, 0.5 * i])


def _rec(ep: int, i: int) -> np.ndarray:
    out = _pred(ep, i) + 0.25
    if i == 1:
        out[0] = np.nan  # not logged: a gap in the series
    return out


def _scalars(ep: int, i: int) -> dict[str, float]:
    return {"attention/front": 0.1 * i + ep, "attention/proprio": 0.5 - 0.1 * i,
            "faithfulness": np.nan if i == 2 else 1.0 + i}


def _write(path: Path, jpeg_quality=None) -> RerunRecordingWriter:
    writer = RerunRecordingWriter(path, joint_names=JOINTS, jpeg_quality=jpeg_quality)
    for ep, n in EPISODES.items():
        writer.begin_episode(ep, task=f"task of episode {ep}")
        for i in range(n):
            writer.log_frame(
                ep, i, i / FPS,
                images={"observation.images.front": _image(ep, i, "front"), "wrist": _image(ep, i, "wrist")},
                overlays={"front": {"attention": _image(ep, i, "att"), "gradcam": _heat(ep, i)},
                          "observation.images.wrist": {"attention": _image(ep, i, "watt")}},
                predicted_action=_pred(ep, i), recorded_action=_rec(ep, i), scalars=_scalars(ep, i),
            )
    return writer


_column = rerun_column  # (index values, component values) of one entity's rows, through rerun.dataframe


@pytest.fixture(scope="module")
def rrd(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("rrd") / "run.rrd"
    _write(path).close()
    return path


def test_file_in_place_and_nothing_else(rrd):
    assert rrd.is_file() and rrd.stat().st_size > 0
    assert sorted(p.name for p in rrd.parent.iterdir()) == ["run.rrd"]


def test_entities_and_timelines(rrd):
    recording = rdf.load_recording(rrd)
    schema = recording.schema()
    assert {c.name for c in schema.index_columns()} >= {"frame_index", "time"}
    entities = {c.entity_path for c in schema.component_columns() if not c.entity_path.startswith("/__")}
    expected = set()
    for ep in EPISODES:
        base = "/" + episode_entity(ep)
        expected |= {f"{base}/task", f"{base}/camera/front/image", f"{base}/camera/wrist/image",
                     f"{base}/camera/front/overlay/attention", f"{base}/camera/front/overlay/gradcam",
                     f"{base}/camera/wrist/overlay/attention", f"{base}/scalar/attention/front",
                     f"{base}/scalar/attention/proprio", f"{base}/scalar/faithfulness"}
        expected |= {f"{base}/action/{j}/{kind}" for j in JOINTS for kind in ("predicted", "recorded")}
    assert entities == expected


def test_action_and_scalar_series_values(rrd):
    recording = rdf.load_recording(rrd)
    for ep, n in EPISODES.items():
        base = "/" + episode_entity(ep)
        for j, joint in enumerate(JOINTS):
            for kind, fn in (("predicted", _pred), ("recorded", _rec)):
                frames, values = _column(recording, f"{base}/action/{joint}/{kind}", "Scalars:scalars")
                want = [(i, fn(ep, i)[j]) for i in range(n) if np.isfinite(fn(ep, i)[j])]
                assert frames == [i for i, _ in want]  # every episode restarts at frame 0
                np.testing.assert_allclose([v[0] for v in values], [v for _, v in want])
            _, names = _column(recording, f"{base}/action/{joint}/predicted", "SeriesLines:names")
            assert names[0] == ["predicted"]
        for name in ("attention/front", "attention/proprio", "faithfulness"):
            frames, values = _column(recording, f"{base}/scalar/{name}", "Scalars:scalars")
            want = [(i, _scalars(ep, i)[name]) for i in range(n) if np.isfinite(_scalars(ep, i)[name])]
            assert frames == [i for i, _ in want]
            np.testing.assert_allclose([v[0] for v in values], [v for _, v in want])


def test_time_timeline_is_seconds_into_the_episode(rrd):
    recording = rdf.load_recording(rrd)
    for ep, n in EPISODES.items():
        entity = f"/{episode_entity(ep)}/action/{JOINTS[1]}/predicted"
        table = recording.view(index="time", contents=entity).select().read_all()
        seconds = [t.total_seconds() for t in table.column("time").to_pylist()]
        # read back as Python timedeltas: microsecond resolution (truncated or rounded depending on the Python)
        np.testing.assert_allclose(seconds, np.arange(n) / FPS, atol=1e-6)


def test_images_and_overlays_exact_in_raw_mode(rrd):
    from act_interp_ros.core.render import render_overlay

    recording = rdf.load_recording(rrd)
    for ep, n in EPISODES.items():
        base = f"/{episode_entity(ep)}/camera"
        cases = {
            f"{base}/front/image": lambda i: _image(ep, i, "front"),
            f"{base}/wrist/image": lambda i: _image(ep, i, "wrist"),
            f"{base}/front/overlay/attention": lambda i: _image(ep, i, "att"),
            f"{base}/wrist/overlay/attention": lambda i: _image(ep, i, "watt"),
            f"{base}/front/overlay/gradcam": lambda i: render_overlay(_image(ep, i, "front"), _heat(ep, i), alpha=0.5),
        }
        for entity, want in cases.items():
            frames, buffers = _column(recording, entity, "Image:buffer")
            _, formats = _column(recording, entity, "Image:format")
            assert frames == list(range(n)), entity
            for i, buf, fmt in zip(frames, buffers, formats):
                h, w = fmt[0]["height"], fmt[0]["width"]
                got = np.asarray(buf[0], dtype=np.uint8).reshape(h, w, 3)
                np.testing.assert_array_equal(got, want(i), err_msg=f"{entity} frame {i}")


def test_task_is_static_text(rrd):
    recording = rdf.load_recording(rrd)
    for ep in EPISODES:
        entity = f"/{episode_entity(ep)}/task"
        table = recording.view(index="frame_index", contents=entity).select_static().read_all()
        assert table.column(f"{entity}:TextDocument:text").to_pylist() == [[f"task of episode {ep}"]]


def test_rerun_cli_verifies_file_and_blueprint(rrd):
    """The viewer's own loader (the `rerun` CLI shipped with rerun-sdk) accepts the file and its layout."""
    verify = subprocess.run([sys.executable, "-m", "rerun", "rrd", "verify", str(rrd)],
                            capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stderr
    printed = subprocess.run([sys.executable, "-m", "rerun", "rrd", "print", "-vvv", str(rrd)],
                             capture_output=True, text=True, timeout=120)
    assert printed.returncode == 0, printed.stderr
    text = printed.stdout
    assert "Blueprint" in text
    for name in ("episode 0", "episode 2", "front: attention", "front: gradcam", "wrist: attention",
                 f"action: {JOINTS[0]}", "attention", "scalars"):
        assert name in text, name


def test_jpeg_mode_decodes_close(tmp_path):
    import cv2

    from act_interp_ros.synthetic import HOME_POSE, CubeState, SceneConfig, SceneState, SyntheticScene

    scene = SyntheticScene(SceneConfig(image_size=(96, 128)))
    frame = scene.render(SceneState(HOME_POSE, CubeState.on_table(0.2, 0.05)), "front")
    path = tmp_path / "jpeg.rrd"
    with RerunRecordingWriter(path, jpeg_quality=90) as writer:
        writer.log_frame(0, 0, 0.0, images={"front": frame})
    recording = rdf.load_recording(path)
    _, blobs = _column(recording, "/episode_000/camera/front/image", "EncodedImage:blob")
    _, media = _column(recording, "/episode_000/camera/front/image", "EncodedImage:media_type")
    assert media == [["image/jpeg"]]
    bgr = cv2.imdecode(np.asarray(blobs[0][0], dtype=np.uint8), cv2.IMREAD_COLOR)
    got = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    assert got.shape == frame.shape
    assert np.abs(got.astype(int) - frame.astype(int)).mean() < 4.0


def test_abort_leaves_nothing_and_keeps_an_existing_file(tmp_path):
    path = tmp_path / "run.rrd"
    path.write_bytes(b"previous run")
    writer = _write(path)
    assert len(list(tmp_path.iterdir())) == 2  # the old file and the staged one
    writer.abort()
    assert sorted(tmp_path.iterdir()) == [path] and path.read_bytes() == b"previous run"
    with pytest.raises(RuntimeError, match="already closed or aborted"):
        writer.log_frame(0, 0, 0.0, scalars={"x": 1.0})

    with pytest.raises(KeyError):
        with RerunRecordingWriter(path) as w:
            w.log_frame(0, 0, 0.0, scalars={"x": 1.0})
            raise KeyError("the replay failed")
    assert sorted(tmp_path.iterdir()) == [path] and path.read_bytes() == b"previous run"

    dropped = RerunRecordingWriter(tmp_path / "dropped.rrd")
    dropped.log_frame(0, 0, 0.0, scalars={"x": 1.0})
    del dropped
    gc.collect()
    assert sorted(tmp_path.iterdir()) == [path]


def test_close_replaces_an_existing_file(tmp_path):
    path = tmp_path / "run.rrd"
    path.write_bytes(b"previous run")
    with RerunRecordingWriter(path) as writer:
        writer.log_frame(1, 0, 0.0, scalars={"x": 2.0})
    assert rdf.load_recording(path).schema().column_for("/episode_001/scalar/x", "Scalars:scalars") is not None
    assert sorted(tmp_path.iterdir()) == [path]


def test_invalid_inputs(tmp_path):
    writer = RerunRecordingWriter(tmp_path / "bad.rrd", joint_names=JOINTS)
    with pytest.raises(ValueError, match="action has 2 values; expected 3"):
        writer.log_frame(0, 0, 0.0, predicted_action=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"expected \(H, W, 3\) uint8 RGB"):
        writer.log_frame(0, 0, 0.0, images={"front": np.zeros((4, 4, 3), np.float32)})
    with pytest.raises(ValueError, match="time_s must be finite"):
        writer.log_frame(0, 0, float("nan"))
    with pytest.raises(ValueError, match="jpeg_quality"):
        RerunRecordingWriter(tmp_path / "q.rrd", jpeg_quality=0)
    writer.abort()
    assert not list(tmp_path.iterdir())


def test_entity_names():
    assert entity_part("observation.images.front") == "front"
    assert entity_part("shoulder_pan.pos") == "shoulder_pan.pos"
    assert entity_part("a b/c") == "a_b_c"
    assert episode_entity(7) == "episode_007"


def test_dataset_frames_to_recording(tmp_path):
    """Frames read from a LeRobotDataset go into the recording unchanged (recorded actions, images)."""
    from act_interp_ros.dataset import LeRobotDatasetSource
    from act_interp_ros.dataset.synthetic import build_synthetic_dataset

    ds = build_synthetic_dataset(tmp_path / "ds", n_episodes=1, episode_steps=4, image_size=(24, 32),
                                 cameras=("front",), use_videos=False)
    source = LeRobotDatasetSource.open(ds.root)
    path = tmp_path / "out" / "replay.rrd"
    with RerunRecordingWriter(path, joint_names=source.feature_names("action"), jpeg_quality=None) as writer:
        for frame in source.iter_frames(0):
            writer.begin_episode(frame.episode_index, task=frame.task)
            writer.log_frame(frame.episode_index, frame.frame_index, frame.timestamp, images=frame.images,
                             recorded_action=frame.action)
    recording = rdf.load_recording(path)
    frames, values = _column(recording, "/episode_000/action/gripper.pos/recorded", "Scalars:scalars")
    assert frames == [0, 1, 2, 3]
    np.testing.assert_allclose([v[0] for v in values], ds.episodes[0].action[:4, 5].astype(np.float32))
    _, buffers = _column(recording, "/episode_000/camera/front/image", "Image:buffer")
    got = np.asarray(buffers[3][0], np.uint8).reshape(24, 32, 3)
    np.testing.assert_array_equal(got, ds.source_images(0, "front")[3])
