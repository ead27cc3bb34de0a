"""A stand-in for RViz in benchmarks: subscribes (raw bytes, no deserialisation) to topics and counts.

    python -m bench.ros_sink --topics /a /b [--types sensor_msgs/msg/Image ...]

Runs in its own process so that delivering the benchmarked node's overlays costs the publisher what it
would with a real viewer attached, without the viewer's work landing in the measured process. Prints
``READY`` once subscribed and, on SIGINT/SIGTERM, one JSON line ``{"counts": {topic: n}, "bytes": {...}}``.

``--delay``: subscribe like the node does (deserialised, RELIABLE, depth 5) and also report the delay of each
message (receive time - header stamp) as ``"delay_ms": {"p50": ..., "p90": ..., "p99": ..., "max": ...}``:
the DDS delivery baseline of section 5, with no node and no model in the way.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topics", nargs="+", required=True)
    p.add_argument("--types", nargs="+", default=None, help="message type per topic (default sensor_msgs/msg/Image)")
    p.add_argument("--delay", action="store_true", help="record receive - header stamp (reliable, deserialised)")
    args = p.parse_args(argv)
    types = args.types or ["sensor_msgs/msg/Image"] * len(args.topics)
    if len(types) != len(args.topics):
        p.error("--types needs one type per topic")

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

    from act_interp_ros.pipeline.tick import header_stamp_ns

    def get_message(name: str):
        pkg, _msg, cls = name.split("/")
        return getattr(importlib.import_module(f"{pkg}.msg"), cls)

    rclpy.init()
    node = rclpy.create_node("bench_sink")
    counts = {t: 0 for t in args.topics}
    nbytes = {t: 0 for t in args.topics}

    delays: list[float] = []

    def make_cb(topic: str):
        def cb(data: bytes) -> None:
            counts[topic] += 1
            nbytes[topic] += len(data)

        def cb_delay(msg) -> None:
            counts[topic] += 1
            stamp = header_stamp_ns(msg)
            if stamp:
                delays.append((node.get_clock().now().nanoseconds - stamp) / 1e6)

        return cb_delay if args.delay else cb

    for topic, typ in zip(args.topics, types):
        if args.delay:
            qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
            node.create_subscription(get_message(typ), topic, make_cb(topic), qos)
        else:  # best effort matches both reliable and best-effort publishers
            node.create_subscription(get_message(typ), topic, make_cb(topic), qos_profile_sensor_data, raw=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print("READY", flush=True)
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    out = {"counts": counts, "bytes": nbytes}
    if args.delay and len(delays) > 60:
        import numpy as np

        arr = np.asarray(delays[60:])  # after the first second or so (discovery, first frames)
        out["delay_ms"] = {k: round(float(v), 2) for k, v in zip(("p50", "p90", "p99", "max"),
                                                                   np.percentile(arr, [50, 90, 99, 100]))}
    print(json.dumps(out), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
