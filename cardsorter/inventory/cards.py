"""Per-card condition and printing: the session's condition, later corrections (append-only), in the inventory file."""

from __future__ import annotations

import pathlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass

from cardsorter.core.errors import InventoryError
from cardsorter.core.fields import doc
from cardsorter.core.types import FINISHES

# Condition codes and what each marketplace file calls them (TCGplayer's names; Dragon Shield's scale maps
# NM→NearMint, LP→Excellent, MP→Good, HP→Played, DMG→Poor, as Cardmarket-style graders do).
CONDITIONS = ("NM", "LP", "MP", "HP", "DMG")
CONDITION_NAMES = {"NM": "Near Mint", "LP": "Lightly Played", "MP": "Moderately Played", "HP": "Heavily Played",
                   "DMG": "Damaged"}
_ALIASES = {**{c.lower(): c for c in CONDITIONS}, **{n.lower(): c for c, n in CONDITION_NAMES.items()},
            "near_mint": "NM", "lightly_played": "LP", "moderately_played": "MP", "heavily_played": "HP",
            "damaged": "DMG", "d": "DMG"}

CARD_TABLES = """
CREATE TABLE IF NOT EXISTS session_conditions (
    session_id TEXT PRIMARY KEY, condition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS card_corrections (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    card_row INTEGER NOT NULL,            -- cards.id
    condition TEXT NOT NULL,              -- '' = unchanged
    finish TEXT NOT NULL,                 -- '' = unchanged
    stamp_ns INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS card_corrections_no_update BEFORE UPDATE ON card_corrections
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
CREATE TRIGGER IF NOT EXISTS card_corrections_no_delete BEFORE DELETE ON card_corrections
    BEGIN SELECT RAISE(ABORT, 'the inventory is append-only'); END;
"""


def normalise_condition(text: str, where: str = "condition") -> str:
    """'NM', 'near mint', 'Near Mint' → 'NM'; '' stays '' (not graded); anything else is an error."""
    if not text.strip():
        return ""
    code = _ALIASES.get(text.strip().lower())
    if code is None:
        raise InventoryError(f"{where} '{text}' is not one of {', '.join(CONDITIONS)} "
                             f"({', '.join(CONDITION_NAMES.values())})")
    return code


@dataclass(frozen=True)
class SessionConfig:
    """``sorter.session``: what the operator says about the cards of one sorting session."""

    condition: str = doc("condition of every card sorted in this session: NM | LP | MP | HP | DMG ('' = not "
                         "graded; correct cards afterwards with `inventory set-condition`)")
    station: str = doc("this sorter's name in a shared (postgresql://) inventory; '' = the host name. Bins "
                       "are numbered per station")

    def __post_init__(self) -> None:
        try:
            normalise_condition(self.condition)
        except InventoryError as err:
            raise ValueError(str(err)) from None


@dataclass(frozen=True)
class CardState:
    """A physical card's condition and printing as they stand after every correction."""

    condition: str     # one of CONDITIONS, '' = not graded
    finish: str        # '' = as recorded when sorted
    corrected: bool


def ensure_card_tables(conn: sqlite3.Connection) -> None:
    conn.executescript(CARD_TABLES)


def record_session_condition(conn: sqlite3.Connection, session_id: str, condition: str) -> None:
    """The condition every card of this session gets unless corrected (``sorter.session.condition``)."""
    conn.execute("INSERT OR IGNORE INTO session_conditions VALUES (?, ?)",
                 (session_id, normalise_condition(condition, "sorter.session.condition")))


def _has(conn: sqlite3.Connection, table: str) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone() is not None


def card_states(path: str | pathlib.Path) -> dict[int, CardState]:
    """cards.id → CardState for every row (session condition, then the latest correction of each field)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise InventoryError(f"inventory {path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _states(conn)
    except sqlite3.Error as err:
        raise InventoryError(f"cannot read inventory {path}: {err}") from err
    finally:
        conn.close()


def _states(conn: sqlite3.Connection) -> dict[int, CardState]:
    session = ({s: c for s, c in conn.execute("SELECT session_id, condition FROM session_conditions")}
               if _has(conn, "session_conditions") else {})
    out = {int(i): CardState(session.get(s, ""), "", False) for i, s in conn.execute("SELECT id, session_id FROM cards")}
    if _has(conn, "card_corrections"):
        for row, cond, fin in conn.execute("SELECT card_row, condition, finish FROM card_corrections ORDER BY id"):
            old = out.get(int(row))
            if old is not None:
                out[int(row)] = CardState(cond or old.condition, fin or old.finish, True)
    return out


def correct_cards(path: str | pathlib.Path, row_ids: Iterable[int], *, condition: str = "", finish: str = "",
                  stamp_ns: int) -> int:
    """Append a correction for each card row (``inventory set-condition``); returns how many were corrected."""
    path = pathlib.Path(path)
    cond = normalise_condition(condition)
    if finish and finish not in FINISHES:
        raise InventoryError(f"finish '{finish}' is not one of {', '.join(FINISHES)}")
    if not cond and not finish:
        raise InventoryError("set-condition needs a condition (or --finish)")
    if not path.is_file():
        raise InventoryError(f"inventory {path} does not exist")
    ids = sorted({int(i) for i in row_ids})
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
    try:
        ensure_card_tables(conn)
        known = {int(r[0]) for r in conn.execute("SELECT id FROM cards")}
        missing = [i for i in ids if i not in known]
        if missing:
            raise InventoryError(f"inventory {path} has no card rows {missing[:10]}")
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO card_corrections (card_row, condition, finish, stamp_ns) VALUES (?, ?, ?, ?)",
                         [(i, cond, finish, stamp_ns) for i in ids])
        conn.execute("COMMIT")
        return len(ids)
    except sqlite3.Error as err:
        raise InventoryError(f"cannot record the correction in {path}: {err}") from err
    finally:
        conn.close()
