"""The live node driven from a bag by act_interp_play (with /clock, use_sim_time) publishes overlays
stamped with the bag's image stamps: bag replay lines up in RViz and in recorded output."""

from __future__ import annotations

from rosbags.highlevel import AnyReader
from sensor_msgs.msg import Image
from std_msgs.msg import Float32

from act_interp_ros.bag.play import BagPlayer
from act_interp_ros.bag.synthetic_bag import write_synthetic_bag
from node_harness import Peer, start_node, write_params

NODE = "/act_interp_node"


def bag_image_stamps(bag, topic: str) -> set[int]:
    with AnyReader([bag]) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return {
            reader.deserialize(raw, c.msgtype).header.stamp.sec * 10**9 + reader.deserialize(raw, c.msgtype).header.stamp.nanosec
            for c, _, raw in reader.messages(connections=conns)
        }


def test_node_follows_a_played_bag_in_sim_time(tmp_path, node_checkpoint):
    bag = write_synthetic_bag(tmp_path / "episode", storage="mcap", n_frames=90, image_size=(120, 160), seed=3)
    params = write_params(tmp_path / "p.yaml", publish_actions=False, side_rate_hz=0.0)
    node = start_node(params, node_checkpoint, "-p", "use_sim_time:=true")
    peer = Peer("bag_peer")
    try:
        peer.subscribe(Image, f"{NODE}/attention/front/overlay", depth=100)
        peer.subscribe(Float32, f"{NODE}/proprio_attention", depth=100)
        # In sim time the node's timers (diagnostics too) only run once /clock flows, so wait for the
        # node's subscriptions instead, like `ros2 bag play --wait-for-subscribers` would.
        summary = BagPlayer(bag, rate=1.0, clock=True, wait_for_subscribers=1, wait_timeout=60, delay=0.5).run(peer.node)
        assert summary.total_published >= 270
        overlays = peer.wait_for(f"{NODE}/attention/front/overlay", 10, timeout=15)
        assert len(overlays) >= 10, node.output[-2000:]
        stamps = bag_image_stamps(bag, "/camera/front/image_raw")
        got = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in overlays]
        assert set(got) <= stamps, "overlays must carry the bag image's own header stamp"
        assert got == sorted(got)
        assert all(m.header.frame_id == "front_camera_optical_frame" for m in overlays)
    finally:
        peer.close()
        node.cleanup()
