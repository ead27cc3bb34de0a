"""Rough cost of reading LeRobotDataset frames (video vs PNG storage) and of writing a Rerun recording.

Not a test. Builds synthetic SO-101 datasets (front + wrist cameras) with LeRobot, then times, per size:

* ``open_episode``: up-front validation (data file, video files, decoder probe, first + last frame);
* iterating the episode through ``LeRobotDataset.__getitem__`` (per frame, both cameras decoded);
* logging each frame (both camera images) to a Rerun recording, raw and JPEG (quality 90).

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.dataset_read [--frames 60] [--sizes 96x128 480x640]

On a shared machine the numbers are rough (median of per-frame times is reported).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from act_interp_ros.dataset import LeRobotDatasetSource
from act_interp_ros.dataset.video_backend import clear_backend_cache
from act_interp_ros.dataset.synthetic import build_synthetic_dataset
from act_interp_ros.rerun_recording import RerunRecordingWriter

log = logging.getLogger("bench.dataset_read")


def _ms(seconds: float) -> float:
    return round(1000.0 * seconds, 2)


def measure(size: tuple[int, int], frames: int, use_videos: bool, tmp: Path) -> dict:
    t0 = time.perf_counter()
    ds = build_synthetic_dataset(tmp / f"{'video' if use_videos else 'image'}_{size[0]}x{size[1]}", n_episodes=1,
                                 episode_steps=frames, image_size=size, cameras=("front", "wrist"),
                                 use_videos=use_videos, keep_images=False)
    build_s = time.perf_counter() - t0
    clear_backend_cache()
    source = LeRobotDatasetSource.open(ds.root)
    t0 = time.perf_counter()
    reader = source.open_episode(0)
    open_s = time.perf_counter() - t0
    per_frame = []
    images = []
    it = iter(reader)
    while True:
        t0 = time.perf_counter()
        try:
            frame = next(it)
        except StopIteration:
            break
        per_frame.append(time.perf_counter() - t0)
        images.append(frame.images)
    row = {
        "storage": "video (AV1)" if use_videos else "PNG in parquet",
        "size": f"{size[0]}x{size[1]}",
        "cameras": 2,
        "frames": frames,
        "decoder": source.video_backend or "-",
        "build_s": round(build_s, 2),
        "open_episode_ms": _ms(open_s),
        "read_ms_per_frame_median": _ms(statistics.median(per_frame)),
        "read_ms_per_frame_mean": _ms(statistics.fmean(per_frame)),
    }
    for quality in (None, 90):
        path = tmp / f"bench_{quality}.rrd"
        writer = RerunRecordingWriter(path, jpeg_quality=quality, blueprint=True)
        times = []
        for i, imgs in enumerate(images):
            t0 = time.perf_counter()
            overlays = {"front": {"attention": imgs["observation.images.front"]}}
            writer.log_frame(0, i, i / source.fps, images=imgs, overlays=overlays)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        writer.close()
        close_s = time.perf_counter() - t0
        key = "raw" if quality is None else f"jpeg{quality}"
        row[f"rrd_{key}_ms_per_frame_median"] = _ms(statistics.median(times))
        row[f"rrd_{key}_close_ms"] = _ms(close_s)
        row[f"rrd_{key}_kb_per_frame"] = round(path.stat().st_size / 1024 / len(images), 1)
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--sizes", nargs="+", default=["96x128", "480x640"])
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.sizes:
            h, w = (int(v) for v in text.lower().split("x"))
            for use_videos in (True, False):
                rows.append(measure((h, w), args.frames, use_videos, Path(tmp)))
                log.warning("%s", rows[-1])
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in cols) + " |")
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
