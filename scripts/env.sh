# Source this (bash) to get the cardsorter development environment: venv, colcon install, DDS on loopback.
# Used by bin/cardsorter, the Makefile and .ci/run; safe to source twice.
_cs_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_cs_py="${PYTHON:-python3}"
export CARDSORTER_ROOT="$_cs_root"
export CARDSORTER_VENV="${CARDSORTER_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cardsorter/venv-$($_cs_py -c 'import sys; print("py%d%d" % sys.version_info[:2])')}"
export VIRTUAL_ENV="$CARDSORTER_VENV"
export PATH="$CARDSORTER_VENV/bin:$PATH"
export AMENT_PREFIX_PATH="$CARDSORTER_VENV" CMAKE_PREFIX_PATH="$CARDSORTER_VENV"
set +u
# shellcheck disable=SC1091
[[ -f "$_cs_root/install/setup.bash" ]] && source "$_cs_root/install/setup.bash"
set -u 2>/dev/null || true
_cs_site="$(echo "$_cs_root"/install/cardsorter/lib/python3.*/site-packages)"
# Repo sources first (edits need no rebuild); the generated cardsorter.msg/.srv come from install/.
export PYTHONPATH="$_cs_root:$_cs_site${PYTHONPATH:+:$PYTHONPATH}"
# These machines send nothing beyond loopback (DEV_ENV.md). The robot owner chooses their own.
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
unset _cs_root _cs_py _cs_site
