#!/usr/bin/env bash
# The README's test command runs this (via `make test`): bootstrap, then pytest on the whole suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
# A domain of its own so concurrent runs on this machine cannot hear each other (0..101 are valid).
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 90) + 10 ))}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
cd "$ROOT"
exec python -m pytest -q -p no:cacheprovider "$@" test
