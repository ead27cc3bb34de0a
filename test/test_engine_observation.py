"""Observation building: LeRobot tensor conventions and a clear error for every mismatch."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from act_interp_ros.core import ObservationBuilder, ObservationError
from act_interp_ros.core.checkpoints import SmallACTSpec, make_act_config

CONFIG = make_act_config(SmallACTSpec(env_state_dim=2))
FRONT, WRIST = "observation.images.front", "observation.images.wrist"


def frames(h=96, w=128):
    return {FRONT: np.full((h, w, 3), 255, np.uint8), WRIST: np.zeros((h, w, 3), np.uint8)}


def test_builds_lerobot_tensors():
    obs = ObservationBuilder(CONFIG).build(frames(), np.arange(6), np.ones(2))
    assert obs[FRONT].shape == (3, 96, 128) and float(obs[FRONT].max()) == 1.0
    assert obs["observation.state"].tolist() == list(range(6))
    assert obs["observation.environment_state"].shape == (2,)


def test_resize_warns_once_per_camera(caplog):
    builder = ObservationBuilder(CONFIG, resize=True)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            obs = builder.build(frames(480, 640), np.zeros(6), np.zeros(2))
    assert obs[FRONT].shape == (3, 96, 128)
    assert sum("resizing 640x480" in r.message for r in caplog.records) == 2  # front + wrist, once each


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(images={FRONT: np.zeros((96, 128, 3), np.uint8)}), r"missing camera image\(s\) \['observation.images.wrist'\]"),
        (dict(state=np.zeros(5)), "state has 5 values; the policy expects 6"),
        (dict(state=np.array([0, 0, np.nan, 0, 0, 0])), "non-finite"),
        (dict(state=None), "needs a state vector of length 6"),
        (dict(env_state=None), "environment state vector of length 2"),
        (dict(images={FRONT: np.zeros((96, 128), np.uint8), WRIST: np.zeros((96, 128, 3), np.uint8)}), "expected \\(H, W, 3\\) uint8"),
    ],
)
def test_errors_say_what_was_expected(kwargs, match):
    args = dict(images=frames(), state=np.zeros(6), env_state=np.zeros(2))
    args.update(kwargs)
    with pytest.raises(ObservationError, match=match):
        ObservationBuilder(CONFIG).build(**args)


def test_strict_size_rejects_other_resolutions():
    with pytest.raises(ObservationError, match="image is 640x480 but the policy expects 128x96"):
        ObservationBuilder(CONFIG, resize=False).build(frames(480, 640), np.zeros(6), np.zeros(2))
