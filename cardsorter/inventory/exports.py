"""Marketplace exports of the inventory: TCGplayer seller upload and app, Dragon Shield, Moxfield, our full CSV."""

from __future__ import annotations

import csv
import io
import json
import pathlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from cardsorter.core.errors import InventoryError
from cardsorter.core.types import UNKNOWN_FINISH, CardRecord
from cardsorter.inventory.cards import CONDITION_NAMES, CardState
from cardsorter.inventory.sqlite_store import CORRECTED, ROW_COLUMNS, InventoryRow, csv_value

# Published headers, byte for byte (the round-trip tests read them back with these exact strings).
TCGPLAYER_SELLER_HEADER = ("TCGplayer Id,Product Line,Set Name,Product Name,Title,Number,Rarity,Condition,"
                           "TCG Market Price,TCG Direct Low,TCG Low Price With Shipping,TCG Low Price,Total Quantity,"
                           "Add to Quantity,TCG Marketplace Price,Photo URL")
TCGPLAYER_APP_HEADER = ("Quantity,Name,Simple Name,Set,Card Number,Set Code,External ID,Printing,Condition,Language,"
                        "Rarity,Product ID,SKU,Price,Price Each")
DRAGON_SHIELD_HEADER = ("Folder Name,Quantity,Card Name,Set Code,Set Name,Card Number,Condition,Printing,Language,"
                        "Price Bought,Date Bought,Low Price,Mid Price,High Price")
MOXFIELD_HEADER = ("Count,Tradelist Count,Name,Edition,Condition,Language,Foil,Tags,Last Modified,Collector Number,"
                   "Alter,Proxy,Purchase Price")
FULL_EXTRA_COLUMNS = ("condition", "language", "set_code", "corrected")

PRINTING_NAMES = {"normal": "Normal", "holo": "Holofoil", "reverse_holo": "Reverse Holofoil",
                  "first_edition": "1st Edition", "first_edition_holo": "1st Edition Holofoil",
                  "unlimited_holo": "Unlimited Holofoil", "foil": "Foil", "etched": "Foil Etched"}
# What TCGplayer's seller Condition appends to the grade ("Near Mint Foil", "Near Mint Reverse Holofoil").
CONDITION_SUFFIX = {"normal": "", "holo": " Holofoil", "reverse_holo": " Reverse Holofoil",
                    "first_edition": " 1st Edition", "first_edition_holo": " 1st Edition Holofoil",
                    "unlimited_holo": " Unlimited Holofoil", "foil": " Foil", "etched": " Foil Etched"}
LANGUAGE_NAMES = {"en": "English", "ja": "Japanese", "de": "German", "fr": "French", "it": "Italian",
                  "es": "Spanish", "pt": "Portuguese", "ko": "Korean", "ru": "Russian", "zhs": "Chinese (S)",
                  "zht": "Chinese (T)", "nl": "Dutch", "id": "Indonesian", "th": "Thai"}
DRAGON_SHIELD_CONDITIONS = {"NM": "NearMint", "LP": "Excellent", "MP": "Good", "HP": "Played", "DMG": "Poor"}
PRODUCT_LINES = {"pokemon": "Pokemon", "magic": "Magic"}
MOXFIELD_FOIL = {"normal": "", "foil": "foil", "etched": "etched"}


@dataclass(frozen=True)
class Line:
    """One printing + finish + condition + language, with how many physical cards of it were sorted."""

    card_id: str
    finish: str
    condition: str
    language: str
    quantity: int
    record: CardRecord
    rows: tuple[int, ...]        # inventory row ids

    def price(self) -> float | None:
        prices = dict(self.record.prices_usd)
        if self.finish in prices:
            return prices[self.finish]
        return self.record.price_usd if self.finish == self.record.finish else None


@dataclass(frozen=True)
class Unfilled:
    """A line the marketplace needs a value for that we do not have: reported, not written."""

    line: Line
    missing: tuple[str, ...]

    def text(self) -> str:
        ln = self.line
        return (f"{ln.quantity} x {ln.record.name or ln.card_id} ({ln.card_id}, {ln.finish or '?'}, "
                f"{ln.condition or '?'}, {ln.language or '?'}; rows {', '.join(map(str, ln.rows[:5]))}"
                f"{'...' if len(ln.rows) > 5 else ''}): needs {', '.join(self.missing)}")


@dataclass
class ExportResult:
    lines_written: int = 0
    cards_written: int = 0
    unfilled: list[Unfilled] = field(default_factory=list)
    left_out: dict[str, int] = field(default_factory=dict)    # rows not exported and why (rejected, unknown...)


def load_catalogue(db_path: pathlib.Path) -> dict[str, CardRecord]:
    """The card records of a reference database (snapshot + delta), read without loading its vectors."""
    from cardsorter.db.records import record_from_json

    records: dict[str, CardRecord] = {}
    for meta in (db_path / "metadata.json", db_path / "delta" / "metadata.json"):
        if not meta.is_file():
            if meta.parent == db_path:
                raise InventoryError(f"catalogue {db_path} has no metadata.json (is it a reference database?)")
            continue
        try:
            raw = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise InventoryError(f"cannot read catalogue {meta}: {err}") from err
        for cid, obj in raw.items():
            records.setdefault(cid, record_from_json(cid, obj))
    return records


SkuKey = tuple[str, str, str, str, str]   # product line, set name, product name, number, language
SkuEntry = tuple[str, str, int]           # finish, condition, TCGplayer SKU id


def parse_tcgplayer_condition(text: str) -> tuple[str, str, str]:
    """'Near Mint Reverse Holofoil - Japanese' → ('NM', 'reverse_holo', 'ja'); ValueError if not a known form."""
    base, dash, lang_name = text.partition(" - ")
    by_name = {v: k for k, v in LANGUAGE_NAMES.items()}
    language = by_name.get(lang_name.strip(), "") if dash else "en"
    if dash and not language:
        raise ValueError(f"unknown language '{lang_name}'")
    for finish, suffix in sorted(CONDITION_SUFFIX.items(), key=lambda kv: -len(kv[1])):
        if suffix and base.endswith(suffix):
            grade, fin = base[: -len(suffix)], finish
            break
    else:
        grade, fin = base, "normal"
    codes = {v: k for k, v in CONDITION_NAMES.items()}
    if grade.strip() not in codes:
        raise ValueError(f"unknown condition '{grade}'")
    return codes[grade.strip()], fin, language


def load_tcgplayer_skus(path: pathlib.Path) -> tuple[dict[SkuKey, list[SkuEntry]], list[str]]:
    """SKU ids from a TCGplayer seller inventory / pricing export (same header as the upload); problems named."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise InventoryError(f"cannot read TCGplayer export {path}: {err}") from err
    reader = csv.DictReader(io.StringIO(text))
    need = {"TCGplayer Id", "Product Line", "Set Name", "Product Name", "Number", "Condition"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise InventoryError(f"{path} is not a TCGplayer seller export: its header lacks "
                             f"{sorted(need - set(reader.fieldnames or ()))}")
    skus: dict[SkuKey, list[SkuEntry]] = {}
    problems: list[str] = []
    for n, row in enumerate(reader, start=2):
        try:
            sku = int(row["TCGplayer Id"])
            cond, finish, lang = parse_tcgplayer_condition(row["Condition"])
        except (ValueError, TypeError) as err:
            problems.append(f"{path}:{n}: {err}")
            continue
        key = (row["Product Line"], row["Set Name"], row["Product Name"], row["Number"], lang)
        skus.setdefault(key, []).append((finish, cond, sku))
    return skus, problems


def with_skus(catalogue: Mapping[str, CardRecord], skus: Mapping[SkuKey, list[SkuEntry]]) -> dict[str, CardRecord]:
    """Catalogue records with the TCGplayer SKUs the export lists for their printings and conditions."""
    import dataclasses

    out: dict[str, CardRecord] = {}
    for cid, rec in catalogue.items():
        found = skus.get((PRODUCT_LINES.get(rec.game, ""), rec.set_name, rec.name, rec.number, rec.language or "en"))
        out[cid] = dataclasses.replace(rec, tcgplayer_skus=tuple(dict.fromkeys(rec.tcgplayer_skus + tuple(found)))) \
            if found else rec
    return out


def _row_record(row: InventoryRow) -> CardRecord:
    """What the inventory row itself says about its card (no catalogue at hand)."""
    return CardRecord(card_id=row.card_id, name=row.name, set_id=row.set_id, set_name=row.set_name,
                      number=row.number, rarity=row.rarity, finish=row.finish or "normal", price_usd=row.price_usd)


def aggregate(rows: Iterable[InventoryRow], states: Mapping[int, CardState], catalogue: Mapping[str, CardRecord],
              *, default_condition: str = "", default_language: str = "", assume_finish: str = "",
              ) -> tuple[list[Line], dict[str, int]]:
    """Sorted cards → lines per (card, finish, condition, language); counts of the rows left out and why.

    A card whose catalogue record lists several printings gets ``assume_finish`` when that is one of
    them (the operator's word: e.g. "these were all normal"), else no printing (reported by the writers).
    """
    groups: dict[tuple[str, str, str, str], list[int]] = {}
    recs: dict[str, CardRecord] = {}
    left_out: dict[str, int] = {}
    for row in rows:
        # sorted and confirmed, or identified by a person in the review queue (web view corrections)
        identified = row.status == CORRECTED or (row.status == "confirmed" and not row.rejected)
        if not identified or not row.card_id:
            reason = ("no card" if identified else "rejected" if row.rejected and row.status == "confirmed"
                      else f"status {row.status}")
            left_out[reason] = left_out.get(reason, 0) + 1
            continue
        rec = catalogue.get(row.card_id) or _row_record(row)
        recs.setdefault(row.card_id, rec)
        state = states.get(row.id, CardState("", "", False))
        finish = state.finish or ("" if row.finish == UNKNOWN_FINISH else row.finish)
        if not state.finish and len(rec.finishes) > 1 and finish not in rec.finishes:
            # the catalogue lists several printings of this id and nothing measured which one
            finish = assume_finish if assume_finish in rec.finishes else ""
        key = (row.card_id, finish, state.condition or default_condition, rec.language or default_language)
        groups.setdefault(key, []).append(row.id)
    lines = [Line(cid, fin, cond, lang, len(ids), recs[cid], tuple(ids))
             for (cid, fin, cond, lang), ids in groups.items()]
    lines.sort(key=lambda ln: (ln.record.set_id, _number_key(ln.record.number), ln.card_id, ln.finish, ln.condition,
                               ln.language))
    return lines, left_out


def _number_key(number: str) -> tuple[int, str]:
    digits = "".join(ch for ch in number if ch.isdigit())
    return (int(digits) if digits else 0, number)


def _money(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _simple_name(name: str) -> str:
    return name.split(" (")[0].strip()


Row = list[str]
Writer = Callable[[Line], "tuple[Row | None, tuple[str, ...]]"]


def _tcgplayer_seller(line: Line) -> tuple[Row | None, tuple[str, ...]]:
    rec = line.record
    skus = {(f, c): s for f, c, s in rec.tcgplayer_skus}
    missing = []
    if not line.finish:
        missing.append(f"printing (catalogue lists {', '.join(rec.finishes)}; set it with inventory set-condition "
                       "--finish)")
    if not line.condition:
        missing.append("condition")
    sku = skus.get((line.finish, line.condition))
    if sku is None and line.finish and line.condition:
        missing.append("TCGplayer Id (SKU) for this printing and condition")
    if rec.game not in PRODUCT_LINES:
        missing.append("product line (game)")
    if missing:
        return None, tuple(missing)
    language = "" if line.language in ("", "en") else f" - {LANGUAGE_NAMES.get(line.language, line.language)}"
    return [str(sku), PRODUCT_LINES[rec.game], rec.set_name, rec.name, "", rec.number, rec.rarity,
            CONDITION_NAMES[line.condition] + CONDITION_SUFFIX[line.finish] + language, _money(line.price()),
            "", "", "", "", str(line.quantity), "", ""], ()


def _common_missing(line: Line, *, set_code: bool) -> list[str]:
    rec = line.record
    missing = []
    if not line.finish:
        missing.append(f"printing (catalogue lists {', '.join(rec.finishes)}; set it with inventory set-condition "
                       "--finish)")
    if not line.condition:
        missing.append("condition (sorter.session.condition, inventory set-condition, or --condition)")
    if not line.language:
        missing.append("language (the catalogue record has none; --language)")
    if not rec.set_name:
        missing.append("set name")
    if set_code and not rec.set_code:
        missing.append("set code")
    if not rec.number:
        missing.append("card number")
    return missing


def _tcgplayer_app(line: Line) -> tuple[Row | None, tuple[str, ...]]:
    missing = _common_missing(line, set_code=False)
    if missing:
        return None, tuple(missing)
    rec = line.record
    skus = {(f, c): s for f, c, s in rec.tcgplayer_skus}
    each = line.price()
    return [str(line.quantity), rec.name, _simple_name(rec.name), rec.set_name, rec.number, rec.set_code, rec.card_id,
            PRINTING_NAMES[line.finish], CONDITION_NAMES[line.condition],
            LANGUAGE_NAMES.get(line.language, line.language), rec.rarity,
            str(rec.tcgplayer_product_id) if rec.tcgplayer_product_id else "",
            str(skus[(line.finish, line.condition)]) if (line.finish, line.condition) in skus else "",
            _money(None if each is None else each * line.quantity), _money(each)], ()


def make_dragon_shield(folder: str) -> Writer:
    def write(line: Line) -> tuple[Row | None, tuple[str, ...]]:
        missing = _common_missing(line, set_code=True)
        if missing:
            return None, tuple(missing)
        rec = line.record
        return [folder, str(line.quantity), rec.name, rec.set_code, rec.set_name, rec.number,
                DRAGON_SHIELD_CONDITIONS[line.condition], PRINTING_NAMES[line.finish],
                LANGUAGE_NAMES.get(line.language, line.language), "", "", "", "", ""], ()
    return write


def _moxfield(line: Line) -> tuple[Row | None, tuple[str, ...]]:
    rec = line.record
    if rec.game != "magic":
        return None, (f"a Magic card (Moxfield is Magic only; this record's game is '{rec.game or 'unknown'}')",)
    missing = _common_missing(line, set_code=True)
    if line.finish and line.finish not in MOXFIELD_FOIL:
        missing.append(f"a Magic finish (not '{line.finish}')")
    if missing:
        return None, tuple(missing)
    return [str(line.quantity), "0", rec.name, rec.set_code.lower(), CONDITION_NAMES[line.condition],
            LANGUAGE_NAMES.get(line.language, line.language), MOXFIELD_FOIL[line.finish], "", "", rec.number,
            "False", "False", ""], ()


FORMATS: dict[str, tuple[str, Callable[[str], Writer]]] = {   # name → (header, writer for a folder name)
    "tcgplayer": (TCGPLAYER_SELLER_HEADER, lambda folder: _tcgplayer_seller),
    "tcgplayer-app": (TCGPLAYER_APP_HEADER, lambda folder: _tcgplayer_app),
    "dragonshield": (DRAGON_SHIELD_HEADER, make_dragon_shield),
    "moxfield": (MOXFIELD_HEADER, lambda folder: _moxfield),
}


def export_lines(fmt: str, lines: Sequence[Line], out: IO[str], *, folder: str = "cardsorter") -> ExportResult:
    """Write the marketplace file: its header byte for byte, one row per line it can fill completely."""
    if fmt not in FORMATS:
        raise InventoryError(f"export format must be one of {', '.join(['csv', *FORMATS])}, got '{fmt}'")
    header, make = FORMATS[fmt]
    write = make(folder)
    out.write(header + "\n")
    writer = csv.writer(out, lineterminator="\n")
    result = ExportResult()
    for line in lines:
        row, missing = write(line)
        if row is None:
            result.unfilled.append(Unfilled(line, missing))
            continue
        writer.writerow(row)
        result.lines_written += 1
        result.cards_written += line.quantity
    return result


def export_full(rows: Iterable[InventoryRow], states: Mapping[int, CardState], catalogue: Mapping[str, CardRecord],
                out: IO[str]) -> int:
    """Every inventory row with every column, plus its condition, language, set code and whether corrected."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*ROW_COLUMNS, *FULL_EXTRA_COLUMNS))
    n = 0
    for row in rows:
        state = states.get(row.id, CardState("", "", False))
        rec = catalogue.get(row.card_id) if row.card_id else None
        values: list[Any] = [getattr(row, c) for c in ROW_COLUMNS]
        if state.finish:
            values[ROW_COLUMNS.index("finish")] = state.finish
        writer.writerow([csv_value(v) for v in values] + [state.condition, rec.language if rec else "",
                                                     rec.set_code if rec else "", "1" if state.corrected else "0"])
        n += 1
    return n
