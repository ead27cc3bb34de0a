"""``act_interp_sim``'s command line: usage errors and a missing simulator are one clear line, never a traceback."""
from __future__ import annotations

import logging

import pytest

from act_interp_ros.cli import sim as cli
from sim_helpers import SIM_MISSING


def test_usage_errors_are_one_line(caplog):
    with caplog.at_level(logging.ERROR, logger="act_interp_sim"):
        assert cli.main(["--eval", "3"]) == 2
        assert cli.main(["--episodes", "0"]) == 2
    assert [r.getMessage() for r in caplog.records] == [
        "--eval needs --out DIR (summary.json is written there)", "--episodes must be >= 1, got 0"]


def test_without_the_simulator_it_says_what_to_install(caplog, monkeypatch, tmp_path):
    import act_interp_ros.sim.scene as scene

    if SIM_MISSING is None:  # the newest end: pretend Python 3.11 to see the line users of that end get
        monkeypatch.setattr(scene, "sim_unavailable_reason", lambda: "the MuJoCo SO-101 simulator needs Python >= 3.12")
    with caplog.at_level(logging.ERROR, logger="act_interp_sim"):
        assert cli.main(["--expert", "2", "--out", str(tmp_path)]) == 1
    assert [r.getMessage() for r in caplog.records] == [scene.sim_unavailable_reason()]
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.skipif(SIM_MISSING is not None, reason=SIM_MISSING or "")
def test_expert_mode_writes_its_success_rate(tmp_path):
    import json

    assert cli.main(["--expert", "3", "--steps", "100", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["mode"] == "expert" and summary["episodes"] == 3
    assert summary["success_rate"] == sum(v is not None for v in summary["first_success_step"].values()) / 3
