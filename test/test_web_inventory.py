"""Corrections from the review queue: appended beside the row, applied when rows are read, in the exports."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest
from decisions_support import card
from test_decisions_inventory import fill

from cardsorter.core.errors import InventoryError
from cardsorter.core.types import CardRecord
from cardsorter.inventory.cards import card_states
from cardsorter.inventory.exports import aggregate
from cardsorter.inventory.sqlite_store import CORRECTED, append_correction, read_rows
from cardsorter.inventory.store import find_row

ZUBAT = CardRecord(card_id="s2-5", name="Zubat", set_id="s2", set_name="Set s2", number="5")


def test_a_correction_changes_what_the_row_reads_and_keeps_the_bin(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    row = find_row(path, "sess-1", 5)
    assert row.status == "unknown" and row.card_id == ""
    append_correction(path, row.id, ZUBAT, note="operator review", stamp_ns=7)
    fixed = find_row(path, "sess-1", 5)
    assert (fixed.status, fixed.card_id, fixed.name, fixed.note) == (CORRECTED, "s2-5", "Zubat", "operator review")
    assert (fixed.bin, fixed.position_in_bin, fixed.rejected) == (row.bin, row.position_in_bin, True)


def test_the_newest_correction_wins_and_unknown_clears_the_card(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    row = find_row(path, "sess-1", 6)
    append_correction(path, row.id, ZUBAT, note="first look")
    append_correction(path, row.id, None, note="not in the catalogue")
    fixed = find_row(path, "sess-1", 6)
    assert (fixed.status, fixed.card_id, fixed.note) == ("unknown", "", "not in the catalogue")


def test_corrections_are_append_only(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    append_correction(path, find_row(path, "sess-1", 5).id, ZUBAT, note="x")
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE corrections SET card_id = 'forged'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM corrections")
    conn.close()


def test_a_card_identified_in_review_is_exported(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    append_correction(path, find_row(path, "sess-1", 5).id, ZUBAT, note="operator review")
    lines, _ = aggregate(read_rows(path), card_states(path), {})
    got = {line.card_id: line.quantity for line in lines}
    assert got["s2-5"] == 2     # the sorted Zubat plus the one a person named in the reject bin


@pytest.mark.parametrize(("session", "track"), [("sess-1", 99), ("other", 1)])
def test_no_row_for_the_track_is_named(tmp_path: pathlib.Path, session: str, track: int) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    with pytest.raises(InventoryError, match=f"0 rows for track {track}"):
        find_row(path, session, track)


def test_correcting_a_row_that_does_not_exist_is_refused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "inv.sqlite"
    fill(path)
    with pytest.raises(InventoryError, match="no row 999"):
        append_correction(path, 999, card("s1-1"), note="x")
