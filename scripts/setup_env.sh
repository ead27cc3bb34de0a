#!/usr/bin/env bash
# Create (or reuse) the project virtualenv at .venv/ and install the package with its dependencies.
#   EXTRAS   pip extras to install (default "ros,test": ROS 2 wheels from PyPI + test tools).
#            On a machine with ROS 2 from apt, use EXTRAS=test and PYTHON with --system-site-packages
#            (see README) so your apt rclpy is used and no second rclpy is installed.
#   PYTHON   interpreter to create the venv with (default: python3; needs 3.10-3.12).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
EXTRAS="${EXTRAS:-ros,test}"
VENV_ARGS="${VENV_ARGS:-}"
stamp=".venv/.act_interp_installed"
want="$(cat setup.py | sha256sum | cut -c1-16)-${EXTRAS}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating virtualenv .venv with $($PYTHON --version 2>&1)"
  "$PYTHON" -m venv $VENV_ARGS .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing act_interp_ros[$EXTRAS] and dependencies (first time: a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -m pip install -q -e ".[$EXTRAS]" 2>&1 | grep -v '^WARNING: Location' || true
  .venv/bin/python -c "import act_interp_ros.core, lerobot, torch" || { echo "[setup] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
else
  echo "[setup] .venv is up to date"
fi
