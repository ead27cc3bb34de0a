"""Shared by the simulator tests: the skip reason where the simulator cannot run (the Python 3.11 end)."""
from __future__ import annotations

import pytest

from act_interp_ros.sim.scene import sim_unavailable_reason

SIM_MISSING = sim_unavailable_reason()
#: mark for tests that need mujoco + so101-nexus (Python >= 3.12, extra "sim")
needs_sim = pytest.mark.skipif(SIM_MISSING is not None, reason=SIM_MISSING or "")
