"""Build what the tests train and cache, before pytest starts (test support, run by scripts/test.sh).

On a cold cache (a new machine, or code that changes a model's cache key) training takes minutes: the
known-answer model, the two env-state models, the known-answer map evaluations, and the shortcut pair with
its evaluations. The map evaluations include the uniform / random baseline maps the map criteria must reject
(issue 29) and the known-answer occlusion evaluation. Inside a test that time counts against the per-test timeout (10 min; the watchdog ends a worker
at 11), so a cold run could end a test that was only training. Here it counts against nothing. On a warm cache
each step is a cache lookup (seconds).

A test module says what it needs with the ``trained_models`` marker (module ``pytestmark`` or a test's
decorator), e.g. ``pytest.mark.trained_models("known_answer", "known_answer_maps")``; the names are the keys
of :data:`STEPS`. The markers are read from the source (no import, no collection), so listing is instant.

    python test/prepare_models.py                       # every model (what CI and `bash scripts/test.sh` run)
    python test/prepare_models.py test/test_x.py ...    # only the models those files (or dirs, node ids) mark
    python test/prepare_models.py --list [FILES ...]    # print the steps, train nothing
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path
from typing import Callable

TEST_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TEST_DIR))  # the tests' own constants

MARKER = "trained_models"


def _known_answer():
    from act_interp_ros.proofs import known_answer as ka
    return ka.ensure_known_answer_model(progress=False)


def _known_answer_maps(kind: str):
    """``standard``, ``occlusion`` or a baseline map's name (:data:`~act_interp_ros.proofs.map_baselines.BASELINES`)."""
    from act_interp_ros.proofs import known_answer as ka
    from act_interp_ros.proofs.map_evaluation import BASELINE_EVALUATION, OCCLUSION_EVALUATION

    model = ka.ensure_known_answer_model(progress=False)
    if kind == "standard":
        return ka.cached_map_evaluation(model, **ka.STANDARD_EVALUATION)
    if kind == "occlusion":
        return ka.cached_map_evaluation(model, **OCCLUSION_EVALUATION)
    return ka.cached_map_evaluation(model, **BASELINE_EVALUATION, baseline=kind)


def _env_state(variant: str):
    import test_env_state_known_answer as env_test

    from act_interp_ros.proofs import env_state_model as em
    return em.ensure_env_state_model(progress=False, spec=env_test.VARIANTS[variant])


def _shortcut(name: str):
    from act_interp_ros.proofs import shortcut_model as sm
    return sm.ensure_shortcut_model(sm.PAIR[name])


def _shortcut_evaluation(name: str, baseline: str | None = None):
    from act_interp_ros.proofs import shortcut_evaluation as se
    from act_interp_ros.proofs import shortcut_model as sm

    model = sm.ensure_shortcut_model(sm.PAIR[name])
    if baseline is None:
        return se.cached_shortcut_evaluation(model, **se.STANDARD_SHORTCUT_EVALUATION)
    return se.cached_shortcut_evaluation(model, **se.BASELINE_SHORTCUT_EVALUATION, baseline=baseline)


def _baselines() -> tuple[str, ...]:
    from act_interp_ros.proofs.map_baselines import BASELINES
    return tuple(BASELINES)


# marker name -> [(step label, build)], in training order; a step builds what it depends on itself.
STEPS: dict[str, list[tuple[str, Callable[[], object]]]] = {
    "known_answer": [("known-answer model", _known_answer)],
    "env_state": [(f"env-state model ({v})", lambda v=v: _env_state(v)) for v in ("normalised", "lerobot_default")],
    "known_answer_maps": [(f"known-answer {k} map evaluation", lambda k=k: _known_answer_maps(k))
                          for k in ("standard", "occlusion", *_baselines())],
    "shortcut_pair": [(f"{n} model (shortcut pair)", lambda n=n: _shortcut(n)) for n in ("control", "shortcut")],
    "shortcut_evaluation": [(f"{n} model evaluation", lambda n=n: _shortcut_evaluation(n))
                            for n in ("control", "shortcut")]
    + [(f"{n} model {k} map baseline", lambda n=n, k=k: _shortcut_evaluation(n, k))
       for k in _baselines() for n in ("control", "shortcut")],
}


def markers_in(path: Path) -> set[str]:
    """The ``trained_models`` names a test file's source marks (anywhere: ``pytestmark`` or decorators)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == MARKER):
            for arg in node.args:
                if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                    raise ValueError(f"{path}: {MARKER}(...) takes string literals, got {ast.unparse(arg)}")
                names.add(arg.value)
    unknown = names - set(STEPS)
    if unknown:
        raise ValueError(f"{path}: unknown {MARKER} {sorted(unknown)}; known: {sorted(STEPS)}")
    return names


def test_files(args: list[str]) -> list[Path]:
    """The test files among pytest-style arguments (files, directories, ``file::node`` ids; options ignored)."""
    files: list[Path] = []
    for arg in args:
        path = Path(arg.split("::", 1)[0])
        if arg.startswith("-") or not path.exists():
            continue
        files += sorted(path.rglob("test_*.py")) if path.is_dir() else [path]
    return files


def needed(args: list[str]) -> list[str]:
    """Marker names to build, in :data:`STEPS` order: all when no test file is given, else the files' marks."""
    files = test_files(args)
    if not files:
        return list(STEPS)
    marked = set().union(*(markers_in(f) for f in files))
    return [name for name in STEPS if name in marked]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tests", nargs="*", help="test files, directories or node ids (default: every model)")
    parser.add_argument("--list", action="store_true", help="print the steps and train nothing")
    args = parser.parse_args(argv)
    try:
        names = needed(args.tests)
    except (OSError, SyntaxError, ValueError) as err:
        print(f"prepare_models: error: {err}", file=sys.stderr)
        return 2
    steps = [step for name in names for step in STEPS[name]]
    if args.list:
        for label, _ in steps:
            print(label)
        return 0
    if not steps:
        print("[prepare] the given tests use no trained model", flush=True)
        return 0
    started = time.perf_counter()
    for label, build in steps:
        t0 = time.perf_counter()
        built = getattr(build(), "built", None)
        state = "trained now" if built else "cached" if built is False else "ready"
        print(f"[prepare] {label}: {state} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"[prepare] models ready in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
