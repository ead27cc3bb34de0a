"""Training-range guard (ROS-free): the checkpoint's normaliser min/max, read through the loaded preprocessor,
flag a joint / env-state value outside it (warn: act; skip: a bad_input.training_range tick), and a camera whose
frame mean is far from the training statistics is flagged, never skipped."""

from __future__ import annotations

import numpy as np
import pytest

from act_interp_ros.core import InterpretableACT
from act_interp_ros.core.checkpoints import SmallACTSpec, make_act_config
from act_interp_ros.inputs.env_state import EnvStateInput
from act_interp_ros.pipeline import TickPipeline, TrainingRangeGuard
from act_interp_ros.pipeline.training_range import normalizer_stats
from act_interp_ros.settings import NodeSettings
from conftest import TRAINING_STATE_MAX, TRAINING_STATE_MIN
from test_pipeline_tick import FRONT, JOINTS, NOW, WRIST, image, joints, snap

LO = np.array(TRAINING_STATE_MIN)
HI = np.array(TRAINING_STATE_MAX)
IN_RANGE_RAD = np.radians([-30.0, 20.0, 50.0, 80.0, -10.0, 0.0]) + np.array([0, 0, 0, 0, 0, 50 / 57.29577951308232])


def state_stats(**extra):
    return {"observation.state": {"min": LO, "max": HI, "mean": (LO + HI) / 2, "std": (HI - LO) / 4}, **extra}


def pipeline_with(guard: TrainingRangeGuard, env_dim: int = 0, **changes) -> TickPipeline:
    spec = SmallACTSpec(cameras={FRONT: (48, 64), WRIST: (48, 64)}, env_state_dim=env_dim)
    if env_dim:
        changes = {"env_state_topic": "/target", "env_state_type": "float64_multi_array", **changes}
    settings = NodeSettings.from_mapping({"policy_path": "user/act", **changes})
    return TickPipeline(settings, make_act_config(spec), guard=guard)


def test_the_range_comes_from_the_loaded_preprocessor(ranged_checkpoint, node_checkpoint):
    wrapped = InterpretableACT.from_pretrained(str(ranged_checkpoint), device="cpu")
    try:
        stats = normalizer_stats(wrapped.preprocessor)
        np.testing.assert_allclose(stats["observation.state"]["min"], LO)
        guard = TrainingRangeGuard.from_policy(wrapped, JOINTS, 0.1, 1.0)
        assert guard.notes == [] and guard.active
        np.testing.assert_allclose(guard.state.high, HI)
        assert "shoulder_pan [-90, 40]" in guard.describe()
    finally:
        wrapped.close()
    plain = InterpretableACT.from_pretrained(str(node_checkpoint), device="cpu")  # mean/std only: no min/max
    try:
        guard = TrainingRangeGuard.from_policy(plain, JOINTS, 0.1, 1.0)
        assert guard.notes == ["the checkpoint's normaliser has no min/max for observation.state: the training-range "
                               "guard is off for it"]
        assert guard.check_state(np.full(6, 1e6)) == []
    finally:
        plain.close()


def test_margin_widens_the_range_by_a_fraction_of_it():
    guard = TrainingRangeGuard(state_stats(), JOINTS, margin=0.1)
    width = HI[0] - LO[0]
    inside = (LO + HI) / 2
    inside[0] = HI[0] + 0.09 * width
    assert guard.check_state(inside) == []
    inside[0] = HI[0] + 0.11 * width
    [flag] = guard.check_state(inside)
    assert flag.counter == "state_outside_training_range.shoulder_pan" and flag.name == "shoulder_pan"
    assert (flag.low, flag.high) == (LO[0], HI[0]) and flag.value == pytest.approx(inside[0])
    line = flag.line()
    for part in ("joint 'shoulder_pan'", f"{inside[0]:.4g} in policy units", "[-90, 40]", "+10% margin", "units",
                 "joint_offset", "calibration"):
        assert part in line, (part, line)


def test_warn_acts_and_skip_does_not():
    reversed_elbow = IN_RANGE_RAD * np.array([1, 1, -1, 1, 1, 1])  # inside the limits, outside the training range
    wrong = joints(reversed_elbow)
    for policy in ("warn", "skip"):
        pipe = pipeline_with(TrainingRangeGuard(state_stats(), JOINTS), out_of_range_policy=policy)
        good = pipe.prepare(snap(js=joints(IN_RANGE_RAD)))
        assert not hasattr(good, "kind") and pipe.last_flags == []
        result = pipe.prepare(snap(js=wrong))
        assert [f.counter for f in pipe.last_flags] == ["state_outside_training_range.elbow_flex"]
        if policy == "warn":
            assert not hasattr(result, "kind"), result
        else:
            assert result.kind == "bad_input.training_range"
            assert str(result).startswith("bad_input.training_range:/joint_states elbow_flex=-50 not in [-20, 120]")
            assert "out_of_range_policy skip" in result.detail


def test_the_range_is_checked_before_the_joint_limits():
    """Degrees published as radians also break the limits: the tick still names the training range."""
    pipe = pipeline_with(TrainingRangeGuard(state_stats(), JOINTS), out_of_range_policy="skip")
    result = pipe.prepare(snap(js=joints(np.degrees(IN_RANGE_RAD))))
    assert result.kind == "bad_input.training_range"
    assert len(pipe.last_flags) == 6
    pipe = pipeline_with(TrainingRangeGuard(state_stats(), JOINTS), out_of_range_policy="warn")
    assert pipe.prepare(snap(js=joints(np.degrees(IN_RANGE_RAD)))).kind == "bad_input.joint_limits"
    assert len(pipe.last_flags) == 6  # counted in warn mode too


def test_env_state_outside_its_range():
    from std_msgs.msg import Float64MultiArray

    env_stats = {"observation.environment_state": {"min": np.array([0.1, -0.2, 0.0]),
                                                   "max": np.array([0.4, 0.2, 0.1])}}
    guard = TrainingRangeGuard(state_stats(**env_stats), JOINTS, env_names=["x", "y", "z"])
    for policy, kind in (("warn", None), ("skip", "bad_input.training_range")):
        pipe = pipeline_with(guard, env_dim=3, out_of_range_policy=policy)

        def env(values):
            return EnvStateInput(Float64MultiArray(data=list(values)), NOW)

        assert not hasattr(pipe.prepare(snap(js=joints(IN_RANGE_RAD), env=env([0.2, 0.0, 0.05]))), "kind")
        result = pipe.prepare(snap(js=joints(IN_RANGE_RAD), env=env([0.2, 2.0, 0.05])))  # y in mm-ish units
        assert [f.counter for f in pipe.last_flags] == ["env_state_outside_training_range.y"]
        assert getattr(result, "kind", None) == kind
        assert "env-state value 'y' is 2" in pipe.last_flags[0].line()


def test_a_camera_far_from_its_training_statistics_is_flagged_never_skipped():
    cams = {key: {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.1)} for key in (FRONT, WRIST)}
    guard = TrainingRangeGuard(state_stats(**cams), JOINTS, camera_keys=[FRONT, WRIST], image_tolerance=1.0)
    pipe = pipeline_with(guard, out_of_range_policy="skip")
    black = image(seed=1)
    black.data = bytes(len(black.data))
    result = pipe.prepare(snap(cams={FRONT: black, WRIST: image(seed=2)}, js=joints(IN_RANGE_RAD)))
    assert not hasattr(result, "kind"), "a camera flag never skips"
    [flag] = pipe.last_flags
    assert flag.counter == "image_outside_training_stats.front" and flag.value == pytest.approx(5.0)
    assert "swapped camera_topics" in flag.line()
    pipe.prepare(snap(js=joints(IN_RANGE_RAD)))  # uniform random frames: mean ~0.5
    assert pipe.last_flags == []
    off = TrainingRangeGuard(state_stats(**cams), JOINTS, camera_keys=[FRONT], image_tolerance=0.0)
    assert off.images == {}


def test_a_recorded_frame_goes_through_the_same_guard_and_observation():
    """Dataset frames (policy units, no ROS) use the pipeline's guard and observation builder, like bag ticks."""
    rgb = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frames = {FRONT: rgb, WRIST: rgb}
    in_range = (LO + HI) / 2
    outside = in_range.copy()
    outside[2] = LO[2] - 0.5 * (HI[2] - LO[2])
    for policy in ("warn", "skip"):
        pipe = pipeline_with(TrainingRangeGuard(state_stats(), JOINTS), out_of_range_policy=policy)
        good = pipe.prepare_recorded(frames, in_range, None, "frame 3")
        assert good.current_ros is None and pipe.last_flags == []
        assert good.observation["observation.images.front"].shape == (3, 48, 64)
        np.testing.assert_allclose(good.observation["observation.state"].numpy(), in_range, rtol=1e-6)
        result = pipe.prepare_recorded(frames, outside, None, "frame 4")
        assert [f.counter for f in pipe.last_flags] == ["state_outside_training_range.elbow_flex"]
        if policy == "warn":
            assert not hasattr(result, "kind"), result
        else:
            assert result.kind == "bad_input.training_range"
            assert result.detail.startswith("frame 4 elbow_flex=")
    pipe = pipeline_with(TrainingRangeGuard(state_stats(), JOINTS))
    bad = in_range.copy()
    bad[0] = np.nan
    result = pipe.prepare_recorded(frames, bad, None, "frame 5")
    assert result.kind == "bad_input.observation" and result.detail.startswith("frame 5: state contains non-finite")
