#!/usr/bin/env bash
# Re-create the regression bags (camera output only; they do not depend on the model or database).
# The goldens that go with them are written by `make golden` (scripts/golden.sh), on purpose only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CS="$ROOT/bin/cardsorter"
CAT="$(mktemp -d)/catalog"
"$CS" catalog generate --out "$CAT" --cards 30 --seed 3 --unknown 3 >/dev/null   # = test/data/CATALOG
cd "$ROOT/test/data"
rm -rf belt4 station_raw3
# A belt of 4 cards with every camera-side topic: detections come from the bag.
"$CS" record belt4 --run --nodes camera --source synthetic --catalog "$CAT" --cards 4 --seed 21 --fps 10 \
  --width 320 --height 240 --set camera.synthetic.card_height_px=130 --set camera.synthetic.belt_speed_px_per_s=200.0 --set camera.synthetic.unknown_frac=0.25 \
  --topics camera/image_raw,camera/detections,camera/ground_truth,camera/end_of_stream
# A station with 3 cards and only raw images, as `ros2 bag record /camera/image_raw` gives: the CPU detector runs.
"$CS" record station_raw3 --run --nodes camera --source synthetic --catalog "$CAT" --cards 3 --seed 22 --fps 10 \
  --width 320 --height 240 --set camera.synthetic.card_height_px=130 --set camera.synthetic.station_dwell_s=1.0 --set camera.synthetic.mode=station --topics camera/image_raw
du -sh belt4 station_raw3
