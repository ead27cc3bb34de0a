"""Build what the tests train and cache, before pytest starts (test support, run by scripts/test.sh).

On a cold cache (a new machine, or code that changes a model's cache key) training takes minutes: the
known-answer model (~10 min on 2 cores), the two env-state models (~5 min each), the known-answer map
evaluation, and the shortcut pair (~5 min each) with its evaluation. Inside a test that time counts against the per-test timeout (10 min; the watchdog ends a worker at
11), so a cold run could end a test that was only training. Here it counts against nothing. On a warm cache
each step is a cache lookup (seconds). The map evaluations include the uniform / random baseline maps the map
criteria must reject (issue 29) and the known-answer occlusion evaluation.

    python test/prepare_models.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the tests' own constants


def main() -> int:
    import test_env_state_known_answer as env_test

    from act_interp_ros.demo import env_state_model as em
    from act_interp_ros.demo import known_answer as ka
    from act_interp_ros.demo import shortcut_evaluation as se
    from act_interp_ros.demo import shortcut_model as sm
    from act_interp_ros.demo.map_baselines import BASELINES
    from act_interp_ros.demo.map_evaluation import BASELINE_EVALUATION, OCCLUSION_EVALUATION

    started = time.perf_counter()
    steps = [("known-answer model", lambda: ka.ensure_known_answer_model(progress=False))]
    steps += [(f"env-state model ({variant})", lambda spec=spec: em.ensure_env_state_model(progress=False, spec=spec))
              for variant, spec in env_test.VARIANTS.items()]
    steps.append(("known-answer map evaluation", lambda: ka.cached_map_evaluation(
        ka.ensure_known_answer_model(progress=False), **ka.STANDARD_EVALUATION)))
    steps += [(f"{name} model (shortcut pair)", lambda spec=spec: sm.ensure_shortcut_model(spec))
              for name, spec in sm.PAIR.items()]
    steps.append(("known-answer occlusion evaluation", lambda: ka.cached_map_evaluation(
        ka.ensure_known_answer_model(progress=False), **OCCLUSION_EVALUATION)))
    steps += [(f"known-answer {kind} map baseline", lambda kind=kind: ka.cached_map_evaluation(
        ka.ensure_known_answer_model(progress=False), **BASELINE_EVALUATION, baseline=kind)) for kind in BASELINES]
    steps += [(f"{name} model evaluation", lambda spec=spec: se.cached_shortcut_evaluation(
        sm.ensure_shortcut_model(spec), **se.STANDARD_SHORTCUT_EVALUATION)) for name, spec in sm.PAIR.items()]
    steps += [(f"{name} model {kind} map baseline", lambda spec=spec, kind=kind: se.cached_shortcut_evaluation(
        sm.ensure_shortcut_model(spec), **se.BASELINE_SHORTCUT_EVALUATION, baseline=kind))
        for kind in BASELINES for name, spec in sm.PAIR.items()]
    for name, build in steps:
        t0 = time.perf_counter()
        result = build()
        built = getattr(result, "built", None)
        state = "trained now" if built else "cached" if built is False else "ready"
        print(f"[prepare] {name}: {state} ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"[prepare] models ready in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
