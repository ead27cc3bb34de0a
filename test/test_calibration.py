"""Calibration import (joint_convention + calibration_file): a calibration JSON written by LeRobot's own
SO101Follower/MotorCalibration code, a recorded tick trajectory, and the two driver conventions. Ticks -> LeRobot's
own normalisation (what the policy was trained on) must equal ticks -> the driver's radians -> the node's
mapping within 0.1 degree, for every joint, the gripper included; commands go back through the inverse."""

from __future__ import annotations

import math

import numpy as np
import pytest

from act_interp_ros.inputs.calibration import (
    URDF_RANGE_LIMITS,
    CalibrationError,
    derive_mapping,
    load_lerobot_calibration,
    resolve_joint_mapping,
)
from act_interp_ros.inputs.joint_mapping import JointMapping
from act_interp_ros.settings import NodeSettings, SettingsError

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
#: A follower's calibration as LeRobot's `lerobot-calibrate` records it (ticks; wrist_roll is a full turn);
#: elbow_flex and the gripper with drive_mode 1 to cover LeRobot's reversal.
CALIBRATION = {
    "shoulder_pan": (1, 0, -1378, 758, 3292),
    "shoulder_lift": (2, 0, 1004, 612, 3401),
    "elbow_flex": (3, 1, -1056, 800, 3200),
    "wrist_flex": (4, 0, 1053, 700, 3400),
    "wrist_roll": (5, 0, -512, 0, 4095),
    "gripper": (6, 1, 1209, 2023, 3542),
}
TOLERANCE_DEG = 0.1


def lerobot_follower(tmp_path, use_degrees: bool = True):
    """LeRobot's own SO101Follower (not connected) holding CALIBRATION, saved with its own code."""
    from lerobot.motors import MotorCalibration
    from lerobot.robots.so_follower import SO101Follower, SO101FollowerConfig

    robot = SO101Follower(SO101FollowerConfig(port="/dev/null", id="test_arm", calibration_dir=tmp_path,
                                              use_degrees=use_degrees))
    robot.calibration = {m: MotorCalibration(id=i, drive_mode=d, homing_offset=h, range_min=lo, range_max=hi)
                         for m, (i, d, h, lo, hi) in CALIBRATION.items()}
    robot.bus.calibration = robot.calibration
    robot._save_calibration()  # LeRobot writes calibration/robots/so101_follower/<id>.json like this
    return robot


def recorded_ticks(robot) -> np.ndarray:
    """(T, 6) present-position ticks of a recorded pick: the synthetic SO-101 expert's episode, in LeRobot's
    units, turned into ticks by LeRobot's own _unnormalize (integers, as the servos report them)."""
    from act_interp_ros.synthetic.expert import simulate_episode

    states = simulate_episode(3, 120).state  # (T, 6): degrees, gripper 0..100
    ids = {m: robot.bus.motors[m].id for m in JOINTS}
    ticks = []
    for row in states:
        raw = robot.bus._unnormalize({ids[m]: float(v) for m, v in zip(JOINTS, row)})
        ticks.append([raw[ids[m]] for m in JOINTS])
    return np.asarray(ticks)


def lerobot_units(robot, ticks: np.ndarray) -> np.ndarray:
    """(T, 6) what LeRobot's own normalisation makes of the ticks: the policy's units."""
    ids = {m: robot.bus.motors[m].id for m in JOINTS}
    out = []
    for row in ticks:
        norm = robot.bus._normalize({ids[m]: int(t) for m, t in zip(JOINTS, row)})
        out.append([norm[ids[m]] for m in JOINTS])
    return np.asarray(out)


# ------------------------------------------------ the drivers, transcribed from their source (radians of ticks)
def urdf_range_radians(ticks: np.ndarray) -> np.ndarray:
    """ycheng517/lerobot-ros so101_hardware rawToRadians: clamp to the calibrated range, map onto the URDF limits."""
    out = np.empty(ticks.shape)
    for j, m in enumerate(JOINTS):
        _, _, _, lo, hi = CALIBRATION[m]
        lower, upper = URDF_RANGE_LIMITS[m]
        progress = (np.clip(ticks[:, j], lo, hi) - lo) / (hi - lo)
        out[:, j] = progress * (upper - lower) + lower
    return out


def urdf_range_ticks(rad: np.ndarray) -> np.ndarray:
    """The same driver's radiansToRaw (commands): clamp to the URDF limits, onto the calibrated range, int()."""
    out = np.empty(rad.shape, dtype=np.int64)
    for j, m in enumerate(JOINTS):
        _, _, _, lo, hi = CALIBRATION[m]
        lower, upper = URDF_RANGE_LIMITS[m]
        progress = (np.clip(rad[:, j], lower, upper) - lower) / (upper - lower)
        out[:, j] = (progress * (hi - lo) + lo).astype(np.int64)
    return out


def bridge_radians(robot, ticks: np.ndarray) -> np.ndarray:
    """nimiCurtis/so101_ros2 so101_ros2_bridge publish_joint_states: LeRobot's observation (its own
    normalisation, use_degrees) -> radians(deg) for the body, gripper / 100 * pi."""
    obs = lerobot_units(robot, ticks)
    rad = np.radians(obs)
    rad[:, -1] = obs[:, -1] / 100.0 * math.pi
    return rad


def settings(path, convention: str, **extra) -> NodeSettings:
    return NodeSettings.from_mapping({"policy_path": "user/act", "joint_convention": convention,
                                      "calibration_file": str(path), **extra})


# ------------------------------------------------------------------------------------------------- tests
def test_the_file_lerobot_writes_is_read(tmp_path):
    robot = lerobot_follower(tmp_path)
    assert robot.calibration_fpath == tmp_path / "test_arm.json"
    cal = load_lerobot_calibration(robot.calibration_fpath)
    assert list(cal) == JOINTS
    assert (cal["gripper"].drive_mode, cal["gripper"].range_min, cal["gripper"].range_max) == (1, 2023, 3542)


@pytest.mark.parametrize("convention", ["urdf_range", "lerobot_radians"])
def test_recorded_ticks_reach_the_policy_in_lerobot_units(tmp_path, convention):
    robot = lerobot_follower(tmp_path)
    ticks = recorded_ticks(robot)
    expected = lerobot_units(robot, ticks)  # ticks -> LeRobot degrees (gripper 0..100): the training data
    ros = urdf_range_radians(ticks) if convention == "urdf_range" else bridge_radians(robot, ticks)
    resolved, lines = resolve_joint_mapping(settings(robot.calibration_fpath, convention))
    mapping = JointMapping.from_settings(resolved)
    got = mapping.ros_to_policy(ros)  # ticks -> the driver's radians -> the node's mapping
    err = np.abs(got - expected).max(axis=0)
    assert np.all(err < TOLERANCE_DEG), dict(zip(JOINTS, err.round(4)))
    assert ticks[:, 0].max() - ticks[:, 0].min() > 100, "the recording moves"
    lows, highs = (np.array([CALIBRATION[m][k] for m in JOINTS]) for k in (3, 4))
    assert np.all((ticks >= lows) & (ticks <= highs)), "a calibrated arm moves inside its recorded range"
    assert lines[0].startswith(f"joint mapping from joint_convention '{convention}'")
    assert any(line.split()[0] == "gripper" and "drive_mode 1" in line for line in lines[2:]), lines


def test_older_datasets_in_m100_100(tmp_path):
    robot = lerobot_follower(tmp_path, use_degrees=False)  # the body joints in -100..100, drive_mode reverses
    ticks = recorded_ticks(lerobot_follower(tmp_path / "deg"))
    expected = lerobot_units(robot, ticks)
    resolved, _ = resolve_joint_mapping(settings(robot.calibration_fpath, "urdf_range",
                                                 policy_joint_units="range_m100_100"))
    got = JointMapping.from_settings(resolved).ros_to_policy(urdf_range_radians(ticks))
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("convention", ["urdf_range", "lerobot_radians"])
def test_commands_round_trip_in_the_robots_units(tmp_path, convention):
    """policy units -> ROS (the node's inverse) -> policy units is the identity for every joint, and the driver's
    own command path lands on the ticks LeRobot would command, within 0.1 degree (one tick is 0.088 degree)."""
    robot = lerobot_follower(tmp_path)
    mapping = JointMapping.from_settings(resolve_joint_mapping(settings(robot.calibration_fpath, convention))[0])
    policy = lerobot_units(robot, recorded_ticks(robot))  # actions in the policy's units
    ros = mapping.policy_to_ros(policy)
    np.testing.assert_allclose(mapping.ros_to_policy(ros), policy, atol=1e-9)
    if convention == "urdf_range":
        back = lerobot_units(robot, urdf_range_ticks(ros))
    else:  # the bridge commands LeRobot in degrees: its send_action takes degrees(rad) for the body joints
        back = np.degrees(ros)
        policy, back = policy[:, :-1], back[:, :-1]  # its gripper command path adds 10 (README)
    err = np.abs(back - policy).max(axis=0)
    assert np.all(err < TOLERANCE_DEG), err


def test_lerobot_radians_needs_no_calibration_for_degrees():
    derived = derive_mapping("lerobot_radians", JOINTS, None)
    np.testing.assert_allclose(derived.scale, [180 / math.pi] * 5 + [100 / math.pi])
    np.testing.assert_allclose(derived.offset, [0.0] * 6, atol=1e-9)
    with pytest.raises(CalibrationError, match="needs calibration_file"):
        derive_mapping("urdf_range", JOINTS, None)


def test_explicit_values_win_with_one_line(tmp_path):
    robot = lerobot_follower(tmp_path)
    s = settings(robot.calibration_fpath, "urdf_range", joint_offset=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    resolved, lines = resolve_joint_mapping(s)
    assert resolved.joint_offset == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert resolved.joint_scale != s.joint_scale  # the scale was not given: derived
    [line] = [ln for ln in lines if "explicitly" in ln]
    assert line.startswith("joint_offset is set explicitly ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]): it wins over the derived")
    assert resolve_joint_mapping(NodeSettings.from_mapping({"policy_path": "user/act"})) == (
        NodeSettings.from_mapping({"policy_path": "user/act"}), [])


def test_bad_calibration_is_one_clear_line(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist"):
        resolve_joint_mapping(settings(tmp_path / "nope.json", "urdf_range"))
    broken = tmp_path / "broken.json"
    broken.write_text('{"shoulder_pan": {"id": 1, "drive_mode": 0}}')
    with pytest.raises(CalibrationError, match="motor 'shoulder_pan' lacks a whole-number 'homing_offset'"):
        load_lerobot_calibration(broken)
    robot = lerobot_follower(tmp_path)
    with pytest.raises(CalibrationError, match="has no motor 'elbow'"):
        resolve_joint_mapping(settings(robot.calibration_fpath, "urdf_range",
                                       joint_names=["shoulder_pan", "shoulder_lift", "elbow", "wrist_flex",
                                                    "wrist_roll", "gripper"]))
    with pytest.raises(SettingsError, match="joint_convention"):
        NodeSettings.from_mapping({"policy_path": "user/act", "joint_convention": "urdf"})
    with pytest.raises(SettingsError, match="joint_convention"):
        NodeSettings.from_mapping({"policy_path": "user/act", "calibration_file": str(robot.calibration_fpath)})


def test_check_units_uses_the_derived_mapping(capsys, tmp_path, ranged_checkpoint):
    """A bag from a urdf_range driver: wrong with the default mapping, right with the calibration import."""
    from act_interp_ros.cli import replay as replay_cli
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    robot = lerobot_follower(tmp_path)
    ids = {m: robot.bus.motors[m].id for m in JOINTS}

    def to_driver(rad: np.ndarray) -> np.ndarray:  # the synthetic arm's LeRobot units -> ticks -> driver radians
        deg = np.degrees(rad)
        deg[-1] = rad[-1] * 180 / math.pi  # the synthetic gripper: 0..1.745 rad = 0..100 policy units
        raw = robot.bus._unnormalize({ids[m]: float(v) for m, v in zip(JOINTS, deg)})
        return urdf_range_radians(np.array([[raw[ids[m]] for m in JOINTS]]))[0]

    bag = write_synthetic_bag(tmp_path / "bag", n_frames=20, image_size=(48, 64), seed=7, joint_transform=to_driver)
    rc = replay_cli.main([str(bag), "--policy", str(ranged_checkpoint), "--check-units", "-p",
                          "joint_convention:=urdf_range", "-p", f"calibration_file:={robot.calibration_fpath}"])
    out = capsys.readouterr().out
    assert rc == 0 and "every joint is inside the training range" in out, out
