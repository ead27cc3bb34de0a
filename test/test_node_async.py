"""``inference: async`` in the real node over DDS: actions every tick from chunks computed on a worker, always
inside the limits, none during an input gap, and a fresh chunk (never one from before the gap) after it."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState

from node_harness import latest_diagnostics, node_and_peer, write_params

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
OVERLAY = f"{NODE}/attention/front/overlay"
CURRENT = np.array([0.1, -0.2, 0.3, 0.0, 0.5, 0.8])
LOWER = np.array([-1.92, -1.92, -1.92, -1.92, -2.74, 0.0])
UPPER = np.array([1.92, 1.92, 1.92, 1.92, 2.74, 1.745])


@pytest.fixture(scope="module")
def running(tmp_path_factory, node_checkpoint):
    params = write_params(tmp_path_factory.mktemp("params") / "p.yaml", inference="async", side_rate_hz=0.0,
                          input_qos="reliable")
    with node_and_peer(params, node_checkpoint, "async_peer", [(JointState, ACTION), (Image, OVERLAY)]) as running:
        yield running


def test_async_acts_every_tick_inside_the_limits_with_the_chunks_maps(running):
    node, peer = running
    assert "inference async (chunk_size_threshold 0.5, aggregate_fn weighted_average)" in node.output
    peer.stream(3.0, joints=CURRENT)
    actions = peer.wait_for(ACTION, 20)
    assert len(actions) >= 20, node.output[-2000:]
    for msg in actions:
        cmd = np.asarray(msg.position)
        assert np.all(np.isfinite(cmd)) and np.all(cmd >= LOWER) and np.all(cmd <= UPPER)
        assert np.all(np.abs(cmd - CURRENT) <= 0.1 + 1e-9), "max_joint_step from the current position"
    diag = latest_diagnostics(peer)
    assert diag["inference"] == "async"
    assert int(diag["async.chunks"]) >= 3 and int(diag["async.chunk_maps_published"]) >= 3, diag
    assert int(diag["async.stale_actions_dropped"]) >= 1, "the observation's own timestep has passed when it lands"
    assert peer.received[OVERLAY], "the chunks' attention overlays"


def test_no_action_during_a_gap_and_a_fresh_chunk_after_it(running):
    node, peer = running
    peer.stream(1.0, joints=CURRENT)
    before = latest_diagnostics(peer)
    time.sleep(1.0)  # the inputs go stale after max_input_age_s 0.25
    peer.clear()
    time.sleep(1.0)
    assert peer.received[ACTION] == [], "no command from stale input"
    peer.stream(1.5, joints=CURRENT)
    assert len(peer.wait_for(ACTION, 5)) >= 5
    after = latest_diagnostics(peer)
    assert int(after.get("skipped.stale", 0)) > int(before.get("skipped.stale", 0))
    # the queue was emptied at the gap: the first ticks after it waited for a chunk of fresh input
    assert int(after.get("skipped.awaiting_chunk", 0)) > int(before.get("skipped.awaiting_chunk", 0)), after
