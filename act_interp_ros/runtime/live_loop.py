"""The live loop of ``act_interp_node`` (ROS-free): the control tick on its own thread, and the live maps.

Threads (the host's executor only hands work over; it never waits for torch, and torch never waits for it):

* control worker: one tick = snapshot -> gate -> decode -> observation -> policy step -> limits -> command
  (:mod:`act_interp_ros.pipeline`). The policy step is the unwrapped policy's: a forward pass only when
  its action queue is empty (every tick with temporal ensembling), so interpretation never costs the robot
  an action. A tick that fires while the previous one still runs is skipped and counted (``overrun``).
* map, side and occlusion workers: :mod:`act_interp_ros.runtime.live_maps`; each of their forwards starts only
  when it ends before the control loop's next forward is due (:mod:`act_interp_ros.runtime.control_window`).

Safety: every command is inside the joint limits and ``max_joint_step`` of the current position; no
command from missing, stale, invalid or out-of-limit input; after any tick that could not act the next
action comes from a fresh forward pass; an exception in a tick is caught, counted and logged, and after
``max_consecutive_tick_errors`` in a row commands stop until a clean tick (diagnostics ERROR).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time

from act_interp_ros.inputs.calibration import CalibrationError, resolve_joint_mapping
from act_interp_ros.core import PolicyLoadError
from act_interp_ros.pipeline import (
    LoopStats,
    PolicyStep,
    SkipReason,
    TickPipeline,
    TickSnapshot,
    TrainingRangeGuard,
    load_policy,
)
from act_interp_ros.pipeline.stepping import gap_tolerance_ticks
from act_interp_ros.pipeline.training_range import RangeFlag
from act_interp_ros.runtime.async_inference import AsyncInference
from act_interp_ros.runtime.control_window import CONTROL, ControlWindow, install_preemption
from act_interp_ros.runtime.live_maps import LiveMaps, MapJob
from act_interp_ros.runtime.side_rate import AUTO, SideRate, auto_side_rate, usable_cpus
from act_interp_ros.runtime.sink import LoopHooks, OutputSink
from act_interp_ros.runtime.startup import StartupError, configure_torch_threads, warm_up
from act_interp_ros.runtime.throttled_log import ThrottledLog
from act_interp_ros.runtime.worker import LatestJobWorker
from act_interp_ros.settings import NodeSettings, SettingsError

__all__ = ["LiveLoop"]

logger = logging.getLogger(__name__)


class LiveLoop:
    """Loads the policy, checks it against the settings, warms it up and runs the live threads.

    Args:
        settings: the node's validated settings (before the joint convention is resolved).
        sink: the host (where outputs go, the ROS clock).
        hooks: test hooks (production: none).
    Raises :class:`StartupError` (one line naming the parameter) for configuration that cannot work.
    """

    def __init__(self, settings: NodeSettings, sink: OutputSink, hooks: LoopHooks = LoopHooks()) -> None:
        try:  # joint_scale/joint_offset from joint_convention + calibration_file (README "Connecting your SO-101")
            s, mapping_lines = resolve_joint_mapping(settings)
        except (CalibrationError, SettingsError) as exc:
            raise StartupError(str(exc)) from None
        for line in mapping_lines:
            logger.info(line)
        for warning in s.warnings():
            logger.warning(warning)
        self.settings = s
        self.sink = sink
        self.hooks = hooks
        self.torch_threads = configure_torch_threads(s.torch_threads)
        try:
            self.policy = load_policy(s)
        except PolicyLoadError as exc:
            raise StartupError(f"parameter 'policy_path': {exc}") from None
        except SettingsError as exc:
            raise StartupError(str(exc)) from None
        self.policy.policy.eval()
        self.guard = TrainingRangeGuard.from_policy(self.policy, s.joint_names, s.training_range_margin,
                                                    s.image_stats_tolerance, s.camera_keys)
        for note in self.guard.notes:
            logger.warning(note)
        logger.info(f"{self.guard.describe()}; out_of_range_policy {s.out_of_range_policy}")
        self.pipeline = TickPipeline(s, self.policy.config, device=self.policy.device, guard=self.guard)
        self.step = PolicyStep(self.policy, self.pipeline,
                               gap_tolerance_ticks(s.plan_survives_gap_s, s.control_rate_hz))
        self.stats = LoopStats(1.0 / s.control_rate_hz, s.max_input_age_s, s.max_consecutive_tick_errors,
                               window_s=max(2.0, 2 * s.diagnostics_period_s))
        self.log = ThrottledLog(logger)
        self.tick_done = threading.Condition()  # notified after every control tick: the window may have changed
        n = self.policy.config.n_action_steps
        ticks_per_forward = (1 if self.policy.uses_temporal_ensembling else
                             max(1, int((1.0 - s.chunk_size_threshold) * n)) if s.inference == "async" else n)
        self.window = ControlWindow(1.0 / s.control_rate_hz, ticks_per_forward)
        self.live_maps = LiveMaps(self.policy, lambda: self.settings, self.stats, sink, self.log,
                                  self.window, self.tick_done, hooks)
        self._preemption = install_preemption(self.policy.policy.model, self.window)
        self.async_inference = (AsyncInference(self.policy, s, self.pipeline, self.window, self.stats, self.log,
                                               self.live_maps.publish_chunk, sink.now_ns)
                                if s.inference == "async" else None)
        self.warm = warm_up(self.policy, self.pipeline.builder, self.live_maps.side_methods, s.policy_path)
        self.warm_up_s = self.warm.total_s
        self.window.seed(CONTROL, self.warm.forward_s)
        self.window.seed("maps", self.warm.forward_s)
        for method, seconds in self.warm.side_s.items():
            self.window.seed(method, seconds)
        self.side_rate = self.resolve_side_rate(s)
        self.live_maps.side_rate_hz = self.side_rate.hz
        logger.info(self.maps_line())
        self.commands_enabled = True  # the pause service
        self._tick_counter = itertools.count(1)  # tick numbers, from the control and the executor thread
        self._fault_logged = False
        self._flagged_last_tick: set[str] = set()  # training-range flags of the previous tick
        self._range_diag_at = -1e9
        self.live_maps.start()
        self.control = LatestJobWorker("act_interp_control", self._control_tick, drop_when_busy=False,
                                       on_error=self._control_worker_error, on_drop=self._overrun)

    # ------------------------------------------------------------------------------- host calls
    @property
    def commanding(self) -> bool:
        return bool(self.settings.publish_actions and self.commands_enabled)

    def submit_tick(self, snap: TickSnapshot) -> None:
        """The control timer fired: a tick still waiting when the next fires is dropped (``overrun``)."""
        self.control.submit(snap)

    def enable_commands(self, enable: bool) -> tuple[bool, str]:
        """The pause service: (accepted, message). Never "accepted" while nothing would be sent."""
        if enable and not self.settings.publish_actions:
            return False, ("refused: publish_actions is false (observe-only), so no action would be sent; set it "
                           "first: ros2 param set <node> publish_actions true (pause state unchanged: "
                           f"{'enabled' if self.commands_enabled else 'paused'})")
        if enable and not self.commands_enabled:
            self._reset_plan()  # the queued plan was made before the pause: never execute it
        self.commands_enabled = bool(enable)
        return True, "commanding enabled" if enable else "commanding paused: no actions are published"

    def apply_settings(self, new: NodeSettings, changed: list[str]) -> None:
        """Dynamic parameters changed (validated by the host); commanding restarts from a fresh plan."""
        old, self.settings = self.settings, new
        if "publish_actions" in changed and new.publish_actions and not old.publish_actions:
            self._reset_plan()
        if "side_rate_hz" in changed:
            self.side_rate = self.resolve_side_rate(new)
            self.live_maps.side_rate_hz = self.side_rate.hz

    def resolve_side_rate(self, s: NodeSettings) -> SideRate:
        """The side timer's rate under ``s``: as given, or ``auto`` from the forward times measured so far."""
        if s.side_rate_hz != AUTO:
            return SideRate(float(s.side_rate_hz), "side_rate_hz as set")
        w = self.window
        methods = {m: w.median_s(m) for m in self.live_maps.side_methods.names if w.median_s(m) is not None}
        if len(methods) < len(self.live_maps.side_methods.names):  # a method failed its warm-up: no estimate
            failed = [m for m in self.live_maps.side_methods.names if m not in methods]
            return SideRate(0.0, f"auto: {', '.join(failed)} failed at warm-up (no measured time); side methods off")
        return auto_side_rate(methods=methods, forward_s=w.median_s(CONTROL), map_forward_s=w.median_s("maps"),
                              control_rate_hz=s.control_rate_hz, ticks_per_forward=w.ticks_per_forward,
                              longest_gap_s=w.longest_gap_s(), cpus=usable_cpus(), threads=self.torch_threads)

    def maps_line(self) -> str:
        """One line for the log: what rate the maps will have, and why."""
        w, s = self.window, self.settings
        gap = w.longest_gap_s()
        side = (f"side methods {', '.join(self.live_maps.side_methods.names)} at {self.side_rate.hz:g} Hz "
                f"({self.side_rate.reason})" if self.live_maps.side_methods.names else "no side methods")
        return (f"maps: attention on every computed tick whose map forward ({1e3 * w.expected_s('maps'):.0f} ms) "
                f"ends before the next control forward (every {w.ticks_per_forward} tick(s) at "
                f"{s.control_rate_hz:g} Hz, {1e3 * max(0.0, gap or 0.0):.0f} ms between them); {side}")

    def _reset_plan(self) -> None:
        """The next action comes from a fresh forward (sync) / a fresh chunk (async)."""
        self.step.reset()
        if self.async_inference is not None:
            self.async_inference.reset()

    def _frames_needed(self) -> bool:
        """Whether this tick's action may run a forward (it needs fresh, in-step frames); a tick whose action comes
        from the queue reads no frame (``fresh_frames_every_tick`` false)."""
        if self.settings.fresh_frames_every_tick:
            return True
        if self.async_inference is not None:
            return self.async_inference.queue_empty()
        return self.step.needs_forward()

    def _ticks_to_forward(self) -> int:
        """Ticks until the control loop's next forward (its own, or the async worker's)."""
        if self.async_inference is not None:
            return self.async_inference.ticks_to_forward()
        return 1 if self.step.needs_forward() else self.policy.queued_actions + 1

    def close(self) -> None:
        self.control.stop()
        if self.async_inference is not None:
            self.async_inference.close()
        self.live_maps.close()
        for handle in self._preemption:
            handle.remove()
        self.policy.close()

    # ------------------------------------------------------------------------------- control tick
    def _overrun(self, snap: TickSnapshot) -> None:
        """A tick that never ran: the control worker was more than one tick behind."""
        self.window.timer_fired(time.monotonic())
        self.stats.tick_started(time.monotonic(), snap.now_ns)
        self._skipped(next(self._tick_counter), snap.now_ns,
                      SkipReason("overrun", "the control loop was more than one tick behind"), None)

    def _control_tick(self, snap: TickSnapshot) -> None:
        now_ns = snap.now_ns
        tick_start = time.monotonic()
        self.window.timer_fired(tick_start)
        self.stats.tick_started(tick_start, now_ns)
        index = next(self._tick_counter)
        stamps = None
        started = time.perf_counter()
        try:
            stamps = self.pipeline.stamps_ns(snap)
            if self.hooks.before_tick is not None:
                self.hooks.before_tick()
            self._tick(index, snap, stamps, started)
        except Exception as exc:  # noqa: BLE001 - a failing tick must never end the node or act
            self._reset_plan()
            faulted = self.stats.tick_failed(now_ns)
            self.log.exception("tick", f"tick {index} failed, no action this tick", exc)
            if faulted and not self._fault_logged:
                self._fault_logged = True
                logger.error(f"{self.stats.consecutive_errors} consecutive tick errors: commands stop until a clean tick")
            self.sink.tick_status(index, now_ns, SkipReason("tick_error", f"{type(exc).__name__}: {exc}"), stamps or {})
        finally:
            self.window.tick_done(tick_start, self._ticks_to_forward())
            with self.tick_done:
                self.tick_done.notify_all()

    def _tick(self, index: int, snap: TickSnapshot, stamps: dict[str, int | None], started: float) -> None:
        now_ns = snap.now_ns
        prepared = self.pipeline.prepare(snap, frames_needed=self._frames_needed())
        self._report_range(self.pipeline.last_flags, now_ns)
        if isinstance(prepared, SkipReason):
            self._skipped(index, now_ns, prepared, stamps)
            return
        late = prepared.late_frames is not None  # the action comes from the queue; no frame is read, no map made
        headers = {} if late else {k: snap.cameras[k].header for k in self.pipeline.camera_keys}
        batch = None
        if self.async_inference is not None:
            result = self.async_inference.step(index, prepared.observation, prepared.current_ros, prepared.frames,
                                               headers)
        # Only a tick that feeds the model normalises its images; the map worker does it otherwise. Outside
        # inference mode: the side methods take gradients through this batch.
        elif not self.step.needs_forward():
            result = self.step.run(prepared.current_ros, batch=batch)
        else:  # never waits: background jobs are only kept from starting meanwhile
            batch = self.policy.preprocess(prepared.observation)
            with self.window.control_forward():
                result = self.step.run(prepared.current_ros, batch=batch)
        if result.forward_s:
            self.stats.inference.add(result.forward_s)
            self.window.record(CONTROL, result.forward_s)
        if result.skip is not None:
            self._skipped(index, now_ns, result.skip, stamps)
            return
        self.stats.tick_computed(now_ns)
        self._fault_logged = False
        if self.commanding:
            self.sink.action(result.command, now_ns)
            self.stats.action_sent(result.clamped)
        else:
            self.stats.action_held()
        if late:
            self.stats.count("acted_on_late_frames")
            self.log.warning("acted_on_late_frames", f"action from the queue; its frames were late ({prepared.late_frames}"
                             "): no map this tick", period_s=5.0)
        else:
            self.live_maps.submit(MapJob(index, prepared.observation, self.policy.preprocess, prepared.frames,
                                         headers, result.pending, result.new_plan, batch))
        self.sink.tick_status(index, now_ns, None, stamps)
        self.stats.tick_work.add(time.perf_counter() - started - result.forward_s)

    def _report_range(self, flags: list[RangeFlag], now_ns: int) -> None:
        """Count each value outside the training range (``state_outside_training_range.<joint>``, ...: WARN in
        diagnostics) and log one throttled line per input naming it, its value, the range and the likely cause."""
        fresh = [f for f in flags if f.counter not in self._flagged_last_tick]
        self._flagged_last_tick = {f.counter for f in flags}
        for flag in flags:
            self.stats.problem(flag.counter, now_ns)
            self.log.warning(flag.counter, flag.line(), period_s=5.0)
        if fresh and time.monotonic() - self._range_diag_at >= 0.2:
            # An input just left its training range: say so now, not at the next diagnostics period.
            self._range_diag_at = time.monotonic()
            self.sink.diagnostics_now()

    def _skipped(self, index: int, now_ns: int, reason: SkipReason, stamps: dict[str, int | None] | None) -> None:
        self.step.skip(reason)  # a fresh plan next, except after overrun/awaiting_chunk or a short late-input gap
        if self.async_inference is not None and reason.kind not in ("overrun", "awaiting_chunk"):
            if not self.async_inference.input_gap(reason.kind):
                self.async_inference.reset()
        self.stats.tick_skipped(reason.kind, now_ns)
        self.log.warning(reason.kind, f"no action this tick: {reason}")
        self.sink.tick_status(index, now_ns, reason, stamps or {})

    def _control_worker_error(self, exc: BaseException) -> None:
        self.stats.problem("control.errors", self.sink.now_ns())
        self.log.exception("control", "control worker error", exc)
