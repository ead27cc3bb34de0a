"""One control tick, the same for the live node and the offline replay (ROS-free).

    snapshot -> gate -> decode -> joint state -> training range -> limit tolerance -> env state (+ training
    range) -> observation -> [policy step: :mod:`.policy_step`] -> limits

The training-range guard (:mod:`.training_range`) runs on the values in policy units before the limit check,
so a unit or offset mistake is named as such even when it also breaks the limits. Its flags for the latest
:meth:`TickPipeline.prepare` are in :attr:`TickPipeline.last_flags` (whether or not the tick was skipped).

:class:`TickPipeline` owns every stage except the policy step (:class:`~act_interp_ros.pipeline.policy_step.PolicyStep`,
shared by the node and both replays), which calls :meth:`TickPipeline.limit`.
Each stage that rejects the tick returns a :class:`~act_interp_ros.pipeline.reasons.SkipReason`; nothing
raises for bad input.

Messages may be rclpy messages (live) or rosbags-deserialised ones (offline): only ``header.stamp``,
the image fields and ``JointState.name/position`` are read.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from act_interp_ros.core import ObservationBuilder, ObservationError
from act_interp_ros.inputs.freshness import InputGate
from act_interp_ros.inputs.env_state import EnvStateError, EnvStateInput, EnvStateMapping
from act_interp_ros.inputs.image_decoding import ImageDecodeError, decode_image
from act_interp_ros.inputs.joint_mapping import JointLimitError, JointMapping, JointMappingError
from act_interp_ros.pipeline.reasons import SkipReason
from act_interp_ros.pipeline.training_range import RangeFlag, TrainingRangeGuard
from act_interp_ros.settings import NodeSettings, camera_name

__all__ = ["PreparedTick", "TickPipeline", "TickSnapshot", "header_stamp_ns"]

#: nanoseconds per second (ROS stamps are integer ns)
NS = 1_000_000_000


def header_stamp_ns(msg: Any) -> int | None:
    """``msg.header.stamp`` in integer nanoseconds (exact), ``None`` for no message."""
    if msg is None:
        return None
    stamp = msg.header.stamp
    return int(stamp.sec) * NS + int(stamp.nanosec)


@dataclass
class TickSnapshot:
    """The newest inputs at one tick, taken once so every stage sees the same messages.

    Attributes:
        now_ns: ROS time of the tick (sim time under ``use_sim_time``; the tick time offline).
        cameras: camera key -> newest image message (Image or CompressedImage), ``None`` if none yet.
        joint_state: newest JointState message, ``None`` if none yet.
        env_state: newest environment-state message with its stamp (policies with an env state only).
    """

    now_ns: int
    cameras: Mapping[str, Any]
    joint_state: Any
    env_state: EnvStateInput | None = None


@dataclass
class PreparedTick:
    """A tick whose inputs passed every check, ready for the policy.

    Attributes:
        frames: camera key -> (H, W, 3) uint8 RGB at the source size (overlays are drawn on these).
        current_ros: (n_joints,) joint positions in ROS units, policy order (the step limit's reference);
            ``None`` for a recorded frame already in policy units (:meth:`TickPipeline.prepare_recorded`).
        observation: the raw LeRobot observation (unbatched tensors, images (3, h, w) float in [0, 1] at
            the policy's size) for ``InterpretableACT.preprocess``.
        stamps_ns: input topic -> header stamp of the message used (ns).
        late_frames: why the camera frames could not feed a forward (``stale``/``skew``/... of a camera), for a
            tick prepared with ``frames_needed=False`` whose other inputs passed: its action must come from the
            queue; ``frames`` and ``observation`` are then empty/``None``.
    """

    frames: dict[str, np.ndarray]
    current_ros: np.ndarray | None
    observation: dict[str, Any] | None
    stamps_ns: dict[str, int] = field(default_factory=dict)
    late_frames: SkipReason | None = None


class TickPipeline:
    """Gate, decode, joint-state checks, observation building and command limiting for one policy.

    Args:
        settings: the node's validated settings.
        config: the policy's ``ACTConfig`` (image sizes, state and env-state sizes).
        device: the policy's device: observations are built there (on a GPU, images go as uint8 and are
            converted there, and the preprocessor's normalisation runs there too).
        guard: the training-range guard (``None``: no check); with ``out_of_range_policy`` skip, a state or
            env state outside the training range is a ``bad_input.training_range`` tick.
    """

    def __init__(self, settings: NodeSettings, config, device=None, guard: TrainingRangeGuard | None = None) -> None:
        self.settings = settings
        self.camera_keys = list(settings.camera_keys)
        self.camera_topics = dict(zip(settings.camera_keys, settings.camera_topics))
        self.joint_topic = settings.joint_state_topic
        self.gate = InputGate.from_settings(settings)
        self.mapping = JointMapping.from_settings(settings)
        self.limit_tolerance = float(settings.joint_limit_tolerance)
        self.builder = ObservationBuilder(config, resize=bool(settings.image_resize), device=device)
        self.has_state = config.robot_state_feature is not None
        self.env_dim = env_dim = int(config.env_state_feature.shape[0]) if config.env_state_feature is not None else 0
        self.env_topic = settings.env_state_topic if env_dim else None
        self.env = (EnvStateMapping(settings.env_state_type, env_dim, settings.env_state_scale,
                                    settings.env_state_offset) if env_dim else None)
        self._decoded: dict[str, tuple[Any, np.ndarray]] = {}
        self.guard = guard
        self.skip_out_of_range = settings.out_of_range_policy == "skip"
        self.last_flags: list[RangeFlag] = []

    @property
    def input_topics(self) -> list[str]:
        """Camera topics (camera order), the joint-state topic, the env-state topic: the order reasons report
        inputs in."""
        return [self.camera_topics[k] for k in self.camera_keys] + [self.joint_topic] + (
            [self.env_topic] if self.env_topic else [])

    # ---------------------------------------------------------------------------------- stages
    def stamps_ns(self, snap: TickSnapshot) -> dict[str, int | None]:
        """Input topic -> header stamp (ns) of the snapshot's message (``None`` when none yet)."""
        out = {self.camera_topics[k]: header_stamp_ns(snap.cameras.get(k)) for k in self.camera_keys}
        out[self.joint_topic] = header_stamp_ns(snap.joint_state)
        if self.env_topic:
            out[self.env_topic] = None if snap.env_state is None else snap.env_state.stamp_ns
        return out

    def prepare(self, snap: TickSnapshot, frames_needed: bool = True) -> PreparedTick | SkipReason:
        """Run gate -> decode -> joint state -> observation; a SkipReason when any stage rejects the tick.

        ``frames_needed=False`` (a tick whose action will come from the policy's queue: it reads no frame): when
        only the cameras fail the gate (late, out of step, missing), the tick is prepared without frames or
        observation (:attr:`PreparedTick.late_frames` says why); the joint state and env state are checked as
        always.
        """
        self.last_flags = flags = []
        stamps = self.stamps_ns(snap)
        seconds = {t: (None if s is None else s / NS) for t, s in stamps.items()}
        camera_topics = [self.camera_topics[k] for k in self.camera_keys]
        decision = self.gate.check(snap.now_ns / NS, seconds, camera_topics)
        if not decision.ok:
            if frames_needed:
                return SkipReason.parse(decision.reason)
            others = {t: v for t, v in seconds.items() if t not in camera_topics}
            rest = self.gate.check(snap.now_ns / NS, others, [])
            if not rest.ok:  # named as with frames needed: the first problem in input order
                return SkipReason.parse(decision.reason)
            late = SkipReason.parse(decision.reason)
            checked = self._joint_and_env(snap, flags)
            if isinstance(checked, SkipReason):
                return checked
            return PreparedTick({}, checked[0], None, {t: s for t, s in stamps.items()
                                                      if s is not None and t not in camera_topics}, late)
        frames: dict[str, np.ndarray] = {}
        policy_images: dict[str, np.ndarray] = {}
        for key in self.camera_keys:
            topic = self.camera_topics[key]
            try:
                frames[key] = self.decode_frame(key, snap.cameras[key])
            except ImageDecodeError as exc:
                return SkipReason("bad_input.image", f"{topic} {exc}")
            try:  # the policy's size (resized, or rejected with image_resize false)
                policy_images[key] = self.builder.prepare_image(key, frames[key])
            except ObservationError as exc:
                return SkipReason("bad_input.observation", f"{topic} {exc}")
            if self.guard is not None:
                flag = self.guard.check_image(key, camera_name(key), frames[key])
                if flag is not None:
                    flags.append(flag)
        checked = self._joint_and_env(snap, flags)
        if isinstance(checked, SkipReason):
            return checked
        current, env = checked
        try:
            state = self.mapping.ros_to_policy(current) if self.has_state else None
            observation = self.builder.build(policy_images, state, env)
        except ObservationError as exc:
            return SkipReason("bad_input.observation", str(exc))
        return PreparedTick(frames, current, observation, {t: s for t, s in stamps.items() if s is not None})

    def _joint_and_env(self, snap: TickSnapshot, flags: list[RangeFlag]) -> tuple[np.ndarray, Any] | SkipReason:
        """Joint state -> training range -> limit tolerance, env state -> training range: ((n_joints,) positions in
        ROS units, (n_env,) env state in policy units or ``None``), or why the tick cannot act."""
        js = snap.joint_state
        try:
            current = self.mapping.from_joint_state(list(js.name), np.asarray(js.position, dtype=np.float64))
            if self.guard is not None and self.has_state:
                state_flags = self.guard.check_state(self.mapping.ros_to_policy(current))
                flags.extend(state_flags)
                if state_flags and self.skip_out_of_range:
                    return out_of_range_skip(self.joint_topic, state_flags)
            self.mapping.check_within_limits(current, self.limit_tolerance)
        except JointLimitError as exc:
            return SkipReason("bad_input.joint_limits", f"{self.joint_topic} {exc}")
        except JointMappingError as exc:
            return SkipReason("bad_input.joint_state", f"{self.joint_topic} {exc}")
        env = None
        if self.env is not None:
            try:
                env = self.env.to_policy(snap.env_state.msg)
            except EnvStateError as exc:
                return SkipReason("bad_input.env_state", f"{self.env_topic} {exc}")
            if self.guard is not None:
                env_flags = self.guard.check_env(env)
                flags.extend(env_flags)
                if env_flags and self.skip_out_of_range:
                    return out_of_range_skip(self.env_topic, env_flags)
        return current, env

    def prepare_recorded(self, images: Mapping[str, np.ndarray], state: np.ndarray | None,
                         env_state: np.ndarray | None, where: str) -> PreparedTick | SkipReason:
        """The policy-side stages for a recorded frame already in policy units (a LeRobotDataset frame): no gate,
        decoding or joint mapping; the training-range guard, then the observation.

        Args:
            images: policy camera key -> (H, W, 3) uint8 RGB at the recorded size.
            state: (n_joints,) policy units, or ``None``; env_state: (n_env,) or ``None``.
            where: names the frame in skip reasons (``frame 12``).
        Returns:
            a :class:`PreparedTick` without ``current_ros`` (no ROS command), or the skip reason.
        """
        self.last_flags = flags = []
        if self.guard is not None:
            for key, frame in images.items():
                flag = self.guard.check_image(key, camera_name(key), frame)
                if flag is not None:
                    flags.append(flag)
            values = []
            if self.has_state and state is not None and np.all(np.isfinite(state)):
                values += self.guard.check_state(np.asarray(state, dtype=np.float64))
            if self.env_dim and env_state is not None and np.all(np.isfinite(env_state)):
                values += self.guard.check_env(np.asarray(env_state, dtype=np.float64))
            flags.extend(values)
            if values and self.skip_out_of_range:
                return out_of_range_skip(where, values)
        try:
            observation = self.builder.build(dict(images), state if self.has_state else None,
                                             env_state if self.env_dim else None)
        except ObservationError as exc:  # e.g. a non-finite state: this frame computes no action
            return SkipReason("bad_input.observation", f"{where}: {exc}")
        return PreparedTick(dict(images), None, observation)

    def limit(self, action_policy: np.ndarray, current_ros: np.ndarray) -> tuple[np.ndarray, bool]:
        """(A,) finite policy-unit action -> (limited ROS command, clamped?).

        ``command_offset`` is taken off first (the driver adds it back). The command moves at most ``max_joint_step`` from ``current_ros`` and always lies inside the limits.
        (Non-finite actions never get here: :class:`~act_interp_ros.pipeline.policy_step.PolicyStep` skips them.)
        """
        action = np.asarray(action_policy, dtype=np.float64)
        return self.mapping.limit(self.mapping.command_to_ros(action), current_ros)

    # --------------------------------------------------------------------------------- helpers

    def decode_frame(self, key: str, msg: Any) -> np.ndarray:
        """(H, W, 3) uint8 RGB of camera ``key``'s message, decoded once even when two ticks use it.

        Raises ImageDecodeError (a ``bad_input.image`` tick in :meth:`prepare`).
        """
        cached = self._decoded.get(key)
        if cached is not None and cached[0] is msg:
            return cached[1]
        frame = decode_image(msg)
        self._decoded[key] = (msg, frame)
        return frame


def out_of_range_skip(where: str, flags: list[RangeFlag]) -> SkipReason:
    """The skip reason of a tick whose inputs (``where``: a topic, a dataset frame) are outside the training range."""
    names = ", ".join(f"{f.name}={f.value:.4g} not in [{f.low:.4g}, {f.high:.4g}]" for f in flags)
    return SkipReason("bad_input.training_range", f"{where} {names} (out_of_range_policy skip)")
