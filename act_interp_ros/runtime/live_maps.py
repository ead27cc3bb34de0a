"""The live maps (ROS-free): attention on every computed tick, side methods on their own timers.

* map worker: a forward pass with attention capture on the newest computed tick's observation (the control
  forward's own maps when that tick ran one), then shares, proprio attention and overlays. Maps arrive at
  the rate the hardware sustains; ticks whose map was superseded are counted.
* side worker: the ``side_methods`` (GradCAM, gradient x input, ...) and, for env-state policies, the
  env-state sensitivity, on the newest tick at ``side_rate_hz``; occlusion on its own worker at
  ``occlusion_rate_hz``. A run still going when its timer fires is skipped and counted; a failure is counted
  and never stops control.

No background forward delays control (:mod:`act_interp_ros.runtime.control_window`): the map forward and
each side method start only when their expected duration ends before the control loop's next forward is
due. A map that does not fit is skipped (``maps_yielded_to_control``: the next computed tick brings a newer
one); a side method waits for a window on the loop's tick condition (never polls), and is skipped
(``side.<method>.yielded_to_control``) when none comes within a side period or it is longer than the longest
gap between control forwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from act_interp_ros.core import Interpretation, InterpretableACT
from act_interp_ros.core.interpretable_policy import PendingInterpretations
from act_interp_ros.pipeline.health import LoopStats
from act_interp_ros.pipeline.output_values import scalar_values
from act_interp_ros.pipeline.overlays import attention_overlay, method_overlay
from act_interp_ros.pipeline.policy_setup import env_state_sensitivity
from act_interp_ros.pipeline.side_methods import SideMethods
from act_interp_ros.runtime.control_window import ControlWindow, Preempted
from act_interp_ros.runtime.sink import LoopHooks, OutputSink
from act_interp_ros.runtime.throttled_log import ThrottledLog
from act_interp_ros.runtime.worker import LatestJobWorker
from act_interp_ros.settings import NodeSettings, camera_name

__all__ = ["LiveMaps", "MapJob"]


class MapJob:
    """A computed tick's observation for the map and side workers.

    observation: the raw (B=1) observation of the tick (images (1, 3, H, W) float in [0, 1], state (1, S)).
    frames: camera key -> (H, W, 3) uint8 source frame. headers: camera key -> the source image header.
    pending: the control forward's attention, still on the device, when this tick ran one (the map worker then
    resolves it instead of running a forward of its own). :attr:`batch` is the normalised batch the policy
    sees: computed by the control tick only when it ran a forward, else by the first worker that needs it, so
    the control thread never normalises images it does not feed to the model.
    """

    def __init__(self, tick: int, observation: dict[str, Any], preprocess, frames: dict[str, np.ndarray],
                 headers: dict[str, Any], pending: PendingInterpretations | None = None,
                 new_plan: bool = False, batch: dict[str, Any] | None = None) -> None:
        self.tick = tick
        self.frames = frames
        self.headers = headers
        self.pending = pending
        self.new_plan = new_plan  # this tick's forward made the plan the robot now executes
        self._observation = observation
        self._preprocess = preprocess
        self._batch = batch
        self._lock = threading.Lock()

    @property
    def batch(self) -> dict[str, Any]:
        """The preprocessed (normalised, on the policy's device) batch; computed once, on first use."""
        with self._lock:
            if self._batch is None:
                with torch.inference_mode(False):  # the side methods take gradients through it
                    self._batch = self._preprocess(self._observation)
            return self._batch


class LiveMaps:
    """The map, side and occlusion workers of the live loop (see the module docstring).

    Args:
        policy: the wrapped policy (shared with the control thread).
        settings: the node's settings (read anew per run: overlay alpha/scale are dynamic).
        stats: the loop's counters.
        sink: where maps go.
        log: throttled logging of failures.
        window: when a background forward may start (the control loop's next forward stays free).
        tick_done: notified after every control tick (the window may have changed).
        hooks: test hooks.
    """

    def __init__(self, policy: InterpretableACT, settings: Callable[[], NodeSettings], stats: LoopStats,
                 sink: OutputSink, log: ThrottledLog, window: ControlWindow,
                 tick_done: threading.Condition, hooks: LoopHooks) -> None:
        s = settings()
        self.policy, self._settings, self.stats, self.sink, self.log = policy, settings, stats, sink, log
        self.window = window
        self.side_rate_hz = 0.0  # the side timer's rate in use (Hz), set by the loop once resolved
        self._tick_done = tick_done
        self._hooks = hooks
        self.side_methods = SideMethods(policy.policy, s, s.side_methods)
        self.occlusion = SideMethods(policy.policy, s, ["occlusion"])
        self.env_sensitivity = env_state_sensitivity(policy, s)
        self.latest: MapJob | None = None
        self._last_side_tick = {"side": -1, "occlusion": -1}
        self.maps: LatestJobWorker | None = None
        self.workers: dict[str, LatestJobWorker] = {}

    def start(self) -> None:
        """Start the worker threads (after the warm-up)."""
        # interpretation yields the CPU to control, the executor and the robot's processes
        nice = self._settings().worker_nice
        self.maps = LatestJobWorker("act_interp_maps", self._compute_maps, drop_when_busy=False,
                                    on_error=lambda exc: self._worker_error("maps", exc), background=True, nice=nice)
        self.workers = {
            "side": LatestJobWorker("act_interp_side", lambda job: self._compute_side(job, self.side_methods),
                                    drop_when_busy=True, on_error=lambda exc: self._worker_error("side", exc),
                                    background=True, nice=nice),
            "occlusion": LatestJobWorker("act_interp_occlusion", lambda job: self._compute_side(job, self.occlusion),
                                         drop_when_busy=True,
                                         on_error=lambda exc: self._worker_error("occlusion", exc),
                                         background=True, nice=nice)}

    # ------------------------------------------------------------------------------------ entry points
    def submit(self, job: MapJob) -> None:
        """A computed tick: its maps replace any not yet started (counted ``maps_superseded``)."""
        self.latest = job
        if not self.maps.submit(job):
            self.stats.count("maps_superseded")

    def publish_chunk(self, job: MapJob) -> None:
        """``inference: async``: the maps of a chunk that was just merged (its forward's own attention, stamped with
        the observation it explains), published at once by the inference worker, never superseded."""
        self._publish_interpretation(job.pending.resolve()[0], job)
        self.stats.count("maps_published")
        self.stats.count("async.chunk_maps_published")

    def side_timer(self, which: str) -> None:
        """The ``side`` or ``occlusion`` timer fired: run on the newest tick unless already done or busy."""
        job = self.latest
        if job is None or job.tick == self._last_side_tick[which]:
            self.stats.count(f"{which}.skipped_no_new_tick")
            return
        if not self.workers[which].submit(job):
            self.stats.count(f"{which}.skipped_busy")
            return
        self._last_side_tick[which] = job.tick

    def close(self) -> None:
        for worker in [self.maps, *self.workers.values()]:
            if worker is not None:
                worker.stop()
        self.side_methods.close()
        self.occlusion.close()

    # ------------------------------------------------------------------------------------ workers
    def _compute_maps(self, job: MapJob) -> None:
        interp = job.pending.resolve()[0] if job.pending is not None else None
        if interp is None and not self.window.admit("maps").ok:
            # It would not end before the control loop's next forward: leave that forward the CPU (a newer
            # tick's maps, or that forward's own, are published instead).
            self.stats.count("maps_yielded_to_control")
            return
        if interp is None:
            started = time.perf_counter()
            try:
                with self.window.background("maps", preemptible=True), torch.inference_mode():
                    _, interps = self.policy.predict_chunk(job.batch)
            except Preempted:  # the control forward started: it gets the CPU (that tick's maps come from it)
                self.stats.count("maps_preempted_by_control")
                return
            self.stats.map_inference.add(time.perf_counter() - started)
            interp = interps[0]
        self._publish_interpretation(interp, job)
        self.stats.count("maps_published")

    def _publish_interpretation(self, interp: Interpretation, job: MapJob) -> None:
        s = self._settings()
        for key, value in scalar_values(interp, s.camera_keys).items():
            self.sink.scalar(key, value)
        kinds = ["attention_overlay", "plan_overlay"] if job.new_plan else ["attention_overlay"]
        for kind in kinds:
            for key in s.camera_keys:
                out = f"{kind}/{camera_name(key)}"
                if not self.sink.watched(out):
                    continue  # rendering costs ~ms per camera: only while someone watches
                overlay = attention_overlay(job.frames[key], interp, key, alpha=s.overlay_alpha, scale=s.overlay_scale,
                                            prefix="plan: " if kind == "plan_overlay" else "")
                self.sink.overlay(out, overlay, job.headers[key])

    def _compute_side(self, job: MapJob, methods: SideMethods) -> None:
        s = self._settings()
        if self.env_sensitivity is not None and methods is self.side_methods and self._wait_for_window(
                "env_state_sensitivity"):
            try:
                with self.window.background("env_state_sensitivity"):
                    value = float(self.env_sensitivity.measure(job.batch).overall[0])
            except Exception as exc:  # noqa: BLE001 - never stops control
                self.stats.problem("side.env_state_sensitivity.failures", self.sink.now_ns())
                self.log.exception("side.env_state_sensitivity", "env-state sensitivity failed", exc)
            else:
                self.stats.count("side.env_state_sensitivity.runs")
                self.sink.scalar("env_state_sensitivity", value)
        for method in methods.names:
            if not self._wait_for_window(method):
                continue
            started = time.perf_counter()
            try:
                if self._hooks.before_side_method is not None:
                    self._hooks.before_side_method(method)
                with self.window.background(method):
                    maps = methods.attribute(method, job.batch)[0]
            except Exception as exc:  # noqa: BLE001 - a side-method failure must never stop control
                self.stats.problem(f"side.{method}.failures", self.sink.now_ns())
                self.log.exception(f"side.{method}", f"{method} failed (control continues)", exc)
                continue
            self.stats.count(f"side.{method}.runs")
            self.stats.side_window(method).add(time.perf_counter() - started)
            for key in s.camera_keys:
                out = f"{method}_overlay/{camera_name(key)}"
                if not self.sink.watched(out):
                    continue
                self.sink.overlay(out, method_overlay(job.frames[key], maps[key], method, key, alpha=s.overlay_alpha),
                                  job.headers[key])

    def _wait_for_window(self, method: str) -> bool:
        """Wait (on the tick condition) until ``method`` fits before the control loop's next forward; False, and
        counted ``side.<method>.yielded_to_control``, when it cannot fit or no window came within a side period."""
        s = self._settings()
        rate = s.occlusion_rate_hz if method == "occlusion" else self.side_rate_hz
        timeout_s = min(5.0, max(0.5, 1.0 / rate)) if rate > 0 else 0.5
        decision = self.window.admit(method)

        def decided() -> bool:
            nonlocal decision
            decision = self.window.admit(method)
            return decision.ok or decision.never

        with self._tick_done:
            self._tick_done.wait_for(decided, timeout=timeout_s)
        if decision.ok:
            return True
        self.stats.count(f"side.{method}.yielded_to_control")
        return False

    def _worker_error(self, worker: str, exc: BaseException) -> None:
        self.stats.problem(f"{worker}.errors", self.sink.now_ns())
        self.log.exception(worker, f"{worker} worker error", exc)
