"""Observe-only (publish_actions false): overlays flow, no action is published or even advertised.

Its own module so no other test's node (which does command) is alive on the same ROS domain."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import SetBool

from node_harness import Peer, latest_diagnostics, start_node, write_params

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])


def test_observe_only_publishes_no_actions(tmp_path, node_checkpoint):
    params = write_params(tmp_path / "p.yaml", publish_actions=False, side_rate_hz=0.0, input_qos="reliable")
    node = start_node(params, node_checkpoint)
    peer = Peer("observe_peer")
    try:
        peer.subscribe(JointState, ACTION)
        peer.subscribe(Image, f"{NODE}/attention/front/overlay")
        peer.subscribe(DiagnosticArray, "/diagnostics")
        assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
        peer.stream(1.5, joints=CURRENT)
        assert peer.wait_for(f"{NODE}/attention/front/overlay", 10)
        assert peer.received[ACTION] == []
        assert peer.node.count_publishers(ACTION) == 0, "observe-only must not even advertise the action topic"
        assert int(latest_diagnostics(peer)["actions_not_commanded"]) > 3
        # An operator enabling commands on an observe-only node is told no, with the reason (never "accepted and
        # ignored"); pausing is accepted.
        replies = [peer.call(SetBool, f"{NODE}/enable_commands", SetBool.Request(data=v)) for v in (True, False)]
        assert not replies[0].success and "publish_actions is false" in replies[0].message
        assert replies[1].success and "paused" in replies[1].message
        peer.stream(0.5, joints=CURRENT)
        assert peer.received[ACTION] == []
    finally:
        peer.close()
        node.cleanup()
