"""The README demo end to end: ``act_interp_demo`` with a short bag, the real node, real rclpy.

One 3 s demo run (module fixture) through ``main([...])`` feeds the content checks; one more run through
the console script is interrupted with SIGINT to check the clean-up. The known-answer model comes from
its cache (``$ACT_INTERP_CACHE`` or ~/.cache/act_interp_ros); on a machine without it the first run
trains it (up to about 10 minutes on 2 CPU cores), hence the long timeout.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from act_interp_ros.cli import demo as demo_cli  # noqa: E402
from act_interp_ros.demo import run_demo  # noqa: E402

pytestmark = [pytest.mark.timeout(1800), pytest.mark.trained_models("known_answer", "known_answer_maps")]

SECONDS = 3.0


def _decode(path: Path) -> tuple[int, tuple[int, int]]:
    """(frame count, (H, W)) of a video, decoded frame by frame."""
    import av

    n, size = 0, (0, 0)
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            n += 1
            size = (frame.height, frame.width)
    return n, size


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> tuple[int, Path, float]:
    out = tmp_path_factory.mktemp("demo") / "demo_output"
    t0 = time.monotonic()
    code = demo_cli.main(["--seconds", str(SECONDS), "--out", str(out), "--quiet"])
    return code, out, time.monotonic() - t0


@pytest.fixture(scope="module")
def summary(demo) -> dict:
    code, out, _ = demo
    assert code == 0, f"act_interp_demo exited with {code}"
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def cameras(summary) -> list[str]:
    """The known-answer model's cameras (the demo runs the node with the policy's own cameras)."""
    keys = run_demo.policy_camera_overrides(Path(summary["model"]["path"]))["camera_keys"]
    return [k.split(".", 2)[2] for k in keys]


def test_demo_writes_one_complete_folder(demo, summary, cameras):
    code, out, wall = demo
    names = {p.name for p in out.iterdir()}
    assert not [n for n in names if n.startswith(".")], f"staging left behind: {names}"
    assert set(summary["files"]) == names
    per_camera = [f"{kind}_{cam}.mp4" for cam in cameras for kind in ("attention", "gradcam", "gradient_x_input")]
    for name in ("overview.mp4", *per_camera, "attention_plot.png", "summary.md", "summary.json", "node.log"):
        assert name in names, name
    print(f"\ndemo ({SECONDS:g} s bag) took {wall:.0f} s; timings {summary['timings_s']}")


def test_videos_decode_at_source_size(demo, summary, cameras):
    _, out, _ = demo
    h, w = summary["bag"]["image_size_hw"]
    n_frames = summary["bag"]["episodes"] * summary["bag"]["frames_per_episode"]
    for cam in cameras:
        for kind in ("attention", "gradcam", "gradient_x_input"):
            n, size = _decode(out / f"{kind}_{cam}.mp4")
            assert n == n_frames, (kind, cam, n)
            assert size == (h, w), (kind, cam, size)
    n, size = _decode(out / "overview.mp4")
    assert n == n_frames and size[0] > 0


def test_plot_and_stills_are_pngs(demo, summary):
    _, out, _ = demo
    import cv2

    plot = cv2.imread(str(out / "attention_plot.png"))
    assert plot is not None and plot.shape[0] > 200 and plot.shape[1] > 400
    stills = sorted(out.glob("still_*.png"))
    assert len(stills) >= 2, "expected stills at several moments of the episode"
    assert [s["file"] for s in summary["stills"]] == [p.name for p in sorted(stills, key=lambda p: p.name)]
    for p in stills:
        img = cv2.imread(str(p))
        assert img is not None and img.shape[0] > 400 and img.shape[1] > 600, p.name
    assert {s["phase"] for s in summary["stills"]} <= {"approach", "grasp", "lift", "carry"}


def test_summary_numbers_are_sane(summary, cameras):
    s = summary
    assert s["ok"] is True
    played = s["playback"]["frames_played_per_camera"]
    assert played == {cam: round(SECONDS * 30) for cam in cameras}
    assert s["playback"]["dropped"] == 0
    for cam in cameras:
        for kind in ("attention", "gradcam", "gradient_x_input"):
            assert s["overlays_received"][kind][cam] > 0, kind
    maps = s["maps"]["methods"]  # the known-answer numbers: the pixel method finds the target, attention does not
    assert maps["gradient_x_input"]["target_mass_vs_uniform"] > 5 > maps["attention"]["target_mass_vs_uniform"]
    p = s["proprio_attention"]
    assert p["count"] > 0
    assert 0.0 <= p["min"] <= p["mean"] <= p["max"] <= 1.0
    for v in p["per_phase"].values():
        assert 0.0 <= v["mean"] <= 1.0
    mae = s["model"]["held_out_action_mae"]
    assert mae["model"] < mae["mean_action_baseline"], "the known-answer model should beat the mean action"
    assert s["diagnostics"].get("messages", 0) > 0, "no /diagnostics from the node"
    t = s["ticks"]  # every control tick reported on ~/tick_status
    assert t["reported"] > 0 and 0 < t["computed"] <= t["reported"]
    assert 0.0 < t["computed_fraction"] <= 1.0 and 0.0 < t["maps_fraction"] <= 1.0
    rt = s["realtime"]  # the real-time targets are reported with what they were measured against (not judged here)
    assert rt["isolated_forward"]["p50_ms"] > 0 and rt["node_inference_p50_ms"] > 0
    assert {k: v["value"] is not None for k, v in rt["targets"].items()} == {
        "computed_fraction": True, "maps_fraction": True, "inference_vs_isolated": True}
    assert s["node"]["exit_code"] is not None
    md = (Path(s["output_dir"]) / "summary.md").read_text()
    assert md.startswith("# act_interp_ros demo") and "## Real time" in md


def test_bad_arguments_fail_fast_with_one_message(tmp_path, caplog):
    assert demo_cli.main(["--seconds", "0.5", "--out", str(tmp_path / "o")]) == 1
    assert "--seconds" in caplog.text
    assert demo_cli.main(["--policy", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert "not a LeRobot pretrained_model" in caplog.text
    assert not (tmp_path / "o" / "summary.json").exists()


def _node_pids(domain: int) -> list[int]:
    """act_interp_node processes running on ``domain`` (from /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes()
            env = (proc / "environ").read_bytes()
        except OSError:
            continue
        if b"act_interp_node" in cmd and f"ROS_DOMAIN_ID={domain}\0".encode() in env:
            pids.append(int(proc.name))
    return pids


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs /proc to find the node process")
def test_ctrl_c_during_playback_stops_the_node_and_writes_nothing(tmp_path, summary):
    """SIGINT while the bag plays: exit 130, the node is gone, no output and no staging folder remain."""
    exe = Path(sys.executable).with_name("act_interp_demo")
    if not exe.is_file():
        pytest.skip("act_interp_demo console script not installed next to the interpreter")
    domain = 90 + os.getpid() % 10
    env = {**os.environ, run_demo.DOMAIN_ENV: str(domain), "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "interrupted"
    proc = subprocess.Popen([str(exe), "--seconds", str(SECONDS), "--rate", "0.25", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    lines = []
    try:
        deadline = time.monotonic() + 600
        for line in proc.stdout:
            lines.append(line)
            if "playing the bag" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        time.sleep(2.0)
        assert _node_pids(domain), "the node should be running during playback"
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    text = "".join(lines) + rest
    assert proc.returncode == 130, text
    assert "interrupted" in text
    assert not _node_pids(domain), "the node outlived the demo"
    assert not (out / "summary.json").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")] if out.exists() else True
