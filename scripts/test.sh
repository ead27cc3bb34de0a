#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite (pytest). Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
# One xdist worker: a test stuck inside C code is ended by test/conftest.py's watchdog and rerun once
# (--reruns 1 with --rerun-except '.*': only crashed tests are rerun, an ordinary failure is final).
exec .venv/bin/python -m pytest test/ -n 1 --reruns 1 --rerun-except '.*' -r fER "$@"
