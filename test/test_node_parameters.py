"""Issue 11.3 and 11.5: parameters as ROS users write them, one clear line for bad ones, and runtime sets
through the node's real parameter service that either take effect at once or are refused with a reason."""

from __future__ import annotations

import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState

from node_harness import Peer, latest_diagnostics, start_node, write_params, node_and_peer

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
GRADCAM = f"{NODE}/gradcam/front/overlay"
CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])


def test_integers_where_floats_are_declared_are_accepted(tmp_path, node_checkpoint):
    """`control_rate_hz: 10` in a params file and `-p side_rate_hz:=1` once crashed with a 20-line traceback."""
    params = write_params(tmp_path / "p.yaml", control_rate_hz=10, joint_offset=[0, 0, 0, 0, 0, 0],
                          input_qos="reliable")
    assert "control_rate_hz: 10\n" in params.read_text()
    node = start_node(params, node_checkpoint, "-p", "side_rate_hz:=1", "-p", "overlay_alpha:=1")
    peer = Peer("int_params_peer")
    try:
        peer.subscribe(JointState, ACTION)
        peer.subscribe(DiagnosticArray, "/diagnostics")
        assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
        diag = latest_diagnostics(peer)
        assert float(diag["target_rate_hz"]) == 10.0
        peer.stream(1.0, joints=CURRENT)
        assert peer.wait_for(ACTION, 3), node.output[-2000:]
        assert "Traceback" not in node.output
    finally:
        peer.close()
        node.cleanup()


@pytest.mark.parametrize(
    "overrides,args,message",
    [
        ({}, ["-p", "publish_actions:=1"], "parameter 'publish_actions' must be true or false"),
        ({}, ["-p", "attention_query:=50"],
         "parameter 'attention_query' must be executed, -1 or a decoder query below 10 (the model's chunk_size), got 50"),
        ({"attention_heads": [7]}, [], "parameter 'attention_heads' must list head indices below 4"),
        ({"attention_decoder_layer": 3}, [], "parameter 'attention_decoder_layer' must be within -1..0"),
        ({"gradcam_layer": "layer9"}, [], "parameter 'gradcam_layer' must be a layer of the policy's backbone"),
        ({"gradcam_target": "joint:elbow"}, [], "parameter 'gradcam_target' must be first_action_sum"),
        ({"joint_offset": [0, 0.5, 0, 0, 0, 0]}, [], "cannot start: the ROS arguments or params file could not be read"),
    ],
    ids=["bool_as_int", "query_beyond_chunk", "head_beyond_model", "decoder_layer", "gradcam_layer",
         "unknown_joint", "mixed_list"],
)
def test_bad_parameters_stop_start_up_with_one_line(tmp_path, node_checkpoint, overrides, args, message):
    """Validated against the loaded policy at start-up: `attention_query:=50` once killed the node at its first tick."""
    params = write_params(tmp_path / "p.yaml", **overrides)
    node = start_node(params, node_checkpoint, *args)
    code = node.wait_exit(timeout=60)
    out = node.output
    assert code == 2, out
    assert message in out, out
    assert "Traceback" not in out
    assert len([line for line in out.splitlines() if "[FATAL]" in line]) == 1, out


@pytest.fixture(scope="module")
def running(tmp_path_factory, node_checkpoint):
    params = write_params(tmp_path_factory.mktemp("params") / "p.yaml", side_rate_hz=4.0, input_qos="reliable")
    with node_and_peer(params, node_checkpoint, "param_peer", [(JointState, ACTION), (Image, GRADCAM)]) as running:
        yield running


def test_publish_actions_can_be_switched_off_and_on_at_runtime(running):
    """Issue 11.5: `ros2 param set ... publish_actions false` was accepted and the node kept commanding."""
    _, peer = running
    result = peer.set_parameter(NODE, "publish_actions", False)
    assert result.successful, result.reason
    assert peer.get_parameter(NODE, "publish_actions") is False
    time.sleep(0.3)
    peer.clear()
    peer.stream(1.5, joints=CURRENT)
    assert peer.received[ACTION] == [], "observe-only after the set: no command may be published"
    assert int(latest_diagnostics(peer)["actions_not_commanded"]) > 3
    resets = int(latest_diagnostics(peer)["plan_resets"])
    assert peer.set_parameter(NODE, "publish_actions", True).successful
    peer.stream(1.0, joints=CURRENT)
    assert len(peer.wait_for(ACTION, 3)) >= 3
    assert int(latest_diagnostics(peer)["plan_resets"]) > resets, "commanding restarts from a fresh plan"


def test_read_only_parameters_are_refused_with_a_reason(running):
    _, peer = running
    result = peer.set_parameter(NODE, "control_rate_hz", 5.0)
    assert not result.successful
    assert "read-only" in result.reason
    assert peer.get_parameter(NODE, "control_rate_hz") == 10.0


def test_bad_values_of_dynamic_parameters_are_refused_with_the_validation_line(running):
    _, peer = running
    result = peer.set_parameter(NODE, "overlay_alpha", 2.0)
    assert not result.successful
    assert result.reason == "parameter 'overlay_alpha' must be a finite number >= 0 and <= 1, got 2.0"
    assert peer.get_parameter(NODE, "overlay_alpha") == 0.5
    assert peer.set_parameter(NODE, "overlay_alpha", 1).successful  # an integer for a float is fine
    assert peer.get_parameter(NODE, "overlay_alpha") == 1


def test_side_rate_takes_effect_at_once(running):
    _, peer = running
    assert peer.set_parameter(NODE, "side_rate_hz", 0.0).successful
    time.sleep(0.5)
    peer.clear()
    peer.stream(1.5, joints=CURRENT)
    assert peer.received[GRADCAM] == [], "side methods off: no GradCAM overlay"
    assert peer.set_parameter(NODE, "side_rate_hz", 4.0).successful
    peer.stream(1.5, joints=CURRENT)
    assert len(peer.wait_for(GRADCAM, 2, timeout=10)) >= 2


def test_side_rate_auto_is_chosen_from_measured_times_and_logged(running):
    """Issue 28.5: `side_rate_hz: auto` picks a rate the CPU holds and the log says which and why."""
    node, peer = running
    assert "maps: attention on every computed tick whose map forward" in node.output, node.output[-2000:]
    assert "side methods gradcam, gradient_x_input at 4 Hz (side_rate_hz as set)" in node.output
    result = peer.set_parameter(NODE, "side_rate_hz", "often")
    assert not result.successful and "\n" not in result.reason
    assert result.reason.startswith("parameter 'side_rate_hz' must be auto")
    assert peer.set_parameter(NODE, "side_rate_hz", "auto").successful
    deadline = time.monotonic() + 10
    while "side_rate_hz is now auto: side methods at" not in node.output and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in node.output.splitlines() if "side_rate_hz is now auto" in line)
    assert "(auto: control forward" in line or "(auto: gradient_x_input takes" in line or "(auto: gradcam takes" in line
    hz = float(line.split("side methods at ")[1].split(" Hz")[0])
    assert hz in (0.0, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
    peer.stream(1.2, joints=CURRENT)
    assert float(latest_diagnostics(peer)["side_rate_hz"]) == hz
    assert peer.set_parameter(NODE, "side_rate_hz", 4.0).successful
