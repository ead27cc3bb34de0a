"""Entry point of ``act_interp_node`` (``ros2 run act_interp_ros act_interp_node``)."""

from __future__ import annotations

import sys

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

from act_interp_ros.ros.interp_node import NODE_NAME, ActInterpNode, StartupError

GIL_SWITCH_INTERVAL_S = 0.0005


def main(argv: list[str] | None = None) -> int:
    """Start the node; configuration errors exit with code 2 and one line naming the parameter."""
    rclpy.init(args=sys.argv if argv is None else argv)
    try:
        node = ActInterpNode()
    except StartupError as exc:
        rclpy.logging.get_logger(NODE_NAME).fatal(f"cannot start: {exc}")
        rclpy.try_shutdown()
        return 2
    # control + inputs + GradCAM + diagnostics can each have a thread. The control tick runs torch, which
    # drops and re-takes the GIL around every op; with the default 5 ms switch interval it then waits
    # behind the executor's Python threads (measured here: inference p90 ~500 ms instead of ~60 ms).
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    executor = MultiThreadedExecutor(num_threads=4)
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
