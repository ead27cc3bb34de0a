#!/usr/bin/env bash
# Set up the virtualenvs if needed, then run the tests at both ends of the supported LeRobot range (issue 19):
#   1. the whole suite in .venv (Python 3.12/3.13 with the newest LeRobot 0.6.x; see scripts/setup_env.sh);
#   2. loading, the engine, datasets and node tests over DDS in .venv-lerobot0.4 (Python 3.11/3.10, LeRobot
#      0.4.4), where such a Python exists.
# Extra args go to pytest (both runs). ACT_INTERP_TEST_ENDS=newest or oldest runs one end only.
# The fast loop (CONTRIBUTING.md): `bash scripts/test.sh test/test_x.py [more files, dirs or ::node ids]` runs
# only those (not the whole suite), trains only the models they mark (@pytest.mark.trained_models), and runs
# the oldest end only for the given files that are in OLDEST_END_TESTS (else not at all).
# ACT_INTERP_TEST_DRY_RUN=1 prints the commands instead of running them (test/test_test_script.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ends="${ACT_INTERP_TEST_ENDS:-newest oldest}"
# One xdist worker: a test stuck inside C code is ended by test/conftest.py's watchdog and rerun once
# (--reruns 1 with --rerun-except '.*': only crashed tests are rerun, an ordinary failure is final).
pytest_args=(-n 1 --reruns 1 --rerun-except '.*' -r fER)
# The simulator needs Python >= 3.12 (so101-nexus): at the oldest end its units and CLI tests run, the rest is skipped.
OLDEST_END_TESTS=(test/test_lerobot_compat.py test/test_engine_loading.py test/test_engine_actions.py
  test/test_engine_observation.py test/test_engine_attention.py test/test_engine_gradcam.py
  test/test_engine_attribution.py test/test_dataset_source.py test/test_dataset_features.py
  test/test_dataset_replay.py test/test_node_end_to_end.py test/test_node_safety.py
  test/test_sim_units.py test/test_sim_cli.py test/test_sim_evaluation.py test/test_sim_arm.py)

run() {  # a command, or with ACT_INTERP_TEST_DRY_RUN=1 its words, one line
  if [[ "${ACT_INTERP_TEST_DRY_RUN:-}" == 1 ]]; then echo "[dry-run] $*"; else "$@"; fi
}

# Split the arguments: test paths (files, directories, file::node ids that exist) and the rest (pytest options).
tests=() options=()
for arg in "$@"; do
  if [[ "$arg" != -* && -e "${arg%%::*}" ]]; then tests+=("$arg"); else options+=("$arg"); fi
done
if ((${#tests[@]})); then
  newest_tests=("${tests[@]}")
  oldest_tests=()
  for arg in "${tests[@]}"; do
    for listed in "${OLDEST_END_TESTS[@]}"; do
      if [[ "${arg%%::*}" == "$listed" || "${arg%%::*}" == "./$listed" ]]; then oldest_tests+=("$arg"); fi
    done
  done
  newest_label="the given tests"
else
  newest_tests=(test/)
  oldest_tests=("${OLDEST_END_TESTS[@]}")
  newest_label="the whole suite"
fi

status=0
if [[ " $ends " == *" newest "* ]]; then
  run bash scripts/setup_env.sh
  # Train (or find cached) the models the tests use before pytest: on a cold cache training would count
  # against a single test's timeout (test/prepare_models.py; with test files, only the models they mark).
  echo "[test] preparing the trained models (minutes on a cold cache, seconds when cached)"
  if ((${#tests[@]})); then
    run .venv/bin/python test/prepare_models.py "${tests[@]}" || status=$?
  else
    run .venv/bin/python test/prepare_models.py || status=$?
  fi
  echo "[test] $newest_label in .venv"
  run .venv/bin/python -m pytest "${newest_tests[@]}" "${pytest_args[@]}" ${options[@]+"${options[@]}"} || status=$?
fi
if [[ " $ends " == *" oldest "* ]]; then
  if ((${#oldest_tests[@]} == 0)); then
    echo "[test] the LeRobot 0.4.4 end: none of the given tests is in its list (scripts/test.sh OLDEST_END_TESTS)"
  elif run env OLDEST=1 VENV=.venv-lerobot0.4 LEROBOT="lerobot==0.4.4" bash scripts/setup_env.sh; then
    echo "[test] the LeRobot 0.4.4 end in .venv-lerobot0.4: ${oldest_tests[*]}"
    run .venv-lerobot0.4/bin/python -m pytest "${oldest_tests[@]}" "${pytest_args[@]}" ${options[@]+"${options[@]}"} \
      || status=$?
  else
    echo "[test] FAILED: could not set up the LeRobot 0.4.4 end (needs Python 3.10 or 3.11)" >&2
    status=1
  fi
fi
exit "$status"
