"""Inventory: durable append-only rows, exports (ours and the short TCGplayer-style one), summary, sort log, CLI."""

from __future__ import annotations

import csv
import io
import math
import pathlib
import sqlite3

import pytest
from decisions_support import card

from cardsorter.cli.__main__ import main as cli_main
from cardsorter.core.errors import InventoryError
from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.types import SortDecision, SortStatus
from cardsorter.inventory.sort_log import SORT_LOG_COLUMNS, SortLogWriter
from cardsorter.inventory.sqlite_store import (
    ROW_COLUMNS,
    Inventory,
    bin_contents,
    export_csv,
    integrity_check,
    mark_bin_emptied,
    read_rows,
    reconcile,
    summarize,
)


def event(tid: int, c, bin_name: str, pos: int, status: SortStatus = SortStatus.CONFIRMED,
          reason: str = "rule 1") -> SortEvent:
    d = SortDecision(track_id=tid, status=status, card=c, bin_name=bin_name, reason=reason, distance_cos=0.12,
                     margin_to_runner_up=math.inf if c is None else 0.3, first_stamp_ns=tid * 10,
                     last_stamp_ns=tid * 10 + 5)
    return SortEvent(d, pos, tid * 100, None, "")


def fill(path: pathlib.Path) -> None:
    with Inventory(path, session_id="sess-1", model_id="cardnet-v1", database_id="db-7", reject_bin="reject",
                   opened_ns=1) as inv:
        inv.append(event(1, card("s1-1", name="Abra", rarity="Common"), "a", 1))
        inv.append(event(2, card("s1-1", name="Abra", rarity="Common"), "a", 2))
        inv.append(event(3, card("s1-1h", name="Abra", number="1h", finish="holo"), "a", 3))
        inv.append(event(4, card("s2-5", name="Zubat"), "b", 1))
        inv.append(event(5, None, "reject", 1, SortStatus.UNKNOWN, "unknown: 3 views"))
        inv.append(event(6, card("s2-6"), "reject", 2, SortStatus.CONFIRMED, "double feed"))


def test_rows_round_trip_with_session_ids(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    rows = read_rows(path)
    assert [r.track_id for r in rows] == [1, 2, 3, 4, 5, 6]
    first = rows[0]
    assert (first.card_id, first.name, first.set_id, first.number, first.bin, first.position_in_bin) == \
        ("s1-1", "Abra", "s1", "1", "a", 1)
    assert (first.session_id, first.model_id, first.database_id) == ("sess-1", "cardnet-v1", "db-7")
    assert rows[4].card_id == "" and rows[4].margin_to_runner_up is None and rows[4].rejected
    assert rows[5].rejected and rows[5].status == "confirmed"


def test_wal_and_full_sync(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    inv = Inventory(path, session_id="s", model_id="m", database_id="d", reject_bin="reject", opened_ns=0)
    assert inv._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert inv._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    inv.close()


def test_rows_cannot_be_changed_or_deleted(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    conn = sqlite3.connect(path)
    for sql in ("UPDATE cards SET bin = 'x'", "DELETE FROM cards"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.close()
    assert len(read_rows(path)) == 6


def test_a_second_session_appends(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    with Inventory(path, session_id="sess-2", model_id="m", database_id="d", reject_bin="reject",
                   opened_ns=2) as inv:
        assert inv.bin_fill() == {"a": 3, "b": 1, "reject": 2}
        inv.append(event(1, card("s3-1"), "b", 2))
    assert len(read_rows(path)) == 7 and len(read_rows(path, "sess-2")) == 1


def test_summary_counts_reconcile(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    s = summarize(read_rows(path))
    assert s.cards == 6 == sum(s.per_bin.values()) == sum(s.per_status.values())
    assert s.per_bin == {"a": 3, "b": 1, "reject": 2}
    assert s.per_set == {"s1": 3, "s2": 1}                 # rejected cards are not in a set's count
    assert s.rejected == 2


def test_csv_export_has_every_column(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    out = io.StringIO()
    assert export_csv(read_rows(path), out) == 6
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert tuple(rows[0]) == ROW_COLUMNS and rows[0]["card_id"] == "s1-1" and rows[0]["distance_cos"] == "0.120000"


def test_sort_log_columns(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "log.csv"
    with SortLogWriter(path, "s1", "m1", "2026-01-01T00:00:00Z") as log:
        log.write(event(3, card("s1-4", name="Abra"), "a", 1).decision)
        log.write(event(4, None, "reject", 1, SortStatus.UNCONFIRMED, "unconfirmed: identity never arrived").decision)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# session s1 opened 2026-01-01T00:00:00Z model m1"
    rows = list(csv.reader(lines[1:]))
    assert tuple(rows[0]) == SORT_LOG_COLUMNS == ("track_id", "first_stamp_ns", "last_stamp_ns", "status", "card_id",
                                                  "name", "set_code", "number", "distance", "margin", "bin", "reason",
                                                  "finish")
    assert rows[1] == ["3", "30", "35", "confirmed", "s1-4", "Abra", "s1", "4", "0.1200", "0.3000", "a", "rule 1",
                       "normal"]
    assert rows[2][3] == "unconfirmed" and rows[2][9] == "inf" and rows[2][4] == ""


def test_missing_inventory_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InventoryError, match="does not exist"):
        read_rows(tmp_path / "none.sqlite")


def test_cli_export_and_summary(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    out = tmp_path / "app.csv"
    (tmp_path / "catalog").mkdir()
    (tmp_path / "catalog" / "metadata.json").write_text("{}")
    assert cli_main(["inventory", "export", "--db", str(path), "--format", "tcgplayer-app", "--out", str(out),
                     "--catalog", str(tmp_path / "catalog"), "--condition", "NM", "--language", "en"]) == 0
    app = list(csv.DictReader(out.open(encoding="utf-8")))
    got = {(r["Set Code"] or r["Set"], r["Card Number"], r["Printing"]): r["Quantity"] for r in app}
    assert got == {("Set s1", "1", "Normal"): "2", ("Set s1", "1h", "Holofoil"): "1", ("Set s2", "5", "Normal"): "1"}
    assert cli_main(["inventory", "export", "--db", str(path), "--format", "csv", "--out", str(tmp_path / "o.csv")]) == 0
    assert len((tmp_path / "o.csv").read_text(encoding="utf-8").splitlines()) == 7
    capsys.readouterr()
    assert cli_main(["inventory", "summary", "--db", str(path)]) == 0
    text = capsys.readouterr().out
    assert "integrity ok" in text and "cards: 6 (2 rejected)" in text
    assert cli_main(["inventory", "passes", "--db", str(path), "--by", "set", "--bins", "2"]) == 0
    assert "1 passes" in capsys.readouterr().out


def test_cli_missing_db_is_an_error(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["inventory", "summary", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_integrity_check_ok(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    assert integrity_check(path) == "ok"


def test_cli_writes_pass_rules_files(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cardsorter.config import REPO_ROOT
    from cardsorter.core.bin_rules import load_rules

    path = tmp_path / "inv.sqlite"
    with Inventory(path, session_id="s", model_id="m", database_id="d", reject_bin="reject", opened_ns=0) as inv:
        for i in range(40):
            inv.append(event(i + 1, card(f"set{i % 10:02d}-{i}"), "bin1", i + 1))
    out = tmp_path / "passes"
    assert cli_main(["inventory", "passes", "--db", str(path), "--rules", str(REPO_ROOT / "config" / "bins.yaml"),
                     "--write", str(out)]) == 0
    files = sorted(out.glob("*.yaml"))
    assert files[0].name == "run01_pass1.yaml" and len(files) == 5     # 10 sets over 6 bins: 4 pairs to split
    assert all(load_rules(f).rules for f in files)
    assert "2 passes" in capsys.readouterr().out
    assert cli_main(["inventory", "passes", "--db", str(path), "--write", str(out)]) == 2


def test_emptied_bin_restarts_numbering_across_sessions(tmp_path: pathlib.Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    assert cli_main(["inventory", "empty-bin", "--db", str(path), "--bin", "a"]) == 0
    with Inventory(path, session_id="sess-2", model_id="m", database_id="d", reject_bin="reject",
                   opened_ns=2) as inv:
        assert inv.bin_fill() == {"b": 1, "reject": 2}              # a is empty again
        inv.append(event(7, card("s1-7"), "a", 1))
        inv.append(event(8, card("s2-8"), "b", 2))
        inv.record_bin_emptied("reject", 3)
    contents = bin_contents(path)
    assert {k: [r.track_id for r in v] for k, v in contents.items()} == {"a": [7], "b": [4, 8]}
    assert reconcile(contents) == []
    assert len(read_rows(path)) == 8                                 # history is kept
    capsys.readouterr()
    assert cli_main(["inventory", "summary", "--db", str(path)]) == 0
    assert "MISMATCH" not in capsys.readouterr().out


def test_reconcile_flags_a_gap_in_a_bin(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "inv.sqlite"
    with Inventory(path, session_id="s", model_id="m", database_id="d", reject_bin="reject", opened_ns=0) as inv:
        inv.append(event(1, card("s1-1"), "a", 1))
        inv.append(event(2, card("s1-2"), "a", 3))                    # position 2 never recorded
    assert reconcile(bin_contents(path)) == ["bin a: positions [1, 3] instead of 1..2"]
    assert cli_main(["inventory", "summary", "--db", str(path)]) == 1
    assert "MISMATCH bin a" in capsys.readouterr().out


def test_empty_bin_needs_an_existing_inventory(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InventoryError, match="does not exist"):
        mark_bin_emptied(tmp_path / "none.sqlite", "a", 0)


# --- nothing lost: appended sort log, decision journal, lost_in_flight, database id -------------------

def _open(path: pathlib.Path, session: str, database_id: str = "") -> Inventory:
    return Inventory(path, session_id=session, model_id="m", database_id=database_id, reject_bin="reject",
                     opened_ns=1)


def test_sort_log_appends_one_session_per_run_and_reads_back(tmp_path: pathlib.Path) -> None:
    from cardsorter.inventory.sort_log import read_sort_log

    path = tmp_path / "log.csv"
    with SortLogWriter(path, "first", "m", "t1") as log:
        log.write(event(1, card("s1-1"), "a", 1).decision)
        log.write(event(2, card("s1-2"), "a", 2).decision)
    with path.open("a", encoding="utf-8") as f:
        f.write("3,30,35,confirmed,s1-3")          # a row torn by a crash, no newline
    with SortLogWriter(path, "second", "m", "t2") as log:
        log.write(event(4, card("s1-4"), "b", 1).decision)
    sessions = read_sort_log(path)
    assert [s.session_id for s in sessions] == ["first", "second"]
    assert [r["track_id"] for r in sessions[0].rows] == ["1", "2"]
    assert sessions[0].damaged == ("3,30,35,confirmed,s1-3",)
    assert [r["card_id"] for r in sessions[1].rows] == ["s1-4"]


def test_a_sort_log_from_before_the_finish_column_reads_back_with_no_finish(tmp_path: pathlib.Path) -> None:
    from cardsorter.inventory.sort_log import LEGACY_SORT_LOG_COLUMNS, read_sort_log

    path = tmp_path / "log.csv"
    path.write_text("# session old opened t0 model m\n" + ",".join(LEGACY_SORT_LOG_COLUMNS) + "\n"
                    "1,10,15,confirmed,s1-1,Abra,s1,1,0.1200,0.3000,a,rule 1\n", encoding="utf-8")
    with SortLogWriter(path, "new", "m", "t1") as log:
        log.write(event(2, card("s1-2"), "a", 1).decision)
    old, new = read_sort_log(path)
    assert old.rows[0]["card_id"] == "s1-1" and old.rows[0]["finish"] == "" and old.damaged == ()
    assert new.rows[0]["finish"] == "normal"


def test_a_decision_journaled_but_never_confirmed_is_recorded_lost_in_flight_by_the_next_session(
        tmp_path: pathlib.Path) -> None:
    from cardsorter.inventory.sqlite_store import LOST_IN_FLIGHT

    path = tmp_path / "inv.sqlite"
    crashed = _open(path, "crashed", "db-1")
    done = event(1, card("s1-1", name="Abra"), "a", 1)
    crashed.journal("decided", done.decision, 100)
    crashed.journal("actuating", done.decision, 100)
    crashed.append(done)                                        # confirmed: not lost
    moving = event(2, card("s1-2", name="Zubat"), "b", 1)
    crashed.journal("decided", moving.decision, 200)
    crashed.journal("actuating", moving.decision, 200)          # the process dies during this move
    queued = event(3, None, "reject", 1, SortStatus.UNKNOWN, "unknown: 3 views")
    crashed.journal("decided", queued.decision, 300)            # decided, waiting for its gate
    crashed.close()

    restarted = _open(path, "restarted")
    lost = restarted.recover_lost_in_flight(999)
    assert [(r.track_id, r.bin, r.status, r.session_id) for r in lost] == \
        [(2, "b", LOST_IN_FLIGHT, "crashed"), (3, "reject", LOST_IN_FLIGHT, "crashed")]
    assert "while routing it to bin b" in lost[0].reason and "check bin b" in lost[0].reason
    assert "before its actuation" in lost[1].reason and lost[1].rejected
    assert lost[0].card_id == "s1-2" and lost[0].database_id == "db-1" and "restarted" in lost[0].note
    assert restarted.recover_lost_in_flight(1000) == []          # recorded once
    # the bins' numbering is not broken by a card of unknown position; the loss is reported
    assert restarted.bin_fill() == {"a": 1}
    problems = reconcile(bin_contents(path))
    assert any("track 2 of session crashed was lost in flight" in p for p in problems), problems
    restarted.close()
    assert _open(path, "third").recover_lost_in_flight(2000) == []


def test_the_database_id_is_recorded_in_the_session_when_it_becomes_known(tmp_path: pathlib.Path) -> None:
    from cardsorter.inventory.sqlite_store import read_sessions

    path = tmp_path / "inv.sqlite"
    with _open(path, "s") as inv:
        assert read_sessions(path)[0]["database_id"] == ""
        inv.database_id = "db-42"
        inv.append(event(1, card("s1-1"), "a", 1))
    assert read_sessions(path)[0]["database_id"] == "db-42"
    assert read_rows(path)[0].database_id == "db-42"


def test_a_session_still_open_elsewhere_is_not_reported_lost(tmp_path: pathlib.Path) -> None:
    from cardsorter.inventory.sqlite_store import session_is_live

    path = tmp_path / "inv.sqlite"
    running = _open(path, "running")                 # e.g. the other of two sorters sharing the file
    moving = event(1, card("s1-1"), "a", 1)
    running.journal("actuating", moving.decision, 10)
    assert session_is_live(path, "running")
    with _open(path, "second") as second:
        assert second.recover_lost_in_flight(20) == []
    running.append(moving)
    running.close()
    assert not session_is_live(path, "running")
    assert _open(path, "third").recover_lost_in_flight(30) == []   # it was confirmed before it closed
