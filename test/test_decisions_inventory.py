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
from cardsorter.core.sorting import SortEvent
from cardsorter.core.types import SortDecision, SortStatus
from cardsorter.inventory import (
    ROW_COLUMNS,
    SORT_LOG_COLUMNS,
    Inventory,
    SortLogWriter,
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
    with SortLogWriter(path) as log:
        log.write(event(3, card("s1-4", name="Abra"), "a", 1).decision)
        log.write(event(4, None, "reject", 1, SortStatus.UNCONFIRMED, "unconfirmed: identity never arrived").decision)
    rows = list(csv.reader(path.open(encoding="utf-8")))
    assert tuple(rows[0]) == SORT_LOG_COLUMNS == ("track_id", "first_stamp_ns", "last_stamp_ns", "status", "card_id",
                                                  "name", "set_code", "number", "distance", "margin", "bin", "reason")
    assert rows[1] == ["3", "30", "35", "confirmed", "s1-4", "Abra", "s1", "4", "0.1200", "0.3000", "a", "rule 1"]
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
    from cardsorter.core.sort_rules import load_rules

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
