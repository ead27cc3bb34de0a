"""``act_interp_play``: play a bag into ROS 2 (:class:`~act_interp_ros.bag.play.BagPlayer`), as ``ros2 bag play``
would."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from act_interp_ros.bag.play import BagPlayer
from act_interp_ros.bag.reader import BagError

logger = logging.getLogger("act_interp_ros.bag.play")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="act_interp_play",
        description="Publish a rosbag2 (mcap/sqlite3) through rclpy with its original timing. Publishers are "
        "RELIABLE/VOLATILE KEEP_LAST(--qos-depth).",
    )
    p.add_argument("bag", type=Path, help="bag directory (metadata.yaml) or .mcap/.db3 file")
    p.add_argument("--rate", type=float, default=1.0, help="playback speed factor (default 1.0)")
    p.add_argument("--loop", action="store_true", help="repeat until Ctrl-C")
    p.add_argument("--clock", action="store_true", help="publish /clock (bag time) for use_sim_time nodes")
    p.add_argument("--clock-hz", type=float, default=100.0, help="/clock rate with --clock (default 100)")
    p.add_argument("--topics", nargs="+", default=None, metavar="T", help="play only these topics")
    p.add_argument("--start-offset", type=float, default=0.0, metavar="S", help="skip the first S seconds")
    p.add_argument("--delay", type=float, default=0.0, metavar="S", help="sleep S seconds before playing")
    p.add_argument("--wait-for-subscribers", type=int, default=0, metavar="N",
                   help="before playing, wait until every played topic has N matched subscriptions")
    p.add_argument("--wait-timeout", type=float, default=10.0, metavar="S",
                   help="give up waiting for subscribers after S seconds (exit code 1; default 10)")
    p.add_argument("--qos-depth", type=int, default=10, help="publisher KEEP_LAST depth (default 10)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit codes: 0 ok, 1 bag/playback error, 2 usage error, 130 interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # e.g. started as a background job of a script:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C / SIGINT must still stop us cleanly
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        from rclpy.utilities import remove_ros_args

        cli_args = remove_ros_args(["act_interp_play", *argv])[1:]
    except ImportError:
        cli_args = argv
    args = build_parser().parse_args(cli_args)
    try:
        player = BagPlayer(
            args.bag, rate=args.rate, loop=args.loop, clock=args.clock, clock_hz=args.clock_hz, topics=args.topics,
            start_offset=args.start_offset, delay=args.delay, qos_depth=args.qos_depth,
            wait_for_subscribers=args.wait_for_subscribers, wait_timeout=args.wait_timeout,
        )
    except BagError as exc:
        logger.error("%s", exc)
        return 1
    info = player.info
    logger.info("playing %s: %d messages, %.2f s, topics %s at rate %g%s", info.path, info.message_count,
                info.duration_s, player.topics, player.rate, " (loop)" if player.loop else "")

    import rclpy
    from rclpy.context import Context

    context = Context()  # own context: main() also works inside a process that already uses rclpy
    rclpy.init(args=["act_interp_play", *argv], context=context)
    node = rclpy.create_node("act_interp_play", context=context)
    code = 0
    try:
        player.run(node)
    except BagError as exc:
        logger.error("%s", exc)
        code = 1
    except KeyboardInterrupt:
        player.stop()
        logger.info("interrupted; %s", player.summary.format())
        code = 130
    finally:
        node.destroy_node()
        if context.ok():
            rclpy.shutdown(context=context)
    if code == 0 and player.stopped:
        code = 130  # stopped by a shutdown from outside (SIGINT handled by rclpy)
    return code


if __name__ == "__main__":
    sys.exit(main())
