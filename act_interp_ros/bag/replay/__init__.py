"""Offline replay of a recorded bag through the node's tick pipeline (``act_interp_replay``).

* :mod:`.plan` - when the ticks are and which message each tick sees (pure);
* :mod:`.run`  - the run: the pipeline per tick, batched forwards, outputs.
"""
from act_interp_ros.bag.replay.plan import CLOCKS, TickPlan, build_plan, tick_times
from act_interp_ros.bag.replay.run import NoActionError, ReplayError, ReplayOptions, ReplaySummary, replay_bag

__all__ = ["CLOCKS", "NoActionError", "ReplayError", "ReplayOptions", "ReplaySummary", "TickPlan", "build_plan",
           "replay_bag", "tick_times"]
