"""The control tick shared by the live node and the offline replay (ROS-free).

* :mod:`.reasons`      why a tick computed no action (one taxonomy);
* :mod:`.policy_setup` settings -> engine options, policy loading and checks against the settings;
* :mod:`.training_range` the observation against the checkpoint's training statistics;
* :mod:`.tick`         snapshot -> gate -> decode -> observation, and command limiting;
* :mod:`.stepping`     the plan rule: the policy's own queue / ensembler, a fresh plan after any gap;
* :mod:`.policy_step`  the policy step of a tick (plan rule, select, non-finite check, limits) -> TickResult;
* :mod:`.output_values` which value goes on which output (scalars, tick status, action message);
* :mod:`.contract`     every output topic, its type and content;
* :mod:`.health`       counters and the recent-window health level.

The live node's threads are in :mod:`act_interp_ros.runtime`.
"""
from act_interp_ros.pipeline.contract import Output, OutputContract, output_contract
from act_interp_ros.pipeline.health import Health, LatencyWindow, LoopStats
from act_interp_ros.pipeline.policy_setup import (
    attention_options,
    check_policy,
    check_policy_options,
    load_policy,
)
from act_interp_ros.pipeline.reasons import SKIP_KINDS, SkipReason
from act_interp_ros.pipeline.stepping import PlanStepper
from act_interp_ros.pipeline.policy_step import PolicyStep, TickResult
from act_interp_ros.pipeline.tick import PreparedTick, TickPipeline, TickSnapshot, header_stamp_ns
from act_interp_ros.pipeline.training_range import RangeFlag, TrainingRangeGuard

__all__ = [
    "Health",
    "LatencyWindow",
    "LoopStats",
    "Output",
    "OutputContract",
    "PlanStepper",
    "PolicyStep",
    "PreparedTick",
    "RangeFlag",
    "SKIP_KINDS",
    "SkipReason",
    "TickPipeline",
    "TickResult",
    "TickSnapshot",
    "TrainingRangeGuard",
    "attention_options",
    "check_policy",
    "check_policy_options",
    "header_stamp_ns",
    "load_policy",
    "output_contract",
]
