"""Benchmark 4: the control thread's per-tick work outside the model forward, two 480x640 cameras.

The node's control worker (``act_interp_ros.ros.interp_node``) does, every tick, exactly this (timed as one
"control tick" arm, and stage by stage, interleaved):

* prepare: ``TickPipeline.prepare`` - gate, decode both ``rgb8`` messages, joint state and limit check,
  observation (images to float at the policy's size: 480x640 for the full model, no resize);
* step: the next action from the policy's queue and the postprocessor (the queue holds the action on all but
  one tick in ``n_action_steps``; the refill tick's forward is the model's, not counted here);
* command: limits, the JointState command and the tick status, published with real rclpy publishers to a
  subscriber in another process.

Reported beside it, not part of the target:

* preprocess: the policy's LeRobot preprocessor (normalisation of both images). The control thread runs it
  only on a tick that feeds the model (queue empty: part of that tick's forward, as in the unwrapped
  policy); on the other ticks the map worker runs it for the interpretation forward, off the control thread.
* map overlays: render + encode + publish the two attention overlays (map worker, at the rate the hardware
  sustains).
"""

from __future__ import annotations

import logging
from typing import Any


from bench.common import CAMERA_KEYS, FULL_HW, TICK_S, interleaved, random_frames, row, start_sink, stop_sink, target

log = logging.getLogger("bench")
NODE = "bench_tick_work"
NS = 1_000_000_000


def tick_work(ctx) -> dict[str, Any]:
    import rclpy
    import torch
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image, JointState

    from act_interp_ros.pipeline import PlanStepper, TickPipeline, TickSnapshot
    from act_interp_ros.pipeline.overlays import attention_overlay
    from act_interp_ros.pipeline.output_values import action_message
    from act_interp_ros.ros.messages import make_message
    from act_interp_ros.ros.image_encoding import encode_rgb_image
    from act_interp_ros.settings import NodeSettings, camera_name

    c = ctx.counts["s4"]
    _spec, _plain, wrapped = ctx.models()
    keys = list(CAMERA_KEYS)
    names = [camera_name(k) for k in keys]
    settings = NodeSettings.from_mapping({"policy_path": "user/bench", "camera_keys": keys})
    pipeline = TickPipeline(settings, wrapped.config, device=wrapped.device)
    stepper = PlanStepper(wrapped)
    frames = random_frames({k: FULL_HW for k in keys}, seed=1)
    now_ns = 1_700_000_000 * NS
    imgs = {}
    for k in keys:
        msg = deserialize_message(serialize_message(encode_rgb_image(frames[k])), Image)  # as it arrives
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(now_ns, NS)
        imgs[k] = msg
    js = JointState(name=list(settings.joint_names), position=[0.0, -0.5, 0.5, 0.2, 0.0, 0.3])
    js.header.stamp.sec, js.header.stamp.nanosec = divmod(now_ns, NS)
    prepared0 = pipeline.prepare(TickSnapshot(now_ns, imgs, js))
    batch0 = wrapped.preprocess(prepared0.observation)
    with torch.inference_mode():
        _chunk, interps = wrapped.predict_chunk(batch0)
    interp = interps[0]

    def refill() -> None:
        """Keep actions in the queue (the refill tick's forward belongs to the model, not this benchmark)."""
        if wrapped.queued_actions == 0:
            with torch.inference_mode():
                stepper.begin_tick()
                stepper.select(_chunk)

    rclpy.init()
    node = rclpy.create_node(NODE)
    topics = {k: f"/{NODE}/attention/{n}/overlay" for k, n in zip(keys, names)}
    sink = start_sink([*topics.values(), f"/{NODE}/joint_command", f"/{NODE}/tick_status"],
                      types=["sensor_msgs/msg/Image"] * len(topics) + ["sensor_msgs/msg/JointState",
                                                                       "diagnostic_msgs/msg/DiagnosticStatus"])
    try:
        overlay_pubs = {k: node.create_publisher(Image, t, 1) for k, t in topics.items()}
        action_pub = node.create_publisher(JointState, f"/{NODE}/joint_command", 10)
        status_pub = node.create_publisher(DiagnosticStatus, f"/{NODE}/tick_status", 10)
        import time

        deadline = time.monotonic() + 30
        while any(p.get_subscription_count() == 0 for p in [*overlay_pubs.values(), action_pub]):
            if time.monotonic() > deadline:
                raise RuntimeError("the subscriber process never matched the publishers (30 s)")
            time.sleep(0.05)
        state = {"prepared": prepared0, "batch": batch0, "action": None}

        def prepare():
            pipeline._decoded.clear()  # every tick brings new frames
            state["prepared"] = pipeline.prepare(TickSnapshot(now_ns, imgs, js))

        def preprocess():
            state["batch"] = wrapped.preprocess(state["prepared"].observation)

        def step():
            refill()
            with torch.inference_mode():
                state["action"] = wrapped.postprocess(stepper.select(None))[0]

        def command():
            cmd, _ = pipeline.limit(state["action"], state["prepared"].current_ros)
            action_pub.publish(action_message(make_message, "joint_state", settings.joint_names, cmd, now_ns, TICK_S))
            status_pub.publish(DiagnosticStatus(level=DiagnosticStatus.OK, name="tick", message="ok",
                                                values=[KeyValue(key="tick", value="1")]))

        def control_tick():
            prepare()
            step()
            command()

        def map_overlays():  # the map worker's rendering, off the control thread
            for k in keys:
                img = attention_overlay(frames[k], interp, k, alpha=0.5)
                overlay_pubs[k].publish(encode_rgb_image(img, imgs[k].header))

        res = interleaved(
            {"prepare": prepare, "preprocess": preprocess, "step": step, "command": command,
             "control_tick": control_tick, "map_overlays": map_overlays},
            rounds=c["rounds"], warmup=c["warmup"], min_rounds=c["min_rounds"], budget_s=c["budget_s"], label="s4",
        )
    finally:
        sink_counts = stop_sink(sink)
        node.destroy_node()
        rclpy.try_shutdown()
    ms = {arm: res.stats_ms(arm) for arm in res.samples}
    tick_ms = 1e3 / 30.0  # the shipped 30 Hz tick
    share = 100.0 * ms["control_tick"]["median"] / tick_ms
    t_ms = target("control-thread work per tick outside the forward (ms)", ms["control_tick"]["median"], "<=", 3.3)
    received = sum((sink_counts.get("counts") or {}).values())
    return {
        "title": "Control-thread work per tick outside the model forward (two 480x640 cameras)",
        "model": ctx.model_name,
        "run": {"rounds": res.rounds, "stopped_by_budget": res.stopped_by_budget,
                "torch_threads": torch.get_num_threads()},
        "metrics": {**{f"{k}_ms": v for k, v in ms.items()}, "control_tick_share_pct": round(share, 2)},
        "checks": {"messages_received_by_subscriber": received},
        "targets": [t_ms],
        "rows": [
            row("prepare: gate + decode 2 images + joints + observation", ms["prepare"]),
            row("step: queued action + postprocess", ms["step"]),
            row("command: limits + JointState + tick status, published", ms["command"]),
            row("control tick outside the forward (the three above, as one)", ms["control_tick"], target_=t_ms),
            row("control tick as % of a 33.3 ms (30 Hz) tick", None, "%", value=round(share, 2)),
            row("preprocess, 2 images (control thread on forward ticks only, else the map worker)",
                ms["preprocess"]),
            row("map worker, off the control thread: render + encode + publish 2 overlays", ms["map_overlays"]),
        ],
    }
