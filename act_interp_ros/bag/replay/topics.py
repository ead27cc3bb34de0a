"""Which bag topics a replay reads: each camera's topic (raw, or its compressed twin), and the marker of a
message that could not be deserialised."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from act_interp_ros.bag.reader import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, BagError, BagReader

logger = logging.getLogger(__name__)


@dataclass
class ReplayCamera:
    key: str
    name: str
    topic: str
    msgtype: str
    size_hw: tuple[int, int]


def resolve_camera(reader: BagReader, key: str, topic: str, transport: str) -> tuple[str, str]:
    """(topic, msgtype) for a camera; falls back to the other transport's topic when only that one exists."""
    want = IMAGE_TYPE if transport == "raw" else COMPRESSED_IMAGE_TYPE
    if topic in reader.topics:
        reader.require_topic(topic, (want,))
        return topic, want
    if transport == "raw":
        alt, alt_type = topic.rstrip("/") + "/compressed", COMPRESSED_IMAGE_TYPE
    else:
        alt, alt_type = topic.rstrip("/").removesuffix("/compressed"), IMAGE_TYPE
    info = reader.topics.get(alt)
    if info is not None and info.msgtype == alt_type and info.count > 0:
        logger.warning("camera '%s': topic '%s' is not in the bag; using '%s' (%s) instead", key, topic, alt, alt_type)
        return alt, alt_type
    raise BagError(
        f"camera '{key}': topic '{topic}' ({want}) is not in the bag (nor '{alt}'); "
        f"{reader.describe_topics()}. Set camera_topics / camera_transports in the config")


@dataclass(frozen=True)
class Undecodable:
    """A bag message that could not be deserialised (counted as bad input of its topic)."""

    topic: str
    error: str
