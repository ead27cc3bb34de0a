"""Start ``act_interp_node`` as its own process, as ``ros2 run`` would (demo, tests, benchmarks).

Also the ROS isolation every such run uses: loopback-only discovery and a private ``ROS_DOMAIN_ID``, so
traffic never leaves the machine and concurrent runs do not talk to each other. This module imports no
rclpy (set the environment before rclpy is imported).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "NODE_EXECUTABLE",
    "NodeProcess",
    "isolate_ros",
    "node_command",
    "node_executable",
    "private_domain_id",
    "ros_environment",
]

NODE_EXECUTABLE = "act_interp_node"
ISOLATION_KEYS = ("ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_DOMAIN_ID", "ROS_LOCALHOST_ONLY")


def node_executable() -> Path:
    """The ``act_interp_node`` console script next to this Python, else on PATH (FileNotFoundError if none)."""
    exe = Path(sys.executable).with_name(NODE_EXECUTABLE)
    if exe.is_file():
        return exe
    found = shutil.which(NODE_EXECUTABLE)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"the {NODE_EXECUTABLE} console script is not installed next to {sys.executable} nor on PATH; install "
        "the package into this environment (scripts/setup_env.sh, or pip install -e '.[ros]')")


def _ros_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_ros_value(v) if not isinstance(v, str) else f'"{v}"' for v in value) + "]"
    return str(value)


def node_command(params_files: Sequence[str | os.PathLike[str]] = (), parameters: Mapping[str, Any] | None = None,
                 extra_ros_args: Sequence[str] = ()) -> list[str]:
    """``act_interp_node --ros-args --params-file F ... -p name:=value ...`` (later files and -p win)."""
    cmd = [str(node_executable()), "--ros-args"]
    for f in params_files:
        cmd += ["--params-file", str(f)]
    for name, value in (parameters or {}).items():
        cmd += ["-p", f"{name}:={_ros_value(value)}"]
    return cmd + list(extra_ros_args)


class NodeProcess:
    """``act_interp_node`` as a child process; stdout+stderr go to a log file; :meth:`stop` always ends it.

    Args:
        command: the full command line (:func:`node_command`).
        log_path: where the output goes (default: a temporary file, removed by :meth:`cleanup`).
        env: extra environment variables (on top of this process's).
        new_session: start in its own session, so a terminal Ctrl-C reaches the caller, which then stops
            the node in order (the demo).
    """

    def __init__(self, command: Sequence[str], log_path: Path | None = None, env: Mapping[str, str] | None = None,
                 new_session: bool = False) -> None:
        self.command = list(command)
        self._own_log = log_path is None
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="act_interp_node-", suffix=".log")
            os.close(fd)
            log_path = Path(name)
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        # Unbuffered, so the log shows each line as it is written (ROS buffers when not on a terminal).
        unbuffered = {"RCUTILS_LOGGING_BUFFERED_STREAM": "0", "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **unbuffered, **(env or {})}, stdin=subprocess.DEVNULL,
                                     start_new_session=new_session)
        self.returncode: int | None = None
        self._lock = threading.Lock()

    @property
    def output(self) -> str:
        """Everything the node printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 25) -> str:
        return "\n".join(self.output.splitlines()[-n:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_for_output(self, text: str, timeout: float = 60.0) -> bool:
        """Wait until ``text`` appears in the output (or the process exits); True when it appeared."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return True
            if not self.alive():
                return text in self.output
            time.sleep(0.05)
        return False

    def wait_exit(self, timeout: float = 60.0) -> int:
        self.returncode = self.proc.wait(timeout=timeout)
        self._close_log()
        return self.returncode

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGINT, then SIGTERM, then SIGKILL; returns the exit code."""
        with self._lock:
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
                        continue
            self.returncode = self.proc.poll()
            self._close_log()
            return self.returncode

    def cleanup(self) -> None:
        """Stop the node and delete its log if this object created it."""
        self.stop()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)

    def _close_log(self) -> None:
        if not self._log.closed:
            self._log.close()


def private_domain_id(env_var: str | None = None, avoid: str | None = None) -> int:
    """``$env_var`` when set (validated 0..101), else a random domain id in 1..100 other than ``avoid``."""
    value = os.environ.get(env_var) if env_var else None
    if value:
        try:
            d = int(value)
        except ValueError:
            raise ValueError(f"{env_var}={value!r} is not an integer; expected a ROS domain id 0..101") from None
        if not 0 <= d <= 101:
            raise ValueError(f"{env_var}={d} out of range; expected a ROS domain id 0..101")
        return d
    rng = random.Random(os.getpid() * 1_000_003 + time.time_ns())
    return rng.choice([d for d in range(1, 101) if str(d) != (avoid or os.environ.get("ROS_DOMAIN_ID", "0"))])


def isolate_ros(domain_id: int) -> None:
    """Loopback-only discovery and ``domain_id`` for this process and its children (call before rclpy)."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(domain_id)
    os.environ.pop("ROS_LOCALHOST_ONLY", None)  # deprecated; conflicts with the discovery range


@contextmanager
def ros_environment(domain_id: int) -> Iterator[None]:
    """:func:`isolate_ros` for the duration of the block; the previous environment is restored after."""
    saved = {k: os.environ.get(k) for k in ISOLATION_KEYS}
    isolate_ros(domain_id)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
