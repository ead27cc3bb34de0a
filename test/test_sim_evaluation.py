"""The closed-loop evaluation's arithmetic: binomial intervals and the node-vs-plain first-command check (the
node's own limits from config/so101.yaml + config/so101_sim.yaml). No simulator needed."""
from __future__ import annotations

import numpy as np
import pytest

from act_interp_ros.sim.evaluation import first_command_agreement, node_joint_mapping, wilson_interval


def test_wilson_interval():
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson_interval(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-3) and hi == pytest.approx(0.9433, abs=1e-3)
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_first_command_agreement_applies_the_nodes_limits():
    mapping = node_joint_mapping()
    np.testing.assert_allclose(mapping.max_step, [0.25] * 5 + [1.0])  # config/so101_sim.yaml
    state0 = [0.0, -90.0, 90.0, 37.8, 0.0, 0.0]
    plain_first = [40.0, -90.0, 90.0, 37.8, 0.0, 50.0]  # pan 40 deg away: the node sends 0.25 rad = 14.3 deg
    expected_node = [np.degrees(0.25), -90.0, 90.0, 37.8, 0.0, 1.0 * 100 / np.pi]  # gripper: 1 rad = 31.8 units
    plain = [{"first_commands": [plain_first], "state0": state0}]
    same = first_command_agreement([{"first_commands": [expected_node]}], plain)
    assert same["episodes_compared"] == 1 and same["max_abs_diff_policy_units"] == pytest.approx(0.0, abs=1e-9)
    off = list(expected_node)
    off[2] += 5.0
    assert first_command_agreement([{"first_commands": [off]}], plain)["max_abs_diff_policy_units"] == pytest.approx(5.0)
