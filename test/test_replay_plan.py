"""The replay's tick plan (pure): exact integer tick times, the newest message received by each tick, the copy
range of a start/end selection."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from act_interp_ros.bag.replay.plan import NS, PlanError, TopicIndex, build_plan, tick_times

T0 = 1_700_000_000 * NS


def index(topic: str, log_s, stamp_offset_s: float = 0.0) -> TopicIndex:
    log = np.array([T0 + round(t * NS) for t in log_s], dtype=np.int64)
    return TopicIndex(topic, "sensor_msgs/msg/Image", log, log + round(stamp_offset_s * NS))


def test_tick_times_are_exact_and_never_early():
    ticks = tick_times(T0, T0 + NS, 30.0)
    assert len(ticks) == 31 and ticks[0] == T0 and ticks[-1] == T0 + NS
    assert all(T0 + Fraction(k * NS, 30) <= t < T0 + Fraction(k * NS, 30) + 1 for k, t in enumerate(ticks))


def test_each_tick_uses_the_newest_message_received_by_it():
    idx = {"/a": index("/a", [0.0, 0.1, 0.2, 0.3]), "/b": index("/b", [0.05, 0.25])}
    plan = build_plan(idx, rate_hz=10.0)
    assert plan.ticks == [T0 + k * NS // 10 for k in range(4)]
    assert plan.selection["/a"].tolist() == [0, 1, 2, 3]
    assert plan.selection["/b"].tolist() == [-1, 0, 0, 1]  # nothing yet at the first tick
    assert plan.last_use[("/b", 0)] == 2
    assert plan.copy_range is None


def test_header_clock_selects_by_stamp_and_records_at_log_time():
    idx = {"/a": index("/a", [0.0, 0.1, 0.2], stamp_offset_s=-5.0)}
    plan = build_plan(idx, rate_hz=10.0, clock="header")
    assert plan.ticks[0] == T0 - 5 * NS and plan.log_offset_ns == 5 * NS


def test_an_end_past_the_bag_copies_to_the_end_and_bad_ranges_are_refused():
    idx = {"/a": index("/a", [0.0, 0.1, 0.2, 0.3])}
    plan = build_plan(idx, rate_hz=10.0, start_s=0.1, end_s=100.0, max_input_age_s=0.25)
    assert plan.copy_range == (T0 + NS // 10 - NS // 4, T0 + 100 * NS)
    with pytest.raises(PlanError, match="past the end"):
        build_plan(idx, rate_hz=10.0, start_s=5.0)
    explicit = build_plan(idx, rate_hz=10.0, tick_times_ns=[T0 + 150_000_000, T0 + 10 * NS])
    assert explicit.ticks == [T0 + 150_000_000]  # outside the data: dropped


def test_header_clock_ignores_messages_stamped_0():
    """A stray unstamped message (stamp 0) put the header axis' start at 1970: ~5e10 ticks at 30 Hz."""
    a = index("/a", [0.0, 0.1, 0.2, 0.3])
    a.stamp_ns[1] = 0
    plan = build_plan({"/a": a}, rate_hz=10.0, clock="header")
    assert plan.ticks == [T0 + k * NS // 10 for k in range(4)] and plan.log_offset_ns == 0
    unstamped = index("/b", [0.0, 0.1])
    unstamped.stamp_ns[:] = 0
    with pytest.raises(PlanError, match="every header stamp of /b is 0"):
        build_plan({"/a": a, "/b": unstamped}, rate_hz=10.0, clock="header")
