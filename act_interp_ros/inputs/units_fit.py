"""Which ``joint_scale`` / ``joint_offset`` explain a recording, given the checkpoint's training range (ROS-free).

For each joint, the recorded ROS values ``r`` (n,) are mapped with the current ``policy = r * scale + offset``
and compared with the training ``[min, max]`` widened by the margin. When they do not fit, simple
alternatives are tried, each a known mistake:

* a unit factor: radians vs degrees (x 180/pi or x pi/180), a reversed joint (x -1), or both;
* an offset of a whole number of quarter turns (another zero, e.g. half a turn);
* a constant offset (the recording's mean onto the training mean);
* the gripper's 0..100 (the recording's range onto the training range; only for the gripper).

A candidate fits when every mapped value is inside the widened range. Among those that fit, the one kept has
the lowest cost: how far the mapped mean is from the training mean (in range widths), how far the mapped spread
is from the training spread (log ratio, so a squashed mapping that only fits by shrinking everything loses),
and how much it changes (one unit per changed factor, more for a fitted offset or range).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["JointFit", "fit_joint"]

DEG = 180.0 / math.pi
#: (scale multiplier, what it means)
SCALE_CANDIDATES = ((1.0, ""), (-1.0, "reversed joint"), (1 / DEG, "degrees published as radians"),
                    (DEG, "radians published as degrees"), (-1 / DEG, "degrees published as radians, reversed"),
                    (-DEG, "radians published as degrees, reversed"))
QUARTER_TURN_RAD = math.pi / 2
MIN_SPREAD_ROS = 1e-3  # ROS units: a still joint's spread, so candidates still differ by their scale


@dataclass(frozen=True)
class JointFit:
    """The check of one joint.

    Attributes:
        name: joint name.
        bag_low, bag_high: the recording's range in policy units under the current mapping.
        train_low, train_high: the training range (without margin).
        inside: every recorded value inside the widened training range.
        scale, offset: the fix (equal to the current values when ``inside`` or when nothing fits).
        cause: what the fix means ("" when none), e.g. "degrees published as radians".
        fixed: a fix was found (``inside`` is False and a candidate fits).
    """

    name: str
    bag_low: float
    bag_high: float
    train_low: float
    train_high: float
    inside: bool
    scale: float
    offset: float
    cause: str
    fixed: bool

    @property
    def verdict(self) -> str:
        if self.inside:
            return "ok"
        if self.fixed:
            return f"OUTSIDE: {self.cause}; fix joint_scale {self.scale:.10g}, joint_offset {self.offset:.10g}"
        return "OUTSIDE: no simple fit (units, offset, reversal) explains it; check the driver and the calibration"


def _round_offset(value: float) -> float:
    return float(round(value, 4))


def fit_joint(name: str, ros: np.ndarray, scale: float, offset: float, train_low: float, train_high: float,
              margin: float, train_mean: float | None = None, train_std: float | None = None,
              gripper: bool = False) -> JointFit:
    """Check one joint's recorded values ``ros`` (n,) and find the simplest fix (see the module docstring)."""
    r = np.asarray(ros, dtype=np.float64).reshape(-1)
    width = max(train_high - train_low, 1e-9)
    lo, hi = train_low - margin * width, train_high + margin * width
    center = train_mean if train_mean is not None else (train_low + train_high) / 2
    spread = train_std if train_std else width / 4
    r_mean, r_std = float(r.mean()), max(float(r.std()), MIN_SPREAD_ROS)
    current = r * scale + offset
    inside = bool(np.all((current >= lo) & (current <= hi)))
    base = dict(name=name, bag_low=float(current.min()), bag_high=float(current.max()), train_low=float(train_low),
                train_high=float(train_high), inside=inside)
    if inside:
        return JointFit(**base, scale=scale, offset=offset, cause="", fixed=False)

    candidates: list[tuple[float, float, float, str]] = []  # (complexity, scale, offset, cause)
    for m, why in SCALE_CANDIDATES:
        s = scale * m
        change = 0.0 if m == 1.0 else 1.0
        for o, extra, cost in _offsets(s, offset, r_mean, center):
            if m == 1.0 and not extra:
                continue  # the current mapping
            cause = ", ".join(p for p in (why, extra) if p)
            candidates.append((change + cost, s, o, cause))
    if gripper and float(r.max() - r.min()) > 0:
        s = (train_high - train_low) / float(r.max() - r.min())
        if s * scale < 0:
            s = -s
        o = train_low - float(r.min()) * s if s > 0 else train_low - float(r.max()) * s
        candidates.append((2.5, s, o, "gripper range (recorded range onto the training 0..100)"))

    best = None
    for complexity, s, o, cause in candidates:
        mapped = r * s + o
        if not np.all((mapped >= lo) & (mapped <= hi)):
            continue
        cost = (abs(float(mapped.mean()) - center) / width
                + abs(math.log(abs(s) * r_std / spread)) + 0.5 * complexity)
        if best is None or cost < best[0]:
            best = (cost, s, o, cause)
    if best is None:
        return JointFit(**base, scale=scale, offset=offset, cause="", fixed=False)
    _, s, o, cause = best
    return JointFit(**base, scale=float(s), offset=_round_offset(o), cause=cause, fixed=True)


def _offsets(s: float, offset: float, r_mean: float, center: float):
    """(offset, what it means, complexity) candidates for scale ``s``: unchanged, quarter turns, fitted."""
    yield offset, "", 0.0
    for k in (-4, -3, -2, -1, 1, 2, 3, 4):
        turns = {2: "half a turn", -2: "half a turn", 4: "a full turn", -4: "a full turn"}.get(k, f"{abs(k)} quarter turn(s)")
        o = offset - k * QUARTER_TURN_RAD * s
        yield o, f"zero offset by {'-' if k < 0 else '+'}{turns} ({k * 90:+d} deg)", 1.0
    yield center - r_mean * s, "a constant offset (another zero)", 2.0
