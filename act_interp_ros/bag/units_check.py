"""``act_interp_replay BAG --policy P --check-units``: are the bag's joint states, mapped with the config's
``joint_scale``/``joint_offset``, inside the checkpoint's training range? No model runs, no maps.

Per joint: the bag's range in policy units against the training range (the normaliser's min/max), a verdict,
and when a simple fit explains a mismatch (:mod:`act_interp_ros.inputs.units_fit`: radians vs degrees, a constant or
half-turn offset, a reversed joint, the gripper's 0..100) the ``joint_scale``/``joint_offset`` that fix it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from lerobot.utils.constants import OBS_STATE

from act_interp_ros.bag.reader import JOINT_STATE_TYPE, BagError, open_bag
from act_interp_ros.inputs.joint_mapping import JointMapping, JointMappingError
from act_interp_ros.pipeline.training_range import normalizer_stats
from act_interp_ros.settings import NodeSettings
from act_interp_ros.inputs.units_fit import JointFit, fit_joint

__all__ = ["UnitsCheckError", "UnitsReport", "check_bag_units"]

logger = logging.getLogger(__name__)


class UnitsCheckError(RuntimeError):
    """The check cannot run (no joint states, no training range in the checkpoint); the message says why."""


@dataclass
class UnitsReport:
    """Per joint fits plus what was read. ``ok``: every joint inside its training range."""

    bag: str
    topic: str
    n_messages: int
    n_unusable: int
    margin: float
    joints: list[JointFit]
    scale: list[float]
    offset: list[float]

    @property
    def ok(self) -> bool:
        return all(j.inside for j in self.joints)

    def lines(self) -> list[str]:
        """The printed report: a header, one row per joint, and the parameters to use when a fix was found."""
        out = [f"units check: {self.n_messages} joint states on {self.topic} in {self.bag}"
               + (f" ({self.n_unusable} unusable, ignored)" if self.n_unusable else "")
               + f"; training range from the checkpoint's normaliser, +{self.margin:.0%} margin"]
        width = max(len(j.name) for j in self.joints)
        out.append(f"  {'joint':<{width}}  {'bag (policy units)':>22}  {'training range':>22}  verdict")
        for j in self.joints:
            bag = f"[{j.bag_low:.4g}, {j.bag_high:.4g}]"
            train = f"[{j.train_low:.4g}, {j.train_high:.4g}]"
            out.append(f"  {j.name:<{width}}  {bag:>22}  {train:>22}  {j.verdict}")
        if self.ok:
            out.append("every joint is inside the training range: the units look right")
            return out
        if any(j.fixed for j in self.joints):
            out.append("parameters that put every explained joint inside (params file or -p):")
            out.append(f"  joint_scale: [{', '.join(f'{v:.10g}' for v in self.scale)}]")
            out.append(f"  joint_offset: [{', '.join(f'{v:.10g}' for v in self.offset)}]")
        bad = [j.name for j in self.joints if not j.inside]
        out.append(f"{len(bad)} joint(s) outside the training range: {', '.join(bad)}")
        return out


def check_bag_units(bag: str | Path, policy_path: str, settings: NodeSettings, *, preprocessor=None) -> UnitsReport:
    """Read every JointState on ``settings.joint_state_topic`` and fit each joint (see the module docstring).

    ``preprocessor``: an already loaded policy preprocessor (else the policy is loaded on the CPU).
    Raises UnitsCheckError, BagError, PolicyLoadError with one line saying why.
    """
    if preprocessor is None:
        from act_interp_ros.core import load_act_policy

        preprocessor = load_act_policy(policy_path, device="cpu").preprocessor
    stats = normalizer_stats(preprocessor).get(OBS_STATE, {})
    n = len(settings.joint_names)
    if "min" not in stats or "max" not in stats:
        raise UnitsCheckError(f"the checkpoint '{policy_path}' has no min/max for {OBS_STATE} in its normaliser: there "
                              "is no training range to check the units against")
    low, high = stats["min"].reshape(-1), stats["max"].reshape(-1)
    if low.size != n:
        raise UnitsCheckError(f"the checkpoint's {OBS_STATE} has {low.size} values but joint_names lists {n}")
    mean = stats["mean"].reshape(-1) if "mean" in stats and stats["mean"].size == n else None
    std = stats["std"].reshape(-1) if "std" in stats and stats["std"].size == n else None
    mapping = JointMapping.from_settings(settings)
    topic = settings.joint_state_topic
    values, unusable, first_error = [], 0, ""
    with open_bag(bag) as reader:
        reader.require_topic(topic, (JOINT_STATE_TYPE,))
        for raw in reader.messages([topic]):
            try:
                msg = reader.deserialize(raw)
                values.append(mapping.from_joint_state(list(msg.name), np.asarray(msg.position, dtype=np.float64)))
            except (BagError, JointMappingError) as exc:
                unusable += 1
                first_error = first_error or str(exc)
    if not values:
        raise UnitsCheckError(f"no usable joint state on {topic} in '{bag}'" + (f": {first_error}" if first_error else ""))
    ros = np.stack(values)  # (n_messages, n_joints), ROS units, policy order
    margin = float(settings.training_range_margin)
    fits = [fit_joint(name, ros[:, j], float(mapping.scale[j]), float(mapping.offset[j]), float(low[j]),
                      float(high[j]), margin, None if mean is None else float(mean[j]),
                      None if std is None else float(std[j]), gripper="grip" in name)
            for j, name in enumerate(settings.joint_names)]
    return UnitsReport(str(bag), topic, len(values) + unusable, unusable, margin, fits,
                       [f.scale for f in fits], [f.offset for f in fits])
