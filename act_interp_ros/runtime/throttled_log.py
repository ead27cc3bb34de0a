"""One line per problem per period, and a full traceback only the first time (ROS-free, ``logging``)."""

from __future__ import annotations

import logging
import threading
import time
import traceback

__all__ = ["ThrottledLog"]


class ThrottledLog:
    """Throttled warnings and errors keyed by what went wrong (a skip kind, a side method, a worker)."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self._at: dict[str, float] = {}
        self._traced: set[str] = set()
        self._lock = threading.Lock()

    def _due(self, key: str, period_s: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._at.get(key, -1e9) < period_s:
                return False
            self._at[key] = now
            return True

    def warning(self, key: str, text: str, period_s: float = 2.0) -> None:
        if self._due(key, period_s):
            self.logger.warning(text)

    def exception(self, key: str, text: str, exc: BaseException) -> None:
        """The full traceback the first time per key, then one throttled line."""
        with self._lock:
            first = key not in self._traced
            self._traced.add(key)
        if first:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
            self.logger.error(f"{text}: {type(exc).__name__}: {exc}\n{tb}")
        elif self._due(key, 2.0):
            self.logger.error(f"{text}: {type(exc).__name__}: {exc}")
