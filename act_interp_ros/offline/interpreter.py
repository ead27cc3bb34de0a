"""Step the policy over consecutive offline ticks like the live node, and compute every map on its schedule.

Used by the bag replay and the dataset replay. Per batch of runnable ticks (``batch_size`` of them):

1. one forward pass with attention capture (fresh maps for every tick, as ``force_model_run`` gives);
2. the side methods (GradCAM, gradient x input, integrated gradients, occlusion) and, for env-state
   policies, the env-state sensitivity on the ticks scheduled for them, batched;
3. the deletion (faithfulness) test of every map method on the sampled ticks, the ``--ablate`` edit (how
   much the executed chunk changes when a region of one camera is edited) and the ``--move`` edit (whether the
   chunk follows a region moved, against the opposite move) on every tick where they apply;
4. in tick order, the node's own policy step (:class:`~act_interp_ros.pipeline.PolicyStep`): the plan rule (a
   skipped tick resets the plan), the action from the policy's own queue / ensembler, a non-finite action
   becomes a skipped tick, the command limits when a pipeline is given (bags: ROS units, the node's limits);
5. overlays (attention, the plan's attention, each side method) rendered like the node renders them.

Records come back in tick order, complete, for the caller's outputs.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from act_interp_ros.core import DeletionResult, DeletionTest, EnvStateSensitivity, InterpretableACT
from act_interp_ros.core.ablation import Ablation, AblationSpec, ablated_frame, box_mask, top_mask
from act_interp_ros.core.region_move import MoveSpec, RegionMove, moved_frame
from act_interp_ros.offline.records import TickRecord
from act_interp_ros.offline.regions import RegionSet, region_values
from act_interp_ros.pipeline import PolicyStep, SkipReason, TickPipeline
from act_interp_ros.pipeline.overlays import attention_overlay, method_overlay
from act_interp_ros.pipeline.side_methods import SideMethods
from act_interp_ros.pipeline.stepping import gap_tolerance_ticks
from act_interp_ros.settings import NodeSettings

__all__ = ["OfflineInterpreter", "OfflineTick", "faithfulness_summary"]

logger = logging.getLogger(__name__)


@dataclass
class OfflineTick:
    """A tick waiting for the policy.

    Attributes:
        rec: its record (skipped ticks arrive with ``rec.skip`` set).
        batch: the preprocessed (B=1) batch; ``None`` for a skipped tick, or one whose frames were late.
        late_frames: why the frames could not feed a forward (the other inputs passed): the tick acts from the
            policy's queue when it holds the action, and is skipped for this reason when a forward is due.
        current_ros: (n_joints,) joint positions in ROS units for the command limits (bags); ``None`` = the action
            is kept in policy units without a command (datasets).
        side: compute the side methods on this tick.
        faithfulness: run the deletion test of every map method on this tick (needs ``side``).
    """

    rec: TickRecord
    batch: dict[str, Any] | None = None
    current_ros: np.ndarray | None = None
    side: bool = False
    faithfulness: bool = False
    late_frames: SkipReason | None = None


def _stack(batches: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Concatenate preprocessed (B=1) batches along dim 0; non-tensor entries are taken from the first."""
    if len(batches) == 1:
        return batches[0]
    first = batches[0]
    return {k: torch.cat([b[k] for b in batches], dim=0) if isinstance(v, torch.Tensor) else v for k, v in first.items()}


class OfflineInterpreter:
    """See the module docstring.

    Args:
        policy: the wrapped policy (reset by the caller at the start of each episode via :meth:`reset`).
        settings: overlay alpha/scale and the side methods' targets and options.
        methods: side methods to compute on side ticks.
        batch_size: runnable ticks per forward pass.
        pipeline: the tick pipeline whose command limits apply (bags); ``None`` = no command (datasets).
        render: render overlays (for videos, the output bag, Rerun).
        deletion: the deletion test for faithfulness ticks (``None`` = none).
        env_sensitivity: the env-state sensitivity check for side ticks (env-state policies; ``None`` = none).
        ablation: what to edit on every tick (``None`` = nothing); checked against the policy's cameras.
        move: what to move on every tick (``None`` = nothing); checked against the policy's cameras.
        regions: named boxes whose map values and ablation effect are recorded per tick (``None`` = none).
    """

    def __init__(self, policy: InterpretableACT, settings: NodeSettings, *, methods: Sequence[str] = (),
                 batch_size: int = 1, pipeline: TickPipeline | None = None, render: bool = True,
                 deletion: DeletionTest | None = None, env_sensitivity: EnvStateSensitivity | None = None,
                 ablation: AblationSpec | None = None, move: MoveSpec | None = None,
                 regions: RegionSet | None = None, rate_hz: float | None = None) -> None:
        self.env_sensitivity = env_sensitivity
        self.regions = regions
        self._region_ablation = ({c: Ablation(policy.policy, c, "mean") for c in sorted(regions.cameras)}
                                 if regions is not None else {})
        self.move = RegionMove(policy.policy, move) if move is not None else None
        self.ablation_spec = ablation
        self.ablation = Ablation(policy.policy, ablation.camera, ablation.fill) if ablation is not None else None
        self._mean_rgb = _mean_rgb(policy, ablation.camera) if ablation is not None else None
        self.policy = policy
        self.settings = settings
        self.methods = list(methods)
        self.batch_size = int(batch_size)
        self.pipeline = pipeline
        self.render = render
        self.deletion = deletion
        self.step = PolicyStep(policy, pipeline, gap_tolerance_ticks(settings.plan_survives_gap_s,
                                                                     rate_hz or settings.control_rate_hz))
        self.side = SideMethods(policy.policy, settings, self.methods) if self.methods else None
        self.deletion_results: dict[str, dict[str, list[DeletionResult]]] = {}
        self.model_s = 0.0
        self._pending: list[OfflineTick] = []

    @property
    def plan_resets(self) -> int:
        """Plans started fresh (the first of each episode, and after every skipped tick)."""
        return self.step.plan_resets

    def reset(self) -> None:
        """A new episode: the next runnable tick starts a fresh plan."""
        self.step.reset()

    def add(self, tick: OfflineTick) -> list[TickRecord]:
        """Queue a tick; returns the records completed by it (a full batch), in tick order."""
        self._pending.append(tick)
        if sum(t.batch is not None for t in self._pending) >= self.batch_size:
            return self.flush()
        return []

    def flush(self) -> list[TickRecord]:
        """Process every queued tick; returns their records in tick order."""
        pending, self._pending = self._pending, []
        runnable = [t for t in pending if t.batch is not None]
        chunks = None
        rows: dict[int, int] = {}
        if runnable:
            t0 = time.perf_counter()
            with torch.inference_mode():
                chunks, interps = self.policy.predict_chunk(_stack([t.batch for t in runnable]))
            for i, (t, interp) in enumerate(zip(runnable, interps)):
                t.rec.interpretation = interp
                rows[id(t)] = i
            self._side_maps(runnable)
            self._faithfulness(runnable)
            self._ablate(runnable)
            self._move(runnable)
            self._regions(runnable)
            self.model_s += time.perf_counter() - t0
        for t in pending:  # in tick order: the plan rule needs every skipped tick before the next step
            if t.batch is None and t.late_frames is not None:  # the node's rule: act from the queue on late frames
                if self.step.needs_forward():
                    t.rec.skip = t.late_frames
                    self.step.skip(t.late_frames)
                else:
                    t.rec.late_frames = str(t.late_frames)
                    self._step(t, None)
            elif t.batch is None:  # the node's rule: a short late-input gap keeps the plan, anything else resets it
                self.step.skip(t.rec.skip) if t.rec.skip is not None else self.step.reset()
            else:
                i = rows[id(t)]
                self._step(t, chunks[i : i + 1])
            self._render(t.rec)
        return [t.rec for t in pending]

    def faithfulness_summary(self) -> dict[str, Any]:
        """method -> camera -> {ratio, auc_top, auc_random, fractions, curve_top, curve_random, n}."""
        return faithfulness_summary(self.deletion_results)

    def take_deletion_results(self) -> dict[str, dict[str, list[DeletionResult]]]:
        """The deletion results gathered so far (method -> camera -> parts); the next ones start empty."""
        results, self.deletion_results = self.deletion_results, {}
        return results

    def close(self) -> None:
        if self.side is not None:
            self.side.close()
        if self.deletion is not None:
            self.deletion.close()
        if self.ablation is not None:
            self.ablation.close()
        if self.move is not None:
            self.move.close()

    # --------------------------------------------------------------------------------- internals
    def _side_maps(self, runnable: list[OfflineTick]) -> None:
        wants = [t for t in runnable if t.side]
        if not wants:
            return
        batch = _stack([t.batch for t in wants])
        if self.env_sensitivity is not None:
            for t, value in zip(wants, self.env_sensitivity.measure(batch).overall):
                t.rec.env_sensitivity = float(value)
        if self.side is None:
            return
        for method in self.methods:
            for t, maps in zip(wants, self.side.attribute(method, batch)):
                t.rec.side_maps[method] = maps

    def _faithfulness(self, runnable: list[OfflineTick]) -> None:
        wants = [t for t in runnable if t.faithfulness]
        if not wants or self.deletion is None:
            return
        batch = _stack([t.batch for t in wants])
        methods = {"attention": [t.rec.interpretation.camera_maps for t in wants]}
        for m in self.methods:
            if all(m in t.rec.side_maps for t in wants):
                methods[m] = [t.rec.side_maps[m] for t in wants]
        for method, maps in methods.items():
            results = self.deletion.run(batch, maps)
            for cam, result in results.items():
                self.deletion_results.setdefault(method, {}).setdefault(cam, []).append(result)
            ratios = np.nanmean(np.stack([r.frame_ratios() for r in results.values()]), axis=0)
            for t, ratio in zip(wants, ratios):
                t.rec.faithfulness[method] = float(ratio)

    def _ablate(self, runnable: list[OfflineTick]) -> None:
        """Edit the spec's region on every tick where it exists; record the chunk's change (and the edited frame)."""
        if self.ablation is None:
            return
        spec, hw = self.ablation_spec, self.ablation.image_hw
        masks: list[np.ndarray | None] = []
        for t in runnable:
            rec = t.rec
            if spec.box is not None:
                frame = rec.frames.get(spec.camera)
                masks.append(box_mask(spec.box, frame.rgb.shape[:2], hw) if frame is not None else None)
                continue
            maps = (rec.interpretation.camera_maps if spec.method == "attention"
                    else rec.side_maps.get(spec.method, {}))
            saliency = maps.get(spec.camera)
            masks.append(top_mask(saliency, hw, spec.percent) if saliency is not None else None)
        if all(m is None for m in masks):
            return
        changes = self.ablation.run(_stack([t.batch for t in runnable]), masks)
        for t, mask, change in zip(runnable, masks, changes):
            if mask is None:
                continue
            t.rec.ablation_change = float(change)
            frame = t.rec.frames.get(spec.camera)
            if self.render and frame is not None:
                t.rec.ablated_frame = ablated_frame(frame.rgb, mask, spec.fill, self._mean_rgb)

    def _move(self, runnable: list[OfflineTick]) -> None:
        """Move the spec's region (and by the opposite shift) on every tick with its camera's frame; record the
        chunk's changes (and the moved frame)."""
        if self.move is None:
            return
        spec = self.move.spec
        frames = [t.rec.frames.get(spec.camera) for t in runnable]
        sizes = [f.rgb.shape[:2] if f is not None else None for f in frames]
        if all(s is None for s in sizes):
            return
        result = self.move.run(_stack([t.batch for t in runnable]), sizes)
        for i, (t, frame) in enumerate(zip(runnable, frames)):
            if frame is None:
                continue
            rec = t.rec
            rec.move_change, rec.move_control_change = float(result.change[i]), float(result.control_change[i])
            rec.move_vs_control = float(result.vs_control[i])
            if self.render:
                rec.moved_frame = moved_frame(frame.rgb, spec)

    def _regions(self, runnable: list[OfflineTick]) -> None:
        """Each region's map values on every tick, and the chunk's change when it is ablated (mean fill)."""
        if self.regions is None:
            return
        masks: dict[str, list[np.ndarray | None]] = {r.name: [] for r in self.regions.regions}
        for t in runnable:
            rec = t.rec
            maps = {"attention": rec.interpretation.camera_maps, **rec.side_maps}
            sizes = {k: f.rgb.shape[:2] for k, f in rec.frames.items()}
            rec.region_values, per_tick = region_values(self.regions, rec.index, maps, sizes,
                                                        {k: a.image_hw for k, a in self._region_ablation.items()})
            for name in masks:
                masks[name].append(per_tick.get(name))
        batch = None
        for r in self.regions.regions:
            if all(m is None for m in masks[r.name]):
                continue
            batch = batch if batch is not None else _stack([t.batch for t in runnable])
            changes = self._region_ablation[r.camera].run(batch, masks[r.name])
            for t, mask, change in zip(runnable, masks[r.name], changes):
                if mask is not None:
                    t.rec.region_values[f"region_{r.name}_ablation"] = float(change)

    def _step(self, t: OfflineTick, chunk: torch.Tensor | None) -> None:
        result = self.step.run(t.current_ros if self.pipeline is not None else None, chunk=chunk)
        rec = t.rec
        rec.new_plan = result.new_plan
        if result.skip is not None:  # e.g. a non-finite action: no outputs, the edit's change included
            rec.skip = result.skip
            rec.ablation_change = rec.ablated_frame = None
            rec.move_change = rec.move_control_change = rec.move_vs_control = rec.moved_frame = None
            rec.region_values = {}
            return
        rec.action, rec.command_ros, rec.command_clamped = result.action, result.command, result.clamped

    def _render(self, rec: TickRecord) -> None:
        if rec.skipped or not self.render or rec.interpretation is None:
            return
        s = self.settings
        interp = rec.interpretation
        for key, frame in rec.frames.items():
            rec.overlays[key] = attention_overlay(frame.rgb, interp, key, alpha=s.overlay_alpha, scale=s.overlay_scale)
            if rec.new_plan:
                rec.plan_overlays[key] = attention_overlay(frame.rgb, interp, key, alpha=s.overlay_alpha,
                                                           scale=s.overlay_scale, prefix="plan: ")
            for method, maps in rec.side_maps.items():
                rec.side_overlays.setdefault(method, {})[key] = method_overlay(
                    frame.rgb, maps[key], method, key, alpha=s.overlay_alpha, suffix=f" {rec.rel_s:.2f}s")


def _mean_rgb(policy: InterpretableACT, camera: str) -> np.ndarray | None:
    """(3,) the camera's mean colour (0..1) in the policy's normaliser: what ``mean`` fills with; ``None`` if absent."""
    from act_interp_ros.pipeline.training_range import normalizer_stats

    mean = normalizer_stats(policy.preprocessor).get(camera, {}).get("mean")
    return None if mean is None else np.asarray(mean, dtype=np.float64).reshape(-1)[:3]


def faithfulness_summary(results: dict[str, dict[str, list[DeletionResult]]]) -> dict[str, Any]:
    """Deletion results (method -> camera -> parts) -> method -> camera -> {ratio, auc_top, auc_random,
    fractions, curve_top, curve_random, n} (all parts of a camera pooled)."""
    out: dict[str, Any] = {}
    for method, per_cam in results.items():
        out[method] = {}
        for cam, parts in per_cam.items():
            r = DeletionResult.concatenate(parts)
            out[method][cam] = {"ratio": _round(r.ratio), "auc_top": _round(r.auc_top),
                                "auc_random": _round(r.auc_random), "fractions": list(r.fractions),
                                "curve_top": [_round(v) for v in r.top_curve],
                                "curve_random": [_round(v) for v in r.random_curve], "n": r.n}
    return out


def _round(v: float) -> float | None:
    v = float(v)
    return round(v, 6) if np.isfinite(v) else None
