"""The evaluation result cache's key covers every package module the evaluation can run (issue 29, item 5).

A change to any module the map or shortcut evaluation imports (directly, inside a function, or through a
package ``__init__``) must give a new key, or a warm machine reuses numbers computed by other code. The key's
closure is read by :func:`act_interp_ros.proofs.result_cache.import_closure` (``ast``); this test walks the same
modules with :mod:`modulefinder` (bytecode, an independent implementation) and fails if it finds a package
module the key leaves out.
"""

from __future__ import annotations

import json
import modulefinder
from pathlib import Path

import pytest

from act_interp_ros.proofs import map_evaluation, shortcut_evaluation
from act_interp_ros.proofs.result_cache import PACKAGE_DIR, cached_result, import_closure

ROOT = PACKAGE_DIR.parent


def _modulefinder_closure(module: str) -> set[str]:
    """Package source files (relative to the package) that ``module`` reaches, per :mod:`modulefinder`.

    The search path is only the package's parent directory, so third-party imports (torch, lerobot) are left
    unresolved instead of walked.
    """
    finder = modulefinder.ModuleFinder(path=[str(ROOT)])
    finder.import_hook(module)
    out = set()
    for name, mod in finder.modules.items():
        if name.split(".")[0] == PACKAGE_DIR.name and mod.__file__:
            out.add(Path(mod.__file__).resolve().relative_to(PACKAGE_DIR).as_posix())
    return out


@pytest.mark.parametrize("module, key_sources", [
    ("act_interp_ros.proofs.map_evaluation", map_evaluation.EVALUATION_SOURCES),
    ("act_interp_ros.proofs.shortcut_evaluation", shortcut_evaluation.SHORTCUT_EVALUATION_SOURCES),
])
def test_the_cache_key_covers_the_evaluations_import_closure(module, key_sources):
    found = _modulefinder_closure(module)
    # the walk is not vacuous: it reaches the modules issue 29 found missing from the hand-written key
    assert {"core/token_layout.py", "core/loading.py", "core/lerobot_compat.py", "settings/vocabulary.py",
            "proofs/map_scores.py", "core/faithfulness.py"} <= found, sorted(found)
    missing = found - set(key_sources)
    assert not missing, f"{module}'s result cache key leaves out {sorted(missing)}"
    for rel in key_sources:
        assert (PACKAGE_DIR / rel).is_file(), rel


def test_import_closure_reads_relative_and_function_level_imports():
    closure = set(import_closure("act_interp_ros.proofs.map_evaluation"))
    # evaluate_policy_maps imports act_interp_ros.core and act_interp_ros.synthetic inside the function
    assert {"core/__init__.py", "synthetic/__init__.py", "synthetic/scene.py", "__init__.py"} <= closure
    with pytest.raises(ValueError, match="not a module"):
        import_closure("act_interp_ros.no_such_module")


def test_cached_result_recomputes_when_a_source_or_an_argument_changes(tmp_path):
    calls = []

    def run(kwargs, sources):
        return cached_result(tmp_path, "t", kwargs, sources, lambda: calls.append(1) or {"n": len(calls)},
                             lambda d: d, lambda r: r)

    sources = ("proofs/result_cache.py",)
    assert run({"a": 1}, sources) == {"n": 1}
    assert run({"a": 1}, sources) == {"n": 1}  # cached
    assert run({"a": 2}, sources) == {"n": 2}
    assert run({"a": 1}, sources + ("proofs/map_scores.py",)) == {"n": 3}
    (path,) = [p for p in tmp_path.glob("t-*.json") if json.loads(p.read_text()) == {"n": 1}]
    path.write_text("{not json")
    assert run({"a": 1}, sources) == {"n": 4}  # an unreadable file is recomputed
