"""`cardsorter inventory export|summary|passes`: read the sorter's append-only inventory."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys
from collections import Counter
from collections.abc import Iterator
from typing import IO

from cardsorter.core.errors import ConfigError, InventoryError
from cardsorter.core.multipass import plan_passes
from cardsorter.inventory import (
    export_csv,
    export_tcgplayer,
    integrity_check,
    read_rows,
    summarize,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    inv = subparsers.add_parser("inventory", help="export or summarise the inventory of sorted cards")
    sub = inv.add_subparsers(dest="inventory_command", required=True, metavar="ACTION")

    exp = sub.add_parser("export", help="write the inventory as CSV (ours) or a TCGplayer import CSV")
    exp.add_argument("--db", required=True, type=pathlib.Path, help="inventory SQLite file")
    exp.add_argument("--format", choices=("csv", "tcgplayer"), default="csv")
    exp.add_argument("--out", type=pathlib.Path, help="output file (default: stdout)")
    exp.add_argument("--session", help="only this session id")
    exp.add_argument("--condition", default="", help="tcgplayer: condition to write (the sorter does not grade)")
    exp.add_argument("--language", default="", help="tcgplayer: language to write")
    exp.set_defaults(func=_export)

    summ = sub.add_parser("summary", help="counts per bin, per status and per set")
    summ.add_argument("--db", required=True, type=pathlib.Path, help="inventory SQLite file")
    summ.add_argument("--session", help="only this session id")
    summ.set_defaults(func=_summary)

    passes = sub.add_parser("passes", help="plan multi-pass sorting of the sorted cards by set / rarity / letter")
    passes.add_argument("--db", required=True, type=pathlib.Path, help="inventory SQLite file")
    passes.add_argument("--by", choices=("set", "rarity", "letter"), default="set")
    passes.add_argument("--bins", type=int, required=True, help="number of sort bins (reject and overflow excluded)")
    passes.set_defaults(func=_passes)


@contextlib.contextmanager
def _output(path: pathlib.Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8", newline="") as out:
            yield out
    except OSError as err:
        raise InventoryError(f"cannot write {path}: {err}") from err


def _export(args: argparse.Namespace) -> int:
    rows = read_rows(args.db, args.session)
    with _output(args.out) as out:
        if args.format == "csv":
            n = export_csv(rows, out)
            what = f"{n} cards"
        else:
            n = export_tcgplayer(rows, out, condition=args.condition, language=args.language)
            what = f"{n} printings"
    if args.out is not None:
        print(f"wrote {what} to {args.out}", file=sys.stderr)
    return 0


def _summary(args: argparse.Namespace) -> int:
    check = integrity_check(args.db)
    summary = summarize(read_rows(args.db, args.session))
    print(f"inventory {args.db}: integrity {check}")
    for line in summary.lines():
        print(line)
    return 0 if check == "ok" else 1


def _passes(args: argparse.Namespace) -> int:
    rows = [r for r in read_rows(args.db) if not r.rejected and r.card_id]
    if args.by == "set":
        counts = Counter(r.set_id for r in rows)
    elif args.by == "rarity":
        counts = Counter(r.rarity for r in rows)
    else:
        counts = Counter((r.name[:1] or "?").lower() for r in rows)
    try:
        plan = plan_passes(sorted(counts), [f"bin{i + 1}" for i in range(args.bins)], field=args.by,
                           weights={k: float(v) for k, v in counts.items()})
    except ValueError as err:
        raise ConfigError(f"inventory passes: {err}") from err
    for line in plan.lines():
        print(line)
    return 0
