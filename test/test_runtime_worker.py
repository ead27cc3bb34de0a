"""The newest-job workers: control ticks wait one tick, older jobs are dropped and reported, failures never end
the thread."""

from __future__ import annotations

import threading

from act_interp_ros.runtime.worker import LatestJobWorker


def test_a_mailbox_keeps_the_newest_job_and_reports_the_replaced_one():
    gate, started, done, dropped = threading.Event(), threading.Event(), [], []
    worker = LatestJobWorker("t", lambda job: (started.set(), gate.wait(5), done.append(job)), drop_when_busy=False,
                             on_drop=dropped.append)
    try:
        assert worker.submit(1)  # runs (blocked on the gate)
        assert started.wait(5)
        worker_busy = worker.busy
        assert worker.submit(2)  # waits
        assert not worker.submit(3)  # replaces 2
        gate.set()
        assert worker.wait_idle(5)
        assert worker_busy and done == [1, 3] and dropped == [2] and worker.dropped == 1
    finally:
        worker.stop()


def test_drop_when_busy_refuses_and_errors_keep_the_thread_alive():
    gate, started, done, dropped, errors = threading.Event(), threading.Event(), [], [], []

    def handle(job):
        started.set()
        gate.wait(5)
        if job == "boom":
            raise RuntimeError("boom")
        done.append(job)

    worker = LatestJobWorker("t", handle, drop_when_busy=True, on_drop=dropped.append, on_error=errors.append)
    try:
        assert worker.submit("boom")
        assert started.wait(5)
        assert not worker.submit("late")
        gate.set()
        assert worker.wait_idle(5)
        assert worker.submit("next") and worker.wait_idle(5)
        assert dropped == ["late"] and done == ["next"] and [str(e) for e in errors] == ["boom"]
    finally:
        worker.stop()


def test_nice_lowers_only_the_worker_threads_priority():
    """Background workers (maps, side methods) yield the CPU: their thread runs at a higher nice value than the
    thread that started them, which keeps its own."""
    import os

    if not hasattr(os, "getpriority"):
        import pytest

        pytest.skip("no per-thread priorities on this platform")
    here = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = []
    worker = LatestJobWorker("bg", lambda job: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())),
                             drop_when_busy=False, nice=5)
    try:
        assert worker.submit(1) and worker.wait_idle(5)
    finally:
        worker.stop()
    assert seen == [min(19, here + 5)] and worker.nice_applied == seen[0]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == here


def _set_real_time_or_skip(priority: int = 1):
    import os

    import pytest

    if not hasattr(os, "sched_setscheduler"):
        pytest.skip("no per-thread scheduling policies on this platform")
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError:
        pytest.skip("setting a real-time policy needs root or CAP_SYS_NICE")


def test_background_workers_never_run_real_time_control_keeps_it():
    """A node started under a real-time policy (chrt, or inherited from its parent): the control worker keeps it,
    the CPU-bound background workers (maps, side methods) run as normal threads, so they cannot starve the
    machine."""
    import os

    _set_real_time_or_skip()
    policies: dict[str, int] = {}
    workers = [LatestJobWorker(name, lambda job, name=name: policies.__setitem__(name, os.sched_getscheduler(0)),
                               drop_when_busy=False, background=background)
               for name, background in (("control", False), ("maps", True))]
    try:
        for w in workers:
            assert w.submit(1) and w.wait_idle(5)
    finally:
        for w in workers:
            w.stop()
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    assert policies == {"control": os.SCHED_FIFO, "maps": os.SCHED_OTHER}
    assert workers[1].left_real_time and not workers[0].left_real_time
