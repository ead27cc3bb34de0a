"""Why a control tick computed no action: one taxonomy for the node, the replay and the demo.

A reason is ``<kind>:<detail>``; ``kind`` is one of :data:`SKIP_KINDS` (what diagnostics and summaries
count), ``detail`` names the input and the numbers, e.g.::

    stale:/joint_states age=0.41s>0.25s
    bad_input.image:/camera/front/image_raw unsupported image encoding 'bayer_rggb8' ...
    bad_input.joint_limits:/joint_states joint 'shoulder_pan' is at 5 (ROS units), outside ...
    nonfinite_action:policy action [nan, ...]

``group`` (kind plus the input it names, ``stale:/joint_states``) is the finer count the replay's summary
reports. After a tick without an action the next action comes from a fresh forward pass (the policy's
action queue / temporal ensembler is reset), live and offline; a plan survives only a short run of ``stale`` /
``skew`` ticks (``plan_survives_gap_s``; :mod:`~act_interp_ros.pipeline.stepping`).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SKIP_KINDS", "SkipReason"]

#: Every kind of skipped tick, with what it means (the README's table is generated from this).
SKIP_KINDS: dict[str, str] = {
    "clock": "ROS time has not started (use_sim_time and no /clock yet)",
    "missing": "an input has not been received yet",
    "unstamped": "an input's header stamp is 0",
    "invalid": "an input's header stamp is not finite",
    "future": "an input's stamp is later than now by more than max_input_age_s",
    "stale": "an input's stamp is older than max_input_age_s",
    "skew": "camera stamps differ by more than max_camera_skew_s",
    "bad_input.image": "a camera message cannot be decoded (encoding, size, corrupt data)",
    "bad_input.joint_state": "the joint state lacks a joint, lists one twice, or holds a non-finite position",
    "bad_input.training_range": "with out_of_range_policy skip: a joint or env-state value (policy units) is outside "
                                "the checkpoint's training range widened by training_range_margin",
    "bad_input.joint_limits": "a joint is outside its limits by more than joint_limit_tolerance",
    "bad_input.env_state": "the environment state has the wrong number of values or a non-finite one",
    "bad_input.observation": "the observation does not fit the policy (e.g. image size with image_resize false)",
    "nonfinite_action": "the policy produced a non-finite action",
    "tick_error": "an unexpected error in the tick (logged with its traceback)",
    "overrun": "live only: the control loop was more than one tick behind (a tick waits while one runs)",
    "awaiting_chunk": "live, inference async only: the action queue is empty and the next chunk is still being "
                      "computed (at start and after a tick that could not act)",
}


@dataclass(frozen=True)
class SkipReason:
    """Why one tick computed no action: ``kind`` (a key of :data:`SKIP_KINDS`) and a one-line ``detail``."""

    kind: str
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in SKIP_KINDS:
            raise ValueError(f"unknown skip kind {self.kind!r}; expected one of {', '.join(SKIP_KINDS)}")

    def __str__(self) -> str:
        return f"{self.kind}:{self.detail}" if self.detail else self.kind

    @property
    def group(self) -> str:
        """Kind plus the first word of the detail (usually the input), e.g. ``stale:/joint_states``."""
        head = self.detail.split(" ", 1)[0] if self.detail else ""
        return f"{self.kind}:{head}" if head else self.kind

    @classmethod
    def parse(cls, text: str) -> SkipReason:
        """Inverse of ``str()``: ``"stale:/joint_states age=..."`` -> SkipReason("stale", "/joint_states age=...")."""
        kind, _, detail = text.partition(":")
        return cls(kind, detail)
