"""InputGate: the freshness rule shared by the live node and the offline replay."""
from __future__ import annotations

import pytest

from act_interp_ros.inputs.freshness import InputGate
from act_interp_ros.settings import NodeSettings

FRONT, WRIST, JOINTS = "/camera/front/image_raw", "/camera/wrist/image_raw", "/joint_states"
CAMS = [FRONT, WRIST]


@pytest.fixture()
def gate() -> InputGate:
    return InputGate.from_settings(NodeSettings(policy_path="user/act"))  # 0.25 s age, 0.1 s skew


def test_ok_with_sim_time_like_stamps(gate):
    # use_sim_time bag replay: clock and stamps are bag time (small numbers), not wall time
    now = 12.5
    d = gate.check(now, {FRONT: 12.47, WRIST: 12.45, JOINTS: 12.49}, CAMS)
    assert d.ok and d.reason is None and d.reasons == () and d.kind is None
    assert d.ages[FRONT] == pytest.approx(0.03)
    assert d.camera_skew_s == pytest.approx(0.02)
    # wall-clock sized stamps behave the same
    now = 1_716_000_000.5
    assert gate.check(now, {FRONT: now - 0.1, WRIST: now - 0.05, JOINTS: now}, CAMS).ok


def test_missing(gate):
    d = gate.check(10.0, {FRONT: None, WRIST: 9.99, JOINTS: 9.99}, CAMS)
    assert not d.ok and d.reason == f"missing:{FRONT}" and d.kind == "missing"
    # a camera absent from the mapping counts as missing too
    d = gate.check(10.0, {JOINTS: 9.99, FRONT: 9.99}, CAMS)
    assert d.reason == f"missing:{WRIST}"


def test_stale(gate):
    d = gate.check(10.0, {FRONT: 9.95, WRIST: 9.95, JOINTS: 9.59}, CAMS)
    assert d.reason == "stale:/joint_states age=0.41s>0.25s"
    # the limit itself is still fresh; just above it reads unambiguously
    assert gate.check(10.25, {FRONT: 10.0, WRIST: 10.0, JOINTS: 10.0}, CAMS).ok
    d = gate.check(10.251, {FRONT: 10.2, WRIST: 10.2, JOINTS: 10.0}, CAMS)
    assert d.reason == "stale:/joint_states age=0.251s>0.250s"


def test_future(gate):
    d = gate.check(10.0, {FRONT: 10.4, WRIST: 10.4, JOINTS: 10.0}, CAMS)
    assert d.reason == f"future:{FRONT} ahead=0.40s>0.25s"
    assert d.reasons == (f"future:{FRONT} ahead=0.40s>0.25s", f"future:{WRIST} ahead=0.40s>0.25s")
    # slightly ahead (clock jitter between machines) is fine
    assert gate.check(10.0, {FRONT: 10.1, WRIST: 10.1, JOINTS: 10.1}, CAMS).ok


def test_skew_uses_short_camera_names(gate):
    d = gate.check(10.0, {FRONT: 9.80, WRIST: 9.95, JOINTS: 10.0}, CAMS)
    assert d.reason == "skew:front/wrist 0.15s>0.10s" and d.kind == "skew"
    assert d.camera_skew_s == pytest.approx(0.15)
    d = gate.check(10.0, {FRONT: 9.95, WRIST: 9.80, JOINTS: 10.0}, CAMS)
    assert d.reason == "skew:wrist/front 0.15s>0.10s"  # oldest/newest
    # the joint state does not take part in the skew check
    assert gate.check(10.0, {FRONT: 9.9, WRIST: 9.9, JOINTS: 9.76}, CAMS).ok
    # without labels the keys are used
    d = InputGate(0.25, 0.1).check(10.0, {"a": 9.8, "b": 9.95}, ["a", "b"])
    assert d.reason == "skew:a/b 0.15s>0.10s"


def test_clock_unstamped_invalid_and_all_reasons(gate):
    assert gate.check(0.0, {FRONT: 1.0, WRIST: 1.0, JOINTS: 1.0}, CAMS).reason == "clock:not_started"
    d = gate.check(10.0, {FRONT: 0.0, WRIST: float("nan"), JOINTS: None}, CAMS)
    assert d.reasons == (f"unstamped:{FRONT}", f"invalid:{WRIST} stamp=nan", f"missing:{JOINTS}")
    assert d.reason == f"unstamped:{FRONT}"


def test_constructor_validation():
    with pytest.raises(ValueError, match="max_age_s must be a finite number > 0"):
        InputGate(0.0, 0.1)
    with pytest.raises(ValueError, match="max_camera_skew_s must be a finite number >= 0"):
        InputGate(0.25, -1.0)
    assert InputGate(0.25, 0.0).check(5.0, {"a": 4.9, "b": 4.9}, ["a", "b"]).ok  # exact sync allowed
