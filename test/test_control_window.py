"""A background forward starts only when it ends before the control loop's next forward (injected clock and
durations: the decision is deterministic, nothing is timed)."""

from __future__ import annotations

import threading

from act_interp_ros.runtime.control_window import CONTROL, ControlWindow

PERIOD = 0.1  # 10 Hz, margin 10 ms


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def window(ticks_per_forward: int = 10, **seeds: float) -> tuple[ControlWindow, Clock]:
    clock = Clock()
    w = ControlWindow(PERIOD, ticks_per_forward, clock=clock)
    for key, seconds in {CONTROL: 0.15, **seeds}.items():
        w.seed(key, seconds)
    return w, clock


def test_a_map_starts_only_when_it_ends_before_the_next_control_forward():
    w, clock = window(maps=0.15)
    assert not w.admit("maps").ok, "before the first tick the next control forward's time is unknown"
    w.tick_done(started_at=100.0, ticks_to_forward=3)  # the next control forward at 100.3
    clock.t = 100.10
    a = w.admit("maps")
    assert a.ok and abs(a.free_s - 0.19) < 1e-9 and a.expected_s == 0.15
    clock.t = 100.15  # 100.15 + 0.15 > 100.3 - margin
    a = w.admit("maps")
    assert not a.ok and not a.never
    w.tick_done(started_at=100.3, ticks_to_forward=1)  # the next tick refills the queue
    clock.t = 100.31
    assert not w.admit("maps").ok


def test_nothing_starts_while_the_control_forward_runs_and_overlaps_are_counted():
    w, clock = window(maps=0.01)
    w.tick_done(100.0, 10)
    with w.control_forward():
        assert not w.admit("maps").ok
    assert w.admit("maps").ok and w.overlaps == 0
    with w.background("maps"):
        with w.control_forward():  # a wrong estimate: the control forward still starts at once
            pass
    assert w.overlaps == 1


def test_expected_duration_is_the_90th_percentile_of_measured_runs_not_the_seed():
    w, clock = window(gradcam=0.05)
    assert w.expected_s("gradcam") == 0.05
    for seconds in [0.2] * 9 + [0.6]:
        w.record("gradcam", seconds)
    assert abs(w.expected_s("gradcam") - 0.24) < 1e-9 and abs(w.median_s("gradcam") - 0.2) < 1e-9
    w.tick_done(100.0, 10)
    clock.t = 100.7  # 0.29 s free
    assert w.admit("gradcam").ok
    clock.t = 100.8  # 0.19 s free
    assert not w.admit("gradcam").ok


def test_a_job_longer_than_the_longest_gap_is_never_admitted():
    w, clock = window(gradcam=0.9)  # gap = 10 x 0.1 - 0.15 - 0.01 = 0.84 s
    w.tick_done(100.0, 10)
    a = w.admit("gradcam")
    assert not a.ok and a.never
    b = window(gradcam=0.8)[0]
    b.tick_done(100.0, 10)
    assert not b.admit("gradcam").never


def test_temporal_ensembling_leaves_only_the_rest_of_the_tick():
    w, clock = window(ticks_per_forward=1, maps=0.05)  # gap 0.1 - 0.15 < 0: the control forward fills the tick
    w.tick_done(100.0, 1)
    assert w.admit("maps").never
    w2, clock2 = window(ticks_per_forward=1, maps=0.03)
    w2.seed(CONTROL, 0.04)
    w2.tick_done(100.0, 1)
    clock2.t = 100.04
    assert w2.admit("maps").ok  # 0.03 <= 0.1 - 0.04 - 0.01
    clock2.t = 100.07
    assert not w2.admit("maps").ok


def test_an_unmeasured_job_waits_for_a_gap_as_long_as_a_control_forward():
    w, clock = window()
    w.tick_done(100.0, 10)
    clock.t = 100.5  # 0.49 s free >= 0.15
    a = w.admit("occlusion")
    assert a.ok and a.expected_s is None
    clock.t = 100.8  # 0.19 s free
    assert w.admit("occlusion").ok
    clock.t = 100.85
    assert not w.admit("occlusion").ok


def test_durations_are_timed_with_the_injected_clock_and_reported():
    w, clock = window()
    with w.background("gradient_x_input"):
        clock.t += 0.25
    assert abs(w.expected_s("gradient_x_input") - 0.25) < 1e-9
    values = w.values()
    assert values["expected_ms.gradient_x_input"] == "250.0" and values["expected_ms.control"] == "150.0"
    assert values["background_overlapped_control_forward"] == "0"


def test_concurrent_use_is_safe():
    w, clock = window(maps=0.01)
    w.tick_done(100.0, 10)

    def background() -> None:
        for _ in range(500):
            if w.admit("maps").ok:
                with w.background("maps"):
                    pass

    threads = [threading.Thread(target=background) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(500):
        with w.control_forward():
            w.record(CONTROL, 0.15)
        w.tick_done(100.0 + i * PERIOD, 10)
    for t in threads:
        t.join()
    assert w.expected_s(CONTROL) == 0.15


def test_a_preemptible_map_forward_stops_at_the_next_block_when_the_control_forward_starts():
    """The real ACT forward, hooked: in the map worker's thread it raises Preempted at its next block while the
    control forward runs; the control thread's own forward and a non-preemptible job run to the end."""
    import pytest
    import torch

    from act_interp_ros.core.checkpoints import SmallACTSpec, build_policy
    from act_interp_ros.runtime.control_window import Preempted, install_preemption

    policy, _, _ = build_policy(SmallACTSpec())
    policy.eval()
    batch = {"observation.state": torch.zeros(1, 6),
             **{k: torch.zeros(1, 3, h, w) for k, (h, w) in SmallACTSpec().cameras.items()}}
    w, _ = window()
    handles = install_preemption(policy.model, w)
    assert len(handles) >= 10  # stem, 8 residual blocks, encoder and decoder layers
    results: dict[str, object] = {}

    def job(name: str, preemptible: bool) -> None:
        try:
            with w.background(name, preemptible=preemptible), torch.inference_mode():
                results[name] = policy.predict_action_chunk(batch).shape
        except Preempted:
            results[name] = "preempted"

    try:
        with torch.inference_mode():
            expected = policy.predict_action_chunk(batch).shape
        with w.control_forward():
            for name, preemptible in (("maps", True), ("gradcam", False)):
                t = threading.Thread(target=job, args=(name, preemptible))
                t.start()
                t.join()
            with torch.inference_mode():
                assert policy.predict_action_chunk(batch).shape == expected  # the control thread is never stopped
        assert results == {"maps": "preempted", "gradcam": expected}
        assert w.preempted == 1 and w.expected_s("maps") is None, "a preempted run is not a duration"
        job("maps", True)  # no control forward: it runs to the end
        assert results["maps"] == expected
    finally:
        for h in handles:
            h.remove()


def test_a_cancellable_forward_stops_once_its_predicate_holds():
    import pytest
    import torch

    from act_interp_ros.core.checkpoints import SmallACTSpec, build_policy
    from act_interp_ros.runtime.control_window import Preempted, install_preemption

    policy, _, _ = build_policy(SmallACTSpec())
    policy.eval()
    batch = {"observation.state": torch.zeros(1, 6),
             **{k: torch.zeros(1, 3, h, w) for k, (h, w) in SmallACTSpec().cameras.items()}}
    w, _ = window()
    handles = install_preemption(policy.model, w)
    calls = []

    def cancelled() -> bool:  # the reset happens while the backbone runs (third block)
        calls.append(1)
        return len(calls) >= 3

    try:
        with pytest.raises(Preempted), w.cancellable(cancelled), torch.inference_mode():
            policy.predict_action_chunk(batch)
        assert len(calls) == 3
        with torch.inference_mode():  # outside the block nothing is checked
            policy.predict_action_chunk(batch)
        assert len(calls) == 3
    finally:
        for h in handles:
            h.remove()


def test_a_long_job_that_found_no_free_core_starts_only_as_a_probe():
    clock, cpu = Clock(), Clock()
    w = ControlWindow(PERIOD, 100, clock=clock, thread_clock=cpu, probe_s=10.0)  # long = 3 periods = 0.3 s
    w.seed(CONTROL, 0.5)
    w.seed("maps", 1.0)
    w.seed("short", 0.1)
    w.tick_done(100.0, 100)  # 10 s until the next control forward
    assert w.admit("maps").ok, "never measured: it may start"
    for _ in range(3):  # three runs that got half a core: 1 s wall, 0.5 s CPU
        with w.background("maps"):
            clock.t += 1.0
            cpu.t += 0.5
    assert w.cpu_share("maps") == 0.5
    clock.t = 103.5  # 1.5 s after the last run started
    a = w.admit("maps")
    assert not a.ok and not a.never and w.held_back == 1
    assert w.admit("short").ok, "a job of one tick or so is not held back"
    for probe in range(2):  # a probe every 10 s; each finds a core of its own (the median of the last 3 flips)
        clock.t = 102.0 + 10.0 * (probe + 1)
        w.tick_done(clock.t - 0.1, 100)
        assert w.admit("maps").ok
        with w.background("maps"):
            clock.t += 1.0
            cpu.t += 1.0
        assert w.admit("maps").ok == (probe == 1)
    assert w.cpu_share("maps") == 1.0
    assert w.values()["cpu_share.maps"] == "1.00" and w.values()["background_held_back_no_free_core"] == "2"


def test_the_period_is_the_wall_clocks_when_the_timer_fires_slower_than_nominal():
    """A lockstep simulator (or a bag below rate 1) fires the sim-time timer every 0.4 s of wall time instead of
    every 0.1 s: the next control forward is that much later, and a map that fits there is admitted."""
    w, clock = window(ticks_per_forward=1, maps=0.15)
    w.seed(CONTROL, 0.02)
    w.tick_done(started_at=100.0, ticks_to_forward=1)
    clock.t = 100.005
    a = w.admit("maps")
    assert not a.ok and a.never and w.tick_period_s == PERIOD, "at the nominal period a 0.15 s map never fits"
    for k in range(6):
        w.timer_fired(100.0 + 0.4 * k)
    assert abs(w.tick_period_s - 0.4) < 1e-9
    w.tick_done(started_at=102.0, ticks_to_forward=1)
    clock.t = 102.03
    assert w.admit("maps").ok
    for k in range(8):  # back to real time: the nominal period again
        w.timer_fired(102.0 + PERIOD * k)
    assert abs(w.tick_period_s - PERIOD) < 1e-9
    w.tick_done(started_at=102.7, ticks_to_forward=1)
    clock.t = 102.71
    assert not w.admit("maps").ok
