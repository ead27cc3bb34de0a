"""``side_rate_hz: auto``: the side methods' rate from the measured forward times (a CPU-budget rule, no timing)."""

from __future__ import annotations

import pytest

from act_interp_ros.runtime.side_rate import auto_side_rate
from act_interp_ros.settings import NodeSettings, SettingsError


def rate(**kw):
    args = dict(methods={"gradcam": 0.07, "gradient_x_input": 0.1}, forward_s=0.043, map_forward_s=0.043,
                control_rate_hz=30.0, ticks_per_forward=10, longest_gap_s=2.0, cpus=2, threads=1)
    return auto_side_rate(**{**args, **kw})


def test_a_fast_forward_gets_the_2_hz_cap_and_the_line_says_why():
    r = rate(methods={"gradcam": 0.02, "gradient_x_input": 0.03}, forward_s=0.01, map_forward_s=0.01)
    assert r.hz == 2.0 and "auto:" in r.reason and "2 usable CPU(s)" in r.reason


def test_the_full_size_act_on_two_cores_gets_a_rate_its_cpu_holds():
    # BENCHMARKS: forward ~0.7 s at 1 thread, GradCAM 1.59x and gradient x input 2.23x a forward; the former
    # default 2 Hz needed 2.4 CPU-s per s. control 0.21 CPU + maps 1 CPU: 0.79 spare; half of it / 2.67 s = 0.15 Hz
    r = rate(methods={"gradcam": 1.11, "gradient_x_input": 1.56}, forward_s=0.7, map_forward_s=0.7,
             ticks_per_forward=100, longest_gap_s=100 / 30 - 0.7 - 0.0033)
    assert r.hz == 0.1
    assert r.hz * 1 * (1.11 + 1.56) <= 0.5 * (2 - 0.21 - 1.0)


def test_more_threads_or_fewer_cpus_lower_the_rate():
    base = rate(methods={"gradcam": 0.3, "gradient_x_input": 0.4})
    assert rate(methods={"gradcam": 0.3, "gradient_x_input": 0.4}, threads=2).hz < base.hz
    assert rate(methods={"gradcam": 0.3, "gradient_x_input": 0.4}, cpus=1).hz < base.hz


def test_a_method_longer_than_the_gap_between_control_forwards_turns_them_off():
    r = rate(methods={"gradcam": 0.5}, longest_gap_s=0.28)
    assert r.hz == 0.0 and "gradcam takes 500 ms" in r.reason


def test_no_spare_cpu_turns_them_off_and_no_methods_is_off():
    assert rate(cpus=1, map_forward_s=0.2).hz == 0.0
    assert rate(methods={}).hz == 0.0


@pytest.mark.parametrize("value, expected", [("auto", "auto"), (0.5, 0.5), (1, 1.0), ("0.5", 0.5), (0, 0.0)])
def test_settings_take_auto_or_a_rate(value, expected):
    assert NodeSettings.from_mapping({"policy_path": "user/act_so101", "side_rate_hz": value}).side_rate_hz == expected


def test_auto_is_the_default_and_a_bad_value_is_one_line():
    assert NodeSettings().side_rate_hz == "auto"
    with pytest.raises(SettingsError) as err:
        NodeSettings.from_mapping({"policy_path": "user/act_so101", "side_rate_hz": "often"})
    assert "\n" not in str(err.value) and "side_rate_hz" in str(err.value) and "auto" in str(err.value)
