#!/usr/bin/env bash
# Create (or reuse) a project virtualenv and install the package with its dependencies.
#
# Which Python and LeRobot (issue 19): Python 3.12 (the Python of ROS 2 Jazzy and Kilted) or else 3.13, with
# the newest LeRobot 0.6.x; where neither is found, Python 3.11 or 3.10 with LeRobot 0.4.x (the newest LeRobot
# for them). It prints what it installed.
#   PYTHON     interpreter to use (skips the search); LeRobot is then whatever pip resolves for it.
#   VENV       virtualenv folder (default .venv).
#   EXTRAS     pip extras (default "ros,test,sim" on Python >= 3.12, else "ros,test": ROS 2 wheels from PyPI, test
#              tools and the MuJoCo SO-101 simulator, which needs Python >= 3.12). On a machine with ROS 2
#              from apt, use EXTRAS=test VENV_ARGS=--system-site-packages (see README) so your apt rclpy is
#              used and no second rclpy is installed.
#   LEROBOT    an extra requirement for LeRobot, e.g. "lerobot==0.5.1" (default: none, the newest allowed).
#   OLDEST=1   search Python 3.11/3.10 only (scripts/test.sh's LeRobot 0.4.4 end).
# A venv is reused while its Python, setup.py, EXTRAS and LEROBOT are unchanged; otherwise it is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
VENV_ARGS="${VENV_ARGS:-}"
LEROBOT="${LEROBOT:-}"

# A working interpreter for version X.Y: on PATH, else a pyenv install (whose shim may not expose it).
find_python() {
  local v="$1" c
  for c in "python$v" "$(pyenv root 2>/dev/null)/versions/$v"*/bin/"python$v"; do
    if "$c" -c 'import sys, venv' >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

if [ -z "${PYTHON:-}" ]; then
  if [ "${OLDEST:-0}" = 1 ]; then wanted="3.11 3.10"; else wanted="3.12 3.13 3.11 3.10"; fi
  for v in $wanted; do PYTHON="$(find_python "$v")" && break || PYTHON=""; done
  [ -n "$PYTHON" ] || { echo "[setup] no Python 3.10-3.13 found (tried: $wanted); set PYTHON=/path/to/python3.x" >&2; exit 1; }
fi
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$pyver" in 3.10|3.11|3.12|3.13) ;; *) echo "[setup] $PYTHON is Python $pyver; this package needs 3.10-3.13" >&2; exit 1;; esac
# The simulator (extra "sim": so101-nexus) needs Python >= 3.12: the newest end only (its markers keep it empty below).
case "$pyver" in 3.10|3.11) EXTRAS="${EXTRAS:-ros,test}" ;; *) EXTRAS="${EXTRAS:-ros,test,sim}" ;; esac

stamp="$VENV/.act_interp_installed"
want="$(sha256sum setup.py | cut -c1-16)-${EXTRAS}-py${pyver}-${LEROBOT}-${VENV_ARGS}"
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" != "$pyver" ]; then
  echo "[setup] $VENV was made with another Python; recreating it with Python $pyver"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating virtualenv $VENV with $("$PYTHON" --version 2>&1) ($PYTHON)"
  "$PYTHON" -m venv $VENV_ARGS "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # PyTorch from PyPI is a CUDA build: the venv takes 6-9 GB, and pip needs room for the wheels while it
  # installs. Say so in one line instead of pip's "No space left on device" halfway through.
  free_gb=$(( $(df -Pk "$VENV" | awk 'NR==2 {print $4}') / 1048576 ))
  if ! compgen -G "$VENV/lib/python*/site-packages/torch" >/dev/null && [ "$free_gb" -lt "${ACT_INTERP_MIN_FREE_GB:-12}" ]; then
    echo "[setup] only ${free_gb} GB free where $VENV lives; installing needs about ${ACT_INTERP_MIN_FREE_GB:-12} GB" \
      "(PyTorch from PyPI is a CUDA build): free some space or set VENV=/path/on/a/larger/disk" >&2
    exit 1
  fi
  echo "[setup] installing act_interp_ros[$EXTRAS] ${LEROBOT} and dependencies into $VENV (first time: a few minutes;"
  echo "[setup]   PyTorch from PyPI is a CUDA build of several GB)"
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
  # shellcheck disable=SC2086 # LEROBOT is empty or one requirement
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]" $LEROBOT 2>&1 | grep -v '^WARNING: Location' || true
  "$VENV/bin/python" -c "import act_interp_ros.core, lerobot, torch" || { echo "[setup] install failed" >&2; exit 1; }
  echo "$want" > "$stamp"
else
  echo "[setup] $VENV is up to date"
fi
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as m, sys
print(f"[setup] Python {sys.version.split()[0]}, LeRobot {m.version('lerobot')}, torch {m.version('torch')} "
      f"in {sys.prefix}")
EOF
