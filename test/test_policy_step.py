"""The one policy step of node and replays: the node's way (a forward on the tick's batch when the queue needs
one) and the replay's way (a chunk computed in a batch) give the same actions, equal to the unwrapped
policy's; a non-finite action is never sent and the next tick starts a fresh plan."""

from __future__ import annotations

import numpy as np
import torch

from act_interp_ros.core import InterpretableACT
from act_interp_ros.pipeline import PolicyStep, SkipReason, TickPipeline
from act_interp_ros.settings import NodeSettings
from engine_helpers import random_batches, unwrapped_batch

CURRENT = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.5])


def wrapped_policy(checkpoint) -> InterpretableACT:
    return InterpretableACT.from_pretrained(str(checkpoint), device="cpu")


def limits(policy: InterpretableACT) -> TickPipeline:
    return TickPipeline(NodeSettings.from_mapping({"policy_path": "user/act"}), policy.config)


def node_way(step: PolicyStep, batch):
    return step.run(CURRENT, batch=batch if step.needs_forward() else None)


def replay_way(step: PolicyStep, batch):
    with torch.inference_mode():
        chunk, _ = step.policy.predict_chunk(batch)
    return step.run(CURRENT, chunk=chunk)


def test_node_and_replay_steps_give_the_unwrapped_policys_actions(so101_checkpoint):
    policy = wrapped_policy(so101_checkpoint)
    batches = random_batches(policy, 7, seed=5)
    pipeline = limits(policy)
    results = {}
    for name, way in (("node", node_way), ("replay", replay_way)):
        policy.reset()
        step = PolicyStep(policy, pipeline)
        results[name] = [way(step, b) for b in batches[:3]]
        assert step.skip(SkipReason("stale", "/joint_states age=0.5s>0.25s")).skip.kind == "stale"
        results[name] += [way(step, b) for b in batches[3:]]
        assert step.plan_resets == 2, "one plan at the start, one after the skipped tick"
    theirs = []
    policy.reset()
    with torch.no_grad():
        for i, b in enumerate(batches):
            if i == 3:
                policy.policy.reset()  # the skipped tick: LeRobot's own select_action from a fresh queue
            theirs.append(policy.postprocess(policy.policy.select_action(unwrapped_batch(policy, b)))[0])
    for name, ours in results.items():
        for r, expected in zip(ours, theirs):
            assert r.skip is None
            np.testing.assert_array_equal(r.action, expected, err_msg=name)
            assert r.command is not None and np.all(np.abs(r.command - CURRENT) <= pipeline.mapping.max_step + 1e-12)
    assert [r.new_plan for r in results["node"]] == [r.new_plan for r in results["replay"]]
    assert results["node"][0].pending is not None and results["node"][0].forward_s > 0
    assert results["node"][1].pending is None and results["node"][1].forward_s == 0.0, "a queued action"


def test_a_non_finite_action_is_never_sent_and_the_next_tick_plans_afresh(so101_checkpoint):
    policy = wrapped_policy(so101_checkpoint)
    batches = random_batches(policy, 2, seed=6)
    step = PolicyStep(policy, limits(policy))
    head = policy.policy.model.action_head
    saved = head.bias.detach().clone()
    with torch.no_grad():
        head.bias[1] = float("nan")
    result = node_way(step, batches[0])
    assert result.skip.kind == "nonfinite_action" and "nan" in result.skip.detail
    assert result.command is None and result.action is None
    with torch.no_grad():
        head.bias.copy_(saved)
    again = node_way(step, batches[1])
    assert again.skip is None and again.new_plan and step.plan_resets == 2, "the NaN plan is never executed"


def test_without_limits_the_action_stays_in_policy_units(so101_checkpoint):
    policy = wrapped_policy(so101_checkpoint)
    step = PolicyStep(policy)  # datasets: no ROS command
    result = node_way(step, random_batches(policy, 1, seed=7)[0])
    assert result.skip is None and result.command is None and result.action.shape == (6,)
