"""``act_interp_demo``: the README's first command - the live node on a known-answer model, end to end.

What it does (observe-only, no robot, loopback DDS only):

1. builds or reuses the cached known-answer ACT (:mod:`act_interp_ros.demo.known_answer`) and a cached
   demo bag (held-out scene seeds, front + wrist 480x640 rgb8 images and /joint_states at 30 Hz, mcap)
   under ``$ACT_INTERP_CACHE`` (default ``~/.cache/act_interp_ros``);
2. starts the real ``act_interp_node`` (its console script, next to this Python) with
   ``config/so101.yaml``, ``publish_actions:=false``, ``use_sim_time:=true``;
3. records the node's overlays, proprio attention and /diagnostics in-process while the bag is played
   into it (:class:`~act_interp_ros.bag.play.BagPlayer`, with /clock) at real time or ``--rate``;
4. writes one folder (``--out``, default ``./demo_output``): attention and GradCAM videos per camera, an
   overview video, the attention-over-time plot, PNG stills (attention | GradCAM for both cameras at the
   approach / grasp / lift / carry moments), ``summary.md`` and ``summary.json``. Everything is built in
   a hidden staging directory and moved into place at the end; ``summary.json`` is written last.

ROS traffic stays on this machine: ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and a private
``ROS_DOMAIN_ID`` (``$ACT_INTERP_DEMO_DOMAIN_ID`` or a random one) for the demo and the node.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("act_interp_demo")

PROG = "act_interp_demo"
NODE_NAME = "act_interp_node"
NODE_EXECUTABLE = "act_interp_node"
DEFAULT_OUT = "demo_output"
DEFAULT_SECONDS = 12.0
#: Each bag episode is this long: approach, descend, grasp, lift, carry (the phases the model learned).
EPISODE_SECONDS = 3.0
FPS = 30.0
IMAGE_SIZE = (480, 640)
#: Scene seeds of the demo bag: disjoint from training (0...), metrics (1e6...) and map tests (2e6...).
DEMO_SEED_BASE = 3_000_000
DEMO_GRADCAM_RATE_HZ = 2.0
DOMAIN_ENV = "ACT_INTERP_DEMO_DOMAIN_ID"
#: Files whose bytes decide the demo bag (its cache key hashes them).
BAG_KEY_SOURCES = ("synthetic/__init__.py", "synthetic/arm.py", "synthetic/expert.py", "synthetic/scene.py",
                   "bag/synthetic_bag.py")
BAG_CACHE_KEEP = 3
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


class DemoError(RuntimeError):
    """A failure with a message meant for the user (printed as is, exit code 1)."""


# ------------------------------------------------------------------------------------------- options
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Run the live act_interp_node (observe-only) on a known-answer ACT model over a synthetic "
        "SO-101 bag, and write overlay videos, an attention plot, PNG stills and a summary to one folder. "
        "The first run trains the model (a few minutes on a laptop CPU); later runs reuse it.",
    )
    p.add_argument("--out", type=Path, default=Path(DEFAULT_OUT),
                   help=f"output folder (default ./{DEFAULT_OUT}); its demo files are replaced at the end")
    p.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                   help=f"length of the demo bag in seconds, {EPISODE_SECONDS:g} s per pick episode "
                   f"(default {DEFAULT_SECONDS:g}; 2..120)")
    p.add_argument("--rate", type=float, default=1.0,
                   help="playback speed factor (default 1.0 = real time; < 1 gives a slow CPU more time per tick)")
    p.add_argument("--no-gradcam", action="store_true", help="run the node with gradcam_rate_hz:=0.0")
    p.add_argument("--rebuild", action="store_true",
                   help="rebuild the cached known-answer model and demo bag instead of reusing them")
    p.add_argument("--policy", type=Path, default=None,
                   help="advanced: use this LeRobot pretrained_model directory instead of the known-answer model")
    p.add_argument("--config", type=Path, default=None,
                   help="advanced: node params file (default: the package's config/so101.yaml)")
    p.add_argument("--node-timeout", type=float, default=300.0, metavar="S",
                   help="seconds to wait for the node to load the policy and come up (default 300)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars, warnings and errors only")
    return p


# ---------------------------------------------------------------------------------------- utilities
def _tqdm(enabled: bool, **kwargs):
    from tqdm.auto import tqdm

    return tqdm(disable=not enabled, dynamic_ncols=True, **kwargs)


@contextmanager
def _ros_environment(domain_id: int) -> Iterator[None]:
    """Loopback-only discovery and a private domain for this process and its children (restored after)."""
    keys = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "ROS_LOCALHOST_ONLY")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the discovery range
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def private_domain_id() -> int:
    """``$ACT_INTERP_DEMO_DOMAIN_ID``, else a random id in 1..100 other than the current ``ROS_DOMAIN_ID``."""
    value = os.environ.get(DOMAIN_ENV)
    if value:
        try:
            d = int(value)
        except ValueError:
            raise DemoError(f"{DOMAIN_ENV}={value!r} is not an integer; expected a ROS domain id 0..101") from None
        if not 0 <= d <= 101:
            raise DemoError(f"{DOMAIN_ENV}={d} out of range; expected 0..101")
        return d
    current = os.environ.get("ROS_DOMAIN_ID", "0")
    rng = random.Random(os.getpid() * 1_000_003 + time.time_ns())
    return rng.choice([d for d in range(1, 101) if str(d) != current])


def default_config() -> Path:
    """The package's config/so101.yaml: installed share directory, else the source tree."""
    candidates = []
    try:
        from ament_index_python.packages import get_package_share_directory

        candidates.append(Path(get_package_share_directory("act_interp_ros")) / "config" / "so101.yaml")
    except Exception:  # noqa: BLE001 - pip install without an ament index
        pass
    candidates.append(Path(sys.prefix) / "share" / "act_interp_ros" / "config" / "so101.yaml")
    candidates.append(_PACKAGE_DIR.parent / "config" / "so101.yaml")
    for c in candidates:
        if c.is_file():
            return c
    raise DemoError("config/so101.yaml not found (looked in " + ", ".join(map(str, candidates)) +
                    "); reinstall the package or pass --config")


def node_executable() -> Path:
    """The ``act_interp_node`` console script installed next to this Python."""
    exe = Path(sys.executable).with_name(NODE_EXECUTABLE)
    if exe.is_file():
        return exe
    found = shutil.which(NODE_EXECUTABLE)
    if found:
        return Path(found)
    raise DemoError(f"the {NODE_EXECUTABLE} console script is not installed next to {sys.executable} nor on PATH; "
                    f"install the package into this environment (pip install -e '.[ros]' or scripts/setup_env.sh)")


# -------------------------------------------------------------------------------------- demo bag
@dataclass(frozen=True)
class DemoBag:
    path: Path
    seed: int
    n_episodes: int
    n_frames: int
    fps: float
    image_size: tuple[int, int]
    start_ns: int
    built: bool

    @property
    def seconds(self) -> float:
        return self.n_episodes * self.n_frames / self.fps


def bag_layout(seconds: float) -> tuple[int, int]:
    """(episodes, frames per episode) for a bag of about ``seconds``: ~3 s pick episodes back to back."""
    n_episodes = max(1, int(round(seconds / EPISODE_SECONDS)))
    n_frames = max(2, int(round(seconds * FPS / n_episodes)))
    return n_episodes, n_frames


def bag_cache_root() -> Path:
    from act_interp_ros.demo.known_answer import cache_root

    return cache_root().parent / "demo_bags"


def ensure_demo_bag(seconds: float, *, rebuild: bool = False, progress: bool = True) -> DemoBag:
    """Return the cached demo bag for ``seconds`` (written first when missing or ``rebuild``)."""
    from act_interp_ros.bag.synthetic_bag import DEFAULT_START_NS, write_synthetic_bag
    from act_interp_ros.demo.known_answer import _lock

    n_episodes, n_frames = bag_layout(seconds)
    spec = {"seed": DEMO_SEED_BASE, "n_episodes": n_episodes, "n_frames": n_frames, "fps": FPS,
            "image_size": list(IMAGE_SIZE), "storage": "mcap", "compressed": False, "start_ns": DEFAULT_START_NS}
    h = hashlib.sha256(json.dumps(spec, sort_keys=True).encode())
    for rel in BAG_KEY_SOURCES:
        h.update(rel.encode())
        h.update((_PACKAGE_DIR / rel).read_bytes())
    key = h.hexdigest()[:16]
    root = bag_cache_root()
    final = root / key
    marker = final / "demo_bag.json"

    def result(built: bool) -> DemoBag:
        os.utime(marker)  # least recently used eviction
        return DemoBag(final / "bag", DEMO_SEED_BASE, n_episodes, n_frames, FPS, IMAGE_SIZE, DEFAULT_START_NS, built)

    if marker.is_file() and not rebuild:
        return result(False)
    root.mkdir(parents=True, exist_ok=True)
    with _lock(root / f"{key}.lock"):
        if marker.is_file() and not rebuild:
            return result(False)
        total = n_episodes * n_frames
        logger.info("writing the demo bag (%d episode(s) x %d frames, front + wrist %dx%d rgb8 + /joint_states, "
                    "30 Hz, mcap) to %s", n_episodes, n_frames, IMAGE_SIZE[1], IMAGE_SIZE[0], final)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=root))
        try:
            with _tqdm(progress, total=total, desc="demo bag", unit="frame") as bar:
                write_synthetic_bag(tmp / "bag", storage="mcap", compressed=False, n_frames=n_frames,
                                    image_size=IMAGE_SIZE, seed=DEMO_SEED_BASE, n_episodes=n_episodes, fps=FPS,
                                    start_time_ns=DEFAULT_START_NS, progress=lambda n: bar.update(1))
            (tmp / "demo_bag.json").write_text(json.dumps({"key": key, **spec}, indent=2))
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        _evict_old_bags(root, keep=BAG_CACHE_KEEP)
    return result(True)


def _evict_old_bags(root: Path, keep: int) -> None:
    bags = sorted((d for d in root.iterdir() if (d / "demo_bag.json").is_file()),
                  key=lambda d: (d / "demo_bag.json").stat().st_mtime, reverse=True)
    for old in bags[keep:]:
        logger.info("removing the old demo bag %s", old)
        shutil.rmtree(old, ignore_errors=True)


# ------------------------------------------------------------------------------------------- model
def ensure_model(opts: DemoOptions) -> dict[str, Any]:
    """The known-answer model (or ``--policy``): {"path", "key", "built_now", "metrics"}."""
    if opts.policy is not None:
        if not (opts.policy / "config.json").is_file():
            raise DemoError(f"--policy {opts.policy}: not a LeRobot pretrained_model directory (no config.json)")
        return {"path": opts.policy.resolve(), "key": None, "built_now": False, "metrics": {}}
    from act_interp_ros.demo import known_answer

    if opts.rebuild:
        old = known_answer.cache_root() / known_answer.cache_key()
        if old.exists():
            logger.info("--rebuild: removing the cached model %s", old)
            shutil.rmtree(old)
    model = known_answer.ensure_known_answer_model(progress=opts.progress)
    return {"path": model.path, "key": model.key, "built_now": model.built, "metrics": model.metrics}


def _model_summary(model: dict[str, Any]) -> dict[str, Any]:
    m = model["metrics"] or {}
    err = m.get("held_out_action_error") or {}
    out: dict[str, Any] = {"path": str(model["path"]), "key": model["key"], "built_now": model["built_now"]}
    chunk = err.get("chunk") or {}  # error over the whole predicted chunk (metrics.json of known_answer)
    if chunk:
        out["held_out_action_mae"] = {
            "model": chunk.get("model", {}).get("overall"),
            "mean_action_baseline": chunk.get("mean_action_baseline", {}).get("overall"),
            "hold_state_baseline": chunk.get("hold_state_baseline", {}).get("overall"),
            "ratio_to_mean_baseline": chunk.get("model_to_mean_baseline"),
            "n_frames": err.get("n_frames"),
            "units": "policy units (deg; gripper 0..100), over the predicted chunk",
        }
    if m.get("seconds"):
        out["build_seconds"] = m["seconds"]
    return out


# -------------------------------------------------------------------------------------------- node
class NodeProcess:
    """``act_interp_node`` as a child process, its output in a log file; :meth:`stop` always ends it."""

    def __init__(self, args: Sequence[str], log_path: Path, env: dict[str, str]) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        # Own session: a terminal Ctrl-C reaches the demo, which then stops the node in order.
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.returncode: int | None = None

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, n: int = 25) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL; returns the exit code."""
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGINT, timeout_s), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
                try:
                    self.proc.send_signal(sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    logger.warning("%s did not exit %.0f s after %s", NODE_NAME, wait, sig.name)
        self.returncode = self.proc.poll()
        if not self._log.closed:
            self._log.close()
        return self.returncode


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


def node_command(config: Path, policy: Path, gradcam_rate_hz: float, cameras_file: Path | None = None) -> list[str]:
    """The node's command line: the package config, then the demo's camera file (later files win)."""
    return [
        str(node_executable()), "--ros-args", "--params-file", str(config),
        *(["--params-file", str(cameras_file)] if cameras_file is not None else []),
        "-p", f"policy_path:={policy}",
        "-p", "publish_actions:=false",
        "-p", "use_sim_time:=true",
        "-p", f"gradcam_rate_hz:={gradcam_rate_hz:.1f}",
    ]


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


# ----------------------------------------------------------------------------------------- analysis
DIAG_COUNTERS = ("ticks", "ticks_with_action_computed", "late_ticks", "skipped_ticks", "gradcam_runs",
                 "gradcam_skipped_busy", "gradcam_skipped_no_new_tick", "gradcam_failures")
DIAG_LATENCIES = ("tick_rate_hz", "inference_p50_ms", "inference_p99_ms", "tick_work_p50_ms", "tick_work_p99_ms",
                  "gradcam_latency_p50_ms", "gradcam_latency_p99_ms")


def _number(v: str) -> float | int | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return int(f) if f.is_integer() else f


def diagnostics_summary(rec, timeline) -> dict[str, Any]:
    """The node's last /diagnostics status: tick counters, skipped ticks by reason, GradCAM, latencies.

    The node's diagnostics timer runs on ROS time (``use_sim_time``), so the last message is from the
    last whole diagnostics period of the bag; ``as_of_bag_time_s`` says when.
    """
    if not rec.diagnostics:
        return {}
    t_ns, statuses = rec.diagnostics[-1]
    values: dict[str, str] = {}
    for v in statuses.values():
        values.update(v)
    out: dict[str, Any] = {"messages": len(rec.diagnostics), "as_of_bag_time_s": round(timeline.rel_s(t_ns), 3),
                           "level": _number(values.get("_level", "")), "message": values.get("_message", "")}
    out["counters"] = {k: _number(values[k]) for k in DIAG_COUNTERS if k in values}
    out["skipped_by_reason"] = {k.split(".", 1)[1]: _number(v) for k, v in values.items() if k.startswith("skipped.")}
    out["bad_input"] = {k.split(".", 1)[1]: _number(v) for k, v in values.items() if k.startswith("bad_input.")}
    out["latency"] = {k: _number(values[k]) for k in DIAG_LATENCIES if k in values}
    out["last_status"] = statuses
    computed = out["counters"].get("ticks_with_action_computed")
    expected = out["as_of_bag_time_s"] * timeline.fps  # control rate = camera rate (30 Hz) in the demo
    if computed is not None and expected > 0:
        out["computed_tick_fraction"] = round(min(1.0, computed / expected), 3)
    return out


def proprio_summary(rec, timeline) -> dict[str, Any]:
    values = np.array([s.value for s in rec.proprio], dtype=np.float64)
    out: dict[str, Any] = {"count": int(values.size)}
    if values.size:
        out.update(mean=float(values.mean()), min=float(values.min()), max=float(values.max()))
    else:
        out.update(mean=None, min=None, max=None)
    per_phase: dict[str, list[float]] = defaultdict(list)
    for s in rec.proprio:
        per_phase[timeline.phase[timeline.index_at(s.received_ns)]].append(s.value)
    from act_interp_ros.synthetic import PHASES

    out["per_phase"] = {p: {"mean": float(np.mean(per_phase[p])), "count": len(per_phase[p])}
                        for p in PHASES if per_phase.get(p)}
    return out


class ProprioLookup:
    """Proprio attention of the tick that produced an overlay, matched by receipt time (same tick)."""

    def __init__(self, rec) -> None:
        samples = sorted(rec.proprio, key=lambda s: s.received_ns)
        self.t = np.array([s.received_ns for s in samples], dtype=np.int64)
        self.v = np.array([s.value for s in samples], dtype=np.float64)

    def near(self, t_ns: int, max_dt_s: float = 0.1) -> float | None:
        if not len(self.t):
            return None
        i = int(np.searchsorted(self.t, t_ns))
        best = min((j for j in (i - 1, i) if 0 <= j < len(self.t)), key=lambda j: abs(int(self.t[j]) - t_ns))
        return float(self.v[best]) if abs(int(self.t[best]) - t_ns) <= max_dt_s * 1e9 else None

    def after(self, t_ns: int, max_dt_s: float = 0.2) -> float | None:
        if not len(self.t):
            return None
        i = int(np.searchsorted(self.t, t_ns))
        if i < len(self.t) and self.t[i] - t_ns <= max_dt_s * 1e9:
            return float(self.v[i])
        return None


# -------------------------------------------------------------------------------------------- run
def run_demo(opts: DemoOptions) -> dict[str, Any]:
    """Run the demo; returns the summary dict (also written to ``opts.out/summary.json``)."""
    if not 2.0 <= opts.seconds <= 120.0:
        raise DemoError(f"--seconds must be within 2..120, got {opts.seconds:g}")
    if not 0.05 <= opts.rate <= 4.0:
        raise DemoError(f"--rate must be within 0.05..4, got {opts.rate:g}")
    t_start = time.monotonic()
    timings: dict[str, float] = {}
    domain = private_domain_id()
    with _ros_environment(domain):
        return _run(opts, domain, t_start, timings)


def _run(opts: DemoOptions, domain: int, t_start: float, timings: dict[str, float]) -> dict[str, Any]:
    from act_interp_ros.bag.outputs import OutputStage

    config = (opts.config or default_config()).resolve()
    node_executable()  # fail early when the node is not installed
    out_dir = opts.out.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise DemoError(f"--out {out_dir} exists and is not a directory")

    logger.info("[1/5] known-answer model (cached in %s)",
                bag_cache_root().parent if opts.policy is None else opts.policy)
    t = time.monotonic()
    model = ensure_model(opts)
    timings["model"] = time.monotonic() - t
    mae = _model_summary(model).get("held_out_action_mae") or {}
    logger.info("model %s: %s%s", model["path"], "trained now" if model["built_now"] else "reused from the cache",
                f"; held-out action MAE {mae['model']:.2f} vs mean-action baseline {mae['mean_action_baseline']:.2f}"
                if mae.get("model") is not None and mae.get("mean_action_baseline") is not None else "")

    logger.info("[2/5] demo bag")
    t = time.monotonic()
    bag = ensure_demo_bag(opts.seconds, rebuild=opts.rebuild, progress=opts.progress)
    timings["bag"] = time.monotonic() - t
    logger.info("bag %s (%s): %.1f s, %d episode(s)", bag.path, "written now" if bag.built else "reused",
                bag.seconds, bag.n_episodes)

    from act_interp_ros.settings import SettingsError, load_settings_yaml

    gradcam_rate = DEMO_GRADCAM_RATE_HZ if opts.gradcam else 0.0
    camera_overrides = policy_camera_overrides(Path(model["path"]))
    try:
        settings = load_settings_yaml(config, overrides={"policy_path": str(model["path"]), "publish_actions": False,
                                                         "gradcam_rate_hz": gradcam_rate, **camera_overrides})
    except SettingsError as exc:
        raise DemoError(f"node config {config}: {exc}") from None
    cameras = settings.camera_names

    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    from act_interp_ros.bag.play import BagPlayError, BagPlayer
    from act_interp_ros.demo import report
    from act_interp_ros.demo.recorder import DemoRecorder

    stage = OutputStage(out_dir)
    committed = False
    context = Context()
    node_proc: NodeProcess | None = None
    recorder: DemoRecorder | None = None
    player_node = None
    player: BagPlayer | None = None
    try:
        logger.info("[3/5] starting %s (observe-only, use_sim_time, ROS_DOMAIN_ID=%d, localhost only)",
                    NODE_NAME, domain)
        rclpy.init(args=None, context=context, domain_id=domain, signal_handler_options=SignalHandlerOptions.NO)
        node_log = Path(tempfile.gettempdir()) / f"act_interp_demo-node-{os.getpid()}.log"
        cameras_file = node_log.with_suffix(".cameras.yaml")
        cameras_file.write_text(json.dumps({NODE_NAME: {"ros__parameters": camera_overrides}}))  # JSON is YAML
        cmd = node_command(config, Path(model["path"]), gradcam_rate, cameras_file)
        logger.info("  %s", " ".join(cmd))
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        t = time.monotonic()
        node_proc = NodeProcess(cmd, node_log, env)
        recorder = DemoRecorder(context, settings, node_name=NODE_NAME, gradcam=opts.gradcam)
        recorder.start()
        timings["node_start"] = wait_for_node(node_proc, recorder, opts.node_timeout_s, opts.progress)
        recorder.subscribe()
        deadline = time.monotonic() + 10.0
        while not recorder.subscriptions_matched() and time.monotonic() < deadline:
            time.sleep(0.05)
        logger.info("%s is up after %.1f s", NODE_NAME, time.monotonic() - t)
        others = sorted(n for n, _ in recorder.node.get_node_names_and_namespaces()
                        if n not in (NODE_NAME, "act_interp_demo_recorder", "act_interp_demo_player"))
        if others:
            logger.warning("other ROS nodes share ROS_DOMAIN_ID %d (%s); set %s to a free domain id if the results "
                           "look mixed up", domain, ", ".join(others), DOMAIN_ENV)

        logger.info("[4/5] playing the bag into the node at rate %g (with /clock)", opts.rate)
        player_node = rclpy.create_node("act_interp_demo_player", context=context)
        try:
            player = BagPlayer(bag.path, rate=opts.rate, clock=True, topics=recorder.input_topics,
                               wait_for_subscribers=1, wait_timeout=30.0, delay=0.5)
        except BagPlayError as exc:
            raise DemoError(f"cannot play the demo bag: {exc} (run again with --rebuild)") from None
        t = time.monotonic()
        player.start(player_node)
        n_msgs = sum(player.info.topics[tp].count for tp in player.topics)
        with _tqdm(opts.progress, total=round(bag.seconds, 1), desc="playing", unit="s",
                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s bag time "
                   "[{elapsed}<{remaining}{postfix}]") as bar:
            while not player.join(0.25):
                done = player.summary.total_published / max(1, n_msgs) * bag.seconds
                bar.update(round(done - bar.n, 2))
                c = recorder.counts()
                bar.set_postfix_str(f"overlays {c['attention']}, GradCAM {c['gradcam']}", refresh=False)
                if not node_proc.alive():
                    raise DemoError(f"{NODE_NAME} exited with code {node_proc.proc.returncode} during playback. "
                                    f"Its last output:\n{node_proc.log_tail()}")
            bar.update(round(bag.seconds - bar.n, 2))
        if player.error is not None:
            raise DemoError(f"bag playback failed: {player.error}")
        recorder.wait_idle(quiet_s=max(1.0, 1.5 / opts.rate), timeout_s=20.0)
        timings["playback"] = time.monotonic() - t
        summary_play = player.summary

        node_code = node_proc.stop()
        logger.info("%s stopped (exit code %s)", NODE_NAME, node_code)
        recorder.close()
        rec = recorder.rec
        counts = rec.overlay_counts()
        if sum(counts["attention"].values()) == 0:
            raise DemoError(f"{NODE_NAME} published no attention overlay while the bag played; its last output:\n"
                            f"{node_proc.log_tail()}")

        logger.info("[5/5] writing videos, plot, stills and summary")
        t = time.monotonic()
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
        files: list[str] = []
        with _tqdm(opts.progress, total=len(timeline), desc="encoding videos", unit="frame") as bar:
            files += report.write_videos(stage.dir, rec, timeline, cameras, frame_sizes, opts.gradcam,
                                         lambda s: proprio_at(s), progress=bar.update)
        report.write_plot(stage.path(report.PLOT_NAME), rec, timeline, cameras, settings,
                          title=f"Live act_interp_node on the demo bag ({bag.n_episodes} pick episode(s), "
                          f"known-answer ACT): attention share per input over bag time")
        files.append(report.PLOT_NAME)
        moments = report.choose_moments(rec, timeline, cameras, opts.gradcam)
        for i, m in enumerate(moments):
            name = report.still_name(i, m.phase)
            report.write_still(stage.path(name), m, timeline, cameras, proprio_at(m.stamp_ns))
            files.append(name)
        if not moments:
            logger.warning("no moment with overlays of every camera was recorded; no stills written")
        shutil.copyfile(node_proc.log_path, stage.path("node.log"))
        files.append("node.log")
        timings["outputs"] = time.monotonic() - t
        timings["total"] = time.monotonic() - t_start

        played = {tp: int(n) for tp, n in summary_play.published.items()}
        summary: dict[str, Any] = {
            "ok": True,
            "output_dir": str(out_dir),
            "model": _model_summary(model),
            "bag": {"path": str(bag.path), "built_now": bag.built, "seconds": bag.seconds, "fps": bag.fps,
                    "episodes": bag.n_episodes, "frames_per_episode": bag.n_frames, "scene_seeds": timeline.seeds,
                    "image_size_hw": list(bag.image_size), "storage": "mcap", "encoding": "rgb8"},
            "node": {"command": cmd, "config": str(config), "exit_code": node_code, "ros_domain_id": domain,
                     "gradcam_rate_hz": gradcam_rate, "control_rate_hz": settings.control_rate_hz},
            "playback": {"rate": opts.rate, "messages_published": summary_play.total_published,
                         "published_per_topic": played,
                         "frames_played_per_camera": {c: played.get(tp, 0)
                                                      for c, tp in zip(cameras, settings.camera_topics)},
                         "dropped": sum(summary_play.dropped.values()),
                         "clock_messages": summary_play.clock_messages,
                         "wall_s": round(summary_play.wall_time_s, 3),
                         "max_lag_ms": round(summary_play.max_lag_s * 1000, 1)},
            "overlays_received": counts,
            "gradcam_count": min(counts["gradcam"].values()) if counts["gradcam"] else 0,
            "proprio_attention": proprio_summary(rec, timeline),
            "diagnostics": diagnostics_summary(rec, timeline),
            "overlay_decode_errors": rec.decode_errors,
            "stills": [{"file": report.still_name(i, m.phase), "phase": m.phase,
                        "time_s": round(timeline.rel_s(m.stamp_ns), 3), "episode": int(timeline.episode[m.index]) + 1,
                        "proprio_attention": proprio_at(m.stamp_ns)} for i, m in enumerate(moments)],
            "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "files": [*files, "summary.md", "summary.json"],
        }
        (stage.path("summary.md")).write_text(report.summary_markdown(summary))
        (stage.path("summary.json")).write_text(json.dumps(summary, indent=2, default=str) + "\n")
        previous = _previous_files(out_dir)
        stage.commit([f for f in summary["files"] if f != "summary.json"] + ["summary.json"])
        committed = True
        for stale in previous - set(summary["files"]):
            (out_dir / stale).unlink(missing_ok=True)
        return summary
    finally:
        if player is not None:
            player.stop()
            player.join(5.0)
        if node_proc is not None:
            node_proc.stop()
        if recorder is not None:
            recorder.close()
        if player_node is not None:
            try:
                player_node.destroy_node()
            except Exception:  # noqa: BLE001
                pass
        if context.ok():
            rclpy.shutdown(context=context)
        if node_proc is not None:
            node_proc.log_path.with_suffix(".cameras.yaml").unlink(missing_ok=True)
            if committed:
                node_proc.log_path.unlink(missing_ok=True)
            else:
                logger.info("the node's log is kept at %s", node_proc.log_path)
        if not committed:
            stage.discard()


def _previous_files(out_dir: Path) -> set[str]:
    """Files listed by an earlier demo's summary.json in ``out_dir`` (plain names only)."""
    try:
        files = json.loads((out_dir / "summary.json").read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()
    return {f for f in files if isinstance(f, str) and "/" not in f and not f.startswith(".")}


# -------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit codes: 0 ok, 1 failure (one message), 2 usage error, 130 interrupted."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # e.g. started as a background job of a script:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C / SIGINT must still stop us cleanly
    level = logging.WARNING if args.quiet else logging.INFO
    root = logging.getLogger()
    handler = None
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    old_level = root.level
    root.setLevel(level)
    opts = DemoOptions(out=args.out, seconds=args.seconds, rate=args.rate, gradcam=not args.no_gradcam,
                       rebuild=args.rebuild, policy=args.policy, config=args.config,
                       node_timeout_s=args.node_timeout, progress=not args.quiet)
    old_term = signal.getsignal(signal.SIGTERM)
    try:
        if old_term in (signal.SIG_DFL, None):  # SIGTERM ends the demo like Ctrl-C, with clean-up
            signal.signal(signal.SIGTERM, signal.default_int_handler)
    except ValueError:  # not the main thread
        old_term = None
    try:
        summary = run_demo(opts)
    except KeyboardInterrupt:
        logger.error("interrupted; the node was stopped and no output was written")
        return 130
    except DemoError as exc:
        logger.error("demo failed: %s", exc)
        return 1
    except Exception as exc:  # noqa: BLE001 - one clear message instead of a traceback
        logger.debug("demo failed", exc_info=True)
        logger.error("demo failed: %s: %s (run with a debugger or see the log above)", type(exc).__name__, exc)
        return 1
    finally:
        if old_term in (signal.SIG_DFL, None):
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
            except ValueError:
                pass
        root.setLevel(old_level)
        if handler is not None:
            root.removeHandler(handler)
    _print_result(summary)
    return 0


def _print_result(s: dict[str, Any]) -> None:
    out = Path(s["output_dir"])
    rel = os.path.relpath(out) if not os.path.relpath(out).startswith("..") else str(out)
    counts = s["overlays_received"]
    p = s["proprio_attention"]
    lines = [
        "",
        f"act_interp_demo finished in {s['timings_s'].get('total', 0):.0f} s. Outputs in {rel}/:",
        "  overview.mp4                 attention (top) and GradCAM (bottom) for each camera, bag time",
        "  " + ", ".join(f for f in s["files"] if f.startswith(("attention_", "gradcam_")) and f.endswith(".mp4")),
        "  attention_plot.png           proprio and per-camera attention share over time",
        "  " + ", ".join(f for f in s["files"] if f.startswith("still_")),
        "  summary.md, summary.json     numbers (model error, overlays, skipped ticks, timings)",
        f"overlays received: attention {sum(counts['attention'].values())}, GradCAM {sum(counts['gradcam'].values())}; "
        f"mean proprio attention {p['mean']:.1%}" if p.get("mean") is not None else "",
    ]
    frac = (s.get("diagnostics") or {}).get("computed_tick_fraction")
    if frac is not None and frac < 0.6:
        lines.append(f"note: the node computed only {frac:.0%} of its 30 Hz ticks (this CPU could not keep up at "
                     f"rate {s['playback']['rate']:g}; skipped ticks show as dimmed frames). For smoother videos run "
                     f"again with --rate {max(0.1, round(s['playback']['rate'] * frac, 1)):g}.")
    print("\n".join(line for line in lines if line.strip() or line == ""), flush=True)


if __name__ == "__main__":
    sys.exit(main())
