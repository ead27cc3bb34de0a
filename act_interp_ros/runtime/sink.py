"""What the live loop needs from its host (the ROS node): where outputs go, and the test hooks.

The loop computes values (:mod:`act_interp_ros.pipeline.output_values`); the host serialises and sends
them. Keys are the output contract's (:mod:`act_interp_ros.pipeline.contract`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from act_interp_ros.pipeline.reasons import SkipReason

__all__ = ["LoopHooks", "OutputSink"]


class OutputSink(Protocol):
    """The host of a :class:`~act_interp_ros.runtime.live_loop.LiveLoop` (called from its worker threads)."""

    def now_ns(self) -> int:
        """The current ROS time (sim time under ``use_sim_time``)."""

    def watched(self, key: str) -> bool:
        """Whether anyone receives output ``key`` now (overlays are rendered only then)."""

    def scalar(self, key: str, value: float) -> None:
        """Send a Float32 output (keys the contract does not list are ignored)."""

    def overlay(self, key: str, rgb: np.ndarray, source_header: Any) -> None:
        """Send an (H, W, 3) uint8 overlay stamped with its source image's header."""

    def tick_status(self, tick: int, time_ns: int, reason: SkipReason | None,
                    stamps_ns: Mapping[str, int | None]) -> None:
        """Send ``~/tick_status`` for one tick (``reason`` ``None``: it acted)."""

    def action(self, command: np.ndarray, time_ns: int) -> None:
        """Send one (n_joints,) command in ROS units (only while commanding)."""

    def diagnostics_now(self) -> None:
        """Send diagnostics now, not at the next period (an input just left its training range)."""


@dataclass(frozen=True)
class LoopHooks:
    """Test hooks, injected by tests through the node's constructor (production passes none).

    Attributes:
        before_tick: called at the start of every control tick; an exception there is a failed tick.
        before_side_method: called with the method's name before each side-method run; an exception is a
            failed run of that method.
    """

    before_tick: Callable[[], None] | None = None
    before_side_method: Callable[[str], None] | None = None
