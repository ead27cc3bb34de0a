"""The tick pipeline's stages on their own: every rejection is one SkipReason of the right kind naming the
input, an accepted tick has the policy's observation, and commands obey the limits (the policy step between
them: test_policy_step.py)."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from act_interp_ros.core.checkpoints import SmallACTSpec, make_act_config
from act_interp_ros.inputs.env_state import EnvStateInput
from act_interp_ros.pipeline import TickPipeline, TickSnapshot
from act_interp_ros.settings import NodeSettings

NS = 1_000_000_000
NOW = 1_700_000_000 * NS
JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
FRONT, WRIST = "observation.images.front", "observation.images.wrist"


def image(h=48, w=64, stamp_ns=NOW, encoding="rgb8", seed=0) -> Image:
    msg = Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=w * 3)
    msg.data.frombytes(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8).tobytes())
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, NS)
    return msg


def joints(positions=(0.0, 0.0, 0.0, 0.0, 0.0, 0.5), names=JOINTS, stamp_ns=NOW) -> JointState:
    msg = JointState(name=list(names), position=[float(p) for p in positions])
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, NS)
    return msg


def pipeline(env_dim: int = 0, **changes) -> TickPipeline:
    spec = SmallACTSpec(cameras={FRONT: (48, 64), WRIST: (48, 64)}, env_state_dim=env_dim)
    if env_dim:
        changes = {"env_state_topic": "/target", **changes}
    settings = NodeSettings.from_mapping({"policy_path": "user/act", **changes})
    return TickPipeline(settings, make_act_config(spec))


def snap(cams=None, js=None, env=None, now=NOW) -> TickSnapshot:
    cams = cams if cams is not None else {FRONT: image(seed=1), WRIST: image(seed=2)}
    return TickSnapshot(now, cams, js if js is not None else joints(), env)


def test_a_good_tick_has_the_policy_observation():
    prepared = pipeline().prepare(snap())
    assert not hasattr(prepared, "kind"), prepared
    obs = prepared.observation
    assert obs[FRONT].shape == (3, 48, 64) and float(obs[FRONT].max()) <= 1.0
    np.testing.assert_allclose(obs["observation.state"].numpy(), np.array([0, 0, 0, 0, 0, 0.5]) * 57.29577951308232,
                               rtol=1e-6)
    assert prepared.stamps_ns["/joint_states"] == NOW


@pytest.mark.parametrize(
    "make,kind,detail",
    [
        (lambda: snap(cams={FRONT: None, WRIST: image()}), "missing", "/camera/front/image_raw"),
        (lambda: snap(js=joints(stamp_ns=NOW - NS)), "stale", "/joint_states age=1.00s>0.25s"),
        (lambda: snap(cams={FRONT: image(encoding="bayer_rggb8"), WRIST: image()}), "bad_input.image",
         "/camera/front/image_raw unsupported image encoding 'bayer_rggb8'"),
        (lambda: snap(js=joints(names=JOINTS[:-1], positions=[0.0] * 5)), "bad_input.joint_state",
         "/joint_states JointState is missing joint 'gripper'"),
        (lambda: snap(js=joints(positions=(5.0, 0, 0, 0, 0, 0.5))), "bad_input.joint_limits",
         "/joint_states joint 'shoulder_pan' is at 5"),
    ],
    ids=["missing", "stale", "image", "joint_state", "joint_limits"],
)
def test_each_rejection_is_one_reason_naming_the_input(make, kind, detail):
    reason = pipeline().prepare(make())
    assert reason.kind == kind
    assert reason.detail.startswith(detail), reason.detail


@pytest.mark.parametrize("cams", [
    {FRONT: image(stamp_ns=NOW - NS), WRIST: image()},  # stale front (and out of step)
    {FRONT: None, WRIST: image()},  # no front frame yet
], ids=["stale_camera", "missing_camera"])
def test_a_queued_tick_acts_on_late_frames_but_never_on_a_bad_joint_state(cams):
    """``frames_needed=False`` (the action comes from the queue): late frames give a tick without frames or
    observation that says why; the joint state is checked as always."""
    p = pipeline()
    assert p.prepare(snap(cams=cams)).kind in ("stale", "missing"), "a forward tick needs its frames"
    prepared = p.prepare(snap(cams=cams), frames_needed=False)
    assert prepared.observation is None and prepared.frames == {}
    assert prepared.late_frames.kind in ("stale", "missing") and "/camera/front/image_raw" in prepared.late_frames.detail
    np.testing.assert_allclose(prepared.current_ros, [0, 0, 0, 0, 0, 0.5])
    assert "/camera/front/image_raw" not in prepared.stamps_ns and prepared.stamps_ns["/joint_states"] == NOW
    late_joints = p.prepare(snap(cams=cams, js=joints(stamp_ns=NOW - NS)), frames_needed=False)
    assert late_joints.kind in ("stale", "missing"), "a stale joint state: no action (named as the gate names it)"
    out_of_limits = p.prepare(snap(cams=cams, js=joints(positions=(5.0, 0, 0, 0, 0, 0.5))), frames_needed=False)
    assert out_of_limits.kind == "bad_input.joint_limits"
    fresh = p.prepare(snap(), frames_needed=False)
    assert fresh.late_frames is None and fresh.observation is not None, "fresh frames are used as always"


def test_wrong_image_size_is_bad_observation_when_resizing_is_off_and_resized_otherwise():
    cams = {FRONT: image(60, 80), WRIST: image()}
    reason = pipeline(image_resize=False).prepare(snap(cams=cams))
    assert reason.kind == "bad_input.observation" and reason.detail.startswith("/camera/front/image_raw camera")
    prepared = pipeline().prepare(snap(cams=cams))
    assert prepared.observation[FRONT].shape == (3, 48, 64) and prepared.frames[FRONT].shape == (60, 80, 3)


def test_a_frame_reused_by_two_ticks_is_decoded_once(monkeypatch):
    p = pipeline()
    calls = []
    import act_interp_ros.pipeline.tick as tick

    original = tick.decode_image
    monkeypatch.setattr(tick, "decode_image", lambda msg: calls.append(msg) or original(msg))
    s = snap()
    p.prepare(s)
    p.prepare(snap(cams=dict(s.cameras), js=s.joint_state, now=NOW + NS // 30))
    assert len(calls) == 2, "two cameras, each decoded once over two ticks"


def test_env_state_messages_and_their_bad_input():
    p = pipeline(env_dim=2)
    pt = PointStamped()
    pt.header.stamp.sec, pt.header.stamp.nanosec = divmod(NOW, NS)
    pt.point.x, pt.point.y = 0.25, -0.1
    prepared = p.prepare(snap(env=EnvStateInput(pt, NOW)))
    np.testing.assert_allclose(prepared.observation["observation.environment_state"].numpy(), [0.25, -0.1])
    assert p.prepare(snap()).kind == "missing"  # no env state yet
    pt.point.y = float("nan")
    reason = p.prepare(snap(env=EnvStateInput(pt, NOW)))
    assert reason.kind == "bad_input.env_state" and "nan" in reason.detail
    arrays = pipeline(env_dim=2, env_state_type="float64_multi_array", env_state_scale=[2.0, 2.0])
    good = arrays.prepare(snap(env=EnvStateInput(Float64MultiArray(data=[0.1, 0.2]), NOW)))
    np.testing.assert_allclose(good.observation["observation.environment_state"].numpy(), [0.2, 0.4])
    stale = arrays.prepare(snap(env=EnvStateInput(Float64MultiArray(data=[0.1, 0.2]), NOW - NS)))
    assert stale.kind == "stale" and stale.detail.startswith("/target")
    reason = arrays.prepare(snap(env=EnvStateInput(Float64MultiArray(data=[0.1]), NOW)))
    assert reason.kind == "bad_input.env_state"


def test_commands_stay_inside_the_limits():
    p = pipeline()
    current = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])
    command, clamped = p.limit(np.full(6, 500.0), current)  # 500 deg: far beyond every limit
    assert clamped and np.all(command <= p.mapping.upper) and np.all(np.abs(command - current) <= 0.1 + 1e-12)
