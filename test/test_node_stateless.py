"""Issue 11.8: a policy without observation.state runs live like offline: actions and attention shares, and no
proprio-attention topic (a 0.0 there would be indistinguishable from "no attention on proprioception")."""

from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32

from node_harness import Peer, start_node, write_params

NODE = "/act_interp_node"


def test_policy_without_joint_state_token(tmp_path):
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    cameras = {key: (48, 64) for key in SmallACTSpec().cameras}
    ckpt = build_act_checkpoint(tmp_path / "ckpt" / "pretrained_model", SmallACTSpec(cameras=cameras, state_dim=0))
    node = start_node(write_params(tmp_path / "p.yaml", side_rate_hz=0.0, input_qos="reliable"), ckpt)
    peer = Peer("stateless_peer")
    try:
        peer.subscribe(JointState, f"{NODE}/joint_command")
        peer.subscribe(Float32, f"{NODE}/attention/front/share")
        peer.subscribe(DiagnosticArray, "/diagnostics")
        assert peer.wait_for("/diagnostics", 1, timeout=60), node.output
        peer.stream(1.5, joints=np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5]))
        assert len(peer.wait_for(f"{NODE}/joint_command", 5)) >= 5, node.output[-2000:]
        assert len(peer.wait_for(f"{NODE}/attention/front/share", 5)) >= 5
        assert peer.node.count_publishers(f"{NODE}/proprio_attention") == 0
    finally:
        peer.close()
        node.cleanup()
