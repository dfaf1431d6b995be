"""Append-only SQLite inventory (one durable row per physical card), decision journal, corrections, CSV export."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import json
import math
import pathlib
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import IO, Any, Self

from cardsorter.core.errors import InventoryError
from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.types import CardRecord, SortDecision
from cardsorter.inventory.cards import ensure_card_tables, record_session_condition

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, database_id TEXT NOT NULL,
    reject_bin TEXT NOT NULL, opened_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS cards (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    stamp_ns INTEGER NOT NULL,
    track_id INTEGER NOT NULL,
    first_stamp_ns INTEGER NOT NULL,
    last_stamp_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    card_id TEXT NOT NULL,
    name TEXT NOT NULL,
    set_id TEXT NOT NULL,
    set_name TEXT NOT NULL,
    number TEXT NOT NULL,
    rarity TEXT NOT NULL,
    finish TEXT NOT NULL,
    price_usd REAL,
    distance_cos REAL,
    margin_to_runner_up REAL,
    bin TEXT NOT NULL,
    position_in_bin INTEGER NOT NULL,
    rejected INTEGER NOT NULL,
    arrived INTEGER,
    reason TEXT NOT NULL,
    note TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    model_id TEXT NOT NULL,
    database_id TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS cards_no_update BEFORE UPDATE ON cards
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
CREATE TRIGGER IF NOT EXISTS cards_no_delete BEFORE DELETE ON cards
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
CREATE TABLE IF NOT EXISTS bins_emptied (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bin TEXT NOT NULL,
    stamp_ns INTEGER NOT NULL,
    after_card INTEGER NOT NULL);         -- cards.id of the last card that was in the bin before
CREATE TRIGGER IF NOT EXISTS bins_emptied_no_update BEFORE UPDATE ON bins_emptied
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
CREATE TRIGGER IF NOT EXISTS bins_emptied_no_delete BEFORE DELETE ON bins_emptied
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
CREATE TABLE IF NOT EXISTS corrections (            -- a person's verdict on a card row (the review queue)
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    card_row INTEGER NOT NULL REFERENCES cards(id),
    stamp_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    card_id TEXT NOT NULL,
    name TEXT NOT NULL,
    set_id TEXT NOT NULL,
    set_name TEXT NOT NULL,
    number TEXT NOT NULL,
    rarity TEXT NOT NULL,
    finish TEXT NOT NULL,
    note TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS corrections_no_update BEFORE UPDATE ON corrections
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
CREATE TRIGGER IF NOT EXISTS corrections_no_delete BEFORE DELETE ON corrections
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
-- Written (durably) when a card is decided and again just before its actuation; a decision with no
-- cards row of its (session_id, track_id) was in flight when the sorter died: the next session
-- records it as lost_in_flight.
CREATE TABLE IF NOT EXISTS journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions(session_id),
    track_id INTEGER NOT NULL,
    stage TEXT NOT NULL,                  -- decided | actuating
    stamp_ns INTEGER NOT NULL,
    bin TEXT NOT NULL,
    row_json TEXT NOT NULL);              -- the cards row the decision would write
CREATE INDEX IF NOT EXISTS journal_track ON journal (session_id, track_id);
CREATE INDEX IF NOT EXISTS cards_track ON cards (session_id, track_id);
"""

CORRECTED = "corrected"
"""Status of a row a person identified from the review queue (the card itself stays in the bin it went to)."""
CORRECTED_UNKNOWN = "unknown"
_CORRECTION_FIELDS = ("status", "card_id", "name", "set_id", "set_name", "number", "rarity", "finish", "note")

LOST_IN_FLIGHT = "lost_in_flight"        # cards.status of a decision whose actuation was never confirmed
JOURNAL_STAGES = ("decided", "actuating")

# Cards in a bin now: rows for that bin after the last time it was emptied.
_IN_BIN = """cards.id > COALESCE((SELECT MAX(after_card) FROM bins_emptied e WHERE e.bin = cards.bin), 0)"""


@dataclass(frozen=True)
class InventoryRow:
    """One physical card as recorded (the ``cards`` table)."""

    id: int
    stamp_ns: int
    track_id: int
    first_stamp_ns: int
    last_stamp_ns: int
    status: str
    card_id: str
    name: str
    set_id: str
    set_name: str
    number: str
    rarity: str
    finish: str
    price_usd: float | None
    distance_cos: float | None
    margin_to_runner_up: float | None
    bin: str
    position_in_bin: int
    rejected: bool
    arrived: bool | None
    reason: str
    note: str
    session_id: str
    model_id: str
    database_id: str


ROW_COLUMNS = tuple(f.name for f in fields(InventoryRow))


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _connect(path: pathlib.Path, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            if not path.is_file():
                raise InventoryError(f"inventory {path} does not exist")
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            # The sorter node writes from executor threads, one at a time under its lock.
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=10.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every commit, so a committed card survives kill -9 and power loss.
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        conn.row_factory = sqlite3.Row
        return conn
    except sqlite3.Error as err:
        raise InventoryError(f"cannot open inventory {path}: {err}") from err


class Inventory:
    """The inventory of one sorting session; ``append`` returns only once the row is durable."""

    def __init__(self, path: str | pathlib.Path, *, session_id: str, model_id: str, database_id: str,
                 reject_bin: str, opened_ns: int, condition: str = "") -> None:
        if not session_id:
            raise InventoryError("inventory needs a session id")
        self.path = pathlib.Path(path)
        self.session_id = session_id
        self.model_id = model_id
        self._database_id = database_id
        self.reject_bin = reject_bin
        self._conn = _connect(self.path, readonly=False)
        # Held while this session is open (the OS releases it when the process dies, kill -9 included):
        # another sorter sharing this inventory must not report a live session's cards as lost.
        self._live: IO[str] | None = _hold_session_lock(self.path, session_id)
        try:
            self._conn.execute("INSERT OR IGNORE INTO sessions VALUES (?, ?, ?, ?, ?)",
                               (session_id, model_id, database_id, reject_bin, opened_ns))
            ensure_card_tables(self._conn)   # condition per session / corrections: cardsorter/inventory/cards.py
            record_session_condition(self._conn, session_id, condition)
        except sqlite3.Error as err:
            raise InventoryError(f"cannot register session {session_id} in {self.path}: {err}") from err

    @property
    def database_id(self) -> str:
        return self._database_id

    @database_id.setter
    def database_id(self, value: str) -> None:
        """The reference database of this session (the matcher announces it): recorded in ``sessions``
        and in every row written from now on."""
        if value == self._database_id:
            return
        try:
            self._conn.execute("UPDATE sessions SET database_id = ? WHERE session_id = ?", (value, self.session_id))
        except sqlite3.Error as err:
            raise InventoryError(f"cannot record database {value} for session {self.session_id}: {err}") from err
        self._database_id = value

    def _row_values(self, decision: SortDecision, stamp_ns: int, position: int, arrived: bool | None,
                    note: str) -> dict[str, Any]:
        return decision_row(decision, stamp_ns=stamp_ns, position=position, arrived=arrived, note=note,
                            session_id=self.session_id, model_id=self.model_id, database_id=self.database_id,
                            reject_bin=self.reject_bin)

    def _insert_card(self, values: dict[str, Any], what: str) -> int:
        columns = ROW_COLUMNS[1:]
        try:
            cur = self._conn.execute(
                f"INSERT INTO cards ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                tuple(values[c] for c in columns))
        except sqlite3.Error as err:
            raise InventoryError(f"cannot write {what} to inventory {self.path}: {err}") from err
        return int(cur.lastrowid or 0)

    def append(self, event: SortEvent) -> int:
        """Write one card's row and commit it durably; returns its row id."""
        values = self._row_values(event.decision, event.actuated_ns, event.position_in_bin, event.arrived, event.note)
        return self._insert_card(values, f"track {event.decision.track_id}")

    def journal(self, stage: str, decision: SortDecision, stamp_ns: int) -> None:
        """Record durably that ``decision`` was taken (``decided``) or is about to move the actuator
        (``actuating``); returns once it is on disk. Its cards row (``append``) confirms it."""
        if stage not in JOURNAL_STAGES:
            raise ValueError(f"journal stage must be one of {JOURNAL_STAGES}, got {stage!r}")
        row = self._row_values(decision, stamp_ns, 0, None, "")
        try:
            self._conn.execute(
                "INSERT INTO journal (session_id, track_id, stage, stamp_ns, bin, row_json) VALUES (?, ?, ?, ?, ?, ?)",
                (self.session_id, decision.track_id, stage, stamp_ns, decision.bin_name, json.dumps(row)))
        except sqlite3.Error as err:
            raise InventoryError(f"cannot journal track {decision.track_id} in {self.path}: {err}") from err

    def recover_lost_in_flight(self, stamp_ns: int) -> list[InventoryRow]:
        """Earlier sessions' decisions that never got their cards row (the sorter died between deciding
        and confirming them): each gets a ``lost_in_flight`` row in its own session, with the bin it
        was decided for, so the operator checks that bin. Returns those rows (empty: nothing was lost)."""
        try:
            pending = self._conn.execute(
                "SELECT j.session_id, j.track_id, j.stage, j.bin, j.row_json FROM journal j "
                "JOIN (SELECT session_id, track_id, MAX(id) AS last FROM journal GROUP BY session_id, track_id) m "
                "ON j.id = m.last "
                "WHERE j.session_id != ? AND NOT EXISTS (SELECT 1 FROM cards c "
                "WHERE c.session_id = j.session_id AND c.track_id = j.track_id) ORDER BY j.id",
                (self.session_id,)).fetchall()
        except sqlite3.Error as err:
            raise InventoryError(f"cannot read the decision journal of {self.path}: {err}") from err
        ids = []
        for r in pending:
            if session_is_live(self.path, r["session_id"]):
                continue                             # another sorter on this inventory is still running
            values = lost_in_flight_row(json.loads(r["row_json"]), r["stage"], r["bin"], self.session_id, stamp_ns)
            ids.append(self._insert_card(values, f"lost track {r['track_id']} of session {r['session_id']}"))
        if not ids:
            return []
        return [row for row in read_rows(self.path) if row.id in set(ids)]

    def bin_fill(self) -> dict[str, int]:
        """The highest position per bin since it was last emptied (a new session continues from it)."""
        return {r["bin"]: int(r["pos"]) for r in self._conn.execute(
            f"SELECT bin, MAX(position_in_bin) AS pos FROM cards WHERE {_IN_BIN} AND status != ? GROUP BY bin",
            (LOST_IN_FLIGHT,))}

    def record_bin_emptied(self, bin_name: str, stamp_ns: int) -> None:
        """The user emptied ``bin_name``: later cards in it are numbered from 1 again."""
        record_bin_emptied(self._conn, self.path, bin_name, stamp_ns)

    def close(self) -> None:
        self._conn.close()
        if self._live is not None:
            with contextlib.suppress(OSError):
                pathlib.Path(self._live.name).unlink()
            self._live.close()
            self._live = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def decision_row(decision: SortDecision, *, stamp_ns: int, position: int, arrived: bool | None, note: str,
                 session_id: str, model_id: str, database_id: str, reject_bin: str) -> dict[str, Any]:
    """The ``cards`` row (column → value, without id) of one decision."""
    d, card = decision, decision.card
    return {
        "stamp_ns": stamp_ns, "track_id": d.track_id, "first_stamp_ns": d.first_stamp_ns,
        "last_stamp_ns": d.last_stamp_ns, "status": d.status.value,
        "card_id": card.card_id if card else "", "name": card.name if card else "",
        "set_id": card.set_id if card else "", "set_name": card.set_name if card else "",
        "number": card.number if card else "", "rarity": card.rarity if card else "",
        "finish": card.finish if card else "", "price_usd": card.price_usd if card else None,
        "distance_cos": _finite(d.distance_cos), "margin_to_runner_up": _finite(d.margin_to_runner_up),
        "bin": d.bin_name, "position_in_bin": position, "rejected": int(d.bin_name == reject_bin),
        "arrived": None if arrived is None else int(arrived), "reason": d.reason, "note": note,
        "session_id": session_id, "model_id": model_id, "database_id": database_id}


def lost_in_flight_row(journaled: dict[str, Any], stage: str, bin_name: str, reporting_session: str,
                       stamp_ns: int) -> dict[str, Any]:
    """The cards row that records a journaled decision as lost in flight (SQLite and PostgreSQL alike)."""
    values = dict(journaled)
    was = values["status"] + (f" {values['card_id']}" if values["card_id"] else "")
    if stage == "actuating":
        what = f"the sorter stopped while routing it to bin {bin_name}"
    else:
        what = f"the sorter stopped before its actuation to bin {bin_name}"
    values.update(
        stamp_ns=stamp_ns, status=LOST_IN_FLIGHT, position_in_bin=0, arrived=None,
        reason=f"lost in flight ({was} → {bin_name}): {what}; check bin {bin_name}",
        note=f"reported by session {reporting_session} after a restart; the decision was: {values['reason']}")
    return values


def _session_lock_path(path: pathlib.Path, session_id: str) -> pathlib.Path:
    return path.with_name(f"{path.name}.live") / f"{session_id}.lock"


def _hold_session_lock(path: pathlib.Path, session_id: str) -> IO[str]:
    lock = _session_lock_path(path, session_id)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = lock.open("w")
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        raise InventoryError(f"cannot lock session {session_id} of inventory {path}: {err}") from err
    return f


def session_is_live(path: str | pathlib.Path, session_id: str) -> bool:
    """Whether a process has ``session_id`` of inventory ``path`` open now (it holds the session's lock)."""
    lock = _session_lock_path(pathlib.Path(path), session_id)
    try:
        f = lock.open("r")
    except FileNotFoundError:
        return False
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        with contextlib.suppress(OSError):
            lock.unlink()                            # left by a process that died: nobody holds it
        return False


def read_rows(path: str | pathlib.Path, session_id: str | None = None) -> list[InventoryRow]:
    """Every row (of one session, if given), oldest first."""
    conn = _connect(pathlib.Path(path), readonly=True)
    try:
        query = f"SELECT {', '.join(ROW_COLUMNS)} FROM cards"
        args: tuple[Any, ...] = ()
        if session_id is not None:
            query += " WHERE session_id = ?"
            args = (session_id,)
        rows = conn.execute(query + " ORDER BY id", args).fetchall()
        corrections = _latest_corrections(conn)
    except sqlite3.Error as err:
        raise InventoryError(f"cannot read inventory {path}: {err}") from err
    finally:
        conn.close()
    out = []
    for r in rows:
        values = dict(r)
        values["rejected"] = bool(values["rejected"])
        values["arrived"] = None if values["arrived"] is None else bool(values["arrived"])
        values.update(corrections.get(values["id"], {}))
        out.append(InventoryRow(**values))
    return out


def _latest_corrections(conn: sqlite3.Connection) -> dict[int, dict[str, Any]]:
    """The newest correction of each corrected row (an inventory older than the table has none)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'corrections'").fetchone() is None:
        return {}
    latest: dict[int, dict[str, Any]] = {}
    for r in conn.execute(f"SELECT card_row, {', '.join(_CORRECTION_FIELDS)} FROM corrections ORDER BY id"):
        latest[int(r[0])] = dict(zip(_CORRECTION_FIELDS, r[1:]))
    return latest


def append_correction(path: str | pathlib.Path, row_id: int, card: CardRecord | None, note: str,
                      stamp_ns: int | None = None) -> None:
    """Record a person's verdict on row ``row_id``: the card it is, or ``None`` for not in the catalogue."""
    path = pathlib.Path(path)
    stamp = time.time_ns() if stamp_ns is None else stamp_ns
    values = ((CORRECTED, card.card_id, card.name, card.set_id, card.set_name, card.number, card.rarity,
               card.finish) if card else (CORRECTED_UNKNOWN, "", "", "", "", "", "", "")) + (note,)
    conn = _connect(path, readonly=False)
    try:
        if conn.execute("SELECT 1 FROM cards WHERE id = ?", (row_id,)).fetchone() is None:
            raise InventoryError(f"inventory {path} has no row {row_id}")
        conn.execute(f"INSERT INTO corrections (card_row, stamp_ns, {', '.join(_CORRECTION_FIELDS)}) "
                     f"VALUES (?, ?, {', '.join('?' * len(_CORRECTION_FIELDS))})", (row_id, stamp, *values))
    except sqlite3.Error as err:
        raise InventoryError(f"cannot correct row {row_id} of inventory {path}: {err}") from err
    finally:
        conn.close()


def read_sessions(path: str | pathlib.Path) -> list[dict[str, Any]]:
    """Every session (``sessions`` table: id, model, database, reject bin, opened), oldest first."""
    conn = _connect(pathlib.Path(path), readonly=True)
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM sessions ORDER BY opened_ns, rowid")]
    except sqlite3.Error as err:
        raise InventoryError(f"cannot read inventory {path}: {err}") from err
    finally:
        conn.close()


def record_bin_emptied(conn: sqlite3.Connection, path: pathlib.Path, bin_name: str, stamp_ns: int) -> None:
    try:
        conn.execute("INSERT INTO bins_emptied (bin, stamp_ns, after_card) "
                     "VALUES (?, ?, COALESCE((SELECT MAX(id) FROM cards), 0))", (bin_name, stamp_ns))
    except sqlite3.Error as err:
        raise InventoryError(f"cannot record that bin {bin_name} was emptied in {path}: {err}") from err


def mark_bin_emptied(path: str | pathlib.Path, bin_name: str, stamp_ns: int) -> None:
    """Record, between sessions, that a bin was emptied (``inventory empty-bin``)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise InventoryError(f"inventory {path} does not exist")
    conn = _connect(path, readonly=False)
    try:
        record_bin_emptied(conn, path, bin_name, stamp_ns)
    finally:
        conn.close()


def bin_contents(path: str | pathlib.Path) -> dict[str, list[InventoryRow]]:
    """What each bin holds now (since it was last emptied), in the order the cards went in."""
    ids: set[int] = set()
    conn = _connect(pathlib.Path(path), readonly=True)
    try:
        has_table = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'bins_emptied'").fetchone() is not None
        where = _IN_BIN if has_table else "1"
        ids = {int(r[0]) for r in conn.execute(f"SELECT id FROM cards WHERE {where}")}
    except sqlite3.Error as err:
        raise InventoryError(f"cannot read inventory {path}: {err}") from err
    finally:
        conn.close()
    out: dict[str, list[InventoryRow]] = {}
    for row in read_rows(path):
        if row.id in ids:
            out.setdefault(row.bin, []).append(row)
    return out


def reconcile(contents: dict[str, list[InventoryRow]]) -> list[str]:
    """Problems with the bins' numbering: each bin must hold positions 1..n in order (empty: all good)."""
    problems = []
    for bin_name, all_rows in sorted(contents.items()):
        rows = [r for r in all_rows if r.status != LOST_IN_FLIGHT]
        positions = [r.position_in_bin for r in rows]
        if positions != list(range(1, len(rows) + 1)):
            problems.append(f"bin {bin_name}: positions {_ranges(positions)} instead of 1..{len(rows)}")
        for lost in (r for r in all_rows if r.status == LOST_IN_FLIGHT):
            problems.append(f"bin {bin_name}: track {lost.track_id} of session {lost.session_id} was lost in flight "
                            f"({lost.card_id or 'no card'}): check the bin by hand")
    return problems


def _ranges(values: Sequence[int]) -> str:
    shown = ", ".join(str(v) for v in values[:12])
    return f"[{shown}{', ...' if len(values) > 12 else ''}]"


def integrity_check(path: str | pathlib.Path) -> str:
    """SQLite's own check: "ok" when the file is intact."""
    conn = _connect(pathlib.Path(path), readonly=True)
    try:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        conn.close()


# --- summary ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Summary:
    cards: int
    per_bin: dict[str, int]
    per_set: dict[str, int]
    per_status: dict[str, int]
    rejected: int

    def lines(self) -> list[str]:
        out = [f"cards: {self.cards} ({self.rejected} rejected)", "per bin:"]
        out += [f"  {name:<20} {count:>7}" for name, count in sorted(self.per_bin.items())]
        out.append("per status:")
        out += [f"  {name:<20} {count:>7}" for name, count in sorted(self.per_status.items())]
        out.append("per set (sorted cards):")
        out += [f"  {name:<20} {count:>7}" for name, count in sorted(self.per_set.items())]
        return out


def summarize(rows: Sequence[InventoryRow]) -> Summary:
    """Counts per bin, per status and per set (sets of cards that were not rejected)."""
    return Summary(
        cards=len(rows),
        per_bin=dict(Counter(r.bin for r in rows)),
        per_set=dict(Counter(r.set_id for r in rows if not r.rejected and r.set_id)),
        per_status=dict(Counter(r.status for r in rows)),
        rejected=sum(r.rejected for r in rows))


# --- CSV exports --------------------------------------------------------------------------------

def csv_value(value: Any) -> str:
    """One inventory value as our CSV files write it (None empty, bools 0/1, floats to 6 places)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def export_csv(rows: Iterable[InventoryRow], out: IO[str]) -> int:
    """Every row with every column (ours); returns the number of rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROW_COLUMNS)
    n = 0
    for row in rows:
        writer.writerow([csv_value(getattr(row, c)) for c in ROW_COLUMNS])
        n += 1
    return n
