"""Play a rosbag2 through real rclpy publishers with its original timing (``act_interp_play``).

The bag is read with the replay's own reader (:class:`act_interp_ros.bag.reader.BagReader`: ``rosbags``,
mcap or sqlite3, no ROS install needed) and each message's raw CDR bytes are published unchanged with ``Publisher.publish(bytes)`` (rclpy's ``publish_raw`` path, present
since Humble); if a rclpy without serialized publishing is found, the bytes are deserialized with
``rclpy.serialization.deserialize_message`` first. Message classes are resolved by import:
``sensor_msgs/msg/Image`` -> ``from sensor_msgs.msg import Image``.

Timing: message ``i`` is published at ``wall_start + (t_i - t_first) / rate``. With ``clock=True``,
``/clock`` (rosgraph_msgs/Clock) carries the bag time, at ``clock_hz`` and just before every message,
so nodes with ``use_sim_time`` follow the bag. With ``loop=True`` playback (and /clock) restart from
the beginning, like ``ros2 bag play --loop``.

QoS of every publisher (topics and /clock): RELIABLE, VOLATILE, KEEP_LAST(depth=10 by default). A
reliable publisher matches both reliable and best-effort (sensor-data) subscribers.

Use from code (a thread; the node may be spun elsewhere, publishing needs no executor)::

    player = BagPlayer("bag_dir", rate=2.0, clock=True)
    thread = player.start(node)      # or player.run(node) to block
    ...
    player.stop(); thread.join(); print(player.summary.format())
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from act_interp_ros.bag.reader import BagError, TopicSummary, open_bag

logger = logging.getLogger("act_interp_ros.bag.play")  # also when run as __main__

CLOCK_TOPIC = "/clock"


class BagPlayError(BagError):
    """The bag cannot be played (unknown message type, topic or range, bad rate, no subscribers...).

    Problems reading the bag itself are :class:`~act_interp_ros.bag.reader.BagError` (its base class).
    """


@dataclass(frozen=True)
class BagInfo:
    """What :func:`inspect_bag` found."""

    path: Path
    topics: dict[str, TopicSummary]
    start_ns: int
    end_ns: int
    message_count: int

    @property
    def duration_s(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass
class PlaybackSummary:
    """Counts of one :meth:`BagPlayer.run`.

    ``dropped`` counts messages that could not be published (publish raised); ``max_lag_s`` is the
    largest delay of a publication behind its schedule (a slow machine or a too high ``rate``).
    """

    published: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    clock_messages: int = 0
    loops_completed: int = 0
    wall_time_s: float = 0.0
    max_lag_s: float = 0.0
    stopped_early: bool = False
    publish_mode: str = ""

    @property
    def total_published(self) -> int:
        return sum(self.published.values())

    def format(self) -> str:
        """Human-readable multi-line summary."""
        lines = [
            f"published {self.total_published} messages in {self.wall_time_s:.2f} s "
            f"({self.loops_completed} complete pass(es){', stopped early' if self.stopped_early else ''}; "
            f"max lag {self.max_lag_s * 1000:.1f} ms; {self.publish_mode or 'n/a'})"
        ]
        for topic in sorted(set(self.published) | set(self.dropped)):
            lines.append(f"  {topic}: {self.published[topic]} published, {self.dropped[topic]} dropped")
        if self.clock_messages:
            lines.append(f"  {CLOCK_TOPIC}: {self.clock_messages} published")
        return "\n".join(lines)


def inspect_bag(path: str | Path) -> BagInfo:
    """Topics, counts and time range of a bag. Raises :class:`BagError` when it cannot be read."""
    with open_bag(path) as reader:
        return BagInfo(Path(path), dict(reader.topics), reader.start_ns, reader.end_ns, reader.message_count)


def resolve_message_type(msgtype: str) -> Any:
    """``"pkg/msg/Name"`` (or ``"pkg/Name"``) -> the rclpy message class ``pkg.msg.Name``."""
    parts = msgtype.split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagPlayError(f"malformed message type {msgtype!r}; expected 'package/msg/Name'")
    pkg, sub, name = parts
    module_name = f"{pkg}.{sub}"
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BagPlayError(
            f"message type {msgtype!r}: Python module {module_name!r} is not importable ({exc}); install the "
            f"package's interfaces (PyPI wheel 'ros-{pkg.replace('_', '-')}' or your ROS distro's "
            f"ros-<distro>-{pkg.replace('_', '-')}), or leave its topic out with --topics"
        ) from exc
    cls = getattr(module, name, None)
    if cls is None:
        raise BagPlayError(f"message type {msgtype!r}: module {module_name!r} has no {name!r}")
    return cls


class BagPlayer:
    """Publish a bag's messages through rclpy with their recorded relative timing.

    Args:
        bag_path: rosbag2 directory (or a single .mcap / .db3 file).
        rate: playback speed factor (2.0 = twice as fast).
        loop: start over at the end until :meth:`stop`.
        clock: publish rosgraph_msgs/Clock on /clock (bag time) at ``clock_hz`` and before each message.
        clock_hz: /clock rate when ``clock``.
        topics: play only these topics (default: all).
        start_offset: skip the first ``start_offset`` seconds of the bag.
        delay: seconds to sleep after creating publishers (and waiting for subscribers) before playing.
        qos_depth: KEEP_LAST depth of the RELIABLE/VOLATILE publishers.
        wait_for_subscribers: before playing, wait until every played topic has at least this many
            matched subscriptions (0 = do not wait); :class:`BagPlayError` after ``wait_timeout``
            seconds. Restrict the played topics with ``topics`` if a consumer ignores some of them.
        wait_timeout: seconds for ``wait_for_subscribers``.

    Raises:
        BagPlayError: (at construction) missing path, not a bag, no messages, unknown topics, a message
            package that is not importable, nothing left after ``start_offset``, bad rate.
    """

    def __init__(
        self,
        bag_path: str | Path,
        *,
        rate: float = 1.0,
        loop: bool = False,
        clock: bool = False,
        clock_hz: float = 100.0,
        topics: Sequence[str] | None = None,
        start_offset: float = 0.0,
        delay: float = 0.0,
        qos_depth: int = 10,
        wait_for_subscribers: int = 0,
        wait_timeout: float = 10.0,
    ) -> None:
        if not rate > 0:
            raise BagPlayError(f"rate must be > 0, got {rate}")
        if clock and not clock_hz > 0:
            raise BagPlayError(f"clock_hz must be > 0, got {clock_hz}")
        if start_offset < 0 or delay < 0 or wait_timeout < 0 or wait_for_subscribers < 0:
            raise BagPlayError("start_offset, delay, wait_timeout and wait_for_subscribers must be >= 0")
        if qos_depth < 1:
            raise BagPlayError(f"qos_depth must be >= 1, got {qos_depth}")
        self.bag_path = Path(bag_path)
        self.info = inspect_bag(self.bag_path)
        self.rate = float(rate)
        self.loop = bool(loop)
        self.clock = bool(clock)
        self.clock_hz = float(clock_hz)
        self.start_offset = float(start_offset)
        self.delay = float(delay)
        self.qos_depth = int(qos_depth)
        self.wait_for_subscribers = int(wait_for_subscribers)
        self.wait_timeout = float(wait_timeout)
        if topics:
            unknown = [t for t in topics if t not in self.info.topics]
            if unknown:
                raise BagPlayError(f"topics {unknown} are not in bag {str(self.bag_path)!r}; it has "
                                   f"{sorted(self.info.topics)}")
            self.topics = list(dict.fromkeys(topics))
        else:
            self.topics = sorted(self.info.topics)
        if sum(self.info.topics[t].count for t in self.topics) == 0:
            raise BagPlayError(f"the selected topics {self.topics} have no messages in {str(self.bag_path)!r}")
        self.msg_classes = {t: resolve_message_type(self.info.topics[t].msgtype) for t in self.topics}
        self.start_ns = self.info.start_ns + int(round(self.start_offset * 1e9))
        if self.start_ns > self.info.end_ns:
            raise BagPlayError(f"start offset {self.start_offset} s is past the end of the bag "
                               f"({self.info.duration_s:.3f} s long)")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.summary = PlaybackSummary()
        self.error: BaseException | None = None  # what ended a start() thread, if it failed

    # ------------------------------------------------------------------ control
    def stop(self) -> None:
        """Ask :meth:`run` to return as soon as possible (thread-safe)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def start(self, node) -> threading.Thread:
        """Run :meth:`run` in a daemon thread; errors end up logged and in ``self.error``."""
        self.error = None

        def target() -> None:
            try:
                self.run(node)
            except BaseException as exc:  # noqa: BLE001 - reported to the owner of the thread
                self.error = exc
                logger.error("bag playback failed: %s", exc)

        self._thread = threading.Thread(target=target, name="act_interp_play", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the :meth:`start` thread; True when it has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ playback
    def _qos(self):
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.qos_depth,
                          reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)

    def _wait_for_subscribers(self, publishers: dict[str, Any]) -> None:
        if self.wait_for_subscribers <= 0:
            return
        deadline = time.monotonic() + self.wait_timeout
        while True:
            counts = {t: p.get_subscription_count() for t, p in publishers.items()}
            if all(c >= self.wait_for_subscribers for c in counts.values()):
                logger.info("subscribers matched: %s", counts)
                return
            if self._stop.is_set():
                return
            if time.monotonic() >= deadline:
                missing = {t: c for t, c in counts.items() if c < self.wait_for_subscribers}
                raise BagPlayError(
                    f"timed out after {self.wait_timeout} s waiting for {self.wait_for_subscribers} "
                    f"subscriber(s) on every played topic; still short: {missing} (play fewer topics with "
                    f"--topics, or check ROS_DOMAIN_ID / ROS_AUTOMATIC_DISCOVERY_RANGE of the consumer)"
                )
            self._stop.wait(0.05)

    def run(self, node) -> PlaybackSummary:
        """Create the publishers on ``node`` and play (blocking). Returns (and keeps) the summary."""
        from rclpy.serialization import deserialize_message
        from rosgraph_msgs.msg import Clock

        qos = self._qos()
        context = node.context
        publishers = {t: node.create_publisher(self.msg_classes[t], t, qos) for t in self.topics}
        clock_pub = node.create_publisher(Clock, CLOCK_TOPIC, qos) if self.clock else None
        summary = PlaybackSummary()
        self.summary = summary
        raw_ok: dict[str, bool] = {t: True for t in self.topics}
        clock_msg = Clock()
        last_clock_ns = -1

        def publish_clock(t_ns: int) -> None:
            nonlocal last_clock_ns
            clock_msg.clock.sec, clock_msg.clock.nanosec = divmod(int(t_ns), 10**9)
            clock_pub.publish(clock_msg)
            last_clock_ns = t_ns
            summary.clock_messages += 1

        try:
            self._wait_for_subscribers(publishers)
            if self.delay > 0:
                self._stop.wait(self.delay)
            wall_begin = time.monotonic()
            clock_period = 1.0 / self.clock_hz
            while not self._stop.is_set():
                with open_bag(self.bag_path) as reader:
                    wall0 = time.monotonic()
                    t0 = self.start_ns
                    next_clock = wall0
                    if clock_pub is not None:
                        publish_clock(t0)
                        next_clock = wall0 + clock_period
                    for message in reader.messages(list(publishers), start_ns=self.start_ns):
                        t_ns, raw = message.log_ns, message.data
                        due = wall0 + (t_ns - t0) / 1e9 / self.rate
                        while not self._stop.is_set():
                            now = time.monotonic()
                            if now >= due:
                                break
                            if clock_pub is not None and now >= next_clock:
                                publish_clock(min(t_ns, t0 + int((now - wall0) * self.rate * 1e9)))
                                next_clock += clock_period
                                if next_clock < now:  # fell behind: do not burst
                                    next_clock = now + clock_period
                                continue
                            wake = min(due, next_clock) if clock_pub is not None else due
                            self._stop.wait(max(0.0, wake - now))
                        if self._stop.is_set():
                            break
                        if not context.ok():  # rclpy shut down (e.g. SIGINT): nothing can be published
                            logger.info("rclpy context shut down; stopping playback")
                            self._stop.set()
                            break
                        summary.max_lag_s = max(summary.max_lag_s, time.monotonic() - due)
                        if clock_pub is not None and t_ns != last_clock_ns:
                            publish_clock(t_ns)
                        topic = message.topic
                        data = raw if isinstance(raw, bytes) else bytes(raw)
                        try:
                            if raw_ok[topic]:
                                try:
                                    publishers[topic].publish(data)
                                except TypeError:  # rclpy without serialized publishing
                                    raw_ok[topic] = False
                                    logger.warning("rclpy cannot publish serialized bytes on %s; "
                                                   "deserializing messages instead", topic)
                            if not raw_ok[topic]:
                                publishers[topic].publish(deserialize_message(data, self.msg_classes[topic]))
                            summary.published[topic] += 1
                        except Exception as exc:  # noqa: BLE001 - count, report once per topic
                            if summary.dropped[topic] == 0:
                                logger.error("publishing on %s failed: %s", topic, exc)
                            summary.dropped[topic] += 1
                    else:
                        summary.loops_completed += 1
                if not self.loop:
                    break
            summary.stopped_early = self._stop.is_set()
            summary.wall_time_s = time.monotonic() - wall_begin
            summary.publish_mode = (
                "serialized bytes" if all(raw_ok.values()) else
                "deserialized on " + ", ".join(t for t, ok in raw_ok.items() if not ok)
            )
        finally:
            for pub in publishers.values():
                node.destroy_publisher(pub)
            if clock_pub is not None:
                node.destroy_publisher(clock_pub)
        logger.info("playback of %s: %s", self.bag_path, summary.format())
        return summary


def play_bag(bag_path: str | Path, node=None, **kwargs) -> PlaybackSummary:
    """Blocking convenience: play ``bag_path`` on ``node`` (or a temporary node in the default context).

    ``kwargs`` are :class:`BagPlayer` arguments. rclpy must be initialised when ``node`` is None.
    """
    player = BagPlayer(bag_path, **kwargs)
    if node is not None:
        return player.run(node)
    import rclpy

    tmp = rclpy.create_node("act_interp_play")
    try:
        return player.run(tmp)
    finally:
        tmp.destroy_node()
