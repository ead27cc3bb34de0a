"""``act_interp_node``: runs a LeRobot ACT policy at the control rate and publishes what it looks at.

Threads (the executor only hands work over; it never waits for torch, and torch never waits for it):

* executor (one thread): subscriptions keep the newest message per input; the control timer submits the
  tick's ROS time to the control worker; the side timer submits the newest observation to the side
  worker; diagnostics, the pause service and parameter sets.
* control worker: one tick = snapshot -> gate -> decode -> observation -> policy step -> limits -> command
  (:mod:`act_interp_ros.pipeline`). The policy step is the unwrapped policy's: a forward pass only when
  its action queue is empty (every tick with temporal ensembling), so interpretation never costs the robot
  an action. A tick that fires while the previous one still runs is skipped and counted (``overrun``).
* map worker: a forward pass with attention capture on the newest computed tick's observation (the
  control forward's own maps when that tick ran one), then shares, proprio attention and overlays. Maps
  arrive at the rate the hardware sustains; ticks whose map was superseded are counted.
* side worker: the ``side_methods`` (GradCAM, gradient x input, ...) on the newest observation at
  ``side_rate_hz``; occlusion on its own worker at ``occlusion_rate_hz``. A run still going when its timer
  fires is skipped and counted; a failure is counted and never stops control.

Safety: every command is inside the joint limits and ``max_joint_step`` of the current position; no
command from missing, stale, invalid or out-of-limit input; after any tick that could not act the next
action comes from a fresh forward pass; an exception in a tick is caught, counted and logged, and after
``max_consecutive_tick_errors`` in a row commands stop until a clean tick (``/diagnostics`` ERROR).
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from typing import Any

import numpy as np
import torch
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from geometry_msgs.msg import PointStamped
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import Float32, Float64MultiArray
from std_srvs.srv import SetBool

from act_interp_ros.calibration import CalibrationError, resolve_joint_mapping
from act_interp_ros.core import EnvStateSensitivity, Interpretation, PolicyLoadError, SensitivityConfig
from act_interp_ros.core.interpretable_policy import PendingInterpretations
from act_interp_ros.env_state_input import EnvStateInput, has_header
from act_interp_ros.image_decoding import backend_name
from act_interp_ros.pipeline import (
    LatestJobWorker,
    LoopStats,
    PlanStepper,
    SkipReason,
    TickPipeline,
    TickSnapshot,
    TrainingRangeGuard,
    header_stamp_ns,
    load_policy,
    output_contract,
)
from act_interp_ros.pipeline.contract import FLOAT32, IMAGE
from act_interp_ros.pipeline.overlays import attention_overlay, method_overlay
from act_interp_ros.pipeline.side_methods import SideMethods
from act_interp_ros.ros.action_messages import build_action_message, message_class
from act_interp_ros.ros.diagnostics import diagnostic_status
from act_interp_ros.ros.image_encoding import encode_rgb_image
from act_interp_ros.ros.parameters import DynamicParameters, StartupError, declare_and_read
from act_interp_ros.ros.ros_logging import route_package_logging, unroute_package_logging
from act_interp_ros.settings import NodeSettings, SettingsError, camera_name

try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

__all__ = ["NODE_NAME", "ActInterpNode", "StartupError"]

NODE_NAME = "act_interp_node"
ENV_STATE_CLASSES = {"point_stamped": PointStamped, "float64_multi_array": Float64MultiArray}
#: Test hooks (named as such): GradCAM raises; every tick raises while the named file exists.
GRADCAM_FAIL_ENV = "ACT_INTERP_TEST_GRADCAM_FAIL"
TICK_FAULT_FILE_ENV = "ACT_INTERP_TEST_TICK_FAULT_FILE"


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


def configure_torch_threads(requested: int) -> int:
    """Set torch's intra-op threads; returns the count in use.

    ``requested`` > 0 is used as is. 0 (automatic) keeps ``OMP_NUM_THREADS`` when the user set it, else uses
    half the CPUs this process may run on (at least 1): the control forward shares the machine with the map
    and side workers' forwards (each runs its own intra-op team), the executor and the rest of the robot's
    processes, and oversubscribed OpenMP threads spin against each other. Measured in the demo on 2 cores:
    node inference p50 21-23 ms with 1 thread vs 23-24 ms with 2 (BENCHMARKS.md).
    """
    if requested > 0:
        torch.set_num_threads(requested)
    elif not os.environ.get("OMP_NUM_THREADS"):
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cpus = os.cpu_count() or 1
        torch.set_num_threads(max(1, cpus // 2))
    return torch.get_num_threads()


class ActInterpNode(Node):
    """See the module docstring. Raises :class:`StartupError` for configuration that cannot work."""

    def __init__(self, **node_kwargs) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._log_handler = route_package_logging(self.get_logger())
        s = declare_and_read(self)
        try:  # joint_scale/joint_offset from joint_convention + calibration_file (README "Connecting your SO-101")
            s, mapping_lines = resolve_joint_mapping(s)
        except (CalibrationError, SettingsError) as exc:
            raise StartupError(str(exc)) from None
        for line in mapping_lines:
            self.get_logger().info(line)
        self.settings = s
        for warning in s.warnings():
            self.get_logger().warning(warning)
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
            self.get_logger().warning(note)
        self.get_logger().info(f"{self.guard.describe()}; out_of_range_policy {s.out_of_range_policy}")
        self.pipeline = TickPipeline(s, self.policy.config, device=self.policy.device, guard=self.guard)
        self.stepper = PlanStepper(self.policy)
        self.contract = output_contract(s, has_state=self.policy.state_dim > 0,
                                        has_env_state=self.policy.env_state_dim > 0)
        self.stats = LoopStats(1.0 / s.control_rate_hz, s.max_input_age_s, s.max_consecutive_tick_errors,
                               window_s=max(2.0, 2 * s.diagnostics_period_s))
        self.side_methods = SideMethods(self.policy.policy, s, s.side_methods)
        self.env_sensitivity = (EnvStateSensitivity(
            self.policy.policy, self.policy.preprocessor,
            SensitivityConfig(tuple(s.env_sensitivity_deltas) or (0.01,) * self.policy.env_state_dim),
            self.policy.postprocessor) if self.policy.env_state_dim else None)
        self.occlusion = SideMethods(self.policy.policy, s, ["occlusion"])
        warm_up_s = self._warm_up()
        self.commands_enabled = True  # the pause service
        self._latest: dict[str, Any] = {t: None for t in self.pipeline.input_topics}
        self._cam_topics = dict(zip(s.camera_keys, s.camera_topics))
        self._latest_job: MapJob | None = None
        self._last_side_tick = {"side": -1, "occlusion": -1}
        self._tick_counter = itertools.count(1)  # tick numbers, from the control and the executor thread
        self._warned_at: dict[str, float] = {}
        self._traced: set[str] = set()
        self._fault_logged = False
        self._flagged_last_tick: set[str] = set()  # training-range flags of the previous tick
        self._range_diag_at = -1e9
        self.pub_action = None
        self._create_interfaces()
        self.control = LatestJobWorker("act_interp_control", self._control_tick, drop_when_busy=False,
                                       on_error=lambda exc: self._worker_error("control", exc),
                                       on_drop=self._overrun)
        nice = s.worker_nice  # interpretation yields the CPU to control, the executor and the robot's processes
        self.maps = LatestJobWorker("act_interp_maps", self._compute_maps, drop_when_busy=False,
                                    on_error=lambda exc: self._worker_error("maps", exc), background=True, nice=nice)
        self.side = LatestJobWorker("act_interp_side", lambda job: self._compute_side(job, self.side_methods),
                                    drop_when_busy=True, on_error=lambda exc: self._worker_error("side", exc),
                                    background=True, nice=nice)
        self.occluder = LatestJobWorker("act_interp_occlusion", lambda job: self._compute_side(job, self.occlusion),
                                        drop_when_busy=True, on_error=lambda exc: self._worker_error("occlusion", exc),
                                        background=True, nice=nice)
        self._dynamic = DynamicParameters(self, lambda: self.settings, self._apply_settings)
        self.get_logger().info(
            f"ACT policy from {s.policy_path} on {s.device} ({self.torch_threads} torch threads); cameras "
            f"{dict(zip(s.camera_keys, s.camera_topics))}; control {s.control_rate_hz:g} Hz; side methods "
            f"{s.side_methods} at {s.side_rate_hz:g} Hz, occlusion at {s.occlusion_rate_hz:g} Hz; image conversion: "
            f"{backend_name()}; warm-up {warm_up_s:.2f} s; actions: "
            f"{s.action_type + ' on ' + self.contract.get('action').topic(self.get_fully_qualified_name()) if s.publish_actions else 'observe-only'}"
        )

    # ------------------------------------------------------------------------------------ set-up
    def _warm_up(self) -> float:
        """Run the policy (and each live side method) once on a blank observation of the policy's own shape,
        before any timer exists, so the first real ticks do not pay torch's first-call costs (tens to hundreds
        of ms: allocator growth, kernel selection) and a policy that cannot run at all fails at start.
        The action queue is reset afterwards. Returns the seconds it took."""
        t = time.perf_counter()
        builder = self.pipeline.builder
        frames = {k: np.zeros((h, w, 3), np.uint8) for k, (h, w) in builder.image_shapes.items()}
        state = np.zeros(builder.state_dim, np.float32) if builder.state_dim else None
        env = np.zeros(builder.env_dim, np.float32) if builder.env_dim else None
        try:
            batch = self.policy.preprocess(builder.build(frames, state, env))
            with torch.inference_mode():
                self.policy.predict_chunk(batch)
        except Exception as exc:  # noqa: BLE001 - cannot run: say so at start, once
            raise StartupError(f"the policy from '{self.settings.policy_path}' failed on a blank observation of "
                               f"its own input shapes: {type(exc).__name__}: {exc}") from None
        finally:
            self.policy.reset()
        for method in self.side_methods.names:
            try:
                self.side_methods.attribute(method, batch)
            except Exception as exc:  # noqa: BLE001 - a side method never stops control; its ticks will say why
                self.get_logger().warning(f"warm-up of side method {method} failed: {type(exc).__name__}: {exc}")
        return time.perf_counter() - t

    def _topic(self, key: str) -> str:
        return self.contract.get(key).name

    def _create_interfaces(self) -> None:
        s = self.settings
        qos = qos_profile_sensor_data if s.input_qos == "sensor_data" else QoSProfile(
            depth=5, reliability=ReliabilityPolicy.RELIABLE)
        for topic, transport in zip(s.camera_topics, s.camera_transports):
            self._subscribe(CompressedImage if transport == "compressed" else Image, topic, qos)
        self._subscribe(JointState, s.joint_state_topic, qos)
        if self.pipeline.env_topic:
            self._subscribe(ENV_STATE_CLASSES[s.env_state_type], self.pipeline.env_topic, qos, env_state=True)

        c = self.contract
        self.pub_status = self.create_publisher(DiagnosticStatus, self._topic("tick_status"), 10)
        self.pub_scalar = {o.key: self.create_publisher(Float32, o.name, 10) for o in c if o.msg_type == FLOAT32}
        self.pub_overlay = {o.key: self.create_publisher(Image, o.name, 2) for o in c if o.msg_type == IMAGE}
        if s.publish_actions:
            self._create_action_publisher()
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, self._topic("diagnostics"), 10)
        self.create_service(SetBool, "~/enable_commands", self._on_enable_commands)
        self.create_timer(1.0 / s.control_rate_hz, self._on_control_timer)
        self.timers_side: dict[str, Any] = {"side": None, "occlusion": None}
        self._make_side_timer("side", s.side_rate_hz)
        self._make_side_timer("occlusion", s.occlusion_rate_hz)
        self.create_timer(s.diagnostics_period_s, self._publish_diagnostics)

    def _create_action_publisher(self) -> None:
        if self.pub_action is None:
            s = self.settings
            self.pub_action = self.create_publisher(message_class(s.action_type), self._topic("action"), 10)

    def _make_side_timer(self, which: str, rate_hz: float) -> None:
        """(Re)create the ``side`` or ``occlusion`` timer at ``rate_hz`` (0 = none)."""
        if self.timers_side[which] is not None:
            self.destroy_timer(self.timers_side[which])
            self.timers_side[which] = None
        if rate_hz > 0:
            self.timers_side[which] = self.create_timer(1.0 / rate_hz, lambda: self._on_side_timer(which))

    def _subscribe(self, msg_type, topic: str, qos, env_state: bool = False) -> None:
        stamped = has_header(self.settings.env_state_type)

        def on_message(msg, topic=topic) -> None:
            if not env_state:
                self._latest[topic] = msg
                stamp = header_stamp_ns(msg)
                if stamp:  # how late inputs reach the node (DDS delivery + executor): input_delay_* in diagnostics
                    self.stats.input_delay.add((self._now_ns() - stamp) / 1e9)
            else:  # with its stamp: the header's, or the arrival time for an unstamped type
                self._latest[topic] = EnvStateInput(msg, header_stamp_ns(msg) if stamped else self._now_ns())

        def on_incompatible_qos(event, topic=topic) -> None:
            self.stats.problem(f"qos_incompatible.{topic}", self._now_ns())
            self.get_logger().warning(
                f"incompatible QoS on {topic}: a publisher offers a policy this subscription "
                f"({self.settings.input_qos}) cannot match (policy id {event.last_policy_kind}); "
                "set input_qos (sensor_data = best effort, reliable) to match your driver")

        self.create_subscription(msg_type, topic, on_message, qos,
                                 event_callbacks=SubscriptionEventCallbacks(incompatible_qos=on_incompatible_qos))

    # ------------------------------------------------------------------------------- control tick
    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _on_control_timer(self) -> None:
        now_ns = self._now_ns()
        # The snapshot is taken now, with the tick's time: a message arriving while the worker starts is not in it.
        env = self.pipeline.env_topic
        snap = TickSnapshot(now_ns, {k: self._latest[t] for k, t in self._cam_topics.items()},
                            self._latest[self.settings.joint_state_topic], self._latest[env] if env else None)
        self.control.submit(snap)  # waits while one tick runs; a tick still waiting when the next fires is dropped

    def _overrun(self, snap: TickSnapshot) -> None:
        """A tick that never ran: the control worker was more than one tick behind."""
        self.stats.tick_started(time.monotonic(), snap.now_ns)
        self._skipped(next(self._tick_counter), snap.now_ns,
                      SkipReason("overrun", "the control loop was more than one tick behind"))

    def _control_tick(self, snap: TickSnapshot) -> None:
        now_ns = snap.now_ns
        self.stats.tick_started(time.monotonic(), now_ns)
        index = next(self._tick_counter)
        self._tick_stamps: dict[str, int | None] | None = None
        started = time.perf_counter()
        try:
            self._tick(index, snap, started)
        except Exception as exc:  # noqa: BLE001 - a failing tick must never end the node or act
            self.stepper.no_action()
            faulted = self.stats.tick_failed(now_ns)
            self._log_exception("tick", f"tick {index} failed, no action this tick", exc)
            if faulted and not self._fault_logged:
                self._fault_logged = True
                self.get_logger().error(
                    f"{self.stats.consecutive_errors} consecutive tick errors: commands stop until a clean tick")
            self._publish_status(index, now_ns, SkipReason("tick_error", f"{type(exc).__name__}: {exc}"),
                                 getattr(self, "_tick_stamps", None))

    def _tick(self, index: int, snap: TickSnapshot, started: float) -> None:
        now_ns = snap.now_ns
        self._tick_stamps = self.pipeline.stamps_ns(snap)
        fault_file = os.environ.get(TICK_FAULT_FILE_ENV)
        if fault_file and os.path.exists(fault_file):
            raise RuntimeError(f"tick failure injected by {TICK_FAULT_FILE_ENV} (test hook)")
        prepared = self.pipeline.prepare(snap)
        self._report_range(self.pipeline.last_flags, now_ns)
        if isinstance(prepared, SkipReason):
            self._skipped(index, now_ns, prepared, self._tick_stamps)
            return
        if self.stepper.begin_tick():
            self.stats.plan_resets += 1
        pending = None
        forward_s = 0.0
        # Only a tick that feeds the model normalises its images; the map worker does it otherwise. Outside
        # inference mode: the side methods take gradients through this batch.
        batch = self.policy.preprocess(prepared.observation) if self.stepper.needs_forward() else None
        with torch.inference_mode():
            if batch is not None:
                t0 = time.perf_counter()
                chunk, pending = self.policy.predict_chunk_deferred(batch)
                action_t = self.stepper.select(chunk)
                action = self.policy.postprocess(action_t)[0]  # the one host synchronisation of a tick
                forward_s = time.perf_counter() - t0
                self.stats.inference.add(forward_s)
            else:
                action = self.policy.postprocess(self.stepper.select(None))[0]
        new_plan = self.stepper.last_used_chunk
        result = self.pipeline.command(action, prepared.current_ros)
        if isinstance(result, SkipReason):
            self._skipped(index, now_ns, result, self._tick_stamps)
            return
        command, clamped = result
        self.stats.tick_computed(now_ns)
        self._fault_logged = False
        self._command(command, clamped, now_ns)
        headers = {k: snap.cameras[k].header for k in self._cam_topics}
        job = MapJob(index, prepared.observation, self.policy.preprocess, prepared.frames, headers, pending, new_plan,
                     batch)
        self._latest_job = job
        if not self.maps.submit(job):
            self.stats.count("maps_superseded")
        self._publish_status(index, now_ns, None, self._tick_stamps)
        self.stats.tick_work.add(time.perf_counter() - started - forward_s)

    def _report_range(self, flags, now_ns: int) -> None:
        """Count each value outside the training range (``state_outside_training_range.<joint>``, ...: WARN in
        /diagnostics) and log one throttled line per input naming it, its value, the range and the likely cause."""
        fresh = [f for f in flags if f.counter not in self._flagged_last_tick]
        self._flagged_last_tick = {f.counter for f in flags}
        for flag in flags:
            self.stats.problem(flag.counter, now_ns)
            self._warn_throttled(flag.counter, flag.line(), period_s=5.0)
        if fresh and time.monotonic() - self._range_diag_at >= 0.2:
            # An input just left its training range: say so now, not at the next diagnostics period.
            self._range_diag_at = time.monotonic()
            self._publish_diagnostics()

    def _skipped(self, index: int, now_ns: int, reason: SkipReason, stamps: dict[str, int | None] | None = None) -> None:
        if reason.kind != "overrun":  # an overrun misses no input: the plan just advances one tick later
            self.stepper.no_action()
        self.stats.tick_skipped(reason.kind, now_ns)
        self._warn_throttled(reason.kind, f"no action this tick: {reason}")
        self._publish_status(index, now_ns, reason, stamps)

    def _command(self, command: np.ndarray, clamped: bool, now_ns: int) -> None:
        s, stats = self.settings, self.stats
        if self.pub_action is None or not s.publish_actions or not self.commands_enabled:
            with stats.lock:
                stats.actions_held += 1
            return
        msg = build_action_message(s.action_type, s.joint_names, command, now_ns, 1.0 / s.control_rate_hz)
        self.pub_action.publish(msg)
        with stats.lock:
            stats.actions_published += 1
            stats.actions_clamped += int(clamped)

    def _publish_status(self, index: int, now_ns: int, reason: SkipReason | None,
                        stamps: dict[str, int | None] | None = None) -> None:
        values = [KeyValue(key="tick", value=str(index)), KeyValue(key="time_ns", value=str(now_ns))]
        values += [KeyValue(key=f"stamp_ns{topic}", value="" if s is None else str(s)) for topic, s in (stamps or {}).items()]
        msg = DiagnosticStatus(
            level=DiagnosticStatus.OK if reason is None else DiagnosticStatus.WARN,
            name=f"{self.get_name()}: tick", message="ok" if reason is None else str(reason),
            hardware_id=self.settings.policy_path, values=values)
        self.pub_status.publish(msg)

    # ------------------------------------------------------------------------------------- maps
    def _compute_maps(self, job: MapJob) -> None:
        interp = job.pending.resolve()[0] if job.pending is not None else None
        if interp is None and self.stepper.needs_forward():
            # The next tick refills the queue with a forward pass: leave it the CPU (that forward's maps are
            # published instead). Counted: maps_yielded_to_control.
            self.stats.count("maps_yielded_to_control")
            return
        if interp is None:
            t0 = time.perf_counter()
            with torch.inference_mode():
                _, interps = self.policy.predict_chunk(job.batch)
            self.stats.map_inference.add(time.perf_counter() - t0)
            interp = interps[0]
        self._publish_interpretation(interp, job)
        self.stats.count("maps_published")

    def _publish_interpretation(self, interp: Interpretation, job: MapJob) -> None:
        s = self.settings
        values = {"proprio_attention": interp.fractions.get("state"), "proprio_attention_lift": interp.lifts.get("state"),
                  "env_state_attention": interp.fractions.get("env_state"),
                  "env_state_attention_lift": interp.lifts.get("env_state")}
        for key in s.camera_keys:
            values[f"attention_share/{camera_name(key)}"] = interp.fractions[key]
            values[f"attention_lift/{camera_name(key)}"] = interp.lifts[key]
        for name, value in values.items():
            if value is not None and name in self.pub_scalar:
                self.pub_scalar[name].publish(Float32(data=float(value)))
        kinds = ["attention_overlay", "plan_overlay"] if job.new_plan else ["attention_overlay"]
        for kind in kinds:
            for key in s.camera_keys:
                pub = self.pub_overlay[f"{kind}/{camera_name(key)}"]
                if pub.get_subscription_count() == 0:
                    continue  # rendering costs ~ms per camera: only while someone watches
                overlay = attention_overlay(job.frames[key], interp, key, alpha=s.overlay_alpha, scale=s.overlay_scale,
                                            prefix="plan: " if kind == "plan_overlay" else "")
                pub.publish(encode_rgb_image(overlay, job.headers[key]))

    # ------------------------------------------------------------------------------ side methods
    def _on_side_timer(self, which: str) -> None:
        job = self._latest_job
        worker = self.side if which == "side" else self.occluder
        if job is None or job.tick == self._last_side_tick[which]:
            self.stats.count(f"{which}.skipped_no_new_tick")
            return
        if not worker.submit(job):
            self.stats.count(f"{which}.skipped_busy")
            return
        self._last_side_tick[which] = job.tick

    def _compute_side(self, job: MapJob, methods: SideMethods) -> None:
        if self.env_sensitivity is not None and methods is self.side_methods:
            self._wait_for_control_window()
            try:
                value = float(self.env_sensitivity.measure(job.batch).overall[0])
            except Exception as exc:  # noqa: BLE001 - never stops control
                self.stats.problem("side.env_state_sensitivity.failures", self._now_ns())
                self._log_exception("side.env_state_sensitivity", "env-state sensitivity failed", exc)
            else:
                self.stats.count("side.env_state_sensitivity.runs")
                self.pub_scalar["env_state_sensitivity"].publish(Float32(data=value))
        for method in methods.names:
            self._wait_for_control_window()
            started = time.perf_counter()
            try:
                if os.environ.get(GRADCAM_FAIL_ENV) and method == "gradcam":
                    raise RuntimeError(f"GradCAM failure injected by {GRADCAM_FAIL_ENV} (test hook)")
                maps = methods.attribute(method, job.batch)[0]
            except Exception as exc:  # noqa: BLE001 - a side-method failure must never stop control
                self.stats.problem(f"side.{method}.failures", self._now_ns())
                self._log_exception(f"side.{method}", f"{method} failed (control continues)", exc)
                continue
            self.stats.count(f"side.{method}.runs")
            self.stats.side_window(method).add(time.perf_counter() - started)
            for key in self.settings.camera_keys:
                pub = self.pub_overlay[f"{method}_overlay/{camera_name(key)}"]
                if pub.get_subscription_count() == 0:
                    continue
                overlay = method_overlay(job.frames[key], maps[key], method, key, alpha=self.settings.overlay_alpha)
                pub.publish(encode_rgb_image(overlay, job.headers[key]))

    def _wait_for_control_window(self, min_queued: int = 3, timeout_s: float = 2.0) -> None:
        """Start a side method only while the queue holds a few actions, so it does not run beside the control
        loop's own forward pass (action-queue mode; with temporal ensembling every tick has one anyway)."""
        need = min(min_queued, self.policy.config.n_action_steps - 1)
        if self.policy.uses_temporal_ensembling or need <= 0:
            return
        deadline = time.monotonic() + timeout_s
        while self.policy.queued_actions < need and time.monotonic() < deadline:
            time.sleep(0.005)

    # ----------------------------------------------------------------- service, parameters, diag
    def _on_enable_commands(self, request, response):
        if request.data and not self.settings.publish_actions:  # never "accepted" while nothing would be sent
            response.success = False
            response.message = ("refused: publish_actions is false (observe-only), so no action would be sent; "
                                "set it first: ros2 param set <node> publish_actions true (pause state unchanged: "
                                f"{'enabled' if self.commands_enabled else 'paused'})")
            self.get_logger().warning(response.message)
            return response
        if request.data and not self.commands_enabled:
            self.stepper.no_action()  # the queued plan was made before the pause: never execute it
        self.commands_enabled = bool(request.data)
        response.success = True
        response.message = "commanding enabled" if request.data else "commanding paused: no actions are published"
        self.get_logger().info(response.message)
        return response

    def _apply_settings(self, new: NodeSettings, changed: list[str]) -> None:
        old, self.settings = self.settings, new
        if "publish_actions" in changed and new.publish_actions != old.publish_actions:
            if new.publish_actions:
                self.stepper.no_action()  # start commanding from a fresh plan
                self._create_action_publisher()
            self.get_logger().info("publish_actions is now "
                                   f"{'true: commanding' if new.publish_actions else 'false: observe-only'}")
        for name, which in (("side_rate_hz", "side"), ("occlusion_rate_hz", "occlusion")):
            if name in changed:
                self._make_side_timer(which, getattr(new, name))
                self.get_logger().info(f"{name} is now {getattr(new, name):g}")
        for name in ("overlay_alpha", "overlay_scale"):
            if name in changed:
                self.get_logger().info(f"{name} is now {getattr(new, name)}")

    def _publish_diagnostics(self) -> None:
        s = self.settings
        enabled = bool(s.publish_actions and self.commands_enabled)
        extra = {
            "device": s.device, "torch_threads": str(self.torch_threads), "image_backend": backend_name(),
            "commands_enabled": str(self.commands_enabled).lower(), "publish_actions": str(s.publish_actions).lower(),
            "maps_superseded_by_newer_tick": str(self.maps.dropped),
        }
        status = diagnostic_status(self.stats, f"{self.get_name()}: control", s.policy_path, self._now_ns(),
                                   enabled, extra)
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_diagnostics.publish(msg)

    # ---------------------------------------------------------------------------------- helpers
    def _worker_error(self, worker: str, exc: BaseException) -> None:
        self.stats.problem(f"{worker}.errors", self._now_ns())
        self._log_exception(worker, f"{worker} worker error", exc)

    def _log_exception(self, key: str, text: str, exc: BaseException) -> None:
        """Full traceback the first time per key, then one throttled line."""
        if key not in self._traced:
            self._traced.add(key)
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
            self.get_logger().error(f"{text}: {type(exc).__name__}: {exc}\n{tb}")
        else:
            self._warn_throttled(key, f"{text}: {type(exc).__name__}: {exc}", error=True)

    def _warn_throttled(self, key: str, text: str, period_s: float = 2.0, *, error: bool = False) -> None:
        now = time.monotonic()
        if now - self._warned_at.get(key, -1e9) >= period_s:
            self._warned_at[key] = now
            if error:  # separate call sites: rclpy's logger refuses two severities from one line
                self.get_logger().error(text)
            else:
                self.get_logger().warning(text)

    def destroy_node(self) -> None:
        for name in ("control", "maps", "side", "occluder"):
            worker = getattr(self, name, None)
            if worker is not None:
                worker.stop()
        for methods in (getattr(self, "side_methods", None), getattr(self, "occlusion", None)):
            if methods is not None:
                methods.close()
        if getattr(self, "policy", None) is not None:
            self.policy.close()
        unroute_package_logging(self._log_handler)
        super().destroy_node()
