"""The environment-state input (e.g. pickup coordinates) of a coordinate-conditioned ACT, from a ROS message.

Message types (``env_state_type``):

* ``point_stamped`` - ``geometry_msgs/PointStamped``: the first ``n`` of (x, y, z), n = the policy's env-state
  size (1..3); freshness from ``header.stamp`` like every other input;
* ``float64_multi_array`` - ``std_msgs/Float64MultiArray``: ``data`` must hold exactly ``n`` values. It has no
  header, so its freshness is judged by its **arrival time**: the node stamps it with its ROS clock when the
  message arrives; the offline replay uses the bag's log (receive) time - the same rule.

Units, like the joints: ``policy = ros * env_state_scale + env_state_offset`` per value (empty lists = 1 and 0).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ENV_STATE_MESSAGE_TYPES", "EnvStateError", "EnvStateInput", "EnvStateMapping", "has_header"]

#: env_state_type -> message type.
ENV_STATE_MESSAGE_TYPES = {"point_stamped": "geometry_msgs/msg/PointStamped",
                           "float64_multi_array": "std_msgs/msg/Float64MultiArray"}


class EnvStateError(ValueError):
    """An env-state message cannot be used (wrong length, not finite); one line saying what was expected."""


def has_header(env_state_type: str) -> bool:
    return env_state_type == "point_stamped"


@dataclass(frozen=True)
class EnvStateInput:
    """The newest env-state message and the stamp its freshness is judged by (header, or arrival time)."""

    msg: Any
    stamp_ns: int


class EnvStateMapping:
    """Reads an env-state message into the policy's (n,) vector.

    Args:
        kind: ``env_state_type``.
        dim: the policy's env-state size.
        scale, offset: per value (empty = 1 / 0).
    """

    def __init__(self, kind: str, dim: int, scale: Sequence[float] = (), offset: Sequence[float] = ()) -> None:
        if kind not in ENV_STATE_MESSAGE_TYPES:
            raise ValueError(f"env_state_type '{kind}' unknown; expected {', '.join(ENV_STATE_MESSAGE_TYPES)}")
        self.kind = kind
        self.dim = int(dim)
        self.scale = np.asarray(scale, dtype=np.float64) if len(scale) else np.ones(self.dim)
        self.offset = np.asarray(offset, dtype=np.float64) if len(offset) else np.zeros(self.dim)

    def ros_values(self, msg: Any) -> np.ndarray:
        """(n,) float64 in ROS units; raises EnvStateError for a wrong length or a non-finite value."""
        if self.kind == "point_stamped":
            values = np.array([msg.point.x, msg.point.y, msg.point.z], dtype=np.float64)[: self.dim]
        else:
            values = np.asarray(msg.data, dtype=np.float64).reshape(-1)
            if values.shape != (self.dim,):
                raise EnvStateError(f"Float64MultiArray holds {values.size} values; the policy's environment state "
                                    f"has {self.dim}")
        bad = ~np.isfinite(values)
        if bad.any():
            raise EnvStateError(f"environment-state value {int(np.argmax(bad))} is {values[bad][0]}; expected finite "
                                "values")
        return values

    def to_policy(self, msg: Any) -> np.ndarray:
        """(n,) float32 in policy units."""
        return (self.ros_values(msg) * self.scale + self.offset).astype(np.float32)
