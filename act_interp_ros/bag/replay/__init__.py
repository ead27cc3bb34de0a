"""Offline replay of a recorded bag through the node's tick pipeline (``act_interp_replay``).

* :mod:`.plan` - when the ticks are and which message each tick sees (pure);
* :mod:`.options` - what a run takes (options) and gives (summary);
* :mod:`.run`  - the run: the pipeline per tick, batched forwards, outputs.
"""
from act_interp_ros.bag.replay.plan import CLOCKS, TickPlan, build_plan, tick_times
from act_interp_ros.bag.replay.options import ReplayOptions, ReplaySummary
from act_interp_ros.bag.replay.run import NoActionError, ReplayError, replay_bag

__all__ = ["CLOCKS", "NoActionError", "ReplayError", "ReplayOptions", "ReplaySummary", "TickPlan", "build_plan",
           "replay_bag", "tick_times"]
