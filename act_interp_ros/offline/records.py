"""What one offline tick produced (bag replay and dataset replay alike)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from act_interp_ros.core.attention import Interpretation
from act_interp_ros.pipeline.reasons import SkipReason

__all__ = ["CameraFrame", "TickRecord"]


@dataclass
class CameraFrame:
    """The latest frame of one camera at a tick (as decoded from the bag, before any resize).

    rgb: (H, W, 3) uint8 RGB. stamp_ns / frame_id: the source message's header (overlays reuse it).
    """

    key: str
    name: str
    topic: str
    rgb: np.ndarray
    stamp_ns: int
    frame_id: str


@dataclass
class TickRecord:
    """Everything one control tick produced; skipped ticks have ``skip`` and no model outputs.

    Attributes:
        index: tick number from the start of the replayed range (0, 1, ...).
        time_ns: tick time on the replay clock; per-tick outputs are stamped with it.
        rel_s: seconds since the start of the replayed range.
        log_ns: log (receive) time at which this tick's outputs are recorded in the output bag.
        skip: why no action was computed (``None`` when the policy ran).
        frames: camera key -> latest frame available at this tick (may be absent or stale when skipped).
        input_stamps_ns: input topic -> header stamp (ns) of the message used, ``None`` when none yet.
        action: (A,) policy action in policy (dataset) units.
        recorded_action: (A,) the action the demonstration recorded at this frame (dataset replay only).
        command_ros: (A,) commanded joint positions in ROS units after the node's limits.
        command_clamped: whether the limits changed the command.
        interpretation: this tick's attention.
        new_plan: this tick's forward pass made the chunk the policy now executes (queue refilled).
        side_maps: method -> camera key -> attribution map in [0, 1], on side-method ticks only.
        faithfulness: method -> deletion-test ratio (top-k vs random deletion) on sampled ticks.
        env_sensitivity: change of the executed chunk per unit of env-state change, on side ticks (env-state
            policies only; action units per env-state unit).
        ablation_change: the executed chunk's change when the ``--ablate`` region is edited (normalised L2), on
            ticks where the region exists (``None`` otherwise).
        ablated_frame: the edited frame at source size (what the policy saw under the edit; videos only).
        move_change / move_control_change / move_vs_control: with ``--move``, the executed chunk's change (normalised
            L2) under the move, under the control (opposite) move, and between the two
            (:class:`~act_interp_ros.core.region_move.MoveResult`); ``None`` where the move did not apply.
        moved_frame: the moved frame at source size (videos only).
        region_values: with ``--regions``, column -> value (``region_<name>_<map>_<mass|density|lift>``,
            ``region_<name>_ablation``) for the regions on this tick.
        late_frames: the tick acted from the policy's queue while its camera frames were late (the reason; empty
            otherwise): no forward, no maps (``fresh_frames_every_tick`` false; bag replay).
        range_flags: inputs outside the checkpoint's training range at this tick
            (:class:`~act_interp_ros.pipeline.RangeFlag`; bag replay).
        overlays / plan_overlays / side_overlays[method]: camera key -> rendered (H, W, 3) uint8 RGB overlay at
            source size (plan: the attention of a tick whose chunk the policy starts executing).
    """

    index: int
    time_ns: int
    rel_s: float
    log_ns: int
    skip: SkipReason | None = None
    frames: dict[str, CameraFrame] = field(default_factory=dict)
    input_stamps_ns: dict[str, int | None] = field(default_factory=dict)
    action: np.ndarray | None = None
    recorded_action: np.ndarray | None = None
    command_ros: np.ndarray | None = None
    command_clamped: bool = False
    interpretation: Interpretation | None = None
    new_plan: bool = False
    side_maps: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    faithfulness: dict[str, float] = field(default_factory=dict)
    env_sensitivity: float | None = None
    ablation_change: float | None = None
    ablated_frame: np.ndarray | None = None
    move_change: float | None = None
    move_control_change: float | None = None
    move_vs_control: float | None = None
    moved_frame: np.ndarray | None = None
    region_values: dict[str, float] = field(default_factory=dict)
    late_frames: str = ""
    range_flags: list = field(default_factory=list)
    overlays: dict[str, np.ndarray] = field(default_factory=dict)
    plan_overlays: dict[str, np.ndarray] = field(default_factory=dict)
    side_overlays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def skipped(self) -> bool:
        return self.skip is not None

    @property
    def skip_reason(self) -> str | None:
        """The skip reason as text (``stale:/joint_states age=0.41s>0.25s``), ``None`` when the policy ran."""
        return None if self.skip is None else str(self.skip)
