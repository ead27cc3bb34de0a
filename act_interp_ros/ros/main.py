"""Entry point of ``act_interp_node`` (``ros2 run act_interp_ros act_interp_node``).

Exit codes: 0 after a normal shutdown (Ctrl-C), 2 for configuration that cannot work (one line naming
the parameter), 1 for anything else that stops start-up (one line; the traceback at debug level).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from act_interp_ros.ros.interp_node import NODE_NAME, ActInterpNode, StartupError

EXIT_CONFIG = 2
EXIT_INTERNAL = 1


def main(argv: list[str] | None = None, make_node: Callable[[], ActInterpNode] = ActInterpNode) -> int:
    """Start the node (``make_node()``) and spin it until shutdown; see the module docstring for exit codes."""
    logger = rclpy.logging.get_logger(NODE_NAME)
    try:
        rclpy.init(args=sys.argv if argv is None else argv)
    except Exception as exc:  # noqa: BLE001 - e.g. a params file rcl cannot parse
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        logger.fatal(f"cannot start: the ROS arguments or params file could not be read: {first}")
        return EXIT_CONFIG
    node = None
    try:
        node = make_node()
    except StartupError as exc:
        logger.fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - one line, not a traceback
        logger.debug("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        logger.fatal(f"cannot start: {type(exc).__name__}: {exc} (internal error; run with --ros-args "
                     "--log-level debug for the traceback)")
        rclpy.try_shutdown()
        return EXIT_INTERNAL
    # Callbacks only hand work to the node's worker threads, so one executor thread serves them all.
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
