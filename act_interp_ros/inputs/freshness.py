"""Input freshness rule shared by the live node and the offline replay (so both skip the same ticks).

A control tick may run the policy only when every input (each camera and the joint state) has been
received, its header stamp is neither too old nor too far in the future relative to "now", and the
camera stamps are close to each other. All times are ROS time in seconds (header stamps and the node
clock), so `use_sim_time` bag replay behaves like live.

Reasons are short machine-greppable strings, `<kind>:<detail>`:
    clock:not_started                          now <= 0 (use_sim_time without /clock yet)
    missing:/camera/front/image_raw            nothing received yet
    unstamped:/camera/front/image_raw          header.stamp is 0 (driver does not stamp)
    invalid:/joint_states stamp=nan            stamp is not finite
    future:/joint_states ahead=0.40s>0.25s     stamp later than now by more than max_age_s
    stale:/joint_states age=0.41s>0.25s        stamp older than max_age_s
    skew:front/wrist 0.15s>0.10s               oldest/newest camera stamps too far apart
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["GateDecision", "InputGate"]


@dataclass(frozen=True)
class GateDecision:
    """Outcome of `InputGate.check`.

    ok: all inputs usable. reason: the first problem (None when ok); reasons: all problems.
    ages: now - stamp per input that has a usable stamp (s). camera_skew_s: newest - oldest camera
    stamp (None with fewer than two stamped cameras).
    """

    ok: bool
    reason: str | None = None
    reasons: tuple[str, ...] = ()
    ages: Mapping[str, float] = field(default_factory=dict)
    camera_skew_s: float | None = None

    @property
    def kind(self) -> str | None:
        """Category of the first problem (`stale`, `skew`, ...), for counters in diagnostics."""
        return None if self.reason is None else self.reason.split(":", 1)[0]


def _pair(value: float, limit: float) -> tuple[str, str]:
    """Format value/limit with enough decimals that `value>limit` reads true (0.251 vs 0.25)."""
    for digits in (2, 3, 4, 6):
        a, b = f"{value:.{digits}f}", f"{limit:.{digits}f}"
        if a != b:
            return a, b
    return f"{value!r}", f"{limit!r}"


class InputGate:
    """Freshness rule: max input age (both directions) and max skew between camera stamps.

    Args:
        max_age_s: an input whose stamp is older than now - max_age_s (or newer than now + max_age_s)
            is unusable.
        max_camera_skew_s: max allowed newest - oldest camera stamp.
        labels: optional short names for the skew reason (e.g. {"/camera/front/image_raw": "front"});
            inputs without a label are shown by their key.
    """

    def __init__(self, max_age_s: float, max_camera_skew_s: float,
                 labels: Mapping[str, str] | None = None) -> None:
        if not (isinstance(max_age_s, (int, float)) and math.isfinite(max_age_s) and max_age_s > 0):
            raise ValueError(f"max_age_s must be a finite number > 0, got {max_age_s!r}")
        if not (isinstance(max_camera_skew_s, (int, float)) and math.isfinite(max_camera_skew_s)
                and max_camera_skew_s >= 0):
            raise ValueError(f"max_camera_skew_s must be a finite number >= 0, got {max_camera_skew_s!r}")
        self.max_age_s = float(max_age_s)
        self.max_camera_skew_s = float(max_camera_skew_s)
        self.labels = dict(labels or {})

    @classmethod
    def from_settings(cls, settings) -> InputGate:
        """Gate for a NodeSettings: stamps keyed by topic, skew reasons use short camera names."""
        from act_interp_ros.settings import camera_name

        labels = {t: camera_name(k) for k, t in zip(settings.camera_keys, settings.camera_topics)}
        return cls(settings.max_input_age_s, settings.max_camera_skew_s, labels)

    def check(self, now_s: float, stamps: Mapping[str, float | None], cameras: Sequence[str]) -> GateDecision:
        """Decide whether the latest inputs may be used at time `now_s`.

        Args:
            now_s: current ROS time in seconds (node clock; sim time under use_sim_time).
            stamps: header stamp in seconds per input (None = nothing received), in the order the
                inputs should be reported (e.g. cameras then joint state).
            cameras: the keys of `stamps` that are cameras (checked for skew). A camera missing from
                `stamps` counts as missing.
        """
        reasons: list[str] = []
        ages: dict[str, float] = {}
        if not (isinstance(now_s, (int, float)) and math.isfinite(now_s)) or now_s <= 0.0:
            reasons.append("clock:not_started")
            return GateDecision(False, reasons[0], tuple(reasons), ages, None)

        keys = list(stamps)
        keys += [c for c in cameras if c not in stamps]
        usable: dict[str, float] = {}
        for key in keys:
            stamp = stamps.get(key)
            if stamp is None:
                reasons.append(f"missing:{key}")
                continue
            stamp = float(stamp)
            if not math.isfinite(stamp):
                reasons.append(f"invalid:{key} stamp={stamp}")
                continue
            if stamp == 0.0:
                reasons.append(f"unstamped:{key}")
                continue
            age = now_s - stamp
            ages[key] = age
            if -age > self.max_age_s:
                a, b = _pair(-age, self.max_age_s)
                reasons.append(f"future:{key} ahead={a}s>{b}s")
            elif age > self.max_age_s:
                a, b = _pair(age, self.max_age_s)
                reasons.append(f"stale:{key} age={a}s>{b}s")
            usable[key] = stamp

        cam_stamps = [(usable[c], c) for c in cameras if c in usable]
        skew: float | None = None
        if len(cam_stamps) >= 2:
            oldest = min(cam_stamps)
            newest = max(cam_stamps)
            skew = newest[0] - oldest[0]
            if skew > self.max_camera_skew_s:
                a, b = _pair(skew, self.max_camera_skew_s)
                label_old = self.labels.get(oldest[1], oldest[1])
                label_new = self.labels.get(newest[1], newest[1])
                reasons.append(f"skew:{label_old}/{label_new} {a}s>{b}s")
        ok = not reasons
        return GateDecision(ok, None if ok else reasons[0], tuple(reasons), ages, skew)
