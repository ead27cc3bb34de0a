"""Open recorded ROS 2 bags with ``rosbags`` (no ROS install needed) and fail with clear messages.

A bag is a rosbag2 directory (``metadata.yaml`` + storage files), or a single ``.mcap`` / ``.db3`` storage
file. Per-message zstd compression (``ros2 bag record --compression-mode message``) and file compression
are handled by ``rosbags``. A directory without ``metadata.yaml`` (a recording that was killed before it
wrote one) that holds exactly one ``.mcap`` or ``.db3`` file is opened through that file.

Every failure is a :class:`BagError` whose one-line message says what was wrong with which path and what
was expected; a missing topic lists the topics (and their types) the bag does have.
"""

from __future__ import annotations

import logging
import sqlite3
import struct
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import ReaderError
from rosbags.typesys import Stores, get_typestore

logger = logging.getLogger(__name__)

IMAGE_TYPE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE_TYPE = "sensor_msgs/msg/CompressedImage"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
HEADER_TYPE = "std_msgs/msg/Header"

STORAGE_SUFFIXES = (".mcap", ".db3")
_MAGIC = {b"\x89MCAP0\r\n": ".mcap", b"SQLite format 3\x00": ".db3"}
# What rosbags may raise while opening or reading a damaged bag.
_READ_ERRORS: tuple[type[BaseException], ...] = (
    AnyReaderError, ReaderError, sqlite3.Error, OSError, EOFError, struct.error, ValueError, KeyError, IndexError,
)
try:  # zstd errors of (message- or file-) compressed bags
    from backports.zstd import ZstdError  # type: ignore[import-not-found]

    _READ_ERRORS = (*_READ_ERRORS, ZstdError)
except ImportError:  # pragma: no cover - python >= 3.14 uses compression.zstd
    pass


class BagError(RuntimeError):
    """A bag cannot be used; ``str()`` is one line saying what was wrong and what was expected."""


@dataclass(frozen=True)
class TopicSummary:
    """One topic of a bag: its name, message type (``pkg/msg/Type``) and message count."""

    name: str
    msgtype: str
    count: int


@dataclass(frozen=True)
class RawMessage:
    """One serialized (CDR) message as stored: ``log_ns`` is the recorder's receive time."""

    topic: str
    msgtype: str
    log_ns: int
    data: bytes | memoryview


def header_stamp_ns(data: bytes | memoryview) -> int:
    """``header.stamp`` in ns, read straight from the CDR bytes of a message whose first field is a Header.

    CDR layout: a 4-byte encapsulation header (byte 1: 0 = big endian, 1 = little endian), then
    ``builtin_interfaces/Time`` = int32 sec, uint32 nanosec. Avoids deserializing whole images to index a bag.
    """
    if len(data) < 12:
        raise BagError(f"message of {len(data)} bytes is too short to hold a std_msgs/Header")
    fmt = "<iI" if data[1] & 1 else ">iI"
    sec, nanosec = struct.unpack_from(fmt, data, 4)
    return sec * 1_000_000_000 + nanosec


def _resolve(path: Path) -> Path:
    """The path rosbags should open (directory or storage file); raises BagError when it is not a bag."""
    if not path.exists():
        raise BagError(f"bag '{path}' does not exist; expected a rosbag2 directory, a .mcap or a .db3 file")
    if path.is_dir():
        if (path / "metadata.yaml").is_file():
            return path
        files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES and p.is_file())
        if len(files) == 1:
            logger.warning("bag directory '%s' has no metadata.yaml; reading its storage file '%s'", path, files[0].name)
            return files[0]
        found = ", ".join(p.name for p in files) if files else "none"
        raise BagError(
            f"'{path}' is not a ROS 2 bag: the directory has no metadata.yaml (storage files found: {found}); "
            "expected a rosbag2 directory, a .mcap or a .db3 file"
        )
    if path.suffix in STORAGE_SUFFIXES:
        return path
    try:
        with path.open("rb") as f:
            head = f.read(16)
    except OSError as exc:
        raise BagError(f"cannot read '{path}': {exc}") from None
    for magic, suffix in _MAGIC.items():
        if head.startswith(magic):
            raise BagError(f"'{path}' looks like a {suffix} bag file but is named '{path.name}'; rename it to end in {suffix}")
    raise BagError(f"'{path}' is not a ROS 2 bag: expected a rosbag2 directory, a .mcap or a .db3 file")


class BagReader:
    """An open ROS 2 bag (use as a context manager or call :meth:`close`).

    Attributes:
        path: what the user gave; ``source``: the directory or storage file actually read.
        topics: name -> :class:`TopicSummary`, sorted by name.
        start_ns, end_ns: log time of the first message and just after the last one.
        message_count: number of messages.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.source = _resolve(self.path)
        self._reader = AnyReader([self.source], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        try:
            self._reader.open()
        except _READ_ERRORS as exc:
            raise BagError(f"cannot open bag '{self.path}' (corrupt or unsupported): {_why(exc)}") from None
        try:
            self.topics = {
                name: TopicSummary(name, info.msgtype or "<mixed types>", int(info.msgcount))
                for name, info in sorted(self._reader.topics.items())
            }
            self.message_count = int(self._reader.message_count)
            if self.message_count == 0:
                raise BagError(f"bag '{self.path}' is empty: it has no messages ({self._topic_text()})")
            self.start_ns = int(self._reader.start_time)
            self.end_ns = int(self._reader.end_time)
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------------ basics
    def close(self) -> None:
        if self._reader.stack is not None:
            self._reader.close()

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    @property
    def typestore(self):
        """The rosbags typestore holding every message type of this bag."""
        return self._reader.typestore

    def _topic_text(self) -> str:
        if not self.topics:
            return "no topics"
        return "topics: " + ", ".join(f"{t.name} [{t.msgtype}, {t.count} msgs]" for t in self.topics.values())

    def describe_topics(self) -> str:
        """One line listing every topic with its type and count (for error messages and logs)."""
        return f"bag '{self.path}' has {self._topic_text()}"

    def require_topic(self, topic: str, msgtypes: Collection[str]) -> TopicSummary:
        """The summary of ``topic``; BagError (listing the bag's topics) when absent, empty or mistyped."""
        info = self.topics.get(topic)
        want = " or ".join(msgtypes)
        if info is None:
            raise BagError(f"topic '{topic}' ({want}) is not in the bag; {self.describe_topics()}")
        if info.msgtype not in msgtypes:
            raise BagError(f"topic '{topic}' has type {info.msgtype}, expected {want}; {self.describe_topics()}")
        if info.count == 0:
            raise BagError(f"topic '{topic}' has no messages; {self.describe_topics()}")
        return info

    def connection_info(self, topic: str) -> tuple[str, str | None, str | None, list]:
        """(msgtype, definition text or None, RIHS01 hash or None, offered QoS profiles) to re-record a topic."""
        conn = self._reader.topics[topic].connections[0]
        msgdef = conn.msgdef.data if conn.msgdef.data else None
        digest = conn.digest if conn.digest and conn.digest.startswith("RIHS01_") else None
        qos = list(getattr(conn.ext, "offered_qos_profiles", None) or [])
        return conn.msgtype, msgdef, digest, qos

    # ---------------------------------------------------------------------------------- messages
    def messages(
        self, topics: Collection[str] | None = None, start_ns: int | None = None, stop_ns: int | None = None
    ) -> Iterator[RawMessage]:
        """Serialized messages in log-time order, optionally only ``topics`` and log times in [start, stop)."""
        conns = [c for c in self._reader.connections if topics is None or c.topic in topics]
        if not conns:
            return
        it = self._reader.messages(connections=conns, start=start_ns, stop=stop_ns)
        while True:
            try:
                conn, log_ns, data = next(it)
            except StopIteration:
                return
            except _READ_ERRORS as exc:
                raise BagError(f"bag '{self.path}' is corrupt: reading its messages failed: {_why(exc)}") from None
            yield RawMessage(conn.topic, conn.msgtype, int(log_ns), data)

    def deserialize(self, message: RawMessage) -> Any:
        """The message object (rosbags dataclass) of a :class:`RawMessage`."""
        try:
            return self._reader.deserialize(message.data, message.msgtype)
        except _READ_ERRORS as exc:
            raise BagError(
                f"bag '{self.path}': cannot decode a {message.msgtype} message on '{message.topic}' "
                f"(log time {message.log_ns} ns): {_why(exc)}"
            ) from None

    def has_header(self, msgtype: str) -> bool:
        """Whether messages of ``msgtype`` start with a std_msgs/Header (so :func:`header_stamp_ns` applies)."""
        try:
            fields = self.typestore.fielddefs[msgtype][1]
        except KeyError:
            return False
        return bool(fields) and fields[0][0] == "header" and fields[0][1][1] == HEADER_TYPE


def _why(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def open_bag(path: str | Path) -> BagReader:
    """Open a bag (directory, .mcap or .db3); raises :class:`BagError` with a clear message."""
    return BagReader(path)
