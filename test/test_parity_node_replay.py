"""Issue 12: one tick pipeline. The same bag through ``act_interp_replay`` and, played over DDS in sim time,
through the node (its own process) gives the same skip reason for every tick and equal actions.

The node reports every tick on ``~/tick_status`` (its ROS time, the reason, the input stamps it used); the
replay runs at exactly those tick times. Live, a message logged at exactly a tick's time (the player sets
/clock to a message's time right before publishing it) may or may not have arrived when the tick runs; the
replay counts it as arrived. Such ties are detected from the reported stamps (in this bag stamp = log time),
counted and exempt, together with the ticks until both sides start a fresh plan. Every other tick must match
exactly: the reason text, and the command where both computed one.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from diagnostic_msgs.msg import DiagnosticStatus
from sensor_msgs.msg import JointState

from act_interp_ros.offline.outputs import read_table
from act_interp_ros.bag.play import BagPlayer
from act_interp_ros.bag.reader import open_bag
from act_interp_ros.bag.replay import ReplayOptions, replay_bag
from act_interp_ros.bag.synthetic_bag import DEFAULT_START_NS, write_synthetic_bag
from act_interp_ros.settings import load_settings_yaml
from node_harness import FRONT, WRIST, Peer, start_node, write_params

NODE = "/act_interp_node"
ACTION = f"{NODE}/joint_command"
STATUS = f"{NODE}/tick_status"
TOPICS = {FRONT: "stamp_front_ns", WRIST: "stamp_wrist_ns", "/joint_states": "stamp_joint_state_ns"}


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_node_and_replay_skip_the_same_ticks_and_act_alike(tmp_path, node_checkpoint):
    # 1.5 s, a 1 s gap of every input, 1.5 s; starting 17 ms past a whole second keeps most ticks off ties
    bag = write_synthetic_bag(tmp_path / "bag", n_frames=45, n_episodes=2, episode_gap_s=1.0, image_size=(48, 64),
                              seed=11, start_time_ns=DEFAULT_START_NS + 17_000_000)
    params = write_params(tmp_path / "p.yaml", side_rate_hz=0.0, input_qos="reliable")
    node = start_node(params, node_checkpoint, "-p", "use_sim_time:=true")
    peer = Peer("parity_peer")
    try:
        peer.subscribe(DiagnosticStatus, STATUS, depth=1000)
        peer.subscribe(JointState, ACTION, depth=1000)
        BagPlayer(bag, rate=0.5, clock=True, wait_for_subscribers=1, wait_timeout=60, delay=0.5).run(peer.node)
        n = -1
        while n != len(peer.received[STATUS]):  # until the node's last ticks have arrived
            n = len(peer.received[STATUS])
            time.sleep(1.0)
        statuses = list(peer.received[STATUS])
        node_actions = {_stamp(m): np.array(m.position) for m in peer.received[ACTION]}
    finally:
        peer.close()
        node.cleanup()

    with open_bag(bag) as reader:
        first, last = reader.start_ns, reader.end_ns
    live = []
    for msg in statuses:
        values = {kv.key: kv.value for kv in msg.values}
        t = int(values["time_ns"])
        if first <= t < last:
            stamps = {topic: (int(values[f"stamp_ns{topic}"]) if values.get(f"stamp_ns{topic}") else None)
                      for topic in TOPICS}
            live.append((t, msg.message, stamps))
    assert len(live) >= 40, f"only {len(live)} node ticks inside the bag"
    assert not [m for _, m, _ in live if m.startswith("overrun")], "the node must keep up for this comparison"

    settings = load_settings_yaml(params, overrides={"policy_path": str(node_checkpoint)})
    out = tmp_path / "replay"
    replay_bag(bag, str(node_checkpoint), settings, out,
               ReplayOptions(tick_times_ns=[t for t, _, _ in live], write_video=False, write_plot=False))
    table = read_table(out / "ticks.csv")
    with open_bag(out / "interp_bag") as reader:
        replay_actions = {_stamp(reader.deserialize(m)): np.array(reader.deserialize(m).position)
                          for m in reader.messages([ACTION])}
    assert table["stamp_ns"].tolist() == [t for t, _, _ in live]

    ties, compared_reasons, compared_actions, in_sync = 0, 0, 0, True
    for (t, live_reason, live_stamps), (_, row) in zip(live, table.iterrows()):
        replay_stamps = {topic: (None if pd.isna(row[col]) else int(row[col])) for topic, col in TOPICS.items()}
        replay_reason = row["skip_reason"] or "ok"
        if live_stamps != replay_stamps:
            # the only allowed difference: a message logged at exactly the tick time (a tie, see above)
            for topic in TOPICS:
                if live_stamps[topic] != replay_stamps[topic]:
                    assert t in (live_stamps[topic], replay_stamps[topic]), (t, topic, live_stamps, replay_stamps)
            ties += 1
            in_sync = False  # the plans may now differ until both start a fresh one
            continue
        assert live_reason == replay_reason, f"tick at {t}: node {live_reason!r} vs replay {replay_reason!r}"
        compared_reasons += 1
        if live_reason != "ok":
            in_sync = True  # both skipped this tick: both start a fresh plan at the next one
        elif in_sync:
            np.testing.assert_allclose(node_actions[t], replay_actions[t], atol=1e-5, err_msg=f"tick at {t}")
            compared_actions += 1
    kinds = {r.split(":")[0] for _, r, _ in live}
    assert "stale" in kinds and "ok" in kinds, kinds  # the gap was seen, and actions were computed
    assert ties <= 3, f"{ties} ticks saw a message logged at exactly their time"
    assert compared_reasons >= len(live) - 3 and compared_actions >= 10, (ties, compared_reasons, compared_actions)
