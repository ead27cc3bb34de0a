"""``joint_scale`` / ``joint_offset`` derived from a LeRobot follower calibration and the ROS driver's convention.

LeRobot (0.4+) turns an SO-101 servo's present position ``t`` (ticks, 0..4095, after the homing offset the
calibration wrote into the servo) into what the policy learns from (``lerobot/motors/motors_bus.py``,
``_normalize``)::

    body, use_degrees=True (DEGREES):   p = (t - (range_min + range_max) / 2) * 360 / 4095   (drive_mode ignored)
    body, older datasets (RANGE_M100_100): p = (t - range_min) / (range_max - range_min) * 200 - 100  (negated
                                           when drive_mode)
    gripper (RANGE_0_100):              p = (t - range_min) / (range_max - range_min) * 100  (100 - p when
                                           drive_mode)

ROS 2 drivers publish ``sensor_msgs/JointState`` radians, in one of these conventions (:data:`JOINT_CONVENTIONS`):

* ``lerobot_radians`` - a bridge around LeRobot's own ``SO101Follower`` (nimiCurtis/so101_ros2,
  ``so101_ros2_bridge``): body ``rad = radians(p)`` of LeRobot's degrees, gripper ``rad = p / 100 * pi``;
* ``urdf_range`` - a ros2_control hardware interface that reads the ticks itself (ycheng517/lerobot-ros
  ``so101_hardware``, also in cyberbanana777/so-arm101-ros2 and Neoxra/lerobot-ros-moveit): the calibrated
  ``[range_min, range_max]`` mapped linearly onto the URDF limits of each joint (:data:`URDF_RANGE_LIMITS`),
  gripper included, ``homing_offset`` and ``drive_mode`` unused.

Both are affine in ``t``, and so is LeRobot's normalisation, so ``policy = ros * scale + offset`` exactly
(inside the calibrated range, where both clamp): with ``ros = a_r t + b_r`` and ``p = a_p t + b_p``,
``scale = a_p / a_r`` and ``offset = b_p - scale * b_r``. Commands go back with the same map's inverse.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from act_interp_ros.settings import NodeSettings

__all__ = [
    "JOINT_CONVENTIONS",
    "POLICY_JOINT_UNITS",
    "URDF_RANGE_LIMITS",
    "CalibrationError",
    "DerivedMapping",
    "MotorRange",
    "derive_mapping",
    "load_lerobot_calibration",
    "resolve_joint_mapping",
]

#: convention -> the drivers that use it (README and error messages).
JOINT_CONVENTIONS: dict[str, str] = {
    "lerobot_radians": "LeRobot's SO101Follower wrapped by a ROS bridge, its degrees as radians, gripper 0..100 as "
                       "0..pi (nimiCurtis/so101_ros2 so101_ros2_bridge)",
    "urdf_range": "ticks of the calibrated range mapped linearly onto the URDF joint limits (ycheng517/lerobot-ros "
                  "so101_hardware; cyberbanana777/so-arm101-ros2; Neoxra/lerobot-ros-moveit)",
}
#: units of the policy's observation.state / action for the body joints (the gripper is always 0..100).
POLICY_JOINT_UNITS = ("degrees", "range_m100_100")
#: URDF limits (rad) the ``urdf_range`` drivers map each calibrated range onto (so101_hardware/src/so101_system.cpp).
URDF_RANGE_LIMITS: dict[str, tuple[float, float]] = {
    "shoulder_pan": (-1.91986, 1.91986),
    "shoulder_lift": (-1.74533, 1.74533),
    "elbow_flex": (-1.74533, 1.5708),
    "wrist_flex": (-1.65806, 1.65806),
    "wrist_roll": (-2.79253, 2.79253),
    "gripper": (-0.1745, 1.4483),
}
MAX_RES = 4095  # STS3215: 4096 positions; LeRobot's DEGREES uses 4095 (model resolution - 1)
GRIPPER = "gripper"


class CalibrationError(ValueError):
    """The calibration file or convention cannot be used; the message names the file, motor or parameter."""


@dataclass(frozen=True)
class MotorRange:
    """One motor of LeRobot's ``MotorCalibration``: ``drive_mode``, ``homing_offset``, ``range_min/max`` (ticks)."""

    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int

    @property
    def mid(self) -> float:
        return (self.range_min + self.range_max) / 2

    @property
    def span(self) -> float:
        return float(self.range_max - self.range_min)


def load_lerobot_calibration(path: str | Path) -> dict[str, MotorRange]:
    """Read LeRobot's follower calibration JSON (``calibration/robots/so101_follower/<id>.json``).

    Raises CalibrationError with one line naming the file and the motor/field at fault.
    """
    path = Path(path).expanduser()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CalibrationError(f"calibration_file '{path}' does not exist; expected LeRobot's follower calibration "
                               "JSON, e.g. ~/.cache/huggingface/lerobot/calibration/robots/so101_follower/<id>.json") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise CalibrationError(f"calibration_file '{path}' cannot be read as JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise CalibrationError(f"calibration_file '{path}' must map motor names to their calibration")
    out: dict[str, MotorRange] = {}
    for motor, fields in data.items():
        try:
            values = {k: int(fields[k]) for k in ("id", "drive_mode", "homing_offset", "range_min", "range_max")}
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"calibration_file '{path}': motor '{motor}' lacks a whole-number {exc} (LeRobot's "
                                   "MotorCalibration has id, drive_mode, homing_offset, range_min, range_max)") from None
        if values["range_max"] <= values["range_min"]:
            raise CalibrationError(f"calibration_file '{path}': motor '{motor}' has range_max {values['range_max']} <= "
                                   f"range_min {values['range_min']}; recalibrate the arm")
        out[str(motor)] = MotorRange(**values)
    return out


def _lerobot(cal: MotorRange, mode: str) -> tuple[float, float]:
    """LeRobot's normalisation of ticks as ``(a, b)``: value = a * t + b (see the module docstring)."""
    if mode == "degrees":
        a = 360.0 / MAX_RES
        return a, -cal.mid * a
    if mode == "range_m100_100":
        a, b = 200.0 / cal.span, -cal.range_min * 200.0 / cal.span - 100.0
        return (-a, -b) if cal.drive_mode else (a, b)
    if mode == "range_0_100":
        a, b = 100.0 / cal.span, -cal.range_min * 100.0 / cal.span
        return (-a, 100.0 - b) if cal.drive_mode else (a, b)
    raise ValueError(mode)


def _driver(cal: MotorRange, convention: str, joint: str) -> tuple[float, float]:
    """The driver's radians of ticks as ``(a, b)``."""
    if convention == "lerobot_radians":
        if joint == GRIPPER:
            a, b = _lerobot(cal, "range_0_100")
            return a * math.pi / 100.0, b * math.pi / 100.0
        a, b = _lerobot(cal, "degrees")  # the bridge runs SO101Follower with use_degrees=True
        return math.radians(a), math.radians(b)
    if convention == "urdf_range":
        lo, hi = URDF_RANGE_LIMITS[joint]
        a = (hi - lo) / cal.span
        return a, lo - cal.range_min * a
    raise ValueError(convention)


@dataclass(frozen=True)
class DerivedMapping:
    """``scale``/``offset`` per joint (policy order) and the table printed at start."""

    scale: list[float]
    offset: list[float]
    rows: list[str]


def derive_mapping(convention: str, joint_names: Sequence[str], calibration: Mapping[str, MotorRange] | None,
                   policy_units: str = "degrees") -> DerivedMapping:
    """``policy = ros * scale + offset`` per joint for ``convention`` (see the module docstring).

    ``calibration`` may be None only where the result does not depend on it (``lerobot_radians`` with a policy in
    degrees). Raises CalibrationError naming what is missing.
    """
    if convention not in JOINT_CONVENTIONS:
        raise CalibrationError(f"joint_convention must be one of {', '.join(JOINT_CONVENTIONS)} (or empty), got "
                               f"'{convention}'")
    needs_cal = convention == "urdf_range" or policy_units != "degrees"
    if needs_cal and calibration is None:
        raise CalibrationError(f"joint_convention '{convention}' with policy_joint_units '{policy_units}' needs "
                               "calibration_file (LeRobot's follower calibration JSON)")
    scale, offset = [], []
    rows = [f"joint mapping from joint_convention '{convention}' ({JOINT_CONVENTIONS[convention]})"
            + (f" and calibration {len(calibration)} motors" if calibration else "") + ":",
            f"  {'joint':<14} {'policy units':<14} {'scale':>12} {'offset':>12}  calibration"]
    for joint in joint_names:
        if calibration is not None and joint not in calibration:
            raise CalibrationError(f"the calibration has no motor '{joint}' (it has {', '.join(calibration)}); "
                                   "joint_names must be LeRobot's motor names")
        if convention == "urdf_range" and joint not in URDF_RANGE_LIMITS:
            raise CalibrationError(f"joint_convention 'urdf_range' knows the URDF limits of {', '.join(URDF_RANGE_LIMITS)}, "
                                   f"not '{joint}'")
        cal = calibration[joint] if calibration is not None else MotorRange(0, 0, 0, 0, MAX_RES)
        mode = "range_0_100" if joint == GRIPPER else policy_units
        a_p, b_p = _lerobot(cal, mode)
        a_r, b_r = _driver(cal, convention, joint)
        s = a_p / a_r
        scale.append(s)
        offset.append(b_p - s * b_r)
        where = (f"range {cal.range_min}..{cal.range_max}, drive_mode {cal.drive_mode}" if calibration is not None
                 else "not needed")
        rows.append(f"  {joint:<14} {'0..100' if joint == GRIPPER else policy_units:<14} {s:>12.6g} {offset[-1]:>12.6g}"
                    f"  {where}")
    return DerivedMapping(scale, offset, rows)


def resolve_joint_mapping(settings: NodeSettings) -> tuple[NodeSettings, list[str]]:
    """Settings with ``joint_scale``/``joint_offset`` derived from ``joint_convention`` (+ ``calibration_file``),
    and the lines to log at start (the derived table; one line per explicit value that wins).

    ``joint_scale`` / ``joint_offset`` that differ from their defaults were set by hand: they win. Without a
    convention the settings are returned unchanged. Raises CalibrationError.
    """
    from act_interp_ros.settings.schema import parameter_defaults

    convention = settings.joint_convention
    if not convention:
        if settings.calibration_file:
            raise CalibrationError("calibration_file is set but joint_convention is empty: name the driver's convention "
                                   f"({', '.join(JOINT_CONVENTIONS)})")
        return settings, []
    calibration = load_lerobot_calibration(settings.calibration_file) if settings.calibration_file else None
    derived = derive_mapping(convention, settings.joint_names, calibration, settings.policy_joint_units)
    lines = list(derived.rows)
    defaults = parameter_defaults()
    changes = {}
    for name, values in (("joint_scale", derived.scale), ("joint_offset", derived.offset)):
        given = getattr(settings, name)
        if given != defaults[name]:
            lines.append(f"{name} is set explicitly ({given}): it wins over the derived "
                         f"[{', '.join(f'{v:.6g}' for v in values)}]")
            continue
        changes[name] = values
    return (settings.replace(**changes) if changes else settings), lines
