"""Route the package's Python ``logging`` through the node's ROS logger (so it reaches /rosout).

The ROS-free core, pipeline and settings log with ``logging.getLogger(__name__)`` under
``act_interp_ros``; inside the node those records go to ``node.get_logger()`` with the matching severity,
so they carry the node name and a ROS stamp, appear in ``ros2 run`` output and on ``/rosout``, and are not
printed a second time by Python's last-resort handler.
"""
from __future__ import annotations

import logging

__all__ = ["RosLogHandler", "route_package_logging", "unroute_package_logging"]

PACKAGE_LOGGER = "act_interp_ros"


class RosLogHandler(logging.Handler):
    """A logging handler that forwards each record to an rclpy logger (RcutilsLogger)."""

    def __init__(self, ros_logger) -> None:
        super().__init__(logging.DEBUG)
        self.ros_logger = ros_logger

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            if record.levelno >= logging.CRITICAL:
                self.ros_logger.fatal(text)
            elif record.levelno >= logging.ERROR:
                self.ros_logger.error(text)
            elif record.levelno >= logging.WARNING:
                self.ros_logger.warning(text)
            elif record.levelno >= logging.INFO:
                self.ros_logger.info(text)
            else:
                self.ros_logger.debug(text)
        except Exception:  # noqa: BLE001 - logging must never raise into the caller
            self.handleError(record)


def route_package_logging(ros_logger, level: int = logging.INFO) -> RosLogHandler:
    """Attach a :class:`RosLogHandler` to the package logger; returns it (remove it on shutdown)."""
    handler = RosLogHandler(ros_logger)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


def unroute_package_logging(handler: RosLogHandler) -> None:
    logger = logging.getLogger(PACKAGE_LOGGER)
    logger.removeHandler(handler)
    logger.propagate = True
