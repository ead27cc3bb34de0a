"""Synthetic SO-101 scene: determinism, object regions, expert behaviour and rendering."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from act_interp_ros.synthetic import (
    CAMERA_NAMES,
    HOME_POSE,
    PHASES,
    POLICY_SCALE,
    CubeState,
    ExpertConfig,
    SceneConfig,
    SceneState,
    SyntheticScene,
    forward_kinematics,
    generate_episode,
    inverse_kinematics,
    policy_to_radians,
    radians_to_policy,
    simulate_episode,
)

SMALL = (96, 128)


@pytest.fixture(scope="module")
def scene() -> SyntheticScene:
    return SyntheticScene(SceneConfig(image_size=SMALL))


def _state(target=(0.20, 0.06, 10.0), distractor=(0.17, -0.08, -20.0), joints=HOME_POSE) -> SceneState:
    return SceneState(np.array(joints, float), CubeState.on_table(*target), CubeState.on_table(*distractor))


def test_no_ros_or_torch_imports():
    import subprocess
    import sys

    code = ("import sys, act_interp_ros.synthetic as s; "
            "bad = [m for m in ('rclpy', 'torch', 'lerobot', 'rosbags') if m in sys.modules]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_render_shapes_default_and_small(scene):
    big = SyntheticScene()  # default 480x640
    for cam in CAMERA_NAMES:
        img = big.render(_state(), cam)
        assert img.shape == (480, 640, 3) and img.dtype == np.uint8
        small = scene.render(_state(), cam)
        assert small.shape == (*SMALL, 3) and small.dtype == np.uint8
        assert small.std() > 10  # not a flat image
    with pytest.raises(ValueError, match="unknown camera"):
        scene.render(_state(), "top")


def test_episode_is_deterministic():
    a = generate_episode(7, 24, SMALL)
    b = generate_episode(7, 24, SMALL)
    c = generate_episode(8, 24, SMALL)
    for cam in CAMERA_NAMES:
        assert np.array_equal(a.images[cam], b.images[cam])
        assert not np.array_equal(a.images[cam], c.images[cam])
        for obj in ("target", "distractor"):
            assert np.array_equal(a.boxes[cam][obj], b.boxes[cam][obj])
    assert np.array_equal(a.action, b.action) and np.array_equal(a.state, b.state)
    assert not np.array_equal(a.action, c.action)
    assert a.target_xy_yaw != c.target_xy_yaw


def test_episode_fields_units_and_timestamps():
    ep = simulate_episode(3, 40)
    assert len(ep) == 40
    assert ep.state.shape == ep.action.shape == ep.state_rad.shape == (40, 6)
    np.testing.assert_allclose(np.diff(ep.timestamps), 1 / 30, atol=1e-12)
    assert ep.timestamps[0] == 0.0
    np.testing.assert_allclose(ep.state_rad, ep.state / 57.29577951308232)
    assert POLICY_SCALE == 57.29577951308232
    np.testing.assert_allclose(policy_to_radians([0, 0, 0, 0, 0, 100])[5], 1.7453292519943295)
    np.testing.assert_allclose(radians_to_policy(policy_to_radians(ep.action)), ep.action)
    assert ep.images is None and ep.boxes is None
    assert ep.joint_names == ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper")


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_object_boxes_inside_image_and_distinct(scene, seed):
    ep = simulate_episode(seed, 1)
    st = ep.scene_state(0)
    img = scene.render(st, "front")
    boxes = scene.boxes(st, "front")
    masks = scene.masks(st, "front")
    h, w = SMALL
    for name in ("target", "distractor"):
        x0, y0, x1, y1 = boxes[name]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert (x1 - x0) * (y1 - y0) >= 25  # visible at 96x128
        ys, xs = np.nonzero(masks[name])
        assert xs.min() >= x0 and xs.max() < x1 and ys.min() >= y0 and ys.max() < y1
    assert boxes["target"] != boxes["distractor"]
    assert not (masks["target"] & masks["distractor"]).any()
    # the target region is red, the distractor's blue
    rgb = img.astype(int)
    red = (rgb[..., 0] > rgb[..., 2] + 60) & masks["target"]
    blue = (rgb[..., 2] > rgb[..., 0] + 60) & masks["distractor"]
    assert red.sum() >= 0.5 * masks["target"].sum()
    assert blue.sum() >= 0.5 * masks["distractor"].sum()


def test_wrist_camera_sees_target_while_grasping():
    ep = generate_episode(2, 60, SMALL)
    grasp = np.nonzero(ep.phase == PHASES.index("grasp"))[0]
    assert grasp.size
    box = ep.boxes["wrist"]["target"][grasp[0]]
    assert box[0] >= 0  # visible
    area = (box[2] - box[0]) * (box[3] - box[1])
    assert area > 0.05 * SMALL[0] * SMALL[1]


def test_distractor_does_not_change_actions():
    base = simulate_episode(11, 120)
    moved = simulate_episode(11, 120, distractor_xy_yaw=(0.16, 0.12, 30.0))
    absent = simulate_episode(11, 120, with_distractor=False)
    assert not np.allclose(base.distractor_pos[0], moved.distractor_pos[0])
    assert np.array_equal(base.action, moved.action)
    assert np.array_equal(base.action, absent.action)
    assert np.array_equal(base.target_pos, moved.target_pos)
    assert np.isnan(absent.distractor_pos).all() and absent.scene_state(0).distractor is None


def test_target_changes_actions_and_pan_aims_at_it():
    a = simulate_episode(11, 60, target_xy_yaw=(0.20, 0.08, 0.0))
    b = simulate_episode(11, 60, target_xy_yaw=(0.20, -0.08, 0.0))
    assert not np.allclose(a.action, b.action)
    assert np.array_equal(a.distractor_pos, b.distractor_pos)  # only the target moved
    for ep, (x, y, _) in ((a, a.target_xy_yaw), (b, b.target_xy_yaw)):
        descend = np.nonzero(ep.phase == PHASES.index("descend"))[0]
        assert descend.size
        assert abs(ep.state[descend[0], 0] - math.degrees(math.atan2(y, x))) < 2.0
    assert np.sign(a.action[30, 0]) == 1 and np.sign(b.action[30, 0]) == -1


def test_full_pick_and_place():
    cfg = ExpertConfig()
    ep = simulate_episode(5, 170)
    phases = [PHASES[i] for i in ep.phase]
    for name in ("approach", "descend", "grasp", "lift", "carry", "lower", "release", "retreat", "done"):
        assert name in phases, name
    grasp = ep.phase == PHASES.index("grasp")
    assert ep.action[grasp, 5].min() <= cfg.gripper_closed + 1e-6  # commanded closed
    assert 40.0 < ep.state[grasp, 5].min() < 50.0  # fingers stop on the 35 mm cube
    lift = ep.phase == PHASES.index("lift")
    assert ep.target_pos[lift, 2].max() > 0.08  # the cube is lifted with the gripper
    np.testing.assert_allclose(ep.target_pos[-1, :2], cfg.place_xy, atol=0.02)  # and placed
    assert ep.target_pos[-1, 2] == pytest.approx(0.035 / 2)
    np.testing.assert_allclose(ep.state[-1], HOME_POSE, atol=1.0)


def test_kinematics_round_trip():
    for xyz in ((0.20, 0.05, 0.0175), (0.15, -0.10, 0.08), (0.21, 0.0, 0.12)):
        arm = inverse_kinematics(np.array(xyz), 20.0)
        pose = forward_kinematics(np.append(arm, 50.0))
        np.testing.assert_allclose(pose.tcp, xyz, atol=1e-6)
        np.testing.assert_allclose(pose.axis, [0, 0, -1], atol=1e-6)  # gripper points down
        yaw = math.degrees(math.atan2(pose.lateral[1], pose.lateral[0]))
        assert (yaw - 20.0 + 45.0) % 90.0 == pytest.approx(45.0, abs=1e-6)  # fingers close on a face


def test_arm_visibly_moves_with_joints(scene):
    st = _state()
    moved = _state(joints=HOME_POSE + np.array([25.0, 20.0, -20.0, 10.0, 30.0, 60.0]))
    for cam in CAMERA_NAMES:
        a, b = scene.render(st, cam), scene.render(moved, cam)
        changed = np.abs(a.astype(int) - b.astype(int)).sum(-1) > 30
        assert changed.mean() > 0.02, cam
    # each joint alone changes the front image
    base = scene.render(st, "front")
    for j in range(6):
        q = HOME_POSE.copy()
        q[j] += 40.0 if j < 5 else 80.0
        img = scene.render(_state(joints=q), "front")
        assert (np.abs(img.astype(int) - base.astype(int)).sum(-1) > 30).sum() >= 3, j


def test_render_speed_small(scene):
    ep = simulate_episode(0, 30)
    scene.render_with_boxes(ep.scene_state(0))  # warm caches
    t0 = time.perf_counter()
    for t in range(30):
        scene.render_with_boxes(ep.scene_state(t))
    per_pair = (time.perf_counter() - t0) / 30
    assert per_pair < 0.015, f"{per_pair * 1000:.1f} ms per frame pair at 96x128"
