"""A replay's ticks in a Rerun recording: frames, overlays, predicted and recorded actions, attention scalars."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from act_interp_ros.offline.records import TickRecord
from act_interp_ros.settings import NodeSettings
from act_interp_ros.offline.summary import (
    group_name,
)

# ---------------------------------------------------------------------------------------------- rerun
def open_rerun(path: str | os.PathLike[str], joint_names: Sequence[str], settings: NodeSettings, name: str):
    """A :class:`~act_interp_ros.rerun_recording.RerunRecordingWriter` for a replay (staged until closed)."""
    from act_interp_ros.rerun_recording import RerunRecordingWriter

    return RerunRecordingWriter(path, recording_name=name, joint_names=list(joint_names),
                                overlay_alpha=float(settings.overlay_alpha))


class RerunTicks:
    """Logs one sequence's tick records into a Rerun recording as episode ``episode_index``.

    Per tick (timelines ``frame_index`` = ``rec.index``, ``time`` = ``rec.rel_s``): every camera frame, its
    overlays (``attention``; ``attention_plan`` when the tick started a new chunk; each side method on side
    ticks), the predicted and recorded actions, and the scalars ``attention/<group>``, ``lift/<group>``
    (proprio, env_state, latent, each camera) and ``faithfulness/<method>`` on sampled ticks.
    """

    def __init__(self, writer, episode_index: int, task: str | None = None) -> None:
        self.writer = writer
        self.episode = int(episode_index)
        writer.begin_episode(self.episode, task=task)

    def on_tick(self, rec: TickRecord) -> None:
        overlays: dict[str, dict[str, np.ndarray]] = {}
        for key in rec.frames:
            named: dict[str, np.ndarray] = {}
            if key in rec.overlays:
                named["attention"] = rec.overlays[key]
            if key in rec.plan_overlays:
                named["attention_plan"] = rec.plan_overlays[key]
            for method, per_cam in rec.side_overlays.items():
                if key in per_cam:
                    named[method] = per_cam[key]
            if named:
                overlays[key] = named
        self.writer.log_frame(self.episode, rec.index, rec.rel_s,
                              images={key: frame.rgb for key, frame in rec.frames.items()}, overlays=overlays,
                              predicted_action=rec.action, recorded_action=rec.recorded_action,
                              scalars=tick_scalars(rec))


def tick_scalars(rec: TickRecord) -> dict[str, float]:
    """``attention/<group>``, ``lift/<group>`` and ``faithfulness/<method>`` of one tick (empty when skipped)."""
    interp = rec.interpretation
    if rec.skipped or interp is None:
        return {}
    scalars = {f"attention/{group_name(g)}": float(v) for g, v in interp.fractions.items()}
    scalars |= {f"lift/{group_name(g)}": float(v) for g, v in interp.lifts.items()}
    scalars |= {f"faithfulness/{m}": float(v) for m, v in rec.faithfulness.items()}
    return scalars
