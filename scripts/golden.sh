#!/usr/bin/env bash
# `make golden`: rewrite test/data/*.golden.csv from the committed bags. Run it only on purpose (a new
# model, new thresholds), then read the diff and commit it with the change that caused it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
# shellcheck disable=SC1091
source "$ROOT/scripts/env.sh"
export ROS_DOMAIN_ID="${ROS_DOMAIN_ID:-$(( ($$ % 90) + 10 ))}"
cd "$ROOT"
python - <<'PY'
import pathlib, tempfile
from cardsorter.regression import BAGS, build_reference_database, golden_path, replay_to
with tempfile.TemporaryDirectory() as tmp:
    db = build_reference_database(pathlib.Path(tmp))
    for bag in BAGS:
        text = replay_to(bag, db, pathlib.Path(tmp) / f"{bag}.csv")
        golden_path(bag).write_text(text)
        print(f"wrote {golden_path(bag)} ({text.count(chr(10)) - 1} cards)")
PY
git --no-pager diff --stat -- test/data/*.golden.csv || true
