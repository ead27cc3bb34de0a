"""``act_interp_replay``: replay a recorded ROS 2 bag or LeRobotDataset episodes through an ACT policy
offline (no ROS/DDS needed).

    act_interp_replay BAG --policy PATH [--config config/so101.yaml] --out DIR
                      [--start S] [--end S] [--rate HZ] [--clock log|header] [--no-bag] [common options]
    act_interp_replay BAG --policy PATH [--config config/so101.yaml] --check-units [-p NAME:=VALUE ...]
    act_interp_replay --dataset ROOT_OR_REPO_ID [--episodes N ...] [--camera-map POLICY=DATASET ...]
                      --policy PATH [--config config/so101.yaml] --out DIR [common options]

    common options: [--batch-size N] [--methods M ...] [--side-every N] [--faithfulness-samples N]
                    [--rerun FILE.rrd] [--no-video] [--no-table] [--no-plot] [--table-format csv|parquet]
                    [--strict-size] [--device cpu] [-p NAME:=VALUE ...]
                    [--ablate CAMERA:x,y,w,h[:mean|blur] | --ablate-top CAMERA:MAP:PERCENT[:mean|blur]]
                    [--move CAMERA:x,y,w,h:dx,dy] [--regions FILE] [--save-maps]

A bag writes into DIR: ``interp_bag/`` (mcap bag: inputs + what the node publishes), ``attention_<cam>.mp4``
and ``grid.mp4``, ``ticks.csv`` (or ``.parquet``), ``attention_plot.png`` and ``summary.json``. A dataset
writes the same per episode into ``DIR/episode_NNN/`` (no bag; plus ``action_plot.png``, predicted vs
recorded action) and ``DIR/summary.json`` across episodes. ``--rerun`` also writes a Rerun recording.
``--ablate`` edits a region of one camera on every tick and records how much the executed chunk changes
(``ablation_change`` column, ``ablation_plot.png``, the summary's ``ablation``, ``ablated_<cam>.mp4``).
``--move`` cuts a region of one camera out of every frame (the hole filled from its surroundings), pastes it
shifted, and records whether the executed chunk follows it, against the opposite shift (``move_*`` columns,
``move_plot.png``, the summary's ``move`` and its line, ``moved_<cam>.mp4``; docs/offline_region_tools.md).
``--regions`` gives per tick and region each map's mass, density and lift over uniform and the chunk's change
when the region is ablated (``region_*`` columns, the summary's ``regions``); ``--save-maps`` writes ``maps.npz``.
``--check-units`` runs no model and writes nothing: per joint, the bag's range in policy units against the
checkpoint's training range, a verdict and, when a simple fit explains a mismatch, the ``joint_scale`` /
``joint_offset`` that fix it; it exits 3 when a joint is outside its training range.
Outputs appear in DIR only when the run succeeded; outputs of an earlier run into DIR that this run does not
write are removed. Bad input prints one line on stderr and exits with status 2; so does a run in which no tick
could compute an action (the line says why): such a run writes nothing into DIR and leaves an earlier run's
outputs there as they were.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # heavy imports happen after argument parsing
    from act_interp_ros.bag.replay import ReplaySummary
    from act_interp_ros.dataset.replay import DatasetReplaySummary
    from act_interp_ros.settings import NodeSettings

PROG = "act_interp_replay"
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_UNITS_MISMATCH = 3


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # raise instead of sys.exit so main() returns a status
        raise _UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog=PROG,
        description="Replay a recorded ROS 2 bag (directory, .mcap or .db3) or episodes of a LeRobotDataset through "
        "a LeRobot ACT policy offline and write attention/attribution overlays, videos, a per-tick table, plots "
        "and optionally a Rerun recording.",
    )
    p.add_argument("bag", nargs="?", default=None, help="rosbag2 directory, .mcap or .db3 file (or use --dataset)")
    p.add_argument("--dataset", default=None, metavar="ROOT_OR_REPO_ID",
                   help="replay a LeRobotDataset (v3.0) instead of a bag: a local dataset root or a Hugging Face hub "
                   "repo id (needs the network unless cached)")
    p.add_argument("--episodes", nargs="+", type=int, default=None, metavar="N",
                   help="dataset episodes to replay (default: all)")
    p.add_argument("--camera-map", nargs="+", default=None, metavar="POLICY=DATASET",
                   help="feed a dataset camera to a policy camera of another name, e.g. front=top or "
                   "observation.images.front=observation.images.top (default: by key)")
    p.add_argument("--policy", required=True, help="LeRobot ACT pretrained_model/ directory (or Hub repo id)")
    p.add_argument("--config", type=Path, default=None,
                   help="the node's ROS 2 params file (default: config/so101.yaml)")
    p.add_argument("--out", type=Path, default=None, help="output directory (created if needed; required unless "
                   "--check-units)")
    p.add_argument("--check-units", action="store_true",
                   help="bag: only check the joint states' units against the checkpoint's training range (no model, "
                   "no outputs): per joint the bag's range in policy units, the training range, a verdict and the "
                   "joint_scale/joint_offset that fix a mismatch; exit 3 when a joint is outside")
    p.add_argument("--rerun", type=Path, default=None, metavar="FILE.rrd",
                   help="also write a Rerun recording (camera frames, every overlay, actions, attention and "
                   "faithfulness series on the episode's timeline); open it with `rerun FILE.rrd`")
    p.add_argument("--start", type=float, default=None, metavar="S",
                   help="bag: start S seconds after the first camera/joint-state message")
    p.add_argument("--end", type=float, default=None, metavar="S",
                   help="bag: stop S seconds after the first camera/joint-state message")
    p.add_argument("--rate", type=float, default=None, metavar="HZ",
                   help="bag: tick rate (default: control_rate_hz; a dataset ticks at its fps)")
    p.add_argument("--batch-size", type=int, default=1, metavar="N",
                   help="run N ticks' forward passes in one batch (same actions as sequential; default 1)")
    p.add_argument("--methods", nargs="+", default=None, metavar="M",
                   help="attribution methods besides attention: gradcam, gradient_x_input, integrated_gradients, "
                   "occlusion (default: side_methods of the config; integrated_gradients and occlusion are offline "
                   "methods: tens to hundreds of forwards per map)")
    p.add_argument("--side-every", type=int, default=None, metavar="N",
                   help="those methods every N ticks (0 = off, 1 = every tick; default from side_rate_hz)")
    p.add_argument("--faithfulness-samples", type=int, default=8, metavar="N",
                   help="run the deletion (faithfulness) test of every map on about N method ticks (0 = off; "
                   "default 8)")
    ablate = p.add_mutually_exclusive_group()
    ablate.add_argument("--ablate", default=None, metavar="CAMERA:x,y,w,h[:mean|blur]",
                        help="edit this box (source pixels) of one camera on every tick, filled with the dataset's "
                        "mean colour or blurred, and record how much the executed chunk changes against the unedited "
                        "run: a column, ablation_plot.png, the summary and ablated_<camera>.mp4. Test a hypothesis "
                        "(\"it follows the shadow\"): ablate the suspect region, then an equal region on the object")
    ablate.add_argument("--ablate-top", default=None, metavar="CAMERA:MAP:PERCENT[:mean|blur]",
                        help="the same for the top PERCENT %% of a map's cells on each tick (MAP: attention, or a "
                        "side method computed in this run, e.g. front:gradient_x_input:10 with --side-every 1)")
    p.add_argument("--move", default=None, metavar="CAMERA:x,y,w,h:dx,dy",
                   help="cut this box (source pixels) out of one camera's frame on every tick (the hole filled "
                   "from its surroundings), paste it shifted by dx,dy, and record how much the executed chunk changes "
                   "and whether it follows the move (against the same paste at -dx,-dy): move_* columns, "
                   "move_plot.png, the summary and moved_<camera>.mp4. Test a hypothesis (\"it follows the "
                   "shadow\"): move the suspect; a shortcut that agrees with the object survives --ablate, not this")
    p.add_argument("--regions", default=None, metavar="FILE",
                   help="JSON/YAML file of named boxes per camera (fixed, or per frame): per tick and region, each "
                   "map's mass, density and lift over uniform, and the chunk's change when the box is ablated "
                   "(region_* columns, the summary's regions; docs/offline_region_tools.md)")
    p.add_argument("--save-maps", action="store_true",
                   help="write every map of every tick to maps.npz (per episode for datasets)")
    p.add_argument("--no-bag", action="store_true", help="bag: do not write the output bag")
    p.add_argument("--no-video", action="store_true", help="do not write videos")
    p.add_argument("--no-table", action="store_true", help="do not write the per-tick table")
    p.add_argument("--no-plot", action="store_true", help="do not write the attention plot")
    p.add_argument("--table-format", choices=("csv", "parquet"), default="csv", help="per-tick table format")
    p.add_argument("--strict-size", action="store_true",
                   help="do not resize images that are not the policy's size, like -p image_resize:=false: bag "
                   "images become bad input (skipped ticks), a dataset is refused (default: resize, warn once)")
    p.add_argument("--device", default=None, help="torch device: cpu, cuda, cuda:N, mps (default: from config)")
    p.add_argument("--clock", choices=("log", "header"), default=None,
                   help="bag: tick on log (receive) times like live playback (default) or on header stamps")
    p.add_argument("-p", "--param", action="append", default=[], metavar="NAME:=VALUE",
                   help="override a config parameter, e.g. -p camera_transports:='[compressed, compressed]'")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar, warnings and errors only")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging; tracebacks on internal errors")
    return p


def _setup_logging(quiet: bool, verbose: bool) -> Callable[[], None]:
    """Log to stderr (unless the root logger already has handlers); returns a function undoing it."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger()
    saved = [(root, root.level)]
    handler = None
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("matplotlib", "PIL", "torch", "urllib3", "huggingface_hub", "filelock"):
        logger = logging.getLogger(noisy)
        saved.append((logger, logger.level))
        logger.setLevel(max(level, logging.WARNING))

    def restore() -> None:
        for logger, old in saved:
            logger.setLevel(old)
        if handler is not None:
            root.removeHandler(handler)

    return restore


def _fail(message: str, status: int = EXIT_BAD_INPUT) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad input, 1 internal error, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        return _fail(str(exc))
    restore_logging = _setup_logging(args.quiet, args.verbose)
    try:
        return _run(args)
    finally:
        restore_logging()


#: Options that only make sense for one kind of input (flag -> argparse dest).
BAG_ONLY = {"--start": "start", "--end": "end", "--rate": "rate", "--clock": "clock", "--no-bag": "no_bag",
            "--check-units": "check_units"}
DATASET_ONLY = {"--episodes": "episodes", "--camera-map": "camera_map"}


def _check_input_choice(args: argparse.Namespace) -> str | None:
    """One line when the input is not exactly one of a bag and --dataset, or an option does not fit it."""
    if (args.bag is None) == (args.dataset is None):
        return ("give exactly one input: a bag (BAG) or a dataset (--dataset ROOT_OR_REPO_ID)"
                + (f", not both ('{args.bag}' and '{args.dataset}')" if args.bag is not None else ""))
    wrong = BAG_ONLY if args.dataset is not None else DATASET_ONLY
    used = [flag for flag, dest in wrong.items() if getattr(args, dest) not in (None, False)]
    if used:
        kind = "bag" if args.dataset is not None else "dataset"
        return f"{', '.join(used)} appl{'y' if len(used) > 1 else 'ies'} to {kind} replay only"
    return None


def _camera_map(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        policy_key, sep, dataset_key = item.partition("=")
        if not sep or not policy_key.strip() or not dataset_key.strip():
            raise ValueError(f"--camera-map entries are POLICY=DATASET camera keys or names, got '{item}'")
        out[policy_key.strip()] = dataset_key.strip()
    return out


def _run(args: argparse.Namespace) -> int:
    problem = _check_input_choice(args)
    if problem:
        return _fail(problem)
    if args.out is None and not args.check_units:
        return _fail("the following arguments are required: --out")

    # Heavy imports after argument parsing so --help is fast.
    from act_interp_ros.bag.reader import BagError  # noqa: PLC0415
    from act_interp_ros.bag.replay import ReplayError  # noqa: PLC0415
    from act_interp_ros.bag.units_check import UnitsCheckError  # noqa: PLC0415
    from act_interp_ros.inputs.calibration import CalibrationError, resolve_joint_mapping  # noqa: PLC0415
    from act_interp_ros.core import ObservationError, PolicyLoadError  # noqa: PLC0415
    from act_interp_ros.dataset import DatasetError  # noqa: PLC0415
    from act_interp_ros.offline.summary import move_line, region_lines  # noqa: PLC0415
    from act_interp_ros.settings import (  # noqa: PLC0415
        SettingsError,
        default_config,
        load_settings_yaml,
        parse_param_assignments,
    )

    try:
        overrides = parse_param_assignments(args.param)
        overrides["policy_path"] = args.policy
        if args.device:
            overrides["device"] = args.device
        if args.strict_size:
            overrides["image_resize"] = False
        config = args.config or default_config()
        settings, mapping_lines = resolve_joint_mapping(load_settings_yaml(config, overrides=overrides))
        for line in mapping_lines:
            logging.getLogger(PROG).info("%s", line)
        if args.check_units:
            return _check_units(args, settings)
        for hint in settings.warnings() if args.dataset is None else ():  # camera/topic hints concern bags
            logging.getLogger(PROG).warning("%s", hint)
        common = dict(
            batch_size=args.batch_size, methods=args.methods, side_every=args.side_every,
            faithfulness_samples=args.faithfulness_samples, write_video=not args.no_video,
            write_table=not args.no_table, write_plot=not args.no_plot, table_format=args.table_format,
            device=args.device, progress=not args.quiet, rerun_path=args.rerun, ablate=_ablation(args),
            move=_move(args), regions=_regions(args), save_maps=args.save_maps,
        )
        summary = (_replay_dataset if args.dataset is not None else _replay_bag)(args, settings, common)
    except KeyboardInterrupt:
        return _fail("interrupted; no output was written (partial files were removed)", EXIT_INTERRUPTED)
    except (BagError, DatasetError, ReplayError, SettingsError, PolicyLoadError, ObservationError,
            UnitsCheckError, CalibrationError) as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"{exc}")
    except Exception as exc:  # noqa: BLE001 - an internal error: one line unless --verbose
        if args.verbose:
            raise
        return _fail(f"internal error ({type(exc).__name__}: {exc}); rerun with --verbose for the traceback",
                     EXIT_INTERNAL)

    skipped = ", ".join(f"{k}: {v}" for k, v in summary.skipped_by_reason.items())
    if args.dataset is not None:
        print(f"replayed {len(summary.episodes)} episode(s), {summary.ticks} frames at {summary.fps:g} fps: "
              f"{summary.processed} with outputs, {summary.skipped} skipped{f' ({skipped})' if skipped else ''}; "
              f"{summary.timings['ticks_per_s']:.1f} frames/s")
        for ep in summary.episodes:
            mae = ep["action_error"]["all"]["mae"]
            print(f"  episode {ep['episode']}: {ep['ticks']} frames, {ep['skipped']} skipped, action MAE vs recorded "
                  f"{'-' if mae is None else f'{mae:.3g}'}")
    else:
        print(f"replayed {summary.ticks} ticks at {summary.rate_hz:g} Hz: {summary.processed} with outputs, "
              f"{summary.skipped} skipped{f' ({skipped})' if skipped else ''}; "
              f"{summary.timings['ticks_per_s']:.1f} ticks/s")
    print(summary.range_line())
    for line in [move_line(summary.move), *region_lines(summary.regions)]:
        if line:
            print(line)
    for name, path in summary.outputs.items():
        print(f"  {name}: {path}")
    return 0  # a run without any action raised NoActionError (a ReplayError) before committing anything


def _ablation(args: argparse.Namespace):
    """``--ablate`` / ``--ablate-top`` -> an AblationSpec (``None`` without); a bad spec is one ReplayError line."""
    from act_interp_ros.bag.replay import ReplayError  # noqa: PLC0415
    from act_interp_ros.core.ablation import AblationSpec  # noqa: PLC0415

    try:
        if args.ablate is not None:
            return AblationSpec.parse_box(args.ablate)
        if args.ablate_top is not None:
            return AblationSpec.parse_top(args.ablate_top)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    return None


def _move(args: argparse.Namespace):
    """``--move`` -> a MoveSpec (``None`` without); a bad spec is one ReplayError line."""
    from act_interp_ros.bag.replay import ReplayError  # noqa: PLC0415
    from act_interp_ros.core.region_move import MoveSpec  # noqa: PLC0415

    if args.move is None:
        return None
    try:
        return MoveSpec.parse(args.move)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None


def _regions(args: argparse.Namespace):
    """``--regions FILE`` -> a RegionSet (``None`` without); a bad file is one ReplayError line."""
    from act_interp_ros.bag.replay import ReplayError  # noqa: PLC0415
    from act_interp_ros.offline.regions import RegionSet  # noqa: PLC0415

    if args.regions is None:
        return None
    try:
        return RegionSet.load(args.regions)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None


def _check_units(args: argparse.Namespace, settings: NodeSettings) -> int:
    from act_interp_ros.bag.units_check import check_bag_units  # noqa: PLC0415

    report = check_bag_units(args.bag, args.policy, settings)
    for line in report.lines():
        print(line)
    return 0 if report.ok else EXIT_UNITS_MISMATCH


def _replay_bag(args: argparse.Namespace, settings: NodeSettings, common: dict[str, Any]) -> ReplaySummary:
    from act_interp_ros.bag.replay import ReplayOptions, replay_bag  # noqa: PLC0415

    options = ReplayOptions(**common, start_s=args.start, end_s=args.end, rate_hz=args.rate,
                            clock=args.clock or "log", write_bag=not args.no_bag)
    return replay_bag(args.bag, args.policy, settings, args.out, options)


def _replay_dataset(args: argparse.Namespace, settings: NodeSettings,
                    common: dict[str, Any]) -> DatasetReplaySummary:
    from act_interp_ros.bag.replay import ReplayError  # noqa: PLC0415
    from act_interp_ros.dataset.replay import DatasetReplayOptions, replay_dataset  # noqa: PLC0415

    try:
        camera_map = _camera_map(args.camera_map)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    options = DatasetReplayOptions(**common, episodes=args.episodes, camera_map=camera_map)
    return replay_dataset(args.dataset, args.policy, settings, args.out, options)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
