"""Coordinate sensitivity: a causal check that an ACT policy acts on its environment-state input.

Attention shows where the decoder *looks*; it does not show whether what it looks at changes the action.
An ACT conditioned on ``observation.environment_state`` (e.g. pickup coordinates) gets that vector as
ONE encoder token among hundreds and can learn to ignore it while its loss still looks fine (issue 15).
:class:`EnvStateSensitivity` measures it directly: it perturbs the env state by configured deltas and
measures how much the **executed** part of the predicted action chunk (the first
``config.n_action_steps`` steps) changes per unit of perturbation.

For env-state dimension i with user delta d_i (central difference, the default)::

    J[b, t, a, i] = (chunk(x + d_i e_i)[b, t, a] - chunk(x - d_i e_i)[b, t, a]) / (2 d_i),   t < n_steps
    per_dim[b, i] = mean_{t, a} |J[b, t, a, i]|
    overall[b]    = mean_i per_dim[b, i]

Units: **action units per env-state unit**. Actions are in dataset (policy) units when a postprocessor is
given (SO-101: degrees, gripper 0..100), else in normalised action units; the env state is in the
user's units (e.g. metres), i.e. *before* normalisation: for pickup coordinates in metres the SO-101
numbers read "degrees of executed motion per metre of target move". A policy whose env-state token is
constant (e.g. its env-state projection zeroed, :func:`without_env_state`) gives exactly 0: the perturbed
rows are then identical inputs, and the CPU kernels return identical rows (tested).

How deltas map through the normaliser: LeRobot's ``NormalizerProcessorStep`` is affine per dimension,
``x_norm = (x - offset) * s``, so a user delta d becomes ``d * s`` in the normalised batch, with
``s = 1 / (std + eps)`` for MEAN_STD, ``2 / (max - min)`` for MIN_MAX (``2 / (q_hi - q_lo)`` for the
quantile modes) and ``s = 1`` for IDENTITY. Note that LeRobot 0.4.4's ``ACTConfig.normalization_mapping``
has no ``ENV`` entry, so by default the env state is **not** normalised (s = 1). ``s`` is read once from (a copy of)
the preprocessor's normaliser step by applying it to 0 and 1, so it is exactly what the preprocessor
does; the action scale is read the same way from the postprocessor's unnormaliser step.

All perturbed copies run in **one batched forward** of ``policy.model`` (``B * n_variants`` rows,
``n_variants`` = 2D central / D + 1 forward, so about that many times the cost of one observation's
forward; throttle it like GradCAM in a live loop). The policy's action queue and temporal ensembler
are never touched, no module hooks are registered, parameters are never written and gradients are off,
so it is safe beside a control forward running concurrently in another thread on the same weights (the
engine's own hooks record only for the thread that opened them).
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from lerobot.utils.constants import ACTION, OBS_ENV_STATE, OBS_IMAGES, OBS_STATE
from torch import Tensor

logger = logging.getLogger(__name__)



class SensitivityError(ValueError):
    """Bad sensitivity configuration or input; the message is one line saying what and what is expected."""


@dataclass(frozen=True)
class SensitivityConfig:
    """What to perturb and how.

    Attributes:
        deltas: one perturbation per env-state dimension, in the user's units (before normalisation),
            e.g. ``(0.01, 0.01)`` = 1 cm for (x, y) in metres. Finite and non-zero; the sign only
            chooses the direction of a one-sided difference.
        central: True: central difference ``(f(x+d) - f(x-d)) / 2d`` (2 rows per dimension, second-order
            accurate); False: forward difference ``(f(x+d) - f(x)) / d`` (1 row per dimension + 1 base row).
        n_steps: chunk steps compared; ``None`` = the policy's ``n_action_steps`` (the executed part).
    """

    deltas: tuple[float, ...]
    central: bool = True
    n_steps: int | None = None

    def __post_init__(self) -> None:
        try:
            values = tuple(float(d) for d in self.deltas)
        except (TypeError, ValueError) as exc:
            raise SensitivityError(f"env-state deltas must be a sequence of numbers, got {self.deltas!r}") from exc
        if not values:
            raise SensitivityError("env-state deltas are empty; give one delta per env-state dimension")
        if not all(math.isfinite(d) for d in values):
            raise SensitivityError(f"env-state deltas must be finite, got {list(values)}")
        if any(d == 0.0 for d in values):
            raise SensitivityError(f"env-state deltas must be non-zero, got {list(values)}")
        if self.n_steps is not None and self.n_steps < 1:
            raise SensitivityError(f"n_steps must be >= 1 (or None for n_action_steps), got {self.n_steps}")
        object.__setattr__(self, "deltas", values)


@dataclass(frozen=True)
class SensitivityResult:
    """Sensitivity of the executed actions to the env state for a batch of B observations.

    Attributes:
        per_dim: (B, D) mean |d action / d env_i| over the compared steps and action dimensions.
        overall: (B,) mean of ``per_dim`` over the D env-state dimensions.
        jacobian: (B, n_steps, A, D) finite-difference estimate of d action[t, a] / d env[i].
        deltas: (D,) the perturbations in user units; ``normalised_deltas``: (D,) the same in the
            normalised batch (``deltas * env_scale``).
        n_steps: compared chunk steps (the executed part by default).
        action_units: ``"dataset"`` (postprocessor given) or ``"normalised"``.
        units: human-readable unit of ``per_dim``/``overall``/``jacobian``.
    """

    per_dim: np.ndarray
    overall: np.ndarray
    jacobian: np.ndarray
    deltas: np.ndarray
    normalised_deltas: np.ndarray
    n_steps: int
    action_units: str
    units: str


class EnvStateSensitivity:
    """Finite-difference sensitivity of ACT's executed actions to ``observation.environment_state``.

    Args:
        policy: a LeRobot ``ACTPolicy`` with an env-state input, in eval mode.
        preprocessor: the policy's preprocessor pipeline (maps the user deltas through its normaliser;
            required, because a delta in metres means nothing to a normalised batch without it).
        config: the deltas (one per env-state dimension) and the difference scheme.
        postprocessor: the policy's postprocessor; when given, actions are measured in dataset units,
            otherwise in normalised action units.

    Example::

        sens = EnvStateSensitivity(policy, pre, SensitivityConfig(deltas=(0.01, 0.01)), post)
        result = sens.measure(batch)              # batch: the normalised (B, ...) batch the policy saw
        result.overall[0]                         # deg per metre for an SO-101 policy with xy in metres
    """

    def __init__(self, policy, preprocessor, config: SensitivityConfig, postprocessor=None) -> None:
        cfg = policy.config
        if cfg.env_state_feature is None:
            raise SensitivityError(
                "the policy has no observation.environment_state input; coordinate sensitivity needs one")
        self.env_dim = int(cfg.env_state_feature.shape[0])
        if len(config.deltas) != self.env_dim:
            raise SensitivityError(
                f"env-state deltas: got {len(config.deltas)} value(s) but the policy's env state has "
                f"{self.env_dim} dimension(s); give one delta per dimension")
        self.n_steps = int(config.n_steps if config.n_steps is not None else cfg.n_action_steps)
        if self.n_steps > cfg.chunk_size:
            raise SensitivityError(f"n_steps {self.n_steps} exceeds the policy's chunk_size {cfg.chunk_size}")
        if preprocessor is None:
            raise SensitivityError("a preprocessor is required to map env-state deltas through its normaliser")
        self.policy = policy
        self.preprocessor = preprocessor
        self.config = config
        self.camera_keys = tuple(cfg.image_features)
        self.action_dim = int(cfg.action_feature.shape[0])
        #: (D,) normalised env-state units per user unit.
        self.env_scale = affine_scale(preprocessor, OBS_ENV_STATE, self.env_dim, inverse=False)
        #: (A,) dataset action units per normalised action unit (ones without a postprocessor).
        self.action_scale = (affine_scale(postprocessor, ACTION, self.action_dim, inverse=True)
                             if postprocessor is not None else np.ones(self.action_dim))
        self.action_units = "dataset" if postprocessor is not None else "normalised"
        self.deltas = np.asarray(config.deltas, dtype=np.float64)
        logger.debug("env-state sensitivity: deltas %s (user) = %s (normalised), %d steps",
                     self.deltas, self.deltas * self.env_scale, self.n_steps)

    @property
    def n_variants(self) -> int:
        """Perturbed copies of each observation in the batched forward: 2D (central) or D + 1 (forward)."""
        return 2 * self.env_dim if self.config.central else self.env_dim + 1

    def measure_observation(self, observation: dict[str, Any]) -> SensitivityResult:
        """:meth:`measure` for one raw observation (unbatched, dataset units) via the preprocessor (B = 1)."""
        return self.measure(self.preprocessor(observation))

    def measure(self, batch: dict[str, Tensor]) -> SensitivityResult:
        """Sensitivity for a normalised batch (what the policy's ``select_action`` receives).

        Args:
            batch: ``observation.environment_state`` (B, D), camera images (B, 3, H, W) and
                ``observation.state`` (B, state_dim) when the policy has them; normalised.
        Returns:
            :class:`SensitivityResult` with (B, D) ``per_dim``, (B,) ``overall`` and
            (B, n_steps, A, D) ``jacobian``.
        """
        if self.policy.model.training:
            raise SensitivityError("the policy is in training mode; call policy.eval() before measuring sensitivity")
        if OBS_ENV_STATE not in batch:
            raise SensitivityError(f"the batch has no '{OBS_ENV_STATE}'; pass the normalised batch the policy sees")
        env = batch[OBS_ENV_STATE]
        if env.ndim != 2 or env.shape[1] != self.env_dim:
            raise SensitivityError(
                f"'{OBS_ENV_STATE}' has shape {tuple(env.shape)}; expected (B, {self.env_dim})")
        b = env.shape[0]
        step = torch.as_tensor(self.deltas * self.env_scale, dtype=env.dtype, device=env.device)  # (D,)
        offsets = torch.diag(step)  # (D, D): row i perturbs dimension i
        if self.config.central:
            offsets = torch.cat([offsets, -offsets])  # (2D, D)
        else:
            offsets = torch.cat([offsets, offsets.new_zeros(1, self.env_dim)])  # (D + 1, D), last = base
        v = offsets.shape[0]
        inputs = {k: _tile(batch[k], v) for k in (*self.camera_keys, OBS_STATE) if k in batch}
        inputs[OBS_ENV_STATE] = (env.unsqueeze(0) + offsets.unsqueeze(1)).reshape(v * b, self.env_dim)
        chunk = self._forward(inputs)[:, : self.n_steps].reshape(v, b, self.n_steps, -1).double()
        # central: rows [+d_i] - rows [-d_i]; forward: rows [+d_i] - the base row (broadcast)
        diff = chunk[: self.env_dim] - chunk[self.env_dim:]  # (D, B, n, A)
        denom = 2.0 * self.deltas if self.config.central else self.deltas
        diff = diff.cpu().numpy() * self.action_scale  # dataset (or normalised) action units
        jac = np.moveaxis(diff / denom[:, None, None, None], 0, -1)  # (B, n, A, D)
        per_dim = np.abs(jac).mean(axis=(1, 2))  # (B, D)
        unit = "dataset action units" if self.action_units == "dataset" else "normalised action units"
        return SensitivityResult(
            per_dim=per_dim,
            overall=per_dim.mean(axis=1),
            jacobian=jac,
            deltas=self.deltas.copy(),
            normalised_deltas=self.deltas * self.env_scale,
            n_steps=self.n_steps,
            action_units=self.action_units,
            units=f"{unit} per env-state unit (user units, before normalisation)",
        )

    @torch.no_grad()
    def _forward(self, inputs: dict[str, Tensor]) -> Tensor:
        """(V*B, chunk_size, A) normalised chunk from ``policy.model`` (no queue, no hooks, no grad)."""
        if self.camera_keys:
            inputs[OBS_IMAGES] = [inputs[k] for k in self.camera_keys]
        if OBS_STATE not in inputs:  # lerobot 0.4.4 reads batch["observation.state"].device unconditionally
            env = inputs[OBS_ENV_STATE]
            inputs[OBS_STATE] = env.new_zeros((env.shape[0], 0))
        return self.policy.model(inputs)[0]


def affine_scale(pipeline, key: str, dim: int, inverse: bool) -> np.ndarray:
    """(dim,) slope of the pipeline's (un)normaliser for ``key``: output change per unit input change.

    Applies a deep copy of the pipeline's ``NormalizerProcessorStep`` (``inverse=False``) or
    ``UnnormalizerProcessorStep`` (``inverse=True``) to 0 and 1 (the map is affine per dimension), so the
    caller's step is never moved to another device or dtype. A pipeline without such a step, or a feature
    type the step does not normalise (IDENTITY), gives ones.
    """
    from lerobot.processor import (
        NormalizerProcessorStep,
        TransitionKey,
        UnnormalizerProcessorStep,
        create_transition,
    )

    kind = UnnormalizerProcessorStep if inverse else NormalizerProcessorStep
    steps = [s for s in getattr(pipeline, "steps", ()) if isinstance(s, kind)]
    if not steps:
        logger.debug("no %s in the pipeline: %s is taken as unnormalised", kind.__name__, key)
        return np.ones(dim)
    step = copy.deepcopy(steps[0]).to(device="cpu", dtype=torch.float32)
    probe = torch.stack([torch.zeros(dim), torch.ones(dim)])  # (2, dim)
    if key == ACTION:
        out = step(create_transition(action=probe))[TransitionKey.ACTION]
    else:
        out = step(create_transition(observation={key: probe}))[TransitionKey.OBSERVATION][key]
    scale = (out[1] - out[0]).double().numpy()
    if not np.all(np.isfinite(scale)) or np.any(scale == 0):
        raise SensitivityError(f"the normaliser of '{key}' is degenerate (slope {scale.tolist()})")
    return scale


def without_env_state(policy):
    """A deep copy of ``policy`` whose env-state input projection is zeroed (weight and bias).

    The copy's env-state token is then the same for every input, so its actions cannot depend on the
    env state: the "coordinates carry no information" control. The original policy is not modified.
    """
    if getattr(policy.model, "encoder_env_state_input_proj", None) is None:
        raise SensitivityError("the policy has no env-state input projection (no observation.environment_state)")
    blind = copy.deepcopy(policy)
    with torch.no_grad():
        blind.model.encoder_env_state_input_proj.weight.zero_()
        blind.model.encoder_env_state_input_proj.bias.zero_()
    blind.eval()
    return blind


def _tile(x: Tensor, n: int) -> Tensor:
    """(B, ...) -> (n * B, ...): n copies, copy-major (row k * B + b is copy k of row b)."""
    return x.repeat(n, *([1] * (x.ndim - 1)))


__all__ = [
    "EnvStateSensitivity",
    "SensitivityConfig",
    "SensitivityError",
    "SensitivityResult",
    "affine_scale",
    "without_env_state",
]
