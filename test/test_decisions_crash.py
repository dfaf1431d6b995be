"""Nothing lost: kill -9 the running graph mid-stack, restart, and every record is there or reported."""

from __future__ import annotations

import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from rosutil import make_world

from cardsorter.config import REPO_ROOT
from cardsorter.inventory.sort_log import read_sort_log
from cardsorter.inventory.sqlite_store import LOST_IN_FLIGHT, read_rows, read_sessions

CARDS = 8
START_TIMEOUT_S = 240.0      # generous: a cold start of the graph on a loaded 2-core machine


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    return make_world(tmp_path_factory.mktemp("crash_world"), cards=12, seed=5, unknown=2)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cardsorter.cli", *args]


def _sorter_sets(out: pathlib.Path) -> list[str]:
    return ["--set", f"sorter.inventory_path={out / 'inventory.sqlite'}", "--set", f"sorter.sort_log={out / 'sort.csv'}",
            # a slow diverter that really takes its time: a card spends 1.5 s between journal and row,
            # and no card counts as having missed its gate, so every card is actuated
            "--set", "sorter.actuator.simulated.realtime=true", "--set", "sorter.actuator.simulated.move_ms=1500.0",
            "--set", "sorter.missed_gate_ms=600000.0"]


def _unconfirmed(db: pathlib.Path, stage: str = "%") -> set[tuple[str, int, str]]:
    """(session, track, bin) of journaled decisions with no cards row yet (whose last stage is ``stage``)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {(s, int(t), b) for s, t, b in conn.execute(
            "SELECT j.session_id, j.track_id, j.bin FROM journal j WHERE j.stage LIKE ? AND j.id IN "
            "(SELECT MAX(id) FROM journal GROUP BY session_id, track_id) AND NOT EXISTS "
            "(SELECT 1 FROM cards c WHERE c.session_id = j.session_id AND c.track_id = j.track_id)", (stage,))}
    finally:
        conn.close()


def _committed(db: pathlib.Path) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM cards").fetchone()[0])
    finally:
        conn.close()


def test_kill_9_mid_run_then_restart_keeps_every_row_and_reports_cards_in_flight(
        world: dict[str, pathlib.Path], tmp_path: pathlib.Path) -> None:
    db = tmp_path / "inventory.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run = subprocess.Popen(
        _cli("run", "--source", "synthetic", "--database", str(world["db"]),
             "--set", f"camera.synthetic.catalog_dir={world['catalog']}", "--set", f"camera.synthetic.cards={CARDS}",
             "--set", "camera.synthetic.seed=4", *_sorter_sets(tmp_path)),
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    in_flight: set[tuple[str, int, str]] = set()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and run.poll() is None:
            if db.is_file():
                try:
                    # a card is being routed (the diverter takes 1.5 s) after at least one was recorded
                    if _committed(db) >= 1 and _unconfirmed(db, "actuating"):
                        break
                except sqlite3.Error:
                    pass   # the schema is being created
            time.sleep(0.05)
        assert run.poll() is None, f"the graph ended before it could be killed:\n{run.stderr.read() if run.stderr else ''}"
        os.killpg(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(timeout=30)
    assert run.returncode == -signal.SIGKILL
    in_flight = _unconfirmed(db)
    assert in_flight, "the kill came when no card was in flight (the test did not test anything)"
    rows_before = read_rows(db)
    log_before = (tmp_path / "sort.csv").read_text(encoding="utf-8")
    (first,) = read_sort_log(tmp_path / "sort.csv")
    assert len(rows_before) >= 1
    # every sort-log row was written after its inventory row committed
    assert {(r["track_id"], r["bin"]) for r in first.rows} <= {(str(r.track_id), r.bin) for r in rows_before}

    restart = subprocess.run(_cli("run", "--nodes", "sorter", "--duration", "1", *_sorter_sets(tmp_path)),
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert restart.returncode == 0, restart.stderr

    rows_after = read_rows(db)
    assert rows_after[:len(rows_before)] == rows_before, "a committed row changed or disappeared"
    lost = [r for r in rows_after[len(rows_before):] if r.status == LOST_IN_FLIGHT]
    assert {(r.session_id, r.track_id, r.bin) for r in lost} == in_flight
    assert all(f"check bin {r.bin}" in r.reason for r in lost)
    # the sort log kept the first run's rows and lists the lost cards under the new session
    log_after = (tmp_path / "sort.csv").read_text(encoding="utf-8")
    assert log_after.startswith(log_before)
    sessions = read_sort_log(tmp_path / "sort.csv")
    assert len(sessions) == 2 and sessions[0].rows == first.rows
    assert {(int(r["track_id"]), r["bin"]) for r in sessions[1].rows if r["status"] == LOST_IN_FLIGHT} == \
        {(t, b) for _, t, b in in_flight}
    assert sessions[1].session_id == read_sessions(db)[-1]["session_id"] != sessions[0].session_id
    # the operator is told on the console, with the bin to check
    for _, track, bin_name in in_flight:
        assert f"track {track} of session" in restart.stderr and f"check bin {bin_name}" in restart.stderr
    # a second restart reports nothing again: each lost card is recorded once
    again = subprocess.run(_cli("run", "--nodes", "sorter", "--duration", "1", *_sorter_sets(tmp_path)),
                           cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stderr
    assert len(read_rows(db)) == len(rows_after) and "lost in flight" not in again.stderr
