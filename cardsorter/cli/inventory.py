"""`cardsorter inventory export|summary|passes`: read the sorter's append-only inventory."""

from __future__ import annotations

import argparse
import contextlib
import pathlib
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import IO

from cardsorter.core.bin_rules import load_rules
from cardsorter.core.errors import ConfigError, InventoryError
from cardsorter.core.multipass import plan_passes, step_rules_yaml
from cardsorter.core.types import CardRecord
from cardsorter.inventory.sqlite_store import (
    bin_contents,
    integrity_check,
    mark_bin_emptied,
    read_rows,
    reconcile,
    summarize,
)


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    inv = subparsers.add_parser("inventory", help="export or summarise the inventory of sorted cards")
    sub = inv.add_subparsers(dest="inventory_command", required=True, metavar="ACTION")

    exp = sub.add_parser("export", help="write the inventory for a marketplace (or as our full CSV)")
    exp.add_argument("--db", required=True, help="inventory SQLite file or postgresql:// URL")
    exp.add_argument("--format", choices=EXPORT_FORMATS, default="csv",
                     help="csv (ours, every row and column) | tcgplayer (seller inventory upload) | tcgplayer-app | "
                          "dragonshield | moxfield (Magic)")
    exp.add_argument("--out", type=pathlib.Path, help="output file (default: stdout)")
    exp.add_argument("--session", help="only this session id")
    exp.add_argument("--catalog", type=pathlib.Path, metavar="DB",
                     help="reference database whose records give set codes, languages, prices and TCGplayer ids "
                          "(default: matcher.database when it exists)")
    exp.add_argument("--condition", default="", help="condition of cards that have none (NM, LP, MP, HP, DMG)")
    exp.add_argument("--language", default="", help="language of cards whose catalogue record has none (en, ja, ...)")
    exp.add_argument("--assume-finish", default="", metavar="FINISH",
                     help="printing of cards whose catalogue record lists several (normal, reverse_holo...) and "
                          "that nobody corrected; without it those lines are reported, not written")
    exp.add_argument("--folder", default="cardsorter", help="dragonshield: the Folder Name column")
    exp.add_argument("--skus", type=pathlib.Path, metavar="CSV",
                     help="tcgplayer: your TCGplayer seller inventory/pricing export; its TCGplayer Ids (SKUs) fill "
                          "the upload for the printings and conditions it lists")
    exp.add_argument("--unfilled", type=pathlib.Path, metavar="CSV",
                     help="also write the lines that could not be filled (what is missing) to this file")
    exp.set_defaults(func=_export)

    cond = sub.add_parser("set-condition", help="correct the condition (and printing) of sorted cards")
    cond.add_argument("--db", required=True, help="inventory SQLite file or postgresql:// URL")
    cond.add_argument("rows", nargs="*", type=int, metavar="ROW", help="card row ids (the csv export's id column)")
    cond.add_argument("--condition", default="", help="NM | LP | MP | HP | DMG (or the full name)")
    cond.add_argument("--finish", default="", help="the printing, when the sorter could not tell (e.g. reverse_holo)")
    cond.add_argument("--session", help="every card of this session")
    cond.set_defaults(func=_set_condition)

    summ = sub.add_parser("summary", help="counts per bin, per status and per set")
    summ.add_argument("--db", required=True, help="inventory SQLite file or postgresql:// URL")
    summ.add_argument("--session", help="only this session id")
    summ.set_defaults(func=_summary)

    empty = sub.add_parser("empty-bin", help="record that a bin was emptied (its positions restart at 1)")
    empty.add_argument("--db", required=True, help="inventory SQLite file or postgresql:// URL")
    empty.add_argument("--bin", required=True, dest="bin_name", help="the bin's name in the bins file")
    empty.add_argument("--station", help="postgresql:// inventory: whose bin (sorter.session.station)")
    empty.set_defaults(func=_empty_bin)

    passes = sub.add_parser("passes", help="plan multi-pass sorting of the sorted cards by set / rarity / letter")
    passes.add_argument("--db", required=True, help="inventory SQLite file or postgresql:// URL")
    passes.add_argument("--by", choices=("set", "rarity", "letter"), default="set")
    passes.add_argument("--bins", type=int, help="number of sort bins (reject and overflow excluded)")
    passes.add_argument("--rules", type=pathlib.Path,
                        help="a bins file: plan over its sort bins (all but reject and overflow)")
    passes.add_argument("--write", type=pathlib.Path, help="with --rules: write one bins file per run into this folder")
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


EXPORT_FORMATS = ("csv", "tcgplayer", "tcgplayer-app", "dragonshield", "moxfield")


def _catalogue(path: pathlib.Path | None, database_ids: set[str]) -> dict[str, CardRecord]:
    """The catalogue's records; a warning when the inventory was sorted against another database."""
    import json

    from cardsorter.config import resolve_path
    from cardsorter.inventory.exports import load_catalogue
    from cardsorter.settings import load_settings

    if path is None:
        database = load_settings().matcher.database
        configured = resolve_path(database) if database else None
        if configured is None or not (configured / "metadata.json").is_file():
            print("no catalogue (--catalog DB): set codes, languages and TCGplayer ids are unknown", file=sys.stderr)
            return {}
        print(f"catalogue: {configured} (matcher.database)", file=sys.stderr)
        path = configured
    records = load_catalogue(path)
    try:
        own = str(json.loads((path / "manifest.json").read_text(encoding="utf-8")).get("database_id", ""))
    except (OSError, ValueError):
        own = ""
    others = sorted(database_ids - {"", own})
    if own and others:
        print(f"warning: cards were sorted against database {', '.join(others)}; the catalogue {path} is {own}: "
              "records are looked up by card id", file=sys.stderr)
    return records


def _export(args: argparse.Namespace) -> int:
    from cardsorter.inventory.cards import normalise_condition
    from cardsorter.inventory.exports import aggregate, export_full, export_lines
    from cardsorter.inventory.store import card_states, read_rows

    rows = read_rows(args.db, args.session)
    states = card_states(args.db)
    catalogue = _catalogue(args.catalog, {r.database_id for r in rows})
    if args.skus is not None:
        from cardsorter.inventory.exports import load_tcgplayer_skus, with_skus

        skus, problems = load_tcgplayer_skus(args.skus)
        for problem in problems[:20]:
            print(f"skipped SKU row {problem}", file=sys.stderr)
        catalogue = with_skus(catalogue, skus)
        print(f"{sum(map(len, skus.values()))} TCGplayer SKUs from {args.skus} ({len(problems)} rows not understood)",
              file=sys.stderr)
    with _output(args.out) as out:
        if args.format == "csv":
            n = export_full(rows, states, catalogue, out)
            what = f"{n} cards"
            result = None
        else:
            lines, left_out = aggregate(rows, states, catalogue,
                                        default_condition=normalise_condition(args.condition, "--condition"),
                                        default_language=args.language, assume_finish=args.assume_finish)
            result = export_lines(args.format, lines, out, folder=args.folder)
            what = f"{result.lines_written} lines ({result.cards_written} cards)"
            if left_out:
                print("not exported: " + ", ".join(f"{n} {why}" for why, n in sorted(left_out.items())),
                      file=sys.stderr)
    if args.out is not None:
        print(f"wrote {what} to {args.out}", file=sys.stderr)
    if result is not None and result.unfilled:
        cards = sum(u.line.quantity for u in result.unfilled)
        print(f"{len(result.unfilled)} lines ({cards} cards) NOT written: {args.format} needs values we do not "
              "have:", file=sys.stderr)
        for u in result.unfilled[:20]:
            print("  " + u.text(), file=sys.stderr)
        if len(result.unfilled) > 20:
            print(f"  ... and {len(result.unfilled) - 20} more" + ("" if args.unfilled else " (--unfilled FILE)"),
                  file=sys.stderr)
        if args.unfilled is not None:
            with _output(args.unfilled) as fh:
                fh.write("card_id,finish,condition,language,quantity,rows,missing\n")
                import csv

                w = csv.writer(fh, lineterminator="\n")
                for u in result.unfilled:
                    ln = u.line
                    w.writerow([ln.card_id, ln.finish, ln.condition, ln.language, ln.quantity,
                                " ".join(map(str, ln.rows)), "; ".join(u.missing)])
        return 1
    return 0


def _set_condition(args: argparse.Namespace) -> int:
    from cardsorter.inventory.store import correct_cards, read_rows

    ids = list(args.rows)
    if args.session:
        ids += [r.id for r in read_rows(args.db, args.session)]
    if not ids:
        raise InventoryError("set-condition needs card row ids or --session")
    n = correct_cards(args.db, ids, condition=args.condition, finish=args.finish, stamp_ns=time.time_ns())
    what = " and ".join(x for x in (f"condition {args.condition}" if args.condition else "",
                                    f"printing {args.finish}" if args.finish else "") if x)
    print(f"{n} cards in {args.db} corrected: {what}")
    return 0


def _summary(args: argparse.Namespace) -> int:
    from cardsorter.inventory.pg_store import is_url

    if is_url(args.db):
        return _summary_pg(args)
    check = integrity_check(args.db)
    summary = summarize(read_rows(args.db, args.session))
    print(f"inventory {args.db}: integrity {check}")
    for line in summary.lines():
        print(line)
    contents = bin_contents(args.db)
    print("in the bins now (since last emptied):")
    for name, rows in sorted(contents.items()):
        print(f"  {name:<20} {len(rows):>7}")
    problems = reconcile(contents)
    for problem in problems:
        print(f"MISMATCH {problem}")
    return 0 if check == "ok" and not problems else 1


def _summary_pg(args: argparse.Namespace) -> int:
    from cardsorter.inventory.pg_store import _safe, bin_contents, read_rows, stations

    print(f"inventory {_safe(args.db)} (PostgreSQL; integrity is the server's)")
    for line in summarize(read_rows(args.db, args.session)).lines():
        print(line)
    problems: list[str] = []
    for station in stations(args.db):
        contents = bin_contents(args.db, station)
        print(f"in the bins of station {station or '(unnamed)'} now (since last emptied):")
        for name, rows in sorted(contents.items()):
            print(f"  {name:<20} {len(rows):>7}")
        problems += [f"station {station}: {p}" for p in reconcile(contents)]
    for problem in problems:
        print(f"MISMATCH {problem}")
    return 0 if not problems else 1


def _empty_bin(args: argparse.Namespace) -> int:
    from cardsorter.inventory.pg_store import is_url

    if is_url(args.db):
        from cardsorter.inventory.pg_store import mark_bin_emptied as pg_mark_bin_emptied

        if args.station is None:
            raise InventoryError("a postgresql:// inventory is shared: empty-bin needs --station")
        pg_mark_bin_emptied(args.db, args.station, args.bin_name, time.time_ns())
        print(f"bin {args.bin_name} of station {args.station} recorded as emptied")
        return 0
    mark_bin_emptied(pathlib.Path(args.db), args.bin_name, time.time_ns())
    print(f"bin {args.bin_name} recorded as emptied in {args.db}")
    return 0


def _passes(args: argparse.Namespace) -> int:
    from cardsorter.inventory.store import read_rows as read_any

    rows = [r for r in read_any(args.db) if not r.rejected and r.card_id]
    if args.by == "set":
        counts = Counter(r.set_id for r in rows)
    elif args.by == "rarity":
        counts = Counter(r.rarity for r in rows)
    else:
        counts = Counter((r.name[:1] or "?").lower() for r in rows)
    base = load_rules(args.rules) if args.rules is not None else None
    if base is not None:
        bins = [b for b in base.sort_bins if b != base.overflow_bin]
    elif args.bins is not None:
        bins = [f"bin{i + 1}" for i in range(args.bins)]
    else:
        raise ConfigError("inventory passes needs --bins N or --rules BINS_FILE")
    if args.write is not None and base is None:
        raise ConfigError("inventory passes --write needs --rules (the bins and their positions)")
    try:
        plan = plan_passes(sorted(counts), bins, field=args.by, weights={k: float(v) for k, v in counts.items()})
    except ValueError as err:
        raise ConfigError(f"inventory passes: {err}") from err
    for line in plan.lines():
        print(line)
    if args.write is not None and base is not None:
        try:
            args.write.mkdir(parents=True, exist_ok=True)
            for i, step in enumerate(plan.steps, start=1):
                path = args.write / f"run{i:02d}_pass{step.pass_number}.yaml"
                path.write_text(step_rules_yaml(step, args.by, base), encoding="utf-8")
                print(f"wrote {path}")
        except OSError as err:
            raise InventoryError(f"cannot write pass rules into {args.write}: {err}") from err
    return 0
