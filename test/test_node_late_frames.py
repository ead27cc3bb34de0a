"""LeRobot's rule for a queued action (``fresh_frames_every_tick`` false): a tick whose action comes from the
policy's queue reads no frame, so late camera frames do not stop a plan; the next forward needs fresh frames (the
node as its own process, over real DDS; its own module: one node per domain)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from node_harness import latest_diagnostics, write_params, node_and_peer

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
WIDE_CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])



@pytest.fixture(scope="module")
def long_queue(tmp_path_factory):
    """A node whose policy queues 20 actions per forward (n_action_steps 20), default freshness rules."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint
    from conftest import NODE_TEST_IMAGE_SHAPE

    spec = SmallACTSpec(cameras={k: NODE_TEST_IMAGE_SHAPE for k in SmallACTSpec().cameras}, chunk_size=20,
                        n_action_steps=20)
    checkpoint = build_act_checkpoint(tmp_path_factory.mktemp("queue20") / "pretrained_model", spec)
    params = write_params(tmp_path_factory.mktemp("params_queue") / "p.yaml", side_rate_hz=0.0, input_qos="reliable",
                          max_joint_step=[10.0] * 6)
    with node_and_peer(params, checkpoint, "late_frames_peer", [(JointState, ACTION)]) as running:
        yield running


def test_queued_actions_go_on_when_frames_are_late_and_stop_when_a_forward_needs_them(long_queue):
    """LeRobot's rule (``fresh_frames_every_tick`` false): a tick whose action comes from the queue reads no frame,
    so late camera frames (1 s old) with a fresh joint state do not stop the plan; the next forward needs fresh
    frames and is refused. At most 19 actions after the frames go late, then none; counted in /diagnostics."""
    _, peer = long_queue
    acted = 0
    for attempt in range(3):  # the queue holds 0-19 actions when the frames go late (0: 1 time in 20)
        before = latest_diagnostics(peer)
        peer.clear()
        peer.stream(1.0, joints=WIDE_CURRENT)
        assert len(peer.received[ACTION]) >= 5, "fresh frames: actions"
        peer.clear()  # and at once (a pause would be a gap of every input: a fresh plan):
        peer.stream(1.2, joints=WIDE_CURRENT, stamp_offset_s=-1.0)  # 36 ticks of 1 s old frames
        n = len(peer.received[ACTION])
        after = latest_diagnostics(peer)
        late = int(after.get("acted_on_late_frames", 0)) - int(before.get("acted_on_late_frames", 0))
        assert n <= 19 + 1, f"attempt {attempt}: {n} actions on 1 s old frames: more than the queue held"
        assert int(after.get("skipped.stale", 0)) > int(before.get("skipped.stale", 0)), "the next forward was refused"
        acted += late
        peer.clear()
        time.sleep(0.2)
        assert peer.received[ACTION] == [], "no action once the queue is empty and the frames are late"
    assert acted > 0, "queued actions went on while the frames were late"
