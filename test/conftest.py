"""Shared pytest fixtures.

ROS traffic stays on loopback: every test session gets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and its
own ROS_DOMAIN_ID (derived from the pid, so concurrent runs on one machine do not talk to each other).
These are set at import time, before any test imports rclpy, and are inherited by node subprocesses.

ACT checkpoints are small (dim_model 32, 96x128 images, random ResNet-18 weights) so the whole suite runs
on a 2-core CPU; they are real LeRobot checkpoints written with save_pretrained and loaded through the
real loading code.
"""

from __future__ import annotations

import faulthandler
import os
from pathlib import Path

import pytest

from act_interp_ros.ros.node_process import isolate_ros  # noqa: E402 - imports no rclpy

isolate_ros(int(os.environ.get("ROS_DOMAIN_ID") or 1 + os.getpid() % 100))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # 2 cores: test process + node subprocess

REPO_ROOT = Path(__file__).resolve().parents[1]

# pytest-timeout (pytest.ini, signal method) fails a test that runs too long, but only when the main thread
# gets back to Python: one stuck inside C code, or starved of CPU (as by a real-time thread, see
# act_interp_ros/runtime/scheduling.py), never does, and the whole run stalls. This watchdog is C-level: past
# HARD_TIMEOUT_S it prints every thread's stack and ends the process. scripts/test.sh runs the tests in one
# pytest-xdist worker, so the run goes on: the stuck test is reported as a crash and run once more
# (--reruns 1; ordinary failures are never rerun).
HARD_TIMEOUT_S = float(os.environ.get("ACT_INTERP_TEST_HARD_TIMEOUT_S", "660"))
_stderr_fd: int | None = None  # a duplicate of the real stderr, for the watchdog's stack dump

# Every process this test run starts inherits the token, so a replacement worker can find the node processes
# a watchdog-ended worker left behind (they would keep publishing on this run's ROS domain).
SESSION_TOKEN = "ACT_INTERP_TEST_SESSION"
os.environ.setdefault(SESSION_TOKEN, f"{os.getpid()}-{os.urandom(4).hex()}")


def pytest_configure(config):
    global _stderr_fd
    _stderr_fd = os.dup(2)  # the real stderr (pytest's capture is suspended here): the dump must reach the log
    if os.environ.get("PYTEST_XDIST_WORKER_COUNT") == "1":  # scripts/test.sh: one worker at a time
        _kill_leftovers_of_this_run()


def _ancestors(pid: int) -> set[int]:
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return out


def _kill_leftovers_of_this_run() -> None:
    """In a new xdist worker (Linux): SIGKILL every other process of this run that is not this worker or one
    of its ancestors - with one worker at a time, those are left from a worker the watchdog ended."""
    import signal

    needle = f"{SESSION_TOKEN}={os.environ[SESSION_TOKEN]}".encode()
    keep = _ancestors(os.getpid())
    for entry in Path("/proc").glob("[0-9]*"):
        pid = int(entry.name)
        try:
            if pid in keep or needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    faulthandler.dump_traceback_later(HARD_TIMEOUT_S, exit=True, file=_stderr_fd if _stderr_fd is not None else 2)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def no_real_time_policy_left():
    """Every node a test starts inherits this process's scheduling policy: a real-time one left by a test (or a
    library it called, see act_interp_ros.runtime.scheduling) fails that test and is undone."""
    yield
    from act_interp_ros.runtime.scheduling import is_real_time, leave_real_time

    if is_real_time():
        leave_real_time()
        pytest.fail("this test left the test process under a real-time scheduling policy (SCHED_FIFO/RR)")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Two cores shared by the test process and the node processes: one intra-op thread in this process avoids
    OpenMP spin contention (measured 10x faster than two with other work running)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def so101_checkpoint(tmp_path_factory) -> Path:
    """A small SO-101-shaped ACT checkpoint: front+wrist cameras 96x128, 6-joint state and action."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    return build_act_checkpoint(tmp_path_factory.mktemp("ckpt") / "pretrained_model", SmallACTSpec())


NODE_TEST_IMAGE_SHAPE = (48, 64)


@pytest.fixture(scope="session")
def node_checkpoint(tmp_path_factory) -> Path:
    """The SO-101-shaped checkpoint with 48x64 cameras, for the live-node tests.

    Node tests check the ROS behaviour (gating, topics, stamps, counters) at the real 30 Hz control rate.
    At 96x128 one forward takes ~50 ms on one core of this 2-core machine, more than the 33 ms period;
    48x64 takes ~15 ms, which leaves room for the test publisher and DDS on a loaded CI machine.
    """
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    cameras = {key: NODE_TEST_IMAGE_SHAPE for key in SmallACTSpec().cameras}
    return build_act_checkpoint(tmp_path_factory.mktemp("node_ckpt") / "pretrained_model", SmallACTSpec(cameras=cameras))


#: Training range (policy units: degrees, gripper 0..100) of the `ranged_checkpoint`: wide enough for the synthetic
#: SO-101 arm's episodes (act_interp_ros.synthetic), so a correct bag or stream is inside and a wrong convention out.
TRAINING_STATE_MIN = (-90.0, -40.0, -20.0, 30.0, -60.0, 0.0)
TRAINING_STATE_MAX = (40.0, 90.0, 120.0, 130.0, 30.0, 100.0)


def ranged_stats(cameras: dict[str, tuple[int, int]]):
    """Normaliser stats with a real training range: min/max/mean/std for state and action (LeRobot's
    dataset stats carry all four), ImageNet mean/std for the cameras."""
    import torch

    from act_interp_ros.core.checkpoints import SmallACTSpec, default_stats, make_act_config

    stats = default_stats(make_act_config(SmallACTSpec(cameras=cameras)))
    lo, hi = torch.tensor(TRAINING_STATE_MIN), torch.tensor(TRAINING_STATE_MAX)
    for key in ("observation.state", "action"):
        stats[key] = {"min": lo, "max": hi, "mean": (lo + hi) / 2, "std": (hi - lo) / 4}
    return stats


@pytest.fixture(scope="session")
def ranged_checkpoint(tmp_path_factory) -> Path:
    """The node-sized SO-101 checkpoint (48x64 cameras) whose normaliser holds a training range (min/max)."""
    from act_interp_ros.core.checkpoints import SmallACTSpec, build_act_checkpoint

    cameras = {key: NODE_TEST_IMAGE_SHAPE for key in SmallACTSpec().cameras}
    return build_act_checkpoint(tmp_path_factory.mktemp("ranged_ckpt") / "pretrained_model",
                                SmallACTSpec(cameras=cameras, stats=ranged_stats(cameras)))
