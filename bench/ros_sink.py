"""A stand-in for RViz in benchmarks: subscribes (raw bytes, no deserialisation) to topics and counts.

    python -m bench.ros_sink --topics /a /b [--types sensor_msgs/msg/Image ...]

Runs in its own process so that delivering the benchmarked node's overlays costs the publisher what it
would with a real viewer attached, without the viewer's work landing in the measured process. Prints
``READY`` once subscribed and, on SIGINT/SIGTERM, one JSON line ``{"counts": {topic: n}, "bytes": {...}}``.
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
    args = p.parse_args(argv)
    types = args.types or ["sensor_msgs/msg/Image"] * len(args.topics)
    if len(types) != len(args.topics):
        p.error("--types needs one type per topic")

    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data

    def get_message(name: str):
        pkg, _msg, cls = name.split("/")
        return getattr(importlib.import_module(f"{pkg}.msg"), cls)

    rclpy.init()
    node = rclpy.create_node("bench_sink")
    counts = {t: 0 for t in args.topics}
    nbytes = {t: 0 for t in args.topics}

    def make_cb(topic: str):
        def cb(data: bytes) -> None:
            counts[topic] += 1
            nbytes[topic] += len(data)

        return cb

    for topic, typ in zip(args.topics, types):
        # best effort matches both reliable and best-effort publishers
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
    print(json.dumps({"counts": counts, "bytes": nbytes}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
