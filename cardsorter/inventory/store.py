"""Where the inventory lives: a SQLite file (the default) or a ``postgresql://`` URL shared by several stations."""

from __future__ import annotations

import pathlib
import socket
from collections.abc import Iterable
from typing import Protocol

from cardsorter.core.errors import InventoryError
from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.types import CardRecord, SortDecision
from cardsorter.inventory.cards import CardState
from cardsorter.inventory.cards import card_states as sqlite_card_states
from cardsorter.inventory.cards import correct_cards as sqlite_correct_cards
from cardsorter.inventory.pg_store import is_url
from cardsorter.inventory.sqlite_store import Inventory, InventoryRow
from cardsorter.inventory.sqlite_store import append_correction as sqlite_append_correction
from cardsorter.inventory.sqlite_store import read_rows as sqlite_read_rows


class InventoryWriter(Protocol):
    """What the sorter needs of an inventory (SQLite ``Inventory`` and ``PgInventory`` both are one)."""

    session_id: str
    database_id: str

    def append(self, event: SortEvent) -> int: ...
    def journal(self, stage: str, decision: SortDecision, stamp_ns: int) -> None: ...
    def recover_lost_in_flight(self, stamp_ns: int) -> list[InventoryRow]: ...
    def bin_fill(self) -> dict[str, int]: ...
    def record_bin_emptied(self, bin_name: str, stamp_ns: int) -> None: ...
    def close(self) -> None: ...


def open_inventory(target: str | pathlib.Path, *, session_id: str, model_id: str, database_id: str,
                   reject_bin: str, opened_ns: int, condition: str = "", station: str = "") -> InventoryWriter:
    """A SQLite file path, or a PostgreSQL URL (each station its own sessions; ``station`` '' = host name)."""
    if is_url(str(target)):
        from cardsorter.inventory.pg_store import PgInventory

        return PgInventory(str(target), session_id=session_id, model_id=model_id, database_id=database_id,
                           reject_bin=reject_bin, opened_ns=opened_ns, condition=condition,
                           station=station or socket.gethostname())
    return Inventory(target, session_id=session_id, model_id=model_id, database_id=database_id,
                     reject_bin=reject_bin, opened_ns=opened_ns, condition=condition)


def read_rows(target: str | pathlib.Path, session_id: str | None = None) -> list[InventoryRow]:
    if is_url(str(target)):
        from cardsorter.inventory.pg_store import read_rows as pg_read_rows

        return pg_read_rows(str(target), session_id)
    return sqlite_read_rows(target, session_id)


def find_row(target: str | pathlib.Path, session_id: str, track_id: int) -> InventoryRow:
    """The row of one physical card: track ``track_id`` of session ``session_id``."""
    found = [r for r in read_rows(target, session_id) if r.track_id == track_id]
    if len(found) != 1:
        raise InventoryError(f"inventory {target} has {len(found)} rows for track {track_id} of session {session_id}")
    return found[0]


def card_states(target: str | pathlib.Path) -> dict[int, CardState]:
    if is_url(str(target)):
        from cardsorter.inventory.pg_store import card_states as pg_card_states

        return pg_card_states(str(target))
    return sqlite_card_states(target)


def correct_cards(target: str | pathlib.Path, row_ids: Iterable[int], *, condition: str = "", finish: str = "",
                  stamp_ns: int) -> int:
    if is_url(str(target)):
        from cardsorter.inventory.pg_store import correct_cards as pg_correct_cards

        return pg_correct_cards(str(target), row_ids, condition=condition, finish=finish, stamp_ns=stamp_ns)
    return sqlite_correct_cards(target, row_ids, condition=condition, finish=finish, stamp_ns=stamp_ns)


def append_correction(target: str | pathlib.Path, row_id: int, card: CardRecord | None, note: str,
                      stamp_ns: int) -> None:
    """The review queue's verdict on one row (the card it is, or None: not in the catalogue)."""
    if is_url(str(target)):
        from cardsorter.inventory.pg_store import append_correction as pg_append_correction

        pg_append_correction(str(target), row_id, card, note, stamp_ns)
        return
    sqlite_append_correction(target, row_id, card, note, stamp_ns)
