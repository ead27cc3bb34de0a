"""What an attribution map explains: a readout of ACT's predicted action chunk, shared by every method.

ACT predicts a normalised chunk ``a`` of shape (B, chunk_size, action_dim); the robot executes only its
first ``n = config.n_action_steps`` steps (the action queue), so the *executed* part ``a[:, :n]`` is what
"what would change the action the robot does" is about. An :class:`ActionTarget` turns the chunk into
``K`` outputs per batch element, ``outputs(chunk) -> (B, K)``:

==================== ===== =====================================================================
kind                  K     outputs
==================== ===== =====================================================================
``executed``          n*A   the executed chunk ``a[:, :n]`` flattened (perturbation methods only)
``executed_joints``   A     per joint, the sum over the executed steps ``sum_t a[:, t, j]``
``executed_l2``       1     ``||a[:, :n]||_2``
``executed_sum``      1     ``sum_{t<n, j} a[:, t, j]`` (joints can cancel)
``executed_joint``    1     one joint over the executed steps ``sum_{t<n} a[:, t, joint]``
``first_action_sum``  1     ``sum_j a[:, 0, j]`` (GradCAM's historical default)
``joint``             1     one joint of the first action ``a[:, 0, joint]``
``chunk_sum``         1     ``sum_{t, j} a[:, t, j]`` over the whole chunk
``chunk_l2``          1     ``||a||_2`` over the whole chunk
==================== ===== =====================================================================

How methods use the outputs:

* gradient methods attribute each output separately and add the per-output maps' magnitudes, so
  outputs never cancel each other (``executed_joints``: one backward pass per joint);
* perturbation methods (occlusion, the deletion test) score a perturbed input ``x'`` by the L2 change
  of the outputs, ``change = ||outputs(x') - outputs(x)||_2`` (``|delta y|`` for one output).

Defaults, measured with gradient x input on the known-answer model (``proofs/known_answer.py``: 64
held-out approach frames, pixel maps scored against the cube silhouettes; deletion test with 8 random
draws; rank correlation against the same architecture with random weights, Adebayo et al. 2018):

=================== ============ =================== ======================= ============== =========
target              target mass  target > distractor rank corr. vs random    faithfulness   backwards
                    vs uniform                       (criterion < 0.5)       (top / random)
=================== ============ =================== ======================= ============== =========
``executed_l2``     15.6x        100 %               +0.27                   5.37x          1
``executed_joints`` 13.9x        100 %               +0.60                   5.44x          6
``executed_sum``    12.6x        100 %               +0.28                   5.26x          1
``first_action_sum`` 12.3x       100 %               +0.27                   5.22x          1
=================== ============ =================== ======================= ============== =========

(``channel_reduction="sum_abs"``; with ``"abs_sum"`` every row is lower - 9.0x to 11.9x - and the
rank correlation rises to +0.50 .. +0.71.)

* :data:`DEFAULT_GRADIENT_TARGET` = ``executed_l2``: the norm of the executed part of the chunk, one
  backward pass (gradient x input costs ~2.2x a forward on CPU). Joints cannot cancel in its value (a
  plain sum can: ``executed_sum`` is 12.6x); its gradient ``sum_j (a_j / ||a||) da_j/dx`` weighs each
  executed action component by its share of the norm. ``executed_joints`` - per-joint maps whose
  magnitudes are added, so nothing can cancel at all - puts less mass on the target, costs one backward
  per joint and fails the randomisation check (+0.60: adding six magnitude maps leaves mostly the
  input's own structure), so it stays an option, not the default.
* :data:`DEFAULT_PERTURBATION_TARGET` = ``executed``: the L2 change of the whole executed chunk - a
  distance, so nothing cancels, and no backward pass is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from act_interp_ros.settings.vocabulary import JOINT_TARGET_KINDS, SCALAR_TARGET_KINDS, TARGET_KINDS



@dataclass(frozen=True)
class ActionTarget:
    """A readout of the (B, chunk_size, action_dim) normalised action chunk (see the module docstring).

    Attributes:
        kind: one of :data:`TARGET_KINDS`.
        joint: action component index for ``joint`` / ``executed_joint`` (negative counts from the end);
            ``None`` for every other kind.
    """

    kind: str = "executed_l2"
    joint: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise ValueError(f"action target '{self.kind}' unknown; expected one of {', '.join(TARGET_KINDS)}")
        if self.kind in JOINT_TARGET_KINDS and self.joint is None:
            raise ValueError(f"action target '{self.kind}' needs a joint index (joint=<action component>)")
        if self.kind not in JOINT_TARGET_KINDS and self.joint is not None:
            raise ValueError(
                f"action target '{self.kind}' takes no joint index (only {' and '.join(JOINT_TARGET_KINDS)} do), "
                f"got joint={self.joint}"
            )

    @property
    def uses_executed_steps(self) -> bool:
        return self.kind.startswith("executed")

    def n_outputs(self, action_dim: int, n_action_steps: int) -> int:
        """K, the number of outputs per batch element."""
        if self.kind == "executed":
            return n_action_steps * action_dim
        return action_dim if self.kind == "executed_joints" else 1

    def validate(self, chunk_size: int, action_dim: int, n_action_steps: int | None) -> None:
        """Raise one clear ``ValueError`` if this target cannot be read from such a chunk."""
        if self.joint is not None and not -action_dim <= self.joint < action_dim:
            raise ValueError(f"action target joint {self.joint} out of range for action_dim {action_dim}")
        if self.uses_executed_steps:
            if n_action_steps is None:
                raise ValueError(f"action target '{self.kind}' needs n_action_steps (the executed part of the chunk)")
            if not 1 <= n_action_steps <= chunk_size:
                raise ValueError(f"n_action_steps {n_action_steps} out of range for chunk_size {chunk_size}")

    def outputs(self, chunk: Tensor, n_action_steps: int | None = None) -> Tensor:
        """(B, chunk_size, action_dim) chunk -> (B, K) outputs; ``n_action_steps`` = the executed steps."""
        _, chunk_size, action_dim = chunk.shape
        self.validate(chunk_size, action_dim, n_action_steps)
        kind = self.kind
        if self.uses_executed_steps:
            part = chunk[:, :n_action_steps]  # (B, n, A)
            if kind == "executed":
                return part.flatten(1)
            if kind == "executed_joints":
                return part.sum(dim=1)
            if kind == "executed_l2":
                return part.flatten(1).norm(dim=-1, keepdim=True)
            if kind == "executed_sum":
                return part.flatten(1).sum(dim=-1, keepdim=True)
            return part[:, :, self.joint].sum(dim=1, keepdim=True)  # executed_joint
        if kind == "first_action_sum":
            return chunk[:, 0].sum(dim=-1, keepdim=True)
        if kind == "joint":
            return chunk[:, 0, self.joint].unsqueeze(-1)
        if kind == "chunk_sum":
            return chunk.flatten(1).sum(dim=-1, keepdim=True)
        return chunk.flatten(1).norm(dim=-1, keepdim=True)  # chunk_l2

    def score(self, chunk: Tensor, n_action_steps: int | None = None) -> Tensor:
        """(B, chunk_size, action_dim) -> (B,) for the one-output kinds (:data:`SCALAR_TARGET_KINDS`)."""
        if self.kind not in SCALAR_TARGET_KINDS:
            raise ValueError(
                f"action target '{self.kind}' has several outputs, not one scalar; use one of {', '.join(SCALAR_TARGET_KINDS)}"
            )
        return self.outputs(chunk, n_action_steps)[:, 0]

    def change(self, chunk: Tensor, reference: Tensor, n_action_steps: int | None = None) -> Tensor:
        """L2 change of the outputs between two (B, chunk_size, action_dim) chunks -> (B,)."""
        return (self.outputs(chunk, n_action_steps) - self.outputs(reference, n_action_steps)).norm(dim=-1)


#: Default target of the gradient methods (see the module docstring for the measurement behind it).
DEFAULT_GRADIENT_TARGET = ActionTarget("executed_l2")
#: Default target of occlusion and of the deletion (faithfulness) test.
DEFAULT_PERTURBATION_TARGET = ActionTarget("executed")
