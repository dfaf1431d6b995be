"""One sorting station writing to a shared inventory (run as a process by test_inventory_postgres.py).

Usage: pg_station.py URL STATION N [forever]. Prints 'committed <row id>' after each append returns.
"""

from __future__ import annotations

import math
import os
import pathlib
import sys
import time

from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.types import CardRecord, SortDecision, SortStatus
from cardsorter.inventory.store import open_inventory

CARDS = [CardRecord(card_id=f"sv1-{i}", name=f"Card {i}", set_id="sv1", set_name="Set One", number=str(i))
         for i in range(1, 8)]


def main() -> int:
    url, station, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    forever = len(sys.argv) > 4
    inv = open_inventory(url, session_id=f"session-{station}", model_id="m", database_id="d", reject_bin="reject",
                         opened_ns=1, condition="NM", station=station)
    go = os.environ.get("PG_STATION_GO")
    if go:   # a start line: both stations are connected before either writes (they really run at once)
        pathlib.Path(f"{go}.{station}.ready").touch()
        while not os.path.exists(go):
            time.sleep(0.01)
    i = 0
    while forever or i < n:
        rec = CARDS[(i * 3 + len(station)) % len(CARDS)]
        bin_name = "reject" if i % 10 == 9 else "a"
        d = SortDecision(track_id=i, status=SortStatus.CONFIRMED, card=rec, bin_name=bin_name, reason="rule",
                         distance_cos=0.1, margin_to_runner_up=math.inf, first_stamp_ns=i, last_stamp_ns=i + 1)
        row = inv.append(SortEvent(d, i + 1, i * 100, None, station))
        print(f"committed {row}", flush=True)
        i += 1
    inv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
