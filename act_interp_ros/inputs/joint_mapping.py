"""Joint-space mapping between ROS (sensor_msgs/JointState, radians) and the policy (LeRobot units).

    policy = ros * scale + offset          ros = (policy - offset) / scale
    command (ROS) = (action - command_offset - offset) / scale

``command_offset`` (policy units) is what a driver's command path adds beyond the inverse of its joint states
(nimiCurtis/so101_ros2's bridge commands the gripper 10 units more open than it publishes): subtracted from
commands only, so the arm executes the policy's action. Limits and max step are in ROS units. Shared by the live node and the offline replay.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["ActionError", "JointLimitError", "JointMapping", "JointMappingError", "JointStateError"]


class JointMappingError(ValueError):
    """Base class for joint mapping errors."""


class JointStateError(JointMappingError):
    """A JointState (or current position vector) cannot be used: missing joint, size mismatch, NaN."""


class JointLimitError(JointStateError):
    """A joint state is outside the configured limits by more than the tolerance."""


class ActionError(JointMappingError):
    """A policy action cannot be commanded (wrong size or non-finite value)."""


def _vector(name: str, values: Sequence[float], n: int) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"JointMapping: '{name}' must have one value per joint ({n}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"JointMapping: '{name}' must be finite, got {arr.tolist()}")
    return arr


class JointMapping:
    """Maps joint vectors between ROS and policy order/units and limits commands.

    Args:
        names: joint names in policy order.
        scale, offset: per joint, policy = ros * scale + offset (scale != 0).
        lower, upper: per joint command limits, ROS units (lower < upper).
        max_step: per joint largest command change from the current position per call to `limit`,
            ROS units (> 0).
        command_offset: per joint, policy units the driver adds to a command beyond the inverse of its joint
            states (default 0): :meth:`command_to_ros` subtracts it.
    """

    def __init__(self, names: Sequence[str], scale: Sequence[float], offset: Sequence[float],
                 lower: Sequence[float], upper: Sequence[float], max_step: Sequence[float],
                 command_offset: Sequence[float] | None = None) -> None:
        self.names: tuple[str, ...] = tuple(names)
        n = len(self.names)
        if n == 0:
            raise ValueError("JointMapping: 'names' must list at least one joint")
        if len(set(self.names)) != n:
            raise ValueError(f"JointMapping: 'names' must be distinct, got {list(self.names)}")
        self.scale = _vector("scale", scale, n)
        self.offset = _vector("offset", offset, n)
        self.lower = _vector("lower", lower, n)
        self.upper = _vector("upper", upper, n)
        self.max_step = _vector("max_step", max_step, n)
        self.command_offset = _vector("command_offset", [0.0] * n if command_offset is None else command_offset, n)
        if np.any(self.scale == 0):
            raise ValueError(f"JointMapping: 'scale' must be non-zero, got {self.scale.tolist()}")
        if np.any(self.lower >= self.upper):
            j = int(np.argmax(self.lower >= self.upper))
            raise ValueError(f"JointMapping: lower limit must be < upper limit for joint '{self.names[j]}', "
                             f"got {self.lower[j]} >= {self.upper[j]}")
        if np.any(self.max_step <= 0):
            raise ValueError(f"JointMapping: 'max_step' must be > 0, got {self.max_step.tolist()}")
        self._index_cache: tuple[tuple[str, ...], np.ndarray] | None = None

    @classmethod
    def from_settings(cls, settings) -> JointMapping:
        """Build from a (validated) NodeSettings."""
        return cls(settings.joint_names, settings.joint_scale, settings.joint_offset,
                   settings.joint_lower_limits, settings.joint_upper_limits, settings.max_joint_step,
                   settings.command_offset or None)

    def __len__(self) -> int:
        return len(self.names)

    # ------------------------------------------------------------------ unit conversion

    def ros_to_policy(self, positions: np.ndarray | Sequence[float]) -> np.ndarray:
        """(..., n) ROS units in policy order -> (..., n) policy units (float64)."""
        arr = self._shaped(positions, "positions")
        return arr * self.scale + self.offset

    def policy_to_ros(self, action: np.ndarray | Sequence[float]) -> np.ndarray:
        """(..., n) policy units (e.g. an action or a whole (chunk, n) action chunk) -> ROS units."""
        arr = self._shaped(action, "action")
        return (arr - self.offset) / self.scale

    def command_to_ros(self, action: np.ndarray | Sequence[float]) -> np.ndarray:
        """(..., n) policy-unit action -> the ROS command whose execution by the driver is that action
        (:meth:`policy_to_ros` of ``action - command_offset``)."""
        return self.policy_to_ros(self._shaped(action, "action") - self.command_offset)

    def _shaped(self, values, what: str) -> np.ndarray:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 0 or arr.shape[-1] != len(self.names):
            raise ValueError(f"{what} must have a last dimension of {len(self.names)} (joints "
                             f"{list(self.names)}), got shape {arr.shape}")
        return arr

    # ------------------------------------------------------------------ JointState

    def from_joint_state(self, names: Sequence[str], positions: Sequence[float]) -> np.ndarray:
        """JointState name/position arrays (any order, extra joints ignored) -> (n,) ROS units, policy order.

        Raises JointStateError naming the joint when one is missing, listed twice or non-finite, or
        when `names` and `positions` differ in length.
        """
        names = tuple(names)
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim != 1 or len(names) != pos.shape[0]:
            raise JointStateError(
                f"JointState has {len(names)} names but {pos.size} positions; expected one position per "
                f"name (joints needed: {list(self.names)})")
        cache = self._index_cache
        if cache is not None and cache[0] == names:
            index = cache[1]
        else:
            index = self._resolve(names)
            self._index_cache = (names, index)
        out = pos[index]
        bad = ~np.isfinite(out)
        if bad.any():
            j = int(np.argmax(bad))
            raise JointStateError(f"JointState position for joint '{self.names[j]}' is {out[j]}; expected a "
                                  f"finite value")
        return out

    def _resolve(self, names: tuple[str, ...]) -> np.ndarray:
        lookup: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in lookup and name in self.names:
                raise JointStateError(f"JointState lists joint '{name}' twice; expected each joint once")
            lookup.setdefault(name, i)
        missing = [n for n in self.names if n not in lookup]
        if missing:
            raise JointStateError(
                f"JointState is missing joint '{missing[0]}'"
                + (f" (and {missing[1:]})" if len(missing) > 1 else "")
                + f"; expected joints {list(self.names)} (check joint_names), got {list(names)}")
        return np.array([lookup[n] for n in self.names], dtype=np.intp)

    # ------------------------------------------------------------------ limiting

    def check_within_limits(self, current_ros: np.ndarray | Sequence[float], tolerance: float) -> None:
        """Raise JointLimitError naming the joint when a position is outside its limits by more than ``tolerance``.

        A joint state that far outside the configured limits means a wrong calibration, wrong units or a
        wrong ``joint_scale``/``joint_offset``: no command may be computed from it.
        """
        cur = np.asarray(current_ros, dtype=np.float64)
        below = self.lower - tolerance - cur
        above = cur - (self.upper + tolerance)
        excess = np.maximum(below, above)
        if np.any(excess > 0):
            j = int(np.argmax(excess))
            raise JointLimitError(
                f"joint '{self.names[j]}' is at {cur[j]:.4g} (ROS units), outside its limits "
                f"[{self.lower[j]:.4g}, {self.upper[j]:.4g}] by more than joint_limit_tolerance {tolerance:g}; "
                f"check joint_scale/joint_offset/limits or the driver's calibration")

    def limit(self, action_ros: np.ndarray | Sequence[float],
              current_ros: np.ndarray | Sequence[float]) -> tuple[np.ndarray, bool]:
        """Limit a command (ROS units, policy order): at most max_step from `current_ros`, then into the limits.

        The joint limits are applied last, so every returned command is inside [lower, upper] whatever the
        current position (a joint reported outside its limits is commanded to the nearest limit, which may
        be more than max_step away; callers reject such joint states as bad input first, see
        :meth:`check_within_limits`). Returns (limited command, whether anything was changed).
        Raises ActionError for a wrong size or non-finite command, JointStateError for a bad current.
        """
        n = len(self.names)
        act = np.asarray(action_ros, dtype=np.float64)
        cur = np.asarray(current_ros, dtype=np.float64)
        if act.shape != (n,):
            raise ActionError(f"action must have one value per joint ({n}: {list(self.names)}), got shape "
                              f"{act.shape}")
        if cur.shape != (n,):
            raise JointStateError(f"current joint positions must have one value per joint ({n}: "
                                  f"{list(self.names)}), got shape {cur.shape}")
        bad = ~np.isfinite(act)
        if bad.any():
            j = int(np.argmax(bad))
            raise ActionError(f"action for joint '{self.names[j]}' is {act[j]}; refusing to command a "
                              f"non-finite value")
        bad = ~np.isfinite(cur)
        if bad.any():
            j = int(np.argmax(bad))
            raise JointStateError(f"current position of joint '{self.names[j]}' is {cur[j]}; cannot limit the "
                                  f"step without a finite current position")
        limited = np.clip(act, cur - self.max_step, cur + self.max_step)
        limited = np.clip(limited, self.lower, self.upper)
        return limited, bool(np.any(limited != act))

    def clamped_joints(self, action_ros: Sequence[float], limited: Sequence[float]) -> list[str]:
        """Names of the joints whose command `limit` changed (for diagnostics)."""
        a = np.asarray(action_ros, dtype=np.float64)
        b = np.asarray(limited, dtype=np.float64)
        return [name for name, x, y in zip(self.names, a, b) if x != y]
