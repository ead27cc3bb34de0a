"""Units before going live: ``act_interp_replay BAG --policy P --check-units`` catches a bag in the wrong
convention (degrees published as radians; a zero half a turn off) and prints the joint_scale/joint_offset that
fix it; the replay of such a bag has an ``outside_training_range`` column and a summary line."""

from __future__ import annotations

import math

import numpy as np
import pytest

from act_interp_ros.cli import replay as replay_cli
from act_interp_ros.offline.outputs import read_table
from act_interp_ros.inputs.units_fit import DEG, fit_joint
from conftest import TRAINING_STATE_MAX, TRAINING_STATE_MIN

JOINTS = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
N_FRAMES = 20


def run_cli(capsys, *args) -> tuple[int, str, str]:
    rc = replay_cli.main([str(a) for a in args])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    """The same synthetic SO-101 recording (radians, LeRobot's zero) in three conventions."""
    from act_interp_ros.bag.synthetic_bag import write_synthetic_bag

    root = tmp_path_factory.mktemp("units_bags")
    kinds = {"right": None, "degrees_as_radians": np.degrees, "half_turn": lambda rad: rad + math.pi}
    return {name: write_synthetic_bag(root / name, n_frames=N_FRAMES, image_size=(48, 64), seed=7,
                                      joint_transform=transform) for name, transform in kinds.items()}


# ------------------------------------------------------------------------------------------- the fit
RNG = np.random.default_rng(0)
TRUE_DEG = RNG.uniform(-30.0, 30.0, 200)  # a joint moving inside a -90..90 deg training range


@pytest.mark.parametrize("true,ros,scale,offset,cause", [
    (TRUE_DEG, TRUE_DEG, 1.0, 0.0, "degrees published as radians"),
    (TRUE_DEG, np.radians(TRUE_DEG) + math.pi, DEG, -180.0, "half a turn"),
    (TRUE_DEG, np.radians(TRUE_DEG) - math.pi / 2, DEG, 90.0, "1 quarter turn"),
    (TRUE_DEG + 60.0, -np.radians(TRUE_DEG + 60.0), -DEG, 0.0, "reversed"),  # -> 30..90 in a 0..120 range
])
def test_a_simple_fit_explains_the_mismatch(true, ros, scale, offset, cause):
    low, high = (0.0, 120.0) if cause == "reversed" else (-90.0, 90.0)
    fit = fit_joint("elbow_flex", ros, DEG, 0.0, low, high, 0.1, (low + high) / 2, 45.0)
    assert not fit.inside and fit.fixed, fit
    assert fit.scale == pytest.approx(scale) and fit.offset == pytest.approx(offset, abs=1e-9), fit
    assert cause in fit.cause, fit
    np.testing.assert_allclose(ros * fit.scale + fit.offset, true, atol=1e-9)


def test_the_right_units_need_no_fix_and_the_gripper_range_is_fitted():
    fit = fit_joint("elbow_flex", np.radians(TRUE_DEG), DEG, 0.0, -90.0, 90.0, 0.1)
    assert fit.inside and fit.verdict == "ok" and (fit.scale, fit.offset) == (DEG, 0.0)
    # a driver whose gripper radians have another zero and span (-0.2..2.3 rad closed..open) over a full
    # open/close: the recorded range is fitted onto the training 0..100
    opening = np.linspace(0.0, 1.0, 50)
    fit = fit_joint("gripper", -0.2 + 2.5 * opening, DEG, 0.0, 0.0, 100.0, 0.1, 50.0, 30.0, gripper=True)
    assert fit.fixed and "gripper" in fit.cause, fit
    np.testing.assert_allclose((-0.2 + 2.5 * opening) * fit.scale + fit.offset, opening * 100.0, atol=1e-3)
    nothing = fit_joint("wrist_roll", np.array([0.0, 1000.0]), DEG, 0.0, -90.0, 90.0, 0.1)
    assert not nothing.fixed and "no simple fit" in nothing.verdict


# ------------------------------------------------------------------------------------------- the CLI
def test_check_units_passes_a_bag_in_the_right_units(capsys, bags, ranged_checkpoint):
    rc, out, err = run_cli(capsys, bags["right"], "--policy", ranged_checkpoint, "--check-units")
    assert rc == 0, (out, err)
    assert "every joint is inside the training range" in out
    assert out.count(" ok") >= len(JOINTS)


def test_check_units_catches_degrees_published_as_radians(capsys, bags, ranged_checkpoint):
    rc, out, err = run_cli(capsys, bags["degrees_as_radians"], "--policy", ranged_checkpoint, "--check-units")
    assert rc == replay_cli.EXIT_UNITS_MISMATCH, (out, err)
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()[0] in JOINTS}
    for joint in JOINTS:
        assert "OUTSIDE: degrees published as radians; fix joint_scale 1, joint_offset 0" in rows[joint], rows[joint]
    assert "  joint_scale: [1, 1, 1, 1, 1, 1]" in out and "  joint_offset: [0, 0, 0, 0, 0, 0]" in out
    assert "6 joint(s) outside the training range" in out


def test_check_units_catches_a_zero_half_a_turn_off(capsys, bags, ranged_checkpoint):
    rc, out, err = run_cli(capsys, bags["half_turn"], "--policy", ranged_checkpoint, "--check-units")
    assert rc == replay_cli.EXIT_UNITS_MISMATCH, (out, err)
    for joint in JOINTS:
        row = next(line for line in out.splitlines() if line.startswith(f"  {joint} "))
        assert "half a turn (+180 deg); fix joint_scale 57.29577951, joint_offset -180" in row, row
    assert "  joint_offset: [-180, -180, -180, -180, -180, -180]" in out
    # and the fix printed is the fix: with it the check passes
    rc, out, _ = run_cli(capsys, bags["half_turn"], "--policy", ranged_checkpoint, "--check-units",
                         "-p", "joint_offset:=[-180.0, -180.0, -180.0, -180.0, -180.0, -180.0]")
    assert rc == 0, out


def test_check_units_needs_a_training_range(capsys, bags, node_checkpoint):
    rc, _, err = run_cli(capsys, bags["right"], "--policy", node_checkpoint, "--check-units")
    assert rc == replay_cli.EXIT_BAD_INPUT and "Traceback" not in err
    assert "has no min/max for observation.state" in err and len(err.strip().splitlines()) == 1, err


# ------------------------------------------------------------------------------------------- the replay
def test_the_replay_has_a_column_and_a_summary_line(capsys, tmp_path, bags, ranged_checkpoint):
    out_dir = tmp_path / "out"
    rc, out, err = run_cli(capsys, bags["half_turn"], "--policy", ranged_checkpoint, "--out", out_dir, "--no-bag",
                           "--no-video", "--no-plot", "--side-every", "0", "--faithfulness-samples", "0",
                           "-p", "joint_lower_limits:=[-4.0, -4.0, -4.0, -4.0, -4.0, -4.0]",
                           "-p", "joint_upper_limits:=[6.0, 6.0, 6.0, 6.0, 6.0, 6.0]")
    assert rc == 0, (out, err)
    line = next(ln for ln in out.splitlines() if ln.startswith("training range:"))
    assert "state_outside_training_range.shoulder_pan on" in line and "first: joint '" in line, line
    table = read_table(out_dir / "ticks.csv")
    flagged = table["outside_training_range"].fillna("")
    assert (flagged[~table["skipped"]] == ",".join(JOINTS)).all(), flagged.tolist()
    import json

    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["outside_training_range"]["state_outside_training_range.gripper"] == int((flagged != "").sum())
    # the right bag: nothing flagged
    rc, out, _ = run_cli(capsys, bags["right"], "--policy", ranged_checkpoint, "--out", tmp_path / "ok", "--no-bag",
                         "--no-video", "--no-plot", "--side-every", "0", "--faithfulness-samples", "0")
    assert rc == 0 and "training range: every checked input inside" in out, out
    assert (read_table(tmp_path / "ok" / "ticks.csv")["outside_training_range"].fillna("") == "").all()
    assert TRAINING_STATE_MIN[0] < TRAINING_STATE_MAX[0]
