"""A test entry point (named as such): ``act_interp_node`` with faults injected through its constructor.

    python test/fault_injecting_node.py [--tick-fault-file PATH] [--fail-side-method NAME] --ros-args ...

* ``--tick-fault-file PATH``: every control tick raises while PATH exists (a failing tick, then a fault).
* ``--fail-side-method NAME``: every run of side method NAME raises.

Everything else is the production node and its ``main`` (exit codes, logging, executor).
"""

from __future__ import annotations

import argparse
import os
import sys

from act_interp_ros.ros.interp_node import ActInterpNode
from act_interp_ros.ros.main import main
from act_interp_ros.runtime.sink import LoopHooks


def hooks(args: argparse.Namespace) -> LoopHooks:
    def before_tick() -> None:
        if args.tick_fault_file and os.path.exists(args.tick_fault_file):
            raise RuntimeError(f"tick failure injected by {args.tick_fault_file} (test hook)")

    def before_side_method(method: str) -> None:
        if method == args.fail_side_method:
            raise RuntimeError(f"{method} failure injected (test hook)")

    return LoopHooks(before_tick=before_tick, before_side_method=before_side_method)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--tick-fault-file")
    ap.add_argument("--fail-side-method")
    ours, ros_args = ap.parse_known_args()
    sys.exit(main([sys.argv[0], *ros_args], make_node=lambda: ActInterpNode(hooks(ours))))
