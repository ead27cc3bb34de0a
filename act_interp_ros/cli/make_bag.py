"""``act_interp_make_bag``: write a synthetic SO-101 bag (see :mod:`act_interp_ros.bag.synthetic_bag`).

Example::

    act_interp_make_bag /tmp/so101_synth --storage mcap --frames 300 --height 96 --width 128 --seed 3
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

logger = logging.getLogger("act_interp_make_bag")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="act_interp_make_bag",
        description="Write a deterministic synthetic SO-101 rosbag2 (two cameras + /joint_states, 30 Hz).",
    )
    p.add_argument("out", type=Path, help="output bag directory (must not exist)")
    p.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap", help="storage plugin (default mcap)")
    p.add_argument("--compressed", action="store_true",
                   help="JPEG sensor_msgs/CompressedImage on <topic>/compressed instead of raw rgb8 Image")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--frames", type=int, default=150, help="frames per episode (default 150 = 5 s)")
    length.add_argument("--duration", type=float, default=None, help="seconds per episode (instead of --frames)")
    p.add_argument("--episodes", type=int, default=1, help="episodes back to back (seeds seed, seed+1, ...)")
    p.add_argument("--height", type=int, default=480, help="image height (default 480)")
    p.add_argument("--width", type=int, default=640, help="image width (default 640)")
    p.add_argument("--seed", type=int, default=0, help="scene seed of the first episode (default 0)")
    p.add_argument("--fps", type=float, default=30.0, help="camera / joint-state rate (default 30)")
    p.add_argument("--jpeg-quality", type=int, default=90, help="JPEG quality with --compressed (default 90)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 error, 2 usage)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    if args.out.exists():
        logger.error("output %s already exists; choose a new path or delete it first", args.out)
        return 1
    for name in ("frames", "episodes", "height", "width"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            logger.error("--%s must be >= 1, got %s", name, getattr(args, name))
            return 2
    if args.duration is not None and args.duration <= 0:
        logger.error("--duration must be > 0, got %s", args.duration)
        return 2

    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag  # heavy imports after arg checks

    n_frames = args.frames if args.duration is None else int(round(args.duration * args.fps))
    total = n_frames * args.episodes
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="frame", desc=str(args.out))
    try:
        path = write_synthetic_bag(
            args.out,
            storage=args.storage,
            compressed=args.compressed,
            n_frames=n_frames,
            image_size=(args.height, args.width),
            seed=args.seed,
            n_episodes=args.episodes,
            fps=args.fps,
            jpeg_quality=args.jpeg_quality,
            progress=(lambda n: bar.update(1)) if bar is not None else None,
        )
    except (ValueError, FileExistsError, OSError) as exc:
        logger.error("%s", exc)
        return 1
    finally:
        if bar is not None:
            bar.close()
    logger.info("wrote %s (%d frames, %s, %s)", path, total, args.storage, "jpeg" if args.compressed else "raw")
    return 0


if __name__ == "__main__":
    sys.exit(main())
