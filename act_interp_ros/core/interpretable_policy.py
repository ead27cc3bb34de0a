"""A LeRobot ``ACTPolicy`` wrapper that explains every control tick without changing a single action.

``InterpretableACT.select_action(batch, force_model_run=True)`` mirrors ``ACTPolicy.select_action``:

* action-queue mode (``n_action_steps`` > 1): when the queue is empty, one forward pass fills it (and
  gives this tick's maps); when it is not empty and ``force_model_run`` is set, the model still runs once
  for fresh maps, its chunk is discarded and the next queued action is returned - so actions stay those of
  chunked control, never re-planning each step;
* temporal-ensembling mode: the model runs every tick anyway; the policy's own ``ACTTemporalEnsembler``
  combines the chunks.

The queue and the ensembler are the policy's own objects, and chunks are fed to them with the same code
LeRobot uses, so the action sequence equals the unwrapped policy's (tested over whole episodes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor
from lerobot.utils.constants import OBS_STATE

from act_interp_ros.core.attention import (
    AttentionOptions,
    ForwardCapture,
    Interpretation,
    interpret,
    reduce_weights,
)
from act_interp_ros.core.loading import LoadedPolicy, load_act_policy
from act_interp_ros.core.token_layout import TokenLayout

logger = logging.getLogger(__name__)



class ActionWithInterpretation(NamedTuple):
    """``select_action`` result: unpacks as ``action, interpretations``.

    action: (B, action_dim) normalised action, exactly what ``ACTPolicy.select_action`` returns.
    interpretations: one :class:`Interpretation` per batch element from this call's forward pass; empty
        when no forward ran (``force_model_run=False`` with actions still queued).
    """

    action: Tensor
    interpretations: tuple[Interpretation, ...]

    @property
    def interpretation(self) -> Interpretation | None:
        """The first batch element's interpretation (the usual B=1 case), or ``None``."""
        return self.interpretations[0] if self.interpretations else None


@dataclass
class PendingInterpretations:
    """One forward pass's attention, still on the policy's device: (B, n_tokens) reduced weights + layout."""

    reduced: Tensor
    layout: TokenLayout

    def resolve(self) -> tuple[Interpretation, ...]:
        """One :class:`Interpretation` per batch row (copies the (B, n_tokens) weights to the host)."""
        rows = self.reduced.float().cpu().numpy()
        return tuple(interpret(row, self.layout) for row in rows)


@dataclass
class StepResult:
    """One control tick on a raw observation.

    action: (action_dim,) float32 action in dataset (policy) units, after the postprocessor.
    interpretation: this tick's attention, ``None`` only when no forward ran.
    batch: the normalised batch the policy saw (reuse it for GradCAM on the same observation).
    """

    action: np.ndarray
    interpretation: Interpretation | None
    batch: dict[str, Any]


class InterpretableACT:
    """Wraps an ``ACTPolicy`` (+ optional processors) and captures decoder cross-attention each forward."""

    def __init__(
        self,
        policy,
        preprocessor=None,
        postprocessor=None,
        attention: AttentionOptions = AttentionOptions(),
    ) -> None:
        self.policy = policy
        self.preprocessor = preprocessor
        self.postprocessor = postprocessor
        self.config = policy.config
        self.attention = attention
        self._capture = ForwardCapture(policy.model, attention)
        self._layout: TokenLayout | None = None

    @classmethod
    def from_pretrained(
        cls, path_or_repo_id: str, device: str | None = None, attention: AttentionOptions = AttentionOptions()
    ) -> InterpretableACT:
        """Load a checkpoint with :func:`load_act_policy` and wrap it."""
        loaded: LoadedPolicy = load_act_policy(path_or_repo_id, device=device)
        return cls(loaded.policy, loaded.preprocessor, loaded.postprocessor, attention)

    # ----------------------------------------------------------------------------------- properties
    @property
    def camera_keys(self) -> tuple[str, ...]:
        return tuple(self.config.image_features)

    @property
    def image_shapes(self) -> dict[str, tuple[int, int]]:
        """camera key -> (H, W) the policy was trained on."""
        return {k: tuple(f.shape[-2:]) for k, f in self.config.image_features.items()}

    @property
    def state_dim(self) -> int:
        feat = self.config.robot_state_feature
        return int(feat.shape[0]) if feat is not None else 0

    @property
    def env_state_dim(self) -> int:
        feat = self.config.env_state_feature
        return int(feat.shape[0]) if feat is not None else 0

    @property
    def action_dim(self) -> int:
        return int(self.config.action_feature.shape[0])

    @property
    def device(self) -> torch.device:
        return next(self.policy.parameters()).device

    @property
    def uses_temporal_ensembling(self) -> bool:
        return self.config.temporal_ensemble_coeff is not None

    # ------------------------------------------------------------------------------------ control
    def reset(self) -> None:
        """Reset the policy's action queue / temporal ensembler (call at episode start)."""
        self.policy.reset()

    def needs_model_run(self, force_model_run: bool = True) -> bool:
        """Whether the next ``select_action`` runs a forward pass."""
        return force_model_run or self.uses_temporal_ensembling or len(self._queue()) == 0

    @property
    def queued_actions(self) -> int:
        """Actions left in the policy's queue (0 with temporal ensembling: every tick runs the model)."""
        return 0 if self.uses_temporal_ensembling else len(self._queue())

    def pop_queued(self) -> Tensor:
        """(B, A) next queued action (action-queue mode, queue not empty): what ``select_action`` returns
        when it runs no forward pass."""
        return self._queue().popleft()

    def predict_chunk(self, batch: dict[str, Tensor]) -> tuple[Tensor, tuple[Interpretation, ...]]:
        """One forward pass: (B, chunk_size, action_dim) normalised chunk + one interpretation per row."""
        chunk, pending = self.predict_chunk_deferred(batch)
        return chunk, pending.resolve()

    def predict_chunk_deferred(self, batch: dict[str, Tensor]) -> tuple[Tensor, PendingInterpretations]:
        """Like :meth:`predict_chunk`, but the interpretations stay on the policy's device until
        :meth:`PendingInterpretations.resolve` (which copies them to the host): a control loop on a GPU then
        synchronises with the device only for its action, and another thread resolves the maps."""
        batch = self._with_state_placeholder(batch)
        with self._capture.recording() as record:
            chunk = self.policy.predict_action_chunk(batch)
        if record.weights is None:
            raise RuntimeError("the cross-attention hook did not fire during the forward pass")
        layout = TokenLayout.from_config(self.config, record.feature_shapes)
        if layout != self._layout:
            self._layout = layout
            logger.debug("encoder token layout: %s (%d tokens)", layout, layout.n_tokens)
        reduced = reduce_weights(record.weights, self.attention, self.config.n_action_steps)  # (B, n_tokens)
        return chunk, PendingInterpretations(reduced, layout)

    def select_from_chunk(self, chunk: Tensor) -> Tensor:
        """Advance the policy's queue/ensembler with this tick's (B, chunk_size, A) chunk; return (B, A).

        Mirrors ``ACTPolicy.select_action`` line for line: in queue mode the chunk is only used when the
        queue is empty. Used by :meth:`select_action` and by batched offline replay.
        """
        if self.uses_temporal_ensembling:
            return self.policy.temporal_ensembler.update(chunk)
        queue = self._queue()
        if len(queue) == 0:
            queue.extend(chunk[:, : self.config.n_action_steps].transpose(0, 1))
        return queue.popleft()

    @torch.no_grad()
    def select_action(self, batch: dict[str, Tensor], force_model_run: bool = True) -> ActionWithInterpretation:
        """Like ``ACTPolicy.select_action`` on a normalised batch, plus this tick's interpretation."""
        self.policy.eval()
        if not self.needs_model_run(force_model_run):
            return ActionWithInterpretation(self.pop_queued(), ())
        chunk, interpretations = self.predict_chunk(batch)
        return ActionWithInterpretation(self.select_from_chunk(chunk), interpretations)

    def preprocess(self, observation: dict[str, Any]) -> dict[str, Any]:
        """Raw observation (unbatched tensors in dataset units, images float (3,H,W) in [0,1]) -> batch."""
        if self.preprocessor is None:
            raise RuntimeError("this InterpretableACT has no preprocessor; load it with from_pretrained()")
        return self.preprocessor(observation)

    def postprocess(self, action: Tensor) -> np.ndarray:
        """(B, A) normalised action -> (B, A) float32 numpy in dataset units."""
        if self.postprocessor is None:
            raise RuntimeError("this InterpretableACT has no postprocessor; load it with from_pretrained()")
        return self.postprocessor(action).detach().cpu().numpy().astype(np.float32)

    def step(self, observation: dict[str, Any], force_model_run: bool = True) -> StepResult:
        """Preprocess a raw observation, select an action, postprocess it (one control tick)."""
        batch = self.preprocess(observation)
        result = self.select_action(batch, force_model_run=force_model_run)
        return StepResult(self.postprocess(result.action)[0], result.interpretation, batch)

    def close(self) -> None:
        """Remove the hooks; the wrapped policy is left exactly as it was."""
        self._capture.close()

    # ----------------------------------------------------------------------------------- internals
    def _queue(self):
        try:
            return self.policy._action_queue
        except AttributeError as exc:  # pragma: no cover - a lerobot API change
            raise RuntimeError("ACTPolicy has no _action_queue; act_interp_ros supports lerobot>=0.4.4,<0.7") from exc

    def _with_state_placeholder(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        # lerobot 0.4.4's ACT.forward reads batch["observation.state"].device even when the policy has no
        # state feature; give it an empty (B, 0) tensor so state-less policies run (it is never used).
        if self.config.robot_state_feature is None and OBS_STATE not in batch:
            first = next(batch[k] for k in (*self.camera_keys, "observation.environment_state") if k in batch)
            batch = {**batch, OBS_STATE: first.new_zeros((first.shape[0], 0))}
        return batch

