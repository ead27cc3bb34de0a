"""The health level follows the recent window, not lifetime totals (issue 11.6)."""

from __future__ import annotations

from act_interp_ros.pipeline import LoopStats

NS = 1_000_000_000
OK, WARN, ERROR = 0, 1, 2


def ticks(stats: LoopStats, start_s: float, seconds: float, outcome: str) -> float:
    t = start_s
    while t < start_s + seconds:
        now = int(t * NS)
        stats.tick_started(t, now)
        if outcome == "ok":
            stats.tick_computed(now)
        elif outcome == "error":
            stats.tick_failed(now)
        else:
            stats.tick_skipped(outcome, now)
        t += 0.1
    return t


def test_a_bad_start_then_healthy_is_ok_and_a_dropout_is_an_error_while_commanding():
    stats = LoopStats(0.1, max_input_age_s=0.25, max_consecutive_errors=3, window_s=2.0)
    t = ticks(stats, 100.0, 30.0, "missing")  # a long bad start: most lifetime ticks skipped
    t = ticks(stats, t, 3.0, "ok")
    assert stats.health(int(t * NS), commands_enabled=True).level == OK
    t = ticks(stats, t, 0.5, "stale")  # skipping now, briefly
    health = stats.health(int(t * NS), commands_enabled=False)
    assert health.level == WARN and "skipped.stale" in health.message
    t = ticks(stats, t, 1.0, "stale")  # longer than max_input_age_s without an action while commanding
    health = stats.health(int(t * NS), commands_enabled=True)
    assert health.level == ERROR and "no action computed for" in health.message
    t = ticks(stats, t, 2.5, "ok")
    assert stats.health(int(t * NS), commands_enabled=True).level == OK


def test_consecutive_errors_fault_until_a_clean_tick():
    stats = LoopStats(0.1, max_input_age_s=10.0, max_consecutive_errors=3, window_s=2.0)
    t = ticks(stats, 100.0, 0.15, "error")  # two failed ticks
    assert stats.consecutive_errors == 2 and not stats.faulted
    t = ticks(stats, t, 0.05, "error")  # the third in a row
    assert stats.faulted
    health = stats.health(int(t * NS), commands_enabled=True)
    assert health.level == ERROR and "consecutive tick errors" in health.message
    t = ticks(stats, t, 0.1, "ok")
    assert not stats.faulted and stats.tick_errors >= 3 and stats.skipped["tick_error"] == stats.tick_errors
