"""``act_interp_demo``: the README's first command - the live node on a known-answer model, end to end.

What it does (observe-only, no robot, loopback DDS only):

1. builds or reuses the cached known-answer ACT (:mod:`.model`) and a cached demo bag (:mod:`.bag_cache`);
2. starts the real ``act_interp_node`` as its own process (:mod:`act_interp_ros.ros.node_process`) with
   ``config/so101.yaml``, ``publish_actions:=false``, ``use_sim_time:=true`` and the policy's cameras;
3. records the node's outputs in-process (:mod:`.recorder`, topics from the output contract) while the
   bag is played into it (:class:`~act_interp_ros.bag.play.BagPlayer`, with /clock) at real time or ``--rate``;
4. writes one folder (``--out``, default ``./demo_output``): attention and GradCAM videos per camera, an
   overview video, the attention-over-time plot, PNG stills, ``summary.md`` and ``summary.json``
   (:mod:`.report`, :mod:`.analysis`). Everything is built in a hidden staging directory and moved into
   place at the end; ``summary.json`` is written last.

ROS traffic stays on this machine: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a private
``ROS_DOMAIN_ID`` (``$ACT_INTERP_DEMO_DOMAIN_ID`` or a random one) for the demo and the node.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from act_interp_ros.demo.bag_cache import bag_cache_root, ensure_demo_bag
from act_interp_ros.demo.errors import DemoError
from act_interp_ros.demo.model import ensure_model, model_summary
from act_interp_ros.ros.node_process import NodeProcess, node_command, private_domain_id, ros_environment
from act_interp_ros.demo.summary import build_summary, summary_markdown

logger = logging.getLogger("act_interp_demo")

PROG = "act_interp_demo"
NODE_NAME = "act_interp_node"
DEFAULT_OUT = "demo_output"
DEFAULT_SECONDS = 12.0
DEMO_SIDE_RATE_HZ = 2.0
DOMAIN_ENV = "ACT_INTERP_DEMO_DOMAIN_ID"


@dataclass
class DemoOptions:
    out: Path = Path(DEFAULT_OUT)
    seconds: float = DEFAULT_SECONDS
    rate: float = 1.0
    gradcam: bool = True
    rebuild: bool = False
    policy: Path | None = None
    config: Path | None = None
    node_timeout_s: float = 300.0
    progress: bool = True


@dataclass
class _Session:
    """What one demo run started (stopped in reverse order by :func:`_stop_all`)."""

    context: Any = None
    node: NodeProcess | None = None
    recorder: Any = None
    player_node: Any = None
    player: Any = None
    files: list[str] = field(default_factory=list)


def _tqdm(enabled: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, dynamic_ncols=True, **kwargs)


def policy_camera_overrides(policy: Path) -> dict[str, list[str]]:
    """Node camera parameters for the policy's own cameras (``observation.images.<name>`` on
    ``/camera/<name>/image_raw``, the demo bag's topics): the known-answer model uses the front camera only."""
    try:
        features = json.loads((policy / "config.json").read_text()).get("input_features", {})
    except (OSError, ValueError) as exc:
        raise DemoError(f"cannot read the policy's cameras from {policy / 'config.json'}: {exc}") from None
    keys = [k for k in features if k.startswith("observation.images.")]
    if not keys:
        raise DemoError(f"{policy / 'config.json'} lists no observation.images.* input; the demo needs a camera policy")
    names = [k.split(".", 2)[2] for k in keys]
    return {"camera_keys": keys, "camera_topics": [f"/camera/{n}/image_raw" for n in names],
            "camera_transports": ["raw"] * len(keys)}


def wait_for_node(node: NodeProcess, recorder, timeout_s: float, progress: bool) -> float:
    """Block until the node subscribes to every input and publishes every output; returns seconds waited."""
    t0 = time.monotonic()
    next_log = t0 + 15.0
    with _tqdm(progress, total=None, desc="waiting for act_interp_node", unit="s",
               bar_format="{desc}: {elapsed}") as bar:
        while True:
            if not node.alive():
                raise DemoError(f"{NODE_NAME} exited with code {node.proc.returncode} during start-up. Its last "
                                f"output ({node.log_path}):\n{node.log_tail()}")
            if recorder.node_ready():
                return time.monotonic() - t0
            now = time.monotonic()
            if now - t0 > timeout_s:
                missing = [t for t, n in recorder.graph_state().items() if n < 1]
                raise DemoError(f"{NODE_NAME} did not come up within {timeout_s:.0f} s (not yet on: {missing}); "
                                f"raise --node-timeout on a slow machine. Its last output:\n{node.log_tail()}")
            if now >= next_log:
                logger.info("still waiting for %s (loading torch, lerobot and the policy): %.0f s",
                            NODE_NAME, now - t0)
                next_log = now + 15.0
            bar.update(0)
            time.sleep(0.2)


# -------------------------------------------------------------------------------------------- run
def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run the demo; returns the summary dict (also written to ``opts.out/summary.json``)."""
    if not 2.0 <= opts.seconds <= 120.0:
        raise DemoError(f"--seconds must be within 2..120, got {opts.seconds:g}")
    if not 0.05 <= opts.rate <= 4.0:
        raise DemoError(f"--rate must be within 0.05..4, got {opts.rate:g}")
    try:
        domain = private_domain_id(DOMAIN_ENV)
    except ValueError as exc:
        raise DemoError(str(exc)) from None
    with ros_environment(domain):
        return _run(opts, domain)


def _run(opts: DemoOptions, domain: int) -> dict[str, Any]:
    from act_interp_ros.offline.outputs import OutputStage
    from act_interp_ros.settings import SettingsError, default_config, load_settings_yaml

    t_start = time.monotonic()
    timings: dict[str, float] = {}
    try:
        config = (opts.config or default_config()).resolve()
    except SettingsError as exc:
        raise DemoError(str(exc)) from None
    out_dir = opts.out.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"--out {out_dir} exists and is not a directory")

    logger.info("[1/5] known-answer model (cached in %s)",
                bag_cache_root().parent if opts.policy is None else opts.policy)
    t = time.monotonic()
    model = ensure_model(opts.policy, opts.rebuild, opts.progress)
    timings["model"] = time.monotonic() - t
    mae = model_summary(model).get("held_out_action_mae") or {}
    logger.info("model %s: %s%s", model["path"], "trained now" if model["built_now"] else "reused from the cache",
                f"; held-out action MAE {mae['model']:.2f} vs mean-action baseline {mae['mean_action_baseline']:.2f}"
                if mae.get("model") is not None and mae.get("mean_action_baseline") is not None else "")

    logger.info("[2/5] demo bag")
    t = time.monotonic()
    bag = ensure_demo_bag(opts.seconds, rebuild=opts.rebuild, progress=opts.progress)
    timings["bag"] = time.monotonic() - t
    logger.info("bag %s (%s): %.1f s, %d episode(s)", bag.path, "written now" if bag.built else "reused",
                bag.seconds, bag.n_episodes)

    side_rate = DEMO_SIDE_RATE_HZ if opts.gradcam else 0.0
    cameras = policy_camera_overrides(Path(model["path"]))
    # The bag player publishes RELIABLE: a reliable subscription loses no 480x640 frame over loopback (best
    # effort drops fragments of such large messages under load, and the node then skips stale ticks).
    overrides = {"policy_path": str(model["path"]), "publish_actions": False, "side_rate_hz": side_rate,
                 "input_qos": "reliable", **cameras}
    try:
        settings = load_settings_yaml(config, overrides=overrides)
    except SettingsError as exc:
        raise DemoError(f"node config {config}: {exc}") from None

    stage = OutputStage(out_dir)
    session = _Session()
    committed = False
    try:
        cmd = _start_node(session, opts, settings, config, model, cameras, domain, timings)
        playback = _play(session, opts, bag, settings, timings)
        node_code = session.node.stop()
        logger.info("%s stopped (exit code %s)", NODE_NAME, node_code)
        session.recorder.close()
        if sum(session.recorder.rec.overlay_counts()["attention"].values()) == 0:
            raise DemoError(f"{NODE_NAME} published no attention overlay while the bag played; its last output:\n"
                            f"{session.node.log_tail()}")
        logger.info("[5/5] writing videos, plot, stills and summary")
        t = time.monotonic()
        forward = _isolated_forward(model, session)
        timings["isolated_forward"] = time.monotonic() - t
        t = time.monotonic()
        report_items = _write_outputs(stage, session, opts, bag, settings)
        timings["outputs"] = time.monotonic() - t
        timings["total"] = time.monotonic() - t_start
        summary = build_summary(opts, out_dir, model, bag, settings, config, cmd, domain, node_code, side_rate, playback,
                           session, report_items, timings, forward)

        stage.path("summary.md").write_text(summary_markdown(summary))
        stage.path("summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
        previous = _previous_files(out_dir)
        stage.commit([f for f in summary["files"] if f != "summary.json"] + ["summary.json"])
        committed = True
        for stale in previous - set(summary["files"]):
            (out_dir / stale).unlink(missing_ok=True)
        return summary
    finally:
        _stop_all(session, committed)
        if not committed:
            stage.discard()


def _start_node(session: _Session, opts: DemoOptions, settings, config: Path, model: dict[str, Any],
                cameras: dict[str, list[str]], domain: int, timings: dict[str, float]) -> list[str]:
    """Start the node process and the recorder; wait until the node is up. Returns the node's command."""
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    from act_interp_ros.demo.recorder import DemoRecorder
    from act_interp_ros.pipeline import output_contract

    logger.info("[3/5] starting %s (observe-only, use_sim_time, ROS_DOMAIN_ID=%d, localhost only)", NODE_NAME, domain)
    session.context = Context()
    rclpy.init(args=None, context=session.context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
    log_path = Path(tempfile.gettempdir()) / f"act_interp_demo-node-{os.getpid()}.log"
    cameras_file = log_path.with_suffix(".cameras.yaml")
    cameras_file.write_text(json.dumps({NODE_NAME: {"ros__parameters": cameras}}))  # JSON is YAML
    cmd = node_command([config, cameras_file], {"policy_path": model["path"], "publish_actions": False,
                                                "use_sim_time": True, "side_rate_hz": settings.side_rate_hz,
                                                "input_qos": "reliable"})
    logger.info("  %s", " ".join(cmd))
    t = time.monotonic()
    try:
        session.node = NodeProcess(cmd, log_path, new_session=True)
    except FileNotFoundError as exc:
        raise DemoError(str(exc)) from None
    contract = output_contract(settings, has_state=True)
    session.recorder = DemoRecorder(session.context, settings, contract, node_name=NODE_NAME,
                                    side=settings.side_rate_hz > 0)
    session.recorder.start()
    timings["node_start"] = wait_for_node(session.node, session.recorder, opts.node_timeout_s, opts.progress)
    session.recorder.subscribe()
    deadline = time.monotonic() + 10.0
    while not session.recorder.subscriptions_matched() and time.monotonic() < deadline:
        time.sleep(0.05)
    logger.info("%s is up after %.1f s", NODE_NAME, time.monotonic() - t)
    others = sorted(n for n, _ in session.recorder.node.get_node_names_and_namespaces()
                    if n not in (NODE_NAME, "act_interp_demo_recorder", "act_interp_demo_player"))
    if others:
        logger.warning("other ROS nodes share ROS_DOMAIN_ID %d (%s); set %s to a free domain id if the results look "
                       "mixed up", domain, ", ".join(others), DOMAIN_ENV)
    return cmd


def _play(session: _Session, opts: DemoOptions, bag, settings, timings: dict[str, float]):
    """Play the demo bag into the node (with /clock); returns the player's summary."""
    import rclpy

    from act_interp_ros.bag.play import BagPlayer
    from act_interp_ros.bag.reader import BagError

    logger.info("[4/5] playing the bag into the node at rate %g (with /clock)", opts.rate)
    session.player_node = rclpy.create_node("act_interp_demo_player", context=session.context)
    try:
        session.player = player = BagPlayer(bag.path, rate=opts.rate, clock=True,
                                            topics=session.recorder.input_topics, wait_for_subscribers=1,
                                            wait_timeout=30.0, delay=0.5)
    except BagError as exc:
        raise DemoError(f"cannot play the demo bag: {exc} (run again with --rebuild)") from None
    t = time.monotonic()
    player.start(session.player_node)
    n_msgs = sum(player.info.topics[tp].count for tp in player.topics)
    with _tqdm(opts.progress, total=round(bag.seconds, 1), desc="playing", unit="s",
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s bag time "
               "[{elapsed}<{remaining}{postfix}]") as bar:
        while not player.join(0.25):
            done = player.summary.total_published / max(1, n_msgs) * bag.seconds
            bar.update(round(done - bar.n, 2))
            c = session.recorder.counts()
            bar.set_postfix_str(f"attention overlays {c['attention']}, side-method overlays {c['side']}", refresh=False)
            if not session.node.alive():
                raise DemoError(f"{NODE_NAME} exited with code {session.node.proc.returncode} during playback. "
                                f"Its last output:\n{session.node.log_tail()}")
        bar.update(round(bag.seconds - bar.n, 2))
    if player.error is not None:
        raise DemoError(f"bag playback failed: {player.error}")
    session.recorder.wait_idle(quiet_s=max(1.0, 1.5 / opts.rate), timeout_s=20.0)
    timings["playback"] = time.monotonic() - t
    return player.summary


def _write_outputs(stage, session: _Session, opts: DemoOptions, bag, settings) -> dict[str, Any]:
    """Videos, plot, stills and the node log into the staging directory; returns what the summary needs."""
    from act_interp_ros.demo import report
    from act_interp_ros.demo.analysis import ProprioLookup
    from act_interp_ros.offline.outputs import PLOT_NAME

    rec = session.recorder.rec
    cameras = settings.camera_names
    timeline = report.DemoTimeline.build(seed=bag.seed, n_episodes=bag.n_episodes, n_frames=bag.n_frames,
                                         fps=bag.fps, start_ns=bag.start_ns, image_size=bag.image_size)
    proprio = ProprioLookup(rec)
    att_received = {c: {f.stamp_ns: f.received_ns for f in rec.attention.get(c, [])} for c in cameras}

    def proprio_at(stamp_ns: int) -> float | None:
        """Proprio attention of the tick that produced the overlay stamped ``stamp_ns`` (else nearest)."""
        for c in cameras:
            r = att_received[c].get(stamp_ns)
            if r is not None:
                return proprio.near(r)
        return proprio.after(stamp_ns)

    frame_sizes = {c: (rec.attention[c][0].rgb.shape[:2] if rec.attention.get(c) else bag.image_size)
                   for c in cameras}
    methods = list(settings.side_methods) if opts.gradcam else []
    files: list[str] = []
    with _tqdm(opts.progress, total=len(timeline), desc="encoding videos", unit="frame") as bar:
        files += report.write_videos(stage.dir, rec, timeline, cameras, frame_sizes, methods, proprio_at,
                                     progress=bar.update)
    report.write_plot(stage.path(PLOT_NAME), rec, timeline, cameras, settings,
                      title=f"Live act_interp_node on the demo bag ({bag.n_episodes} pick episode(s), "
                      f"known-answer ACT): attention share per input over bag time")
    files.append(PLOT_NAME)
    moments = report.choose_moments(rec, timeline, cameras, methods)
    for i, m in enumerate(moments):
        name = report.still_name(i, m.phase)
        report.write_still(stage.path(name), m, timeline, cameras, proprio_at(m.stamp_ns))
        files.append(name)
    if not moments:
        logger.warning("no moment with overlays of every camera was recorded; no stills written")
    shutil.copyfile(session.node.log_path, stage.path("node.log"))
    files.append("node.log")
    stills = [{"file": report.still_name(i, m.phase), "phase": m.phase, "time_s": round(timeline.rel_s(m.stamp_ns), 3),
               "episode": int(timeline.episode[m.index]) + 1, "proprio_attention": proprio_at(m.stamp_ns)}
              for i, m in enumerate(moments)]
    return {"files": files, "timeline": timeline, "stills": stills}


def _isolated_forward(model: dict[str, Any], session: _Session):
    """The same model's forward alone, timed after the node stopped, with the node's torch threads."""
    from act_interp_ros.demo.analysis import last_diagnostic_values
    from act_interp_ros.demo.realtime import isolated_forward

    threads = last_diagnostic_values(session.recorder.rec).get("torch_threads", "0")
    try:
        timing = isolated_forward(model["path"], int(threads) if threads.isdigit() else 0)
    except Exception as exc:  # noqa: BLE001 - a missing comparison must not lose the demo's outputs
        logger.warning("could not time the model's forward alone (%s: %s): no inference ratio in the summary",
                       type(exc).__name__, exc)
        return None
    logger.info("the model's forward alone: p50 %.1f ms (%d torch threads)", timing.p50_ms, timing.torch_threads)
    return timing


def _stop_all(session: _Session, committed: bool) -> None:
    import rclpy

    if session.player is not None:
        session.player.stop()
        session.player.join(5.0)
    if session.node is not None:
        session.node.stop()
    if session.recorder is not None:
        session.recorder.close()
    if session.player_node is not None:
        try:
            session.player_node.destroy_node()
        except Exception:  # noqa: BLE001
            pass
    if session.context is not None and session.context.ok():
        rclpy.shutdown(context=session.context)
    if session.node is not None:
        session.node.log_path.with_suffix(".cameras.yaml").unlink(missing_ok=True)
        if committed:
            session.node.log_path.unlink(missing_ok=True)
        else:
            logger.info("the node's log is kept at %s", session.node.log_path)


def _previous_files(out_dir: Path) -> set[str]:
    """Files listed by an earlier demo's summary.json in ``out_dir`` (plain names only)."""
    try:
        files = json.loads((out_dir / "summary.json").read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {f for f in files if isinstance(f, str) and "/" not in f and not f.startswith(".")}
