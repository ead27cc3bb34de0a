"""The simulator's ROS 2 bridge over real rclpy/DDS (loopback, this run's ROS_DOMAIN_ID; test/conftest.py).

* As a driver: each step's cameras (rgb8), /joint_states in the lerobot_radians convention and /clock, all
  stamped with the simulated time; commands on the node's topic move the simulated joints.
* Lockstep: the clock advances exactly one control period per step, however slowly the commands come; a step
  without a command holds the last target and is counted.
* Closed loop through the real act_interp_node (its console script, config/so101.yaml + config/so101_sim.yaml,
  use_sim_time): every step is answered by a command computed from that step's observations.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from sim_helpers import needs_sim

pytestmark = needs_sim
REPO = Path(__file__).resolve().parents[1]
COMMAND_TOPIC = "/act_interp_node/joint_command"


class FakeDriverPeer:
    """A test ROS node standing in for act_interp_node (a mock, named as such): it records what the bridge
    publishes and answers every /clock with a command stamped with it (``hold`` = ROS-unit positions), after
    ``delay_s``; ``answer=False`` never answers."""

    def __init__(self, hold: np.ndarray, delay_s: float = 0.0, answer: bool = True) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, JointState

        self.hold, self.delay_s, self.answer = hold, delay_s, answer
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node("fake_act_interp_node", context=self.context)
        q = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.images: list = []
        self.joints: list = []
        self.clocks: list[int] = []
        self.order: list[tuple[str, int]] = []
        self.node.create_subscription(Image, "/camera/front/image_raw", lambda m: self._got("front", m), q)
        self.node.create_subscription(JointState, "/joint_states", lambda m: self._got("joints", m), q)
        self.node.create_subscription(Clock, "/clock", self._on_clock, q)
        self.pub = self.node.create_publisher(JointState, COMMAND_TOPIC, q)
        self._js = JointState
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._run = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._run and self.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    def _got(self, what: str, msg) -> None:
        (self.images if what == "front" else self.joints).append(msg)
        self.order.append((what, msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec))

    def _on_clock(self, msg) -> None:
        t = msg.clock.sec * 10**9 + msg.clock.nanosec
        self.clocks.append(t)
        self.order.append(("clock", t))
        if self.answer:
            time.sleep(self.delay_s)
            cmd = self._js(name=["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"],
                           position=[float(v) for v in self.hold])
            cmd.header.stamp = msg.clock
            self.pub.publish(cmd)

    def close(self) -> None:
        import rclpy

        self._run = False
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture(scope="module")
def arm():
    from act_interp_ros.sim.simulator import SimArm

    a = SimArm()
    yield a
    a.close()


def _bridge(arm, **kw):
    from act_interp_ros.sim.bridge import BridgeConfig, SimBridge

    return SimBridge(arm, BridgeConfig(**kw))


def _wait_matched(bridge, timeout=10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and bridge.node.count_subscribers("/clock") < 1:
        time.sleep(0.05)
    time.sleep(0.5)  # every endpoint of the peer matched


def test_bridge_speaks_the_driver_convention_and_follows_commands_in_lockstep(arm):
    from act_interp_ros.sim.units import policy_to_ros

    start = arm.reset(21)
    hold_ros = policy_to_ros(start.state)
    hold_ros[0] += 0.25  # the "node" commands shoulder_pan 0.25 rad further
    peer = FakeDriverPeer(hold_ros, delay_s=0.05)
    bridge = _bridge(arm, command_timeout_s=5.0)
    try:
        _wait_matched(bridge)
        t_first = bridge.time_ns
        result = bridge.run_episode(21, 20)
        time.sleep(0.3)
    finally:
        bridge.close()
        peer.close()
    assert result.commands == 20 and result.command_timeouts == 0 and result.skipped_ticks == 0
    # the clock: exactly one control period per step, from a multiple of the period (where the node's timer fires)
    assert peer.clocks[:20] == [t_first + k * arm.period_ns for k in range(20)]
    assert t_first % arm.period_ns == 0
    # each step's sensor messages carry its time and come before its clock
    for t in peer.clocks[:20]:
        seen = [w for w, s in peer.order if s == t]
        assert seen.index("clock") == len(seen) - 1 and {"front", "joints"} <= set(seen)
    img = peer.images[0]
    assert (img.encoding, img.height, img.width, img.step) == ("rgb8", 96, 128, 384)
    first = peer.joints[0]
    assert list(first.name) == ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    np.testing.assert_allclose(first.position, policy_to_ros(start.state), atol=1e-6)  # lerobot_radians
    # the command moved the simulated joint: shoulder_pan follows the commanded radians
    assert abs(arm.qpos()[0] - hold_ros[0]) < 0.03


def test_a_missing_command_holds_the_target_and_is_counted(arm):
    peer = FakeDriverPeer(np.zeros(6), answer=False)
    bridge = _bridge(arm, command_timeout_s=0.2)
    try:
        _wait_matched(bridge)
        q0 = arm.reset(22).qpos
        result = bridge.run_episode(22, 5)
    finally:
        bridge.close()
        peer.close()
    assert result.command_timeouts == 5 and result.commands == 0
    assert len(peer.clocks) >= 5 and np.all(np.diff(peer.clocks[-5:]) == arm.period_ns)  # time still advanced
    np.testing.assert_allclose(arm.qpos()[:5], q0[:5], atol=0.02)  # held where it was


def test_closed_loop_through_the_real_node(arm, so101_checkpoint):
    """act_interp_node (a small random SO-101 ACT: the loop, not the skill) drives the simulated arm."""
    from act_interp_ros.ros.node_process import NodeProcess, node_command

    node = NodeProcess(node_command([REPO / "config" / "so101.yaml", REPO / "config" / "so101_sim.yaml"],
                                    {"policy_path": str(so101_checkpoint), "side_rate_hz": 0.0}))
    bridge = _bridge(arm, command_timeout_s=20.0)
    try:
        assert bridge.wait_for_node(120), node.output
        result = bridge.run_episode(100_000, 24, first_commands=24)
    finally:
        bridge.close()
        node.stop()
    output = node.output
    node.cleanup()
    assert result.commands == 24, (result, output[-2000:])
    assert result.command_timeouts == 0 and result.skipped_ticks == 0
    assert result.stale_input_ticks == 0  # every command was computed from its own step's observations
    lo = np.degrees([-1.92, -1.75, -1.69, -1.66, -2.74])
    hi = np.degrees([1.92, 1.75, 1.69, 1.66, 2.74])
    cmds = np.array(result.first_commands)
    assert np.all(cmds[:, :5] >= lo - 1e-6) and np.all(cmds[:, :5] <= hi + 1e-6)
    assert np.all((cmds[:, 5] >= -1e-6) & (cmds[:, 5] <= 100 + 1e-4))
    assert "joint_convention 'lerobot_radians'" in output


def test_the_sim_demo_shows_the_closed_loop_with_the_nodes_overlays(so101_checkpoint, tmp_path):
    """``act_interp_demo --sim`` (its function, on a small random ACT: the outputs, not the skill): one held-out
    episode through the real node, then the plain loop; a video frame per step with the node's attention
    overlays, the plot and the success table."""
    from act_interp_ros.sim.demo import run_sim_demo
    from replay_helpers import count_video_frames

    steps = 12
    result = run_sim_demo(tmp_path, episodes=1, steps=steps, progress=False, policy=so101_checkpoint)
    seed = result["summary"]["seeds"][0]
    assert count_video_frames(tmp_path / f"sim_episode_{seed}.mp4") == steps
    # The control forward's own attention comes every n_action_steps (5) steps; the map worker's forwards fill the
    # steps between (in lockstep simulated time the wall-clock gap between ticks is long enough for them)
    assert result["overlays"]["attention"][0] >= 2 * steps // 2, "attention overlays on at least half the steps"
    assert (tmp_path / "sim_closed_loop.png").stat().st_size > 10_000
    table = (tmp_path / "sim_summary.md").read_text()
    assert "| node | " in table and "| plain | " in table
    node = result["summary"]["modes"]["node"]
    assert node["counters"]["commands"] == steps and node["counters"]["stale_input_ticks"] == 0
