"""An evaluation computed once per model, arguments and evaluation code, stored as JSON beside the checkpoint."""

from __future__ import annotations

import ast
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")

PACKAGE_DIR = Path(__file__).resolve().parents[1]
PACKAGE = PACKAGE_DIR.name


def _module_file(name: str) -> Path | None:
    """``act_interp_ros.a.b`` -> its source file in the package (module or package ``__init__``), or None."""
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, name: str) -> set[str]:
    """Package modules that ``path`` (module ``name``) imports anywhere in its body, functions included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # ``from pkg import submodule``
    return {m for m in found if _module_file(m) is not None}


def import_closure(*modules: str) -> tuple[str, ...]:
    """Source files (relative to the package, sorted) of ``modules`` and every package module they import,
    transitively, with the ``__init__.py`` of each package on the way (run on import).

    Imports are read from the source (``ast``), including those inside functions, so the closure is what the
    code can run, not only what one import executed.
    """
    seen: dict[str, Path] = {}
    todo = list(modules)
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for k in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__, a/b/__init__
            prefix = ".".join(parts[:k])
            path = _module_file(prefix)
            if path is None:
                raise ValueError(f"{prefix!r} is not a module of {PACKAGE}")
            if prefix not in seen:
                seen[prefix] = path
                todo.extend(_imported_modules(path, prefix))
    return tuple(sorted({p.relative_to(PACKAGE_DIR).as_posix() for p in seen.values()}))


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


__all__ = ["cached_result", "import_closure"]
