"""An evaluation computed once per model, arguments and evaluation code, stored as JSON beside the checkpoint."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def cached_result(directory: Path, prefix: str, kwargs: dict[str, Any], sources: tuple[str, ...],
                  compute: Callable[[], T], load: Callable[[dict[str, Any]], T], dump: Callable[[T], dict[str, Any]]
                  ) -> T:
    """``directory/<prefix>-<key>.json`` read with ``load``, or ``compute()`` written there with ``dump`` first.

    ``<key>`` hashes ``kwargs`` and the bytes of ``sources`` (paths relative to the package): a change to either
    computes anew. An unreadable file is logged and recomputed; the write is atomic (temporary file, rename).
    """
    h = hashlib.sha256(json.dumps(kwargs, sort_keys=True, default=str).encode())
    for rel in sources:
        h.update(rel.encode())
        h.update((PACKAGE_DIR / rel).read_bytes())
    path = directory / f"{prefix}-{h.hexdigest()[:16]}.json"
    if path.is_file():
        try:
            return load(json.loads(path.read_text()))
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("ignoring the unreadable cached result %s (%s)", path, exc)
    result = compute()
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(dump(result), default=str))
    os.replace(tmp, path)
    return result


__all__ = ["cached_result"]
