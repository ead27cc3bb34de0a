"""``inference: async``: the action stream equals LeRobot's own ``robot_client`` on the same chunks.

LeRobot's real code runs beside ours: ``RobotClient.control_loop_action`` (pop and "send" an action),
``RobotClient._ready_to_send_observation``, ``PolicyServer._time_action_chunk`` and
``RobotClient._aggregate_action_queues`` with ``AGGREGATE_FUNCTIONS`` (``lerobot[async]``). Only the robot (a
recorder of sent actions) and the gRPC transport (chunks handed over after a simulated inference delay)
stand in for what cannot exist here.
"""

from __future__ import annotations

import threading
from queue import Queue
from types import SimpleNamespace

import pytest
import torch

from act_interp_ros.pipeline.async_chunks import AGGREGATE_FUNCTIONS, ChunkQueue

def _import_lerobot_async():
    """LeRobot's async-inference modules; imported from a scratch directory, because their loggers create a
    ``logs/`` folder with a file per module in the working directory at import."""
    import os
    import tempfile

    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)
        try:
            client = pytest.importorskip("lerobot.async_inference.robot_client", reason="needs lerobot[async] (grpcio)")
            from lerobot.async_inference import configs, policy_server
        finally:
            os.chdir(cwd)
    return client, configs.AGGREGATE_FUNCTIONS, policy_server.PolicyServer


robot_client, LEROBOT_AGGREGATE, PolicyServer = _import_lerobot_async()

A, CHUNK, PER_CHUNK, TICKS = 6, 20, 12, 400


class RecordingRobot:
    """Stands in for the SO-101 (cannot exist here): records what LeRobot's client sends it."""

    action_features = [f"j{i}" for i in range(A)]

    def __init__(self) -> None:
        self.sent: list[dict[str, float]] = []

    def send_action(self, action: dict[str, float]) -> dict[str, float]:
        self.sent.append(action)
        return action


def lerobot_client(threshold: float):
    client = object.__new__(robot_client.RobotClient)  # no robot connection, no gRPC channel
    client.robot = RecordingRobot()
    client.action_queue, client.action_queue_lock = Queue(), threading.Lock()
    client.latest_action_lock, client.latest_action, client.action_chunk_size = threading.Lock(), -1, -1
    client._chunk_size_threshold = threshold
    client.action_queue_size = []
    return client


def lerobot_server():
    server = object.__new__(PolicyServer)
    server.config = SimpleNamespace(environment_dt=1 / 30)
    return server


def run_both(aggregate: str, threshold: float, seed: int):
    """Tick by tick: pop an action (both), request a chunk when ready (both), deliver each chunk after a
    random 1-9 tick inference delay (both get the same chunk). Returns both streams of (timestep, action)."""
    gen = torch.Generator().manual_seed(seed)
    client, server = lerobot_client(threshold), lerobot_server()
    ours = ChunkQueue(aggregate, threshold, PER_CHUNK)
    lerobot_stream, our_stream, in_flight = [], [], None
    stats = {"chunks": 0, "overlapping": 0}
    for tick in range(TICKS):
        if in_flight is not None and in_flight["arrives"] == tick:
            chunk = in_flight["chunk"]  # (CHUNK, A), postprocessed
            timed = server._time_action_chunk(0.0, list(chunk[:PER_CHUNK]), in_flight["lerobot_t"])
            client.action_chunk_size = max(client.action_chunk_size, len(timed))  # as receive_actions does
            stats["overlapping"] += int(not client.action_queue.empty())
            client._aggregate_action_queues(timed, LEROBOT_AGGREGATE[aggregate])
            assert ours.merge(ours.timed_chunk(in_flight["our_t"], chunk), in_flight["generation"])
            stats["chunks"] += 1
            in_flight = None
        if not client.action_queue.empty():
            client.control_loop_action()
            lerobot_stream.append((client.latest_action, torch.tensor(list(client.robot.sent[-1].values()))))
        timed = ours.pop()
        if timed is not None:
            our_stream.append((timed.timestep, timed.action))
        assert client._ready_to_send_observation() == ours.ready_to_send(), tick
        if in_flight is None and ours.ready_to_send():
            in_flight = {"arrives": tick + 1 + int(torch.randint(0, 9, (1,), generator=gen)),
                         "chunk": torch.randn(CHUNK, A, generator=gen),
                         "lerobot_t": max(client.latest_action, 0),  # control_loop_observation's timestep
                         "our_t": ours.observation_timestep(), "generation": ours.generation}
    return lerobot_stream, our_stream, ours, stats


@pytest.mark.parametrize("aggregate", ["weighted_average", "latest_only", "average", "conservative"])
@pytest.mark.parametrize("threshold", [0.5, 0.2, 0.8])
def test_the_async_action_stream_equals_lerobots_robot_client(aggregate, threshold):
    lerobot_stream, our_stream, ours, stats = run_both(aggregate, threshold, seed=7)
    assert stats["chunks"] > 10 and stats["overlapping"] > 5, stats  # chunks arrive while actions are queued
    assert len(our_stream) == len(lerobot_stream) > TICKS // 2
    for (t_lr, a_lr), (t_ours, a_ours) in zip(lerobot_stream, our_stream):
        assert t_lr == t_ours
        assert torch.equal(a_ours, a_lr)  # identical, bit for bit
    assert ours.stale_dropped > 0  # the chunk's first action (the observation's own timestep) always is
    if aggregate != "latest_only":
        assert ours.aggregated > 0


def test_the_aggregate_functions_are_lerobots():
    old, new = torch.randn(A), torch.randn(A)
    assert set(AGGREGATE_FUNCTIONS) == set(LEROBOT_AGGREGATE)
    for name, fn in AGGREGATE_FUNCTIONS.items():
        assert torch.equal(fn(old, new), LEROBOT_AGGREGATE[name](old, new)), name


def test_a_chunk_from_before_a_reset_is_never_executed():
    q = ChunkQueue("weighted_average", 0.5, 4)
    gen = q.generation
    assert q.merge(q.timed_chunk(0, torch.ones(4, A)), gen)
    assert q.pop().timestep == 0  # the first chunk: nothing has been executed yet
    in_flight = (q.observation_timestep(), q.generation)
    q.reset()  # a tick could not act (stale input, pause, error)
    assert not q.merge(q.timed_chunk(in_flight[0], torch.full((4, A), 2.0)), in_flight[1])
    assert q.pop() is None and q.chunks_discarded == 1
    assert q.merge(q.timed_chunk(q.observation_timestep(), torch.full((4, A), 3.0)), q.generation)
    assert torch.equal(q.pop().action, torch.full((A,), 3.0))


def test_ticks_until_the_next_request():
    q = ChunkQueue("latest_only", 0.5, 10)
    assert q.ticks_until_send() == 1 and q.ready_to_send()
    q.merge(q.timed_chunk(0, torch.zeros(10, A)), q.generation)
    assert len(q) == 10 and not q.ready_to_send()
    assert q.ticks_until_send() == 5  # 10 - 5 = 5 <= 0.5 x 10
    for _ in range(4):
        q.pop()
    assert not q.ready_to_send()
    q.pop()
    assert q.ready_to_send()
    q.merge(q.timed_chunk(q.observation_timestep(), torch.zeros(10, A)), q.generation)
    assert q.stale_dropped == 1 and len(q) == 9  # the observation's own timestep (4) had been executed
