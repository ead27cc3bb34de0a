#!/usr/bin/env python3
"""A plain rclpy runner of a LeRobot ACT policy: the baseline the node's real-time share is measured against.

    python bench/plain_runner.py --policy DIR --camera-topics /camera/front/image_raw ... [--use-sim-time]

What a user writes without this package: subscribe to the cameras and the joint states (newest message
each), and on a timer at ``--rate`` Hz run LeRobot's own ``ACTPolicy.select_action`` on the newest inputs
(through the checkpoint's own pre/postprocessors) and publish the action as a ``sensor_msgs/JointState``.
No interpretation, no input checks beyond "every input has arrived", one ``SingleThreadedExecutor`` (the
forward runs in the timer callback, as in most ROS examples). Images are resized to the policy's size with
the same OpenCV call as the node. On SIGINT/SIGTERM it prints one JSON line with its counts and forward
times, and exits.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

RAD_TO_DEG = 57.29577951308232


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--policy", required=True, help="LeRobot ACT pretrained_model directory")
    p.add_argument("--camera-topics", nargs="+", required=True, help="one sensor_msgs/Image topic per policy camera, "
                   "in the order of the policy's camera keys")
    p.add_argument("--joint-state-topic", default="/joint_states")
    p.add_argument("--action-topic", default="/plain_runner/joint_command")
    p.add_argument("--rate", type=float, default=30.0, help="control rate in Hz")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--use-sim-time", action="store_true", help="tick on /clock (as the node under use_sim_time)")
    p.add_argument("--scale", type=float, default=RAD_TO_DEG, help="policy units per ROS unit for every joint")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import cv2
    import numpy as np
    import rclpy
    import torch
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image, JointState

    from act_interp_ros.core.loading import load_act_policy

    torch.set_num_threads(args.threads)
    loaded = load_act_policy(args.policy, device="cpu")
    policy, pre, post = loaded.policy.eval(), loaded.preprocessor, loaded.postprocessor
    cfg = policy.config
    keys = list(cfg.image_features)
    if len(keys) != len(args.camera_topics):
        print(f"--camera-topics: the policy has {len(keys)} camera(s) {keys}", file=sys.stderr)
        return 2
    shapes = {k: tuple(cfg.image_features[k].shape[-2:]) for k in keys}
    state_dim = int(cfg.robot_state_feature.shape[0]) if cfg.robot_state_feature is not None else 0
    joint_names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"][
        : int(cfg.action_feature.shape[0])]

    rclpy.init(args=None, signal_handler_options=rclpy.signals.SignalHandlerOptions.NO)
    node = rclpy.create_node("plain_runner", parameter_overrides=[Parameter("use_sim_time", value=args.use_sim_time)])
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    latest: dict[str, object] = {}
    for topic in args.camera_topics:
        node.create_subscription(Image, topic, lambda msg, t=topic: latest.__setitem__(t, msg), qos)
    node.create_subscription(JointState, args.joint_state_topic, lambda msg: latest.__setitem__("joints", msg), qos)
    pub = node.create_publisher(JointState, args.action_topic, 10)
    counts = {"ticks": 0, "actions": 0, "waiting_for_inputs": 0, "forwards": 0}
    forwards: list[float] = []

    def frame(msg) -> np.ndarray:
        return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.step)[:, : msg.width * 3].reshape(
            msg.height, msg.width, 3)

    def on_tick() -> None:
        counts["ticks"] += 1
        if any(t not in latest for t in args.camera_topics) or (state_dim and "joints" not in latest):
            counts["waiting_for_inputs"] += 1
            return
        obs = {}
        for key, topic in zip(keys, args.camera_topics):
            rgb = frame(latest[topic])
            h, w = shapes[key]
            if rgb.shape[:2] != (h, w):
                rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA)
            obs[key] = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255.0)
        if state_dim:
            js = latest["joints"]
            pos = dict(zip(js.name, js.position))
            obs["observation.state"] = torch.tensor([pos[n] * args.scale for n in joint_names], dtype=torch.float32)
        needs_forward = len(policy._action_queue) == 0
        started = time.perf_counter()
        with torch.inference_mode():
            action = post(policy.select_action(pre(obs)))[0].numpy()
        if needs_forward:
            counts["forwards"] += 1
            forwards.append(time.perf_counter() - started)
        msg = JointState(name=joint_names, position=[float(a) / args.scale for a in action])
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        counts["actions"] += 1

    node.create_timer(1.0 / args.rate, on_tick)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = {"now": False}

    def on_signal(*_):
        stop["now"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("plain_runner: ready", flush=True)
    try:
        while not stop["now"]:
            executor.spin_once(timeout_sec=0.1)
    except ExternalShutdownException:
        pass
    arr = np.asarray(forwards) * 1e3 if forwards else np.asarray([float("nan")])
    print(json.dumps({**counts, "forward_p50_ms": round(float(np.median(arr)), 2),
                      "forward_p90_ms": round(float(np.percentile(arr, 90)), 2), "torch_threads": torch.get_num_threads()}),
          flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
