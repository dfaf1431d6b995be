"""The sort log: one CSV line per decided card, with a session line per run (regression replays compare it
with golden files; ``read_sort_log`` splits a file back into its sessions)."""

from __future__ import annotations

import csv
import math
import os
import pathlib
from dataclasses import dataclass
from typing import Self

from cardsorter.core.errors import InventoryError
from cardsorter.core.types import SortDecision
from cardsorter.inventory.sqlite_store import InventoryRow

SORT_LOG_COLUMNS = ("track_id", "first_stamp_ns", "last_stamp_ns", "status", "card_id", "name", "set_code",
                    "number", "distance", "margin", "bin", "reason", "finish")
# Logs written before the finish column (issue #14) are read with finish "".
LEGACY_SORT_LOG_COLUMNS = SORT_LOG_COLUMNS[:-1]


def sort_log_row(decision: SortDecision) -> list[str]:
    card = decision.card
    return [str(decision.track_id), str(decision.first_stamp_ns), str(decision.last_stamp_ns),
            decision.status.value, card.card_id if card else "", card.name if card else "",
            card.set_id if card else "", card.number if card else "",
            f"{decision.distance_cos:.4f}", f"{decision.margin_to_runner_up:.4f}", decision.bin_name, decision.reason,
            card.finish if card else ""]


SESSION_HEADER_PREFIX = "# session "


def sort_log_row_from_inventory(row: InventoryRow) -> list[str]:
    """A sort-log line for an inventory row (how lost_in_flight rows reach the log)."""
    def num(v: float | None) -> str:
        return f"{v:.4f}" if v is not None else f"{math.inf:.4f}"
    return [str(row.track_id), str(row.first_stamp_ns), str(row.last_stamp_ns), row.status, row.card_id, row.name,
            row.set_id, row.number, num(row.distance_cos), num(row.margin_to_runner_up), row.bin, row.reason,
            row.finish]


class SortLogWriter:
    """CSV of every sort decision, appended to (a run never erases the last one's rows) and flushed per row.

    Each run starts with a session line (``# session <id> opened <UTC> model <id>``) and the column
    header (SORT_LOG_COLUMNS); ``read_sort_log`` splits the file back into sessions.
    """

    def __init__(self, path: str | pathlib.Path, session_id: str = "", model_id: str = "", opened_utc: str = "") -> None:
        self.path = pathlib.Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            torn = False
            if self.path.is_file() and self.path.stat().st_size > 0:
                with self.path.open("rb") as f:
                    f.seek(-1, os.SEEK_END)
                    torn = f.read(1) != b"\n"      # a line cut short by a crash: start on a new line
            self._file = self.path.open("a", encoding="utf-8", newline="")
        except OSError as err:
            raise InventoryError(f"cannot write sort log {self.path}: {err}") from err
        if torn:
            self._file.write("\n")
        self._file.write(f"{SESSION_HEADER_PREFIX}{session_id or '-'} opened {opened_utc or '-'} model {model_id or '-'}\n")
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(SORT_LOG_COLUMNS)
        self._file.flush()

    def write(self, decision: SortDecision) -> None:
        self._writer.writerow(sort_log_row(decision))
        self._file.flush()

    def write_inventory_row(self, row: InventoryRow) -> None:
        self._writer.writerow(sort_log_row_from_inventory(row))
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class SortLogSession:
    """One run's part of a sort log: its session line, its rows (column name → text) and damaged lines."""

    session_id: str
    header: str
    rows: tuple[dict[str, str], ...]
    damaged: tuple[str, ...]


def read_sort_log(path: str | pathlib.Path) -> list[SortLogSession]:
    """A sort log split into its sessions, oldest first (a log from before session lines is one session "")."""
    path = pathlib.Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InventoryError(f"cannot read sort log {path}: {err}") from err
    sessions: list[SortLogSession] = []
    header, sid = "", ""
    rows: list[dict[str, str]] = []
    damaged: list[str] = []

    def close() -> None:
        if header or rows or damaged:
            sessions.append(SortLogSession(sid, header, tuple(rows), tuple(damaged)))

    for line in lines:
        if line.startswith(SESSION_HEADER_PREFIX):
            close()
            header, rows, damaged = line[2:], [], []
            sid = line[len(SESSION_HEADER_PREFIX):].split(" ", 1)[0]
            continue
        if not line.strip():
            continue
        values = next(csv.reader([line]))
        if tuple(values) in (SORT_LOG_COLUMNS, LEGACY_SORT_LOG_COLUMNS):
            continue
        if len(values) == len(LEGACY_SORT_LOG_COLUMNS):
            values.append("")
        if len(values) != len(SORT_LOG_COLUMNS):
            damaged.append(line)
            continue
        rows.append(dict(zip(SORT_LOG_COLUMNS, values, strict=True)))
    close()
    return sessions


def utc_now_iso() -> str:
    """Wall-clock time for session lines (the only wall time the sort log carries)."""
    import datetime

    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
