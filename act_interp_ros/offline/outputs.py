"""Offline replay outputs: what one tick produced, atomic staging, the per-tick table, the summary (plots:
:mod:`act_interp_ros.offline.plots`).

Nothing is written under its final name until the whole run succeeded: every output is built inside a
hidden staging directory in the output directory (``.act_interp_replay.partial-<pid>-<n>/``) and
:meth:`OutputStage.commit` moves each one into place with ``os.replace`` (atomic on one file system).
An interrupted run leaves only the staging directory, whose name says it is partial.

The streaming writers (output bag, videos, Rerun) live in :mod:`act_interp_ros.bag.bag_output`,
:mod:`act_interp_ros.offline.videos` and :mod:`act_interp_ros.rerun_recording`; they consume
:class:`~act_interp_ros.offline.records.TickRecord` objects in tick order.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any


from act_interp_ros.offline.records import TickRecord

logger = logging.getLogger(__name__)

STAGING_PREFIX = ".act_interp_replay.partial-"
TABLE_FORMATS = ("csv", "parquet")

# Final names inside the output directory.
BAG_NAME = "interp_bag"
GRID_VIDEO_NAME = "grid.mp4"
PLOT_NAME = "attention_plot.png"
ACTION_PLOT_NAME = "action_plot.png"
ABLATION_PLOT_NAME = "ablation_plot.png"
MOVE_PLOT_NAME = "move_plot.png"
MAPS_NAME = "maps.npz"
SUMMARY_NAME = "summary.json"


def camera_video_name(camera: str) -> str:
    """File name of a camera's attention video (``camera`` = short name, e.g. ``front``)."""
    return f"attention_{camera}.mp4"


def ablated_video_name(camera: str) -> str:
    """File name of the video of a camera's frames as edited by ``--ablate`` (``camera`` = short name)."""
    return f"ablated_{camera}.mp4"


def moved_video_name(camera: str) -> str:
    """File name of the video of a camera's frames as moved by ``--move`` (``camera`` = short name)."""
    return f"moved_{camera}.mp4"


def table_name(fmt: str) -> str:
    return f"ticks.{fmt}"


# ---------------------------------------------------------------------------------------- staging
class OutputStage:
    """A staging directory inside ``out_dir``; outputs are built there and moved into place by :meth:`commit`."""

    _counter = itertools.count()

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.created = not self.out_dir.exists()
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create output directory '{self.out_dir}': {exc}") from None
        if not self.out_dir.is_dir():
            raise NotADirectoryError(f"output path '{self.out_dir}' exists and is not a directory")
        self._remove_stale()
        self.dir = self.out_dir / f"{STAGING_PREFIX}{os.getpid()}-{next(self._counter)}"
        self.dir.mkdir()
        self.committed: dict[str, Path] = {}

    def _remove_stale(self) -> None:
        """Delete staging directories left by killed runs (their process no longer exists)."""
        for stale in self.out_dir.glob(f"{STAGING_PREFIX}*"):
            pid_text = stale.name[len(STAGING_PREFIX):].split("-", 1)[0]
            if not pid_text.isdigit() or int(pid_text) == os.getpid() or _pid_alive(int(pid_text)):
                continue
            logger.info("removing '%s' left by an interrupted run", stale)
            shutil.rmtree(stale, ignore_errors=True)

    def path(self, name: str) -> Path:
        """Where to build the output that will be called ``name`` in ``out_dir``."""
        return self.dir / name

    def commit(self, names: Sequence[str]) -> dict[str, Path]:
        """Move the staged outputs ``names`` into ``out_dir`` (replacing older ones), then remove staging."""
        for name in names:
            src, dst = self.dir / name, self.out_dir / name
            if not src.exists():
                raise FileNotFoundError(f"staged output '{src}' is missing")
            if src.is_dir() and dst.exists():
                old = self.dir / f".old-{name}"
                os.replace(dst, old)  # a directory cannot be replaced in one step; park the old one
            os.replace(src, dst)
            self.committed[name] = dst
        self.discard()
        return dict(self.committed)

    def discard(self) -> None:
        """Delete the staging directory and everything still in it."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def abandon(self) -> None:
        """A failed run: :meth:`discard`, and remove ``out_dir`` too when this stage created it (still empty)."""
        self.discard()
        if self.created:
            try:
                self.out_dir.rmdir()
            except OSError:  # not empty: something else wrote there meanwhile
                pass


def previous_outputs(out_dir: Path) -> set[str]:
    """Names of the outputs an earlier run listed in ``out_dir/summary.json`` as written into its output directory.

    An entry counts when its folder is the ``out_dir`` that run recorded, compared as written (so a relative
    ``--out`` given from another working directory, or a folder moved since, still matches), or is this
    ``out_dir``; a file that run wrote elsewhere (e.g. ``--rerun /other/x.rrd``) does not.
    """
    try:
        data = json.loads((Path(out_dir) / SUMMARY_NAME).read_text())
        listed, recorded = data.get("outputs", {}), data.get("out_dir")
    except (OSError, ValueError, AttributeError):
        return set()
    here = Path(out_dir).resolve()
    names = set()
    for path in (listed.values() if isinstance(listed, dict) else []):
        p = Path(str(path))
        inside = (isinstance(recorded, str) and p.parent == Path(recorded)) or p.parent.resolve() == here
        if inside and p.name not in ("", ".", "..") and not p.name.startswith("."):
            names.add(p.name)
    return names


def remove_stale_outputs(out_dir: Path, previous: set[str], keep: set[str]) -> None:
    """Delete outputs of an earlier run (``previous``) that this run did not write (not in ``keep``)."""
    for name in sorted(previous - keep):
        path = Path(out_dir) / name
        logger.info("removing '%s' left by an earlier run (not written by this one)", path)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def commit_outputs(stage: OutputStage, staged: Sequence[str], keep: set[str] | None = None) -> dict[str, Path]:
    """Commit ``staged`` and remove what an earlier run listed in ``summary.json`` but this run did not write.

    ``keep``: further names inside ``out_dir`` this run wrote itself (e.g. a Rerun file); ``summary.json`` is
    always kept (the caller rewrites it next). Returns name -> final path of the committed outputs.
    """
    previous = previous_outputs(stage.out_dir)
    committed = stage.commit(staged)
    remove_stale_outputs(stage.out_dir, previous, set(committed) | {SUMMARY_NAME} | set(keep or ()))
    return committed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM)
        return True
    return True


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temporary sibling and ``os.replace``."""
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ table
def range_column_name(counter: str) -> str:
    """``state_outside_training_range.elbow_flex`` -> ``elbow_flex``; env state -> ``env_state.<name>``; a
    camera -> ``image.<camera>``."""
    kind, _, name = counter.partition(".")
    return name if kind.startswith("state_") else f"env_state.{name}" if kind.startswith("env_state") else f"image.{name}"


#: The ``--move`` columns of the per-tick table.
MOVE_COLUMNS = ("move_change", "move_control_change", "move_vs_control", "move_follow")


def move_columns(rec: TickRecord) -> dict[str, float]:
    """The ``--move`` columns of one tick (NaN where the move did not apply)."""
    nan = math.nan
    if rec.move_change is None:
        return dict.fromkeys(MOVE_COLUMNS, nan)
    den = rec.move_change + rec.move_control_change
    return {"move_change": rec.move_change, "move_control_change": rec.move_control_change,
            "move_vs_control": rec.move_vs_control, "move_follow": rec.move_vs_control / den if den > 0 else nan}


class TickTable:
    """Per-tick rows: time, skip reason, attention shares and lifts, map methods, faithfulness, actions, stamps.

    Columns (fixed, so a run where every tick was skipped still has them all)::

        tick, time_s, stamp_ns, skipped, skip_kind, skip_reason, late_frames, outside_training_range, new_plan, maps,
        attn_proprio?, attn_env_state?, attn_latent, attn_<camera>...,
        lift_proprio?, lift_env_state?, lift_<camera>...,  faith_<method>..., ablation_change?,
        move_change?, move_control_change?, move_vs_control?, move_follow?, region_<name>_<map>_<field>...,
        action_<joint>..., [recorded_<joint>..., error_<joint>...], command_clamped,
        stamp_<camera>_ns..., stamp_joint_state_ns        (bags; exact integer nanoseconds)

    ``late_frames`` says why a tick that acted from the policy's queue had late camera frames (no forward, no maps
    on it; empty otherwise). ``outside_training_range`` lists the inputs outside the checkpoint's training range (joint names,
    ``env_state.<name>``, ``image.<camera>``; empty when none); ``maps`` lists the side methods computed on the tick; ``faith_<method>`` is the deletion-test ratio on
    sampled ticks; ``env_sensitivity`` (env-state policies) the executed chunk's change per env-state unit; ``recorded_*`` / ``error_*`` (dataset replay) are the demonstration's action and
    ``predicted - recorded``; ``ablation_change`` (with ``--ablate``) the executed chunk's change when the region is
    edited (normalised L2; empty where the region does not exist on the tick). ``move_*`` (with ``--move``): the
    executed chunk's change under the move and under the opposite (control) move, the change between the two, and
    ``move_follow`` = vs_control / (change + control_change) in [0, 1] (1: the chunk follows the region).
    ``region_*`` (with ``--regions``): :mod:`~act_interp_ros.offline.regions` (empty where not computed).
    """

    def __init__(self, camera_keys: Sequence[str], camera_names: Sequence[str], joint_topic: str | None,
                 camera_topics: Sequence[str], action_names: Sequence[str], has_state: bool, has_env_state: bool,
                 methods: Sequence[str] = (), recorded: bool = False, ablation: bool = False,
                 move: bool = False, region_columns: Sequence[str] = ()) -> None:
        self.camera_keys = list(camera_keys)
        self.camera_names = list(camera_names)
        self.camera_topics = list(camera_topics)
        self.joint_topic = joint_topic
        self.action_names = list(action_names)
        self.has_state = has_state
        self.has_env_state = has_env_state
        self.methods = list(methods)
        self.recorded = recorded
        self.ablation = ablation
        self.move = move
        self.region_columns = list(region_columns)
        self.rows: list[dict[str, Any]] = []

    @property
    def fraction_columns(self) -> list[str]:
        cols = ["attn_proprio"] if self.has_state else []
        cols += ["attn_env_state"] if self.has_env_state else []
        return cols + ["attn_latent"] + [f"attn_{n}" for n in self.camera_names]

    @property
    def lift_columns(self) -> list[str]:
        cols = ["lift_proprio"] if self.has_state else []
        cols += ["lift_env_state"] if self.has_env_state else []
        return cols + [f"lift_{n}" for n in self.camera_names]

    @property
    def faithfulness_columns(self) -> list[str]:
        return [f"faith_{m}" for m in ("attention", *self.methods)]

    def add(self, rec: TickRecord) -> None:
        nan = math.nan
        interp = rec.interpretation
        fr = interp.fractions if interp is not None else {}
        lifts = interp.lifts if interp is not None else {}
        row: dict[str, Any] = {
            "tick": rec.index,
            "time_s": round(rec.rel_s, 9),
            "stamp_ns": rec.time_ns,
            "skipped": rec.skipped,
            "skip_kind": rec.skip.kind if rec.skip is not None else "",
            "skip_reason": rec.skip_reason or "",
            "late_frames": rec.late_frames,
            "outside_training_range": ",".join(range_column_name(f.counter) for f in rec.range_flags),
            "new_plan": rec.new_plan,
            "maps": ",".join(m for m in self.methods if m in rec.side_maps),
        }
        for group, name in (("state", "proprio"), ("env_state", "env_state")):
            if (group == "state" and self.has_state) or (group == "env_state" and self.has_env_state):
                row[f"attn_{name}"] = fr.get(group, nan)
                row[f"lift_{name}"] = lifts.get(group, nan)
        row["attn_latent"] = fr.get("latent", nan)
        for key, name in zip(self.camera_keys, self.camera_names):
            row[f"attn_{name}"] = fr.get(key, nan)
            row[f"lift_{name}"] = lifts.get(key, nan)
        for m in ("attention", *self.methods):
            row[f"faith_{m}"] = rec.faithfulness.get(m, nan)
        if self.ablation:
            row["ablation_change"] = rec.ablation_change if rec.ablation_change is not None else nan
        if self.move:
            row.update(move_columns(rec))
        for col in self.region_columns:
            row[col] = rec.region_values.get(col, nan)
        if self.has_env_state:
            row["env_sensitivity"] = rec.env_sensitivity if rec.env_sensitivity is not None else nan
        for j, name in enumerate(self.action_names):
            row[f"action_{name}"] = float(rec.action[j]) if rec.action is not None else nan
            if self.recorded:
                rec_a = rec.recorded_action
                row[f"recorded_{name}"] = float(rec_a[j]) if rec_a is not None else nan
                row[f"error_{name}"] = (float(rec.action[j] - rec_a[j]) if rec.action is not None and rec_a is not None
                                        else nan)
        row["command_clamped"] = rec.command_clamped
        for topic, name in zip(self.camera_topics, self.camera_names):
            row[f"stamp_{name}_ns"] = rec.input_stamps_ns.get(topic)
        if self.joint_topic is not None:
            row["stamp_joint_state_ns"] = rec.input_stamps_ns.get(self.joint_topic)
        self.rows.append(row)

    def dataframe(self):
        """The rows as a pandas DataFrame; stamp columns are exact nullable int64 nanoseconds (``Int64``)."""
        import pandas as pd

        columns = self._columns()
        data = {}
        for col in columns:
            values = [row.get(col) for row in self.rows]
            if col.startswith("stamp_"):  # never through float64: ns stamps need all 64 bits
                data[col] = pd.array(values, dtype="Int64")
            else:
                data[col] = values
        return pd.DataFrame(data, columns=columns)

    def _columns(self) -> list[str]:
        cols = ["tick", "time_s", "stamp_ns", "skipped", "skip_kind", "skip_reason", "late_frames", "outside_training_range",
                "new_plan", "maps",
                *self.fraction_columns, *self.lift_columns, *self.faithfulness_columns]
        cols += ["ablation_change"] if self.ablation else []
        cols += list(MOVE_COLUMNS) if self.move else []
        cols += self.region_columns
        cols += ["env_sensitivity"] if self.has_env_state else []
        cols += [f"action_{n}" for n in self.action_names]
        if self.recorded:
            cols += [f"recorded_{n}" for n in self.action_names] + [f"error_{n}" for n in self.action_names]
        cols += ["command_clamped"]
        if self.camera_topics:
            cols += [f"stamp_{n}_ns" for n in self.camera_names]
        if self.joint_topic is not None:
            cols += ["stamp_joint_state_ns"]
        return cols

    def write(self, path: Path, fmt: str) -> None:
        """Write the table as CSV or Parquet (``fmt`` in :data:`TABLE_FORMATS`)."""
        df = self.dataframe()
        if fmt == "csv":
            df.to_csv(path, index=False)
        elif fmt == "parquet":
            try:
                df.to_parquet(path, index=False)
            except ImportError as exc:
                raise RuntimeError(f"writing Parquet needs pyarrow ({exc}); use --table-format csv") from None
        else:
            raise ValueError(f"table format '{fmt}' unknown; expected one of {', '.join(TABLE_FORMATS)}")


def read_table(path: str | Path):
    """Read a table written by :meth:`TickTable.write` back into a DataFrame (by file suffix)."""
    import pandas as pd

    path = Path(path)
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    header = pd.read_csv(path, nrows=0).columns
    dtypes = {c: "Int64" for c in header if c.startswith("stamp_")}
    text = {"skip_reason": str, "skip_kind": str, "maps": str}
    # round_trip: the exact float64 that was written (pandas < 3 parses to the nearest few ulps by default)
    return pd.read_csv(path, keep_default_na=False, na_values=[""], float_precision="round_trip",
                       dtype={**text, **dtypes}).fillna({k: "" for k in text})


