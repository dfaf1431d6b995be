"""PostgreSQL inventory (psycopg 3) for a shop with several sorters: the SQLite schema, one session per station."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from typing import Any, Self

from cardsorter.core.errors import InventoryError
from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.types import FINISHES, CardRecord, SortDecision
from cardsorter.inventory.cards import CardState, normalise_condition
from cardsorter.inventory.sqlite_store import (
    CORRECTED,
    CORRECTED_UNKNOWN,
    JOURNAL_STAGES,
    ROW_COLUMNS,
    InventoryRow,
    lost_in_flight_row,
)

LOG = logging.getLogger(__name__)
URL_PREFIXES = ("postgresql://", "postgres://")
CORRECTION_FIELDS = ("status", "card_id", "name", "set_id", "set_name", "number", "rarity", "finish", "note")

# Same tables and columns as cardsorter/inventory/sqlite_store.py + inventory_cards.py; sessions also name their station
# (bins are physical: each station numbers its own). Rows are append-only (trigger), as in SQLite.
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, database_id TEXT NOT NULL,
    reject_bin TEXT NOT NULL, opened_ns BIGINT NOT NULL, station TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS cards (
    id BIGSERIAL PRIMARY KEY,
    stamp_ns BIGINT NOT NULL, track_id BIGINT NOT NULL, first_stamp_ns BIGINT NOT NULL,
    last_stamp_ns BIGINT NOT NULL, status TEXT NOT NULL, card_id TEXT NOT NULL, name TEXT NOT NULL,
    set_id TEXT NOT NULL, set_name TEXT NOT NULL, number TEXT NOT NULL, rarity TEXT NOT NULL,
    finish TEXT NOT NULL, price_usd DOUBLE PRECISION, distance_cos DOUBLE PRECISION,
    margin_to_runner_up DOUBLE PRECISION, bin TEXT NOT NULL, position_in_bin INTEGER NOT NULL,
    rejected INTEGER NOT NULL, arrived INTEGER, reason TEXT NOT NULL, note TEXT NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions(session_id), model_id TEXT NOT NULL, database_id TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS cards_session ON cards (session_id);
-- one row per track of a session: a retried append after a lost connection cannot write it twice
CREATE UNIQUE INDEX IF NOT EXISTS cards_once ON cards (session_id, track_id, first_stamp_ns);
CREATE TABLE IF NOT EXISTS bins_emptied (
    id BIGSERIAL PRIMARY KEY, bin TEXT NOT NULL, stamp_ns BIGINT NOT NULL, after_card BIGINT NOT NULL,
    station TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS corrections (
    id BIGSERIAL PRIMARY KEY, card_row BIGINT NOT NULL REFERENCES cards(id), stamp_ns BIGINT NOT NULL,
    status TEXT NOT NULL, card_id TEXT NOT NULL, name TEXT NOT NULL, set_id TEXT NOT NULL, set_name TEXT NOT NULL,
    number TEXT NOT NULL, rarity TEXT NOT NULL, finish TEXT NOT NULL, note TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS session_conditions (session_id TEXT PRIMARY KEY, condition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS card_corrections (
    id BIGSERIAL PRIMARY KEY, card_row BIGINT NOT NULL REFERENCES cards(id), condition TEXT NOT NULL,
    finish TEXT NOT NULL, stamp_ns BIGINT NOT NULL);
-- the decision journal, as in SQLite: decisions without their cards row are lost in flight
CREATE TABLE IF NOT EXISTS journal (
    id BIGSERIAL PRIMARY KEY, session_id TEXT NOT NULL REFERENCES sessions(session_id), track_id BIGINT NOT NULL,
    stage TEXT NOT NULL, stamp_ns BIGINT NOT NULL, bin TEXT NOT NULL, row_json TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS journal_track ON journal (session_id, track_id);
CREATE OR REPLACE FUNCTION cardsorter_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the inventory is append-only'; END; $$;
DO $$ DECLARE t TEXT; BEGIN
    FOREACH t IN ARRAY ARRAY['cards', 'bins_emptied', 'corrections', 'card_corrections'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = t || '_append_only') THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE OR DELETE ON %I FOR EACH STATEMENT '
                           'EXECUTE FUNCTION cardsorter_append_only()', t || '_append_only', t);
        END IF;
    END LOOP; END $$;
"""
RECONNECT_ATTEMPTS = 1   # a dropped connection (server restart, network blip) is reopened once per append
SCHEMA_LOCK = 7_250_001   # pg_advisory_xact_lock key: stations creating the schema at once take turns


def is_url(target: str) -> bool:
    return target.startswith(URL_PREFIXES)


def _connect(url: str) -> Any:
    try:
        import psycopg
    except ImportError as err:   # pragma: no cover - psycopg is in requirements/runtime.txt
        raise InventoryError("a PostgreSQL inventory needs psycopg (pip install -r requirements/runtime.txt)") from err
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as err:
        raise InventoryError(f"cannot connect to the PostgreSQL inventory {_safe(url)}: {err}") from err
    return conn


def _safe(url: str) -> str:
    """The URL without a password."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, cred = head.partition("://")
    return f"{scheme}://{cred.split(':')[0]}@{tail}"


def ensure_schema(conn: Any) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1') ON CONFLICT DO NOTHING")


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class PgInventory:
    """One station's session in a shared PostgreSQL inventory; ``append`` returns once the row is committed.

    Every append is its own transaction (autocommit) with PostgreSQL's default synchronous_commit=on: the
    row is in the server's fsynced WAL before ``append`` returns, so a station killed right after loses
    nothing it was told was written.
    """

    def __init__(self, url: str, *, session_id: str, model_id: str, database_id: str, reject_bin: str,
                 opened_ns: int, condition: str = "", station: str = "") -> None:
        if not session_id:
            raise InventoryError("inventory needs a session id")
        self.path = _safe(url)
        self._url = url
        self.session_id = session_id
        self.model_id = model_id
        self._database_id = database_id
        self.reject_bin = reject_bin
        self.station = station
        cond = normalise_condition(condition, "sorter.session.condition")
        self._conn = _connect(url)
        try:
            ensure_schema(self._conn)
            with self._conn.transaction():
                self._conn.execute("INSERT INTO sessions VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                                   (session_id, model_id, database_id, reject_bin, opened_ns, station))
                self._conn.execute("INSERT INTO session_conditions VALUES (%s, %s) ON CONFLICT DO NOTHING",
                                   (session_id, cond))
            self._hold_session_lock()
        except Exception as err:
            self._conn.close()
            raise InventoryError(f"cannot register session {session_id} in {self.path}: {err}") from err

    def _hold_session_lock(self) -> None:
        """A session-level advisory lock on this session, held by this connection (the server drops it when
        the station dies): another station never reports a live session's cards as lost."""
        self._conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (self.session_id,))

    @property
    def database_id(self) -> str:
        return self._database_id

    @database_id.setter
    def database_id(self, value: str) -> None:
        """The session's reference database (the matcher announces it): recorded in ``sessions``."""
        if value == self._database_id:
            return
        try:
            self._conn.execute("UPDATE sessions SET database_id = %s WHERE session_id = %s", (value, self.session_id))
        except Exception as err:
            raise InventoryError(f"cannot record database {value} for session {self.session_id}: {err}") from err
        self._database_id = value

    def journal(self, stage: str, decision: SortDecision, stamp_ns: int) -> None:
        """Record ``decision`` before it is acted on (committed, in the server's fsynced WAL, on return)."""
        from cardsorter.inventory.sqlite_store import decision_row

        if stage not in JOURNAL_STAGES:
            raise ValueError(f"journal stage must be one of {JOURNAL_STAGES}, got {stage!r}")
        row = decision_row(decision, stamp_ns=stamp_ns, position=0, arrived=None, note="", session_id=self.session_id,
                           model_id=self.model_id, database_id=self.database_id, reject_bin=self.reject_bin)
        try:
            self._conn.execute(
                "INSERT INTO journal (session_id, track_id, stage, stamp_ns, bin, row_json) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (self.session_id, decision.track_id, stage, stamp_ns, decision.bin_name, json.dumps(row)))
        except Exception as err:
            raise InventoryError(f"cannot journal track {decision.track_id} in {self.path}: {err}") from err

    def recover_lost_in_flight(self, stamp_ns: int) -> list[InventoryRow]:
        """This station's earlier sessions' decisions without a cards row, from sessions no process holds
        any more: each recorded as ``lost_in_flight`` with its bin (see inventory.Inventory)."""
        try:
            pending = self._conn.execute(
                "SELECT j.session_id, j.track_id, j.stage, j.bin, j.row_json FROM journal j "
                "JOIN sessions s ON s.session_id = j.session_id "
                "WHERE j.id IN (SELECT MAX(id) FROM journal GROUP BY session_id, track_id) "
                "AND s.station = %s AND j.session_id != %s AND NOT EXISTS (SELECT 1 FROM cards c "
                "WHERE c.session_id = j.session_id AND c.track_id = j.track_id) ORDER BY j.id",
                (self.station, self.session_id)).fetchall()
            live: dict[str, bool] = {}
            ids = []
            for session_id, track_id, stage, bin_name, row_json in pending:
                if session_id not in live:
                    got = self._conn.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))",
                                             (session_id,)).fetchone()[0]
                    if got:
                        self._conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (session_id,))
                    live[session_id] = not got
                if live[session_id]:
                    continue
                values = lost_in_flight_row(json.loads(row_json), stage, bin_name, self.session_id, stamp_ns)
                row = self._conn.execute(
                    f"INSERT INTO cards ({', '.join(ROW_COLUMNS[1:])}) VALUES ({', '.join(['%s'] * (len(ROW_COLUMNS) - 1))}) "
                    "ON CONFLICT (session_id, track_id, first_stamp_ns) DO NOTHING RETURNING id",
                    tuple(values[c] for c in ROW_COLUMNS[1:])).fetchone()
                if row is not None:
                    ids.append(int(row[0]))
        except InventoryError:
            raise
        except Exception as err:
            raise InventoryError(f"cannot recover the decision journal of {self.path}: {err}") from err
        return [r for r in read_rows(self._url) if r.id in set(ids)] if ids else []

    def append(self, event: SortEvent) -> int:
        d = event.decision
        card = d.card
        values = (
            event.actuated_ns, d.track_id, d.first_stamp_ns, d.last_stamp_ns, d.status.value,
            card.card_id if card else "", card.name if card else "", card.set_id if card else "",
            card.set_name if card else "", card.number if card else "", card.rarity if card else "",
            card.finish if card else "", card.price_usd if card else None,
            _finite(d.distance_cos), _finite(d.margin_to_runner_up), d.bin_name, event.position_in_bin,
            int(d.bin_name == self.reject_bin), None if event.arrived is None else int(event.arrived),
            d.reason, event.note, self.session_id, self.model_id, self._database_id)
        insert = (f"INSERT INTO cards ({', '.join(ROW_COLUMNS[1:])}) "
                  f"VALUES ({', '.join(['%s'] * (len(ROW_COLUMNS) - 1))}) "
                  "ON CONFLICT (session_id, track_id, first_stamp_ns) DO NOTHING RETURNING id")
        for attempt in range(1 + RECONNECT_ATTEMPTS):
            try:
                row = self._conn.execute(insert, values).fetchone()
                if row is None:   # written by the attempt whose answer was lost with the connection
                    row = self._conn.execute(
                        "SELECT id FROM cards WHERE session_id = %s AND track_id = %s AND first_stamp_ns = %s",
                        (self.session_id, d.track_id, d.first_stamp_ns)).fetchone()
                return int(row[0])
            except Exception as err:
                if attempt < RECONNECT_ATTEMPTS and self._conn.closed:
                    LOG.warning("inventory %s: connection lost (%s); reconnecting", self.path, err)
                    try:
                        self._conn = _connect(self._url)
                        self._hold_session_lock()
                    except InventoryError:
                        pass
                    continue
                raise InventoryError(f"cannot write track {d.track_id} to inventory {self.path}: {err}") from err
        raise AssertionError("unreachable")

    def bin_fill(self) -> dict[str, int]:
        """This station's highest position per bin since it was last emptied."""
        rows = self._conn.execute(
            "SELECT c.bin, MAX(c.position_in_bin) FROM cards c JOIN sessions s ON s.session_id = c.session_id "
            "WHERE s.station = %s AND c.id > COALESCE((SELECT MAX(after_card) FROM bins_emptied e "
            "WHERE e.bin = c.bin AND e.station = %s), 0) GROUP BY c.bin", (self.station, self.station)).fetchall()
        return {str(b): int(p) for b, p in rows}

    def record_bin_emptied(self, bin_name: str, stamp_ns: int) -> None:
        try:
            self._conn.execute(
                "INSERT INTO bins_emptied (bin, stamp_ns, after_card, station) VALUES (%s, %s, "
                "COALESCE((SELECT MAX(id) FROM cards), 0), %s)", (bin_name, stamp_ns, self.station))
        except Exception as err:
            raise InventoryError(f"cannot record that bin {bin_name} was emptied in {self.path}: {err}") from err

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_rows(url: str, session_id: str | None = None, station: str | None = None) -> list[InventoryRow]:
    """Every row (of one session / one station, if given), oldest first."""
    conn = _connect(url)
    try:
        query = f"SELECT {', '.join('c.' + c for c in ROW_COLUMNS)} FROM cards c"
        args: list[Any] = []
        if station is not None:
            query += " JOIN sessions s ON s.session_id = c.session_id WHERE s.station = %s"
            args.append(station)
        if session_id is not None:
            query += (" AND" if station is not None else " WHERE") + " c.session_id = %s"
            args.append(session_id)
        rows = conn.execute(query + " ORDER BY c.id", args).fetchall()
        latest: dict[int, dict[str, Any]] = {}
        for r in conn.execute(f"SELECT card_row, {', '.join(CORRECTION_FIELDS)} FROM corrections ORDER BY id"):
            latest[int(r[0])] = dict(zip(CORRECTION_FIELDS, r[1:]))
    except Exception as err:
        raise InventoryError(f"cannot read inventory {_safe(url)}: {err}") from err
    finally:
        conn.close()
    out = []
    for r in rows:
        values = dict(zip(ROW_COLUMNS, r))
        values["rejected"] = bool(values["rejected"])
        values["arrived"] = None if values["arrived"] is None else bool(values["arrived"])
        values.update(latest.get(values["id"], {}))     # the review queue's newest verdict, as in SQLite
        out.append(InventoryRow(**values))
    return out


def card_states(url: str) -> dict[int, CardState]:
    conn = _connect(url)
    try:
        session = dict(conn.execute("SELECT session_id, condition FROM session_conditions").fetchall())
        out = {int(i): CardState(session.get(s, ""), "", False)
               for i, s in conn.execute("SELECT id, session_id FROM cards").fetchall()}
        for row, cond, fin in conn.execute("SELECT card_row, condition, finish FROM card_corrections ORDER BY id"):
            old = out.get(int(row))
            if old is not None:
                out[int(row)] = CardState(cond or old.condition, fin or old.finish, True)
        return out
    except Exception as err:
        raise InventoryError(f"cannot read inventory {_safe(url)}: {err}") from err
    finally:
        conn.close()


def correct_cards(url: str, row_ids: Iterable[int], *, condition: str = "", finish: str = "", stamp_ns: int) -> int:
    cond = normalise_condition(condition)
    if finish and finish not in FINISHES:
        raise InventoryError(f"finish '{finish}' is not one of {', '.join(FINISHES)}")
    if not cond and not finish:
        raise InventoryError("set-condition needs a condition (or --finish)")
    ids = sorted({int(i) for i in row_ids})
    conn = _connect(url)
    try:
        known = {int(r[0]) for r in conn.execute("SELECT id FROM cards WHERE id = ANY(%s)", (ids,)).fetchall()}
        missing = [i for i in ids if i not in known]
        if missing:
            raise InventoryError(f"inventory {_safe(url)} has no card rows {missing[:10]}")
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany("INSERT INTO card_corrections (card_row, condition, finish, stamp_ns) "
                            "VALUES (%s, %s, %s, %s)", [(i, cond, finish, stamp_ns) for i in ids])
        return len(ids)
    except InventoryError:
        raise
    except Exception as err:
        raise InventoryError(f"cannot record the correction in {_safe(url)}: {err}") from err
    finally:
        conn.close()


def bin_contents(url: str, station: str) -> dict[str, list[InventoryRow]]:
    """What each of ``station``'s bins holds now (since it was last emptied), in the order the cards went in."""
    conn = _connect(url)
    try:
        ids = {int(r[0]) for r in conn.execute(
            "SELECT c.id FROM cards c JOIN sessions s ON s.session_id = c.session_id WHERE s.station = %s AND "
            "c.id > COALESCE((SELECT MAX(after_card) FROM bins_emptied e WHERE e.bin = c.bin AND e.station = %s), 0)",
            (station, station)).fetchall()}
        stations = [str(r[0]) for r in conn.execute("SELECT DISTINCT station FROM sessions").fetchall()]
    except Exception as err:
        raise InventoryError(f"cannot read inventory {_safe(url)}: {err}") from err
    finally:
        conn.close()
    if station not in stations:
        raise InventoryError(f"inventory {_safe(url)} has no station '{station}' (stations: {', '.join(sorted(stations))})")
    out: dict[str, list[InventoryRow]] = {}
    for row in read_rows(url, station=station):
        if row.id in ids:
            out.setdefault(row.bin, []).append(row)
    return out


def stations(url: str) -> list[str]:
    conn = _connect(url)
    try:
        return sorted(str(r[0]) for r in conn.execute("SELECT DISTINCT station FROM sessions").fetchall())
    except Exception as err:
        raise InventoryError(f"cannot read inventory {_safe(url)}: {err}") from err
    finally:
        conn.close()


def mark_bin_emptied(url: str, station: str, bin_name: str, stamp_ns: int) -> None:
    """Record, between sessions, that one station's bin was emptied (``inventory empty-bin --station``)."""
    if station not in stations(url):
        raise InventoryError(f"inventory {_safe(url)} has no station '{station}'")
    conn = _connect(url)
    try:
        conn.execute("INSERT INTO bins_emptied (bin, stamp_ns, after_card, station) VALUES (%s, %s, "
                     "COALESCE((SELECT MAX(id) FROM cards), 0), %s)", (bin_name, stamp_ns, station))
    except Exception as err:
        raise InventoryError(f"cannot record that bin {bin_name} was emptied in {_safe(url)}: {err}") from err
    finally:
        conn.close()


def append_correction(url: str, row_id: int, card: CardRecord | None, note: str, stamp_ns: int) -> None:
    """A person's verdict on row ``row_id`` (the review queue), as ``cardsorter.inventory.sqlite_store.append_correction``."""
    values = ((CORRECTED, card.card_id, card.name, card.set_id, card.set_name, card.number, card.rarity,
               card.finish) if card else (CORRECTED_UNKNOWN, "", "", "", "", "", "", "")) + (note,)
    conn = _connect(url)
    try:
        if conn.execute("SELECT 1 FROM cards WHERE id = %s", (row_id,)).fetchone() is None:
            raise InventoryError(f"inventory {_safe(url)} has no row {row_id}")
        conn.execute(f"INSERT INTO corrections (card_row, stamp_ns, {', '.join(CORRECTION_FIELDS)}) "
                     f"VALUES (%s, %s, {', '.join(['%s'] * len(CORRECTION_FIELDS))})", (row_id, stamp_ns, *values))
    except InventoryError:
        raise
    except Exception as err:
        raise InventoryError(f"cannot correct row {row_id} of inventory {_safe(url)}: {err}") from err
    finally:
        conn.close()
