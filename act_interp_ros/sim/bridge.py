"""The simulated SO-101 on ROS 2 (rclpy): it talks as a real arm's driver does, in lockstep simulated time.

Published (one set per control step ``k``, all stamped with the simulated time ``t_k``):

* ``sensor_msgs/Image`` rgb8 per camera (default ``/camera/front/image_raw``, ``/camera/wrist/image_raw``);
* ``/joint_states`` (``sensor_msgs/JointState``) in the ``lerobot_radians`` driver convention
  (:mod:`act_interp_ros.sim.units`): LeRobot's degrees as radians, the gripper's 0..100 as 0..pi;
* ``/clock`` (``rosgraph_msgs/Clock``) = ``t_k``, published after the step's sensor messages.

Subscribed: the node's command topic (default ``/act_interp_node/joint_command``, ``sensor_msgs/JointState``
in the same convention, joints looked up by name) and its ``~/tick_status``.

Lockstep: publish the observations of step ``k``, then the clock ``t_k``; the node's control timer (ROS time,
``use_sim_time``) fires at ``t_k`` and answers with a command stamped ``t_k``. The bridge waits for that command
(or for the node's tick status saying it skipped the tick, or ``command_timeout_s`` of wall time: both hold the
previous target and are counted), applies it as joint-position targets, advances the physics by one control
period and the clock by the same, whatever the CPU's speed. A command whose tick used older observations than
``t_k`` is counted (``stale_input_ticks``).
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_srvs.srv import SetBool

from act_interp_ros.sim.scene import CAMERA_NAMES
from act_interp_ros.sim.simulator import NS, SimArm, SimObservation
from act_interp_ros.sim.units import JOINT_NAMES, policy_to_mujoco, policy_to_ros, ros_to_policy

__all__ = ["BridgeConfig", "EpisodeResult", "SimBridge"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BridgeConfig:
    """Topics and timing of the bridge (defaults: the node's shipped config/so101.yaml)."""

    camera_topics: dict[str, str] = field(default_factory=lambda: {
        "front": "/camera/front/image_raw", "wrist": "/camera/wrist/image_raw"})
    joint_state_topic: str = "/joint_states"
    command_topic: str = "/act_interp_node/joint_command"
    node_name: str = "/act_interp_node"
    command_timeout_s: float = 10.0  # wall time waited for the command of one step
    settle_s: float = 0.02  # wall time between a step's sensor messages and its /clock
    start_time_s: float = 1.0  # simulated time of the first step (ROS time 0 means "no clock yet")
    #: node map methods whose overlays (``<node>/<method>/<camera>/overlay``) are kept by stamp (empty: none)
    record_overlays: tuple[str, ...] = ()


@dataclass
class EpisodeResult:
    """One closed-loop episode: seed, steps run, success (and the first step it held), counters."""

    seed: int
    steps: int
    success: bool
    first_success_step: int | None
    commands: int = 0
    command_timeouts: int = 0
    skipped_ticks: int = 0
    stale_input_ticks: int = 0
    closest_approach_m: float = float("inf")  # nearest the gripper site came to the cube centre
    max_lift_m: float = 0.0  # highest the cube rose above its resting height
    first_commands: list[list[float]] = field(default_factory=list)  # policy units, the first chunk's steps
    distance_m: list[float] = field(default_factory=list)  # gripper site to cube centre after each step

    def as_dict(self) -> dict:
        return asdict(self)


class SimBridge:
    """The ROS side of a :class:`SimArm` (see the module docstring). Spins its own executor thread."""

    def __init__(self, arm: SimArm, config: BridgeConfig = BridgeConfig(), node_name: str = "so101_sim") -> None:
        self.arm, self.config = arm, config
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = Node(node_name, context=self.context)
        reliable = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_images = {c: self.node.create_publisher(Image, t, reliable) for c, t in config.camera_topics.items()}
        self.pub_joints = self.node.create_publisher(JointState, config.joint_state_topic, reliable)
        self.pub_clock = self.node.create_publisher(Clock, "/clock", QoSProfile(depth=1,
                                                                                 reliability=ReliabilityPolicy.RELIABLE))
        self._lock = threading.Condition()
        self._commands: dict[int, np.ndarray] = {}  # stamp ns -> (6,) ROS units
        self._skips: set[int] = set()  # tick time ns the node reported as skipped
        self._tick_stamps: dict[int, list[int]] = {}  # tick time ns -> input stamps it used
        self.node.create_subscription(JointState, config.command_topic, self._on_command, reliable)
        self.node.create_subscription(DiagnosticStatus, f"{config.node_name}/tick_status", self._on_tick_status,
                                      QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        self.node_diagnostics: dict[str, str] = {}  # the node's latest /diagnostics values (its counters)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics,
                                      QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE))
        #: (method, camera) -> {stamp ns: (H, W, 3) uint8 overlay}, for ``config.record_overlays``
        self.overlays: dict[tuple[str, str], dict[int, np.ndarray]] = {}
        #: with ``config.record_overlays``: the last episode's (step time ns, {camera: frame}) per step
        self.frames: list[tuple[int, dict[str, np.ndarray]]] = []
        for method in config.record_overlays:
            for cam in config.camera_topics:
                self.overlays[(method, cam)] = {}
                self.node.create_subscription(
                    Image, f"{config.node_name}/{method}/{cam}/overlay",
                    lambda msg, key=(method, cam): self._on_overlay(key, msg), reliable)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = True
        self._thread = threading.Thread(target=self._spin_loop, name="so101_sim_executor", daemon=True)
        self._thread.start()
        self.time_ns = self._align(int(config.start_time_s * NS))

    def _align(self, t_ns: int) -> int:
        """The next multiple of the control period at or after ``t_ns`` (the node's timer fires on multiples)."""
        p = self.arm.period_ns
        return -(-t_ns // p) * p

    def _spin_loop(self) -> None:
        while self._spin and self.context.ok():
            self.executor.spin_once(timeout_sec=0.02)

    # ------------------------------------------------------------------------------ callbacks
    def _on_command(self, msg: JointState) -> None:
        stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
        index = {n: i for i, n in enumerate(msg.name)}
        if any(j not in index for j in JOINT_NAMES) or len(msg.position) != len(msg.name):
            logger.warning("command without the joints %s ignored (names %s)", JOINT_NAMES, list(msg.name))
            return
        with self._lock:
            self._commands[stamp] = np.array([msg.position[index[j]] for j in JOINT_NAMES], dtype=np.float64)
            self._lock.notify_all()

    def _on_tick_status(self, msg: DiagnosticStatus) -> None:
        values = {kv.key: kv.value for kv in msg.values}
        try:
            t = int(values.get("time_ns", ""))
        except ValueError:
            return
        stamps = [int(v) for k, v in values.items() if k.startswith("stamp_ns") and v]
        with self._lock:
            self._tick_stamps[t] = stamps
            if msg.level != DiagnosticStatus.OK:
                self._skips.add(t)
            self._lock.notify_all()

    def _on_overlay(self, key: tuple[str, str], msg: Image) -> None:
        stamp = msg.header.stamp.sec * NS + msg.header.stamp.nanosec
        image = np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3).copy()
        with self._lock:
            self.overlays[key][stamp] = image

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.endswith(": control"):
                self.node_diagnostics = {kv.key: kv.value for kv in status.values}

    # ------------------------------------------------------------------------------ publishing
    def publish_observation(self, obs: SimObservation, t_ns: int) -> None:
        """The step's images and joint state stamped ``t_ns``, then ``/clock`` = ``t_ns``."""
        stamp = rclpy.time.Time(nanoseconds=t_ns).to_msg()
        for cam, pub in self.pub_images.items():
            img = obs.images[cam]
            msg = Image(height=img.shape[0], width=img.shape[1], encoding="rgb8", is_bigendian=0, step=img.shape[1] * 3)
            msg.data.frombytes(np.ascontiguousarray(img).tobytes())
            msg.header.stamp, msg.header.frame_id = stamp, f"{cam}_camera_optical_frame"
            pub.publish(msg)
        js = JointState(name=list(JOINT_NAMES), position=[float(v) for v in policy_to_ros(obs.state)])
        js.header.stamp = stamp
        self.pub_joints.publish(js)
        time.sleep(self.config.settle_s)
        self.publish_clock(t_ns)

    def publish_clock(self, t_ns: int) -> None:
        self.pub_clock.publish(Clock(clock=rclpy.time.Time(nanoseconds=t_ns).to_msg()))

    # ------------------------------------------------------------------------------ lockstep
    def wait_for_node(self, timeout_s: float = 120.0) -> bool:
        """Publish the clock until the node's command publisher is discovered (it appears once the policy is
        loaded and warmed up); True when found."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.node.count_publishers(self.config.command_topic) > 0:
                # The node's timer may already have fired at the clock published while waiting: the first step
                # is one period later, and nothing from before it counts.
                self.publish_clock(self.time_ns)
                time.sleep(0.2)
                self.time_ns += self.arm.period_ns
                with self._lock:
                    self._commands.clear()
                    self._skips.clear()
                    self._tick_stamps.clear()
                return True
            self.publish_clock(self.time_ns)
            time.sleep(0.1)
        return False

    def wait_command(self, t_ns: int, timeout_s: float) -> tuple[np.ndarray | None, str]:
        """The command stamped ``t_ns`` (ROS units) and ``"ok"``, or None and ``"skipped"`` / ``"timeout"``."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while True:
                if t_ns in self._commands:
                    return self._commands.pop(t_ns), "ok"
                if t_ns in self._skips:
                    return None, "skipped"
                left = deadline - time.monotonic()
                if left <= 0:
                    return None, "timeout"
                self._lock.wait(min(left, 0.05))

    def reset_node_plan(self) -> bool:
        """Pause and resume the node's commands (``~/enable_commands``): its queued action chunk is dropped, so
        the next episode starts from a fresh forward pass. False when the service is not there."""
        client = self.node.create_client(SetBool, f"{self.config.node_name}/enable_commands")
        try:
            if not client.wait_for_service(timeout_sec=2.0):
                logger.warning("%s/enable_commands is not there: the node's queued actions are not reset",
                               self.config.node_name)
                return False
            for value in (False, True):
                future = client.call_async(SetBool.Request(data=value))
                deadline = time.monotonic() + 5.0
                while not future.done() and time.monotonic() < deadline:
                    time.sleep(0.01)
                if not future.done():
                    return False
            return True
        finally:
            self.node.destroy_client(client)

    def run_episode(self, seed: int, steps: int, first_commands: int = 0) -> EpisodeResult:
        """One closed-loop episode from ``seed`` for ``steps`` control steps (see the module docstring)."""
        self.reset_node_plan()
        obs = self.arm.reset(seed)
        result = EpisodeResult(seed=seed, steps=steps, success=False, first_success_step=None)
        target = obs.qpos.copy()
        acted: list[int] = []  # step times answered with a command
        self.frames = []
        for k in range(steps):
            t = self.time_ns
            if self.config.record_overlays:
                self.frames.append((t, obs.images))
            self.publish_observation(obs, t)
            command, outcome = self.wait_command(t, self.config.command_timeout_s)
            if command is not None:
                result.commands += 1
                policy = ros_to_policy(command)
                target = policy_to_mujoco(policy)
                if len(result.first_commands) < first_commands:
                    result.first_commands.append([float(v) for v in policy])
                acted.append(t)
            elif outcome == "skipped":
                result.skipped_ticks += 1
            else:
                result.command_timeouts += 1
            obs = self.arm.step(target)
            self.time_ns += self.arm.period_ns
            approach = float(np.linalg.norm(self.arm.tcp_pos() - self.arm.cube_pos()))
            result.distance_m.append(approach)
            result.closest_approach_m = min(result.closest_approach_m, approach)
            result.max_lift_m = max(result.max_lift_m, obs.lift)
            if obs.success and result.first_success_step is None:
                result.first_success_step = k
        time.sleep(0.5 if self.config.record_overlays else 0.1)  # the last tick status (and maps) follow
        with self._lock:
            result.stale_input_ticks = sum(any(s != t for s in self._tick_stamps.get(t, ())) for t in acted)
            self._commands.clear()  # what is older than now can never be used again
            self._skips.clear()
            self._tick_stamps.clear()
        result.success = result.first_success_step is not None
        return result

    def close(self) -> None:
        self._spin = False
        self._thread.join(timeout=5)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
