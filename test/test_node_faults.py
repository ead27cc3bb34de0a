"""Issue 11.4, 11.6, 11.7: an exception in a tick never ends the node, /diagnostics reflects the recent
past (not lifetime totals), and the package's Python logging reaches /rosout (node as its own process)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Log
from sensor_msgs.msg import JointState

from node_harness import Peer, latest_diagnostics, start_node, write_params

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])
OK, WARN, ERROR = "0", "1", "2"


def wait_level(peer: Peer, level: str, timeout: float = 8.0) -> dict[str, str]:
    """Wait until /diagnostics reports ``level``; returns that message's values."""
    deadline = time.monotonic() + timeout
    diag: dict[str, str] = {}
    while time.monotonic() < deadline:
        diag = latest_diagnostics(peer)
        if diag["_level"] == level:
            return diag
    raise AssertionError(f"/diagnostics never reached level {level}; last: level {diag.get('_level')} "
                         f"{diag.get('_message')!r}")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory, node_checkpoint):
    tmp = tmp_path_factory.mktemp("faults")
    fault_file = tmp / "fail_ticks"
    params = write_params(tmp / "p.yaml", side_rate_hz=0.0, input_qos="reliable", max_consecutive_tick_errors=3,
                          diagnostics_period_s=0.5)
    node = start_node(params, node_checkpoint, faults=("--tick-fault-file", str(fault_file)))
    peer = Peer("fault_peer")
    peer.subscribe(JointState, ACTION)
    peer.subscribe(DiagnosticArray, "/diagnostics")
    peer.subscribe(Log, "/rosout", depth=1000, transient_local=True)  # as rqt_console subscribes
    assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
    yield node, peer, fault_file
    peer.close()
    node.cleanup()


def test_a_bad_start_does_not_warn_forever(faulty):
    """Lifetime totals once decided the level: most of the first ticks skipped (no input yet) meant WARN forever."""
    _, peer, _ = faulty
    time.sleep(2.0)  # 20 ticks without input
    with peer.streaming(joints=CURRENT):
        diag = wait_level(peer, OK)
    assert int(diag["skipped_ticks"]) > int(diag["ticks_with_action_computed"]) / 4, diag


def test_an_input_dropout_is_an_error_while_commanding_and_ok_again_after(faulty):
    """A 3 s dropout of every input once reported OK because 555 of 1234 lifetime ticks had been fine."""
    _, peer, _ = faulty
    with peer.streaming(joints=CURRENT):
        wait_level(peer, OK)
    diag = wait_level(peer, ERROR, timeout=4.0)  # > max_input_age_s without input while commands are enabled
    assert "no action computed for" in diag["_message"]
    time.sleep(2.0)
    with peer.streaming(joints=CURRENT):
        wait_level(peer, OK, timeout=10.0)


def test_tick_exceptions_are_counted_logged_once_and_fault_after_n(faulty):
    node, peer, fault_file = faulty
    with peer.streaming(joints=CURRENT):
        wait_level(peer, OK)
        fault_file.touch()
        try:
            time.sleep(0.2)
            peer.clear()
            diag = wait_level(peer, ERROR)
            assert peer.received[ACTION] == [], "a failing tick sends nothing"
            assert int(diag["tick_errors"]) >= 3 and int(diag["skipped.tick_error"]) >= 3
            assert "consecutive tick errors" in diag["_message"]
            assert node.alive()
        finally:
            fault_file.unlink()
        assert peer.wait_for(ACTION, 3), "a clean tick ends the fault and commanding resumes"
        wait_level(peer, OK, timeout=10.0)
    out = node.output
    assert out.count("Traceback") == 1, "full traceback once, then throttled one-liners"
    assert f"tick failure injected by {fault_file} (test hook)" in out


def test_package_logging_reaches_rosout_with_ros_severity(faulty):
    """The core's one-time resize warning once printed without ROS severity or stamp, never reaching /rosout."""
    _, peer, _ = faulty
    peer.stream(1.0, joints=CURRENT, size=(60, 80))  # not the policy's 48x64: the core warns once per camera
    deadline = time.monotonic() + 5
    found = []
    while time.monotonic() < deadline and not found:
        found = [m for m in peer.received["/rosout"] if "resizing 80x60 frames" in m.msg]
        time.sleep(0.1)
    assert found, [m.msg for m in peer.received["/rosout"]][-10:]
    assert found[0].name == "act_interp_node" and found[0].level == Log.WARN
