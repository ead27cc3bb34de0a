#!/usr/bin/env bash
# Set up .venv if needed, then run the built-in demo (see README). Extra args go to act_interp_demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec .venv/bin/act_interp_demo "$@"
