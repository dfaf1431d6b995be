"""Fault test: a sorter process killed with SIGKILL between cards leaves an intact, consistent inventory."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap
from collections import defaultdict

import pytest

from cardsorter.config import REPO_ROOT
from cardsorter.inventory.sqlite_store import integrity_check, read_rows

# The child sorts cards one after another (station mode, simulated actuator) and reports each sort
# event on stdout only after its inventory row is committed; it never stops by itself.
CHILD = textwrap.dedent("""
    import dataclasses
    import sys
    from cardsorter.settings import load_settings
    from cardsorter.backends.actuators import open_actuator
    from cardsorter.core.bin_rules import load_rules
    from cardsorter.core.sorting import SorterConfig, SorterCore
    from cardsorter.core.types import CardRecord, Identity, TrackState
    from cardsorter.inventory.sqlite_store import Inventory

    sorter = load_settings().sorter
    config = sorter.core
    config = dataclasses.replace(config, mode="station")
    rules = load_rules(sys.argv[2])
    actuator = open_actuator("simulated", sorter.actuator, rules.bins)
    inventory = Inventory(sys.argv[1], session_id="fault", model_id="m", database_id="d",
                          reject_bin=rules.reject_bin, opened_ns=0)
    core = SorterCore(config, rules, initial_fill=inventory.bin_fill())

    def commit(event):
        inventory.append(event)
        d = event.decision
        print(f"SORTED {d.track_id} {d.bin_name} {event.position_in_bin}", flush=True)

    print("READY", flush=True)
    tid = 0
    while True:
        tid += 1
        state = TrackState.CONFIRMED if tid % 5 else TrackState.UNKNOWN
        card = CardRecord(card_id=f"set{tid % 4}-{tid}", name=f"Card {tid}", set_id=f"set{tid % 4}", number=str(tid))
        core.on_identity(Identity(tid, state, card, 1.0, 0.1, 0.2, 3, 3, True, "test", tid * 1000))
        core.execute_due(tid * 1000, actuator, commit)
""")


@pytest.mark.parametrize("kill_after", [1, 9, 40])
def test_sigkill_between_cards_loses_no_committed_row(tmp_path: pathlib.Path, kill_after: int) -> None:
    db = tmp_path / "inventory.sqlite"
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(db), str(REPO_ROOT / "config" / "bins.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    reported: list[tuple[int, str, int]] = []
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY", proc.stderr.read() if proc.stderr else ""
        while len(reported) < kill_after:
            line = proc.stdout.readline()
            assert line, f"child died: {proc.stderr.read() if proc.stderr else ''}"
            _, tid, bin_name, pos = line.split()
            reported.append((int(tid), bin_name, int(pos)))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        # read through the same buffered reader: communicate() reads the raw pipe and would miss the
        # lines readline() had already buffered (seen under load: 3 reported cards "lost")
        rest = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    for line in rest.splitlines():                     # events it reported before it died
        _, tid, bin_name, pos = line.split()
        reported.append((int(tid), bin_name, int(pos)))

    assert integrity_check(db) == "ok"
    rows = read_rows(db)
    stored = [(r.track_id, r.bin, r.position_in_bin) for r in rows]
    # every reported card is stored exactly as reported, in order ...
    assert stored[:len(reported)] == reported
    # ... and at most one more card was committed whose report the kill cut off
    assert len(stored) - len(reported) in (0, 1)
    assert [t for t, _, _ in stored] == list(range(1, len(stored) + 1))
    positions: dict[str, list[int]] = defaultdict(list)
    for _, bin_name, pos in stored:
        positions[bin_name].append(pos)
    assert all(p == list(range(1, len(p) + 1)) for p in positions.values())   # counts reconcile with bins
