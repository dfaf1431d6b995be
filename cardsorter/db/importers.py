"""Catalogue importers behind `db build --metadata`: the pokemontcg.io data dump, Scryfall bulk data, our own form."""

from __future__ import annotations

import json
import math
import pathlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cardsorter.core.types import FINISHES, CardRecord
from cardsorter.db.errors import FormatError
from cardsorter.db.jsonstream import StreamFormatError, iter_json_array

FORMATS = ("auto", "pokemontcg", "scryfall", "cardsorter")

# pokemontcg.io `tcgplayer.prices` variant keys (API docs, "card object") → our finish names.
POKEMONTCG_VARIANTS = {
    "normal": "normal", "holofoil": "holo", "reverseHolofoil": "reverse_holo",
    "1stEditionNormal": "first_edition", "1stEdition": "first_edition", "1stEditionHolofoil": "first_edition_holo",
    "unlimitedHolofoil": "unlimited_holo", "unlimited": "normal",
}
# Scryfall card `finishes` → our finish names, and the `prices` key of each (Scryfall API, "Card Objects").
SCRYFALL_FINISHES = {"nonfoil": "normal", "foil": "foil", "etched": "etched", "glossy": "foil"}
SCRYFALL_PRICE_KEYS = {"normal": "usd", "foil": "usd_foil", "etched": "usd_etched"}
IMPORT_CHUNK_RECORDS = 2000   # progress callback granularity for streamed files


@dataclass(frozen=True)
class ImportProblem:
    """Something in the input that was not imported as it stands (never dropped without one of these)."""

    kind: str      # malformed_json | bad_field | missing_set | duplicate_id | unknown_variant | not_a_record
    where: str     # file (and record id)
    detail: str

    def line(self) -> str:
        return f"{self.kind}: {self.where}: {self.detail}"


@dataclass
class ImportResult:
    format: str
    records: dict[str, CardRecord] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)      # card id → file it came from
    problems: list[ImportProblem] = field(default_factory=list)
    files: int = 0

    def add(self, rec: CardRecord, where: str) -> None:
        if rec.card_id in self.records:
            self.problems.append(ImportProblem(
                "duplicate_id", where, f"card id {rec.card_id} already read from {self.sources[rec.card_id]}; "
                "this second record is not imported"))
            return
        self.records[rec.card_id] = rec
        self.sources[rec.card_id] = where

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p in self.problems:
            out[p.kind] = out.get(p.kind, 0) + 1
        return out


class FieldError(FormatError):
    """A record field of the wrong type (names the record and the field)."""


ProgressFn = Callable[[str, int, int], None]


# --- typed field access -------------------------------------------------------------------------

class Fields:
    """Typed access to one source record: errors name the record and the field."""

    def __init__(self, obj: Mapping[str, Any], where: str, card_id: str) -> None:
        self.obj = obj
        self.where = where
        self.card_id = card_id

    def error(self, path: str, want: str, value: Any) -> FieldError:
        return FieldError(f"{self.where}: record {self.card_id}: field '{path}' must be {want}, "
                          f"got {type(value).__name__} {value!r:.60}")

    def text(self, key: str, default: str = "", obj: Mapping[str, Any] | None = None, path: str = "") -> str:
        value = (self.obj if obj is None else obj).get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(path or key, "a string", value)
        return str(value)

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.obj.get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, "a list of strings", value)
        return tuple(value)

    def mapping(self, key: str, obj: Mapping[str, Any] | None = None, path: str = "") -> Mapping[str, Any]:
        value = (self.obj if obj is None else obj).get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(path or key, "an object", value)
        return value

    def integer(self, key: str, obj: Mapping[str, Any] | None = None, path: str = "") -> int:
        value = (self.obj if obj is None else obj).get(key)
        if value is None:
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(path or key, "a non-negative integer", value)
        return value

    def price(self, value: Any, path: str, *, strings: bool) -> float | None:
        """A price in USD: a number (pokemontcg.io) or a decimal string (Scryfall); None when absent."""
        if value is None:
            return None
        if isinstance(value, str) and strings:
            try:
                value = float(value)
            except ValueError:
                raise self.error(path, "a decimal price", value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise self.error(path, "a non-negative number" + (" or decimal string" if strings else ""), value)
        return float(value)


def _date(text: str) -> str:
    """'2023/03/31' (pokemontcg.io) or '2023-03-31' (Scryfall) → '2023-03-31'."""
    return text.replace("/", "-")


# --- pokemontcg.io ------------------------------------------------------------------------------

@dataclass(frozen=True)
class PokemonSet:
    set_id: str
    name: str
    series: str = ""
    printed_total: int = 0
    ptcgo_code: str = ""
    release_date: str = ""


def pokemon_set_from(obj: Mapping[str, Any], where: str) -> PokemonSet:
    set_id = obj.get("id")
    if not isinstance(set_id, str) or not set_id:
        raise FieldError(f"{where}: set entry without a string 'id': {dict(obj)!r:.120}")
    f = Fields(obj, where, f"set {set_id}")
    return PokemonSet(set_id, f.text("name"), f.text("series"), f.integer("printedTotal"), f.text("ptcgoCode"),
                      _date(f.text("releaseDate")))


def pokemontcg_record(obj: Mapping[str, Any], where: str, *, set_info: PokemonSet | None, language: str,
                      problems: list[ImportProblem]) -> CardRecord:
    """One pokemontcg.io card object (data dump or API; our extras art_id / finish / price_usd allowed)."""
    card_id = obj.get("id")
    if not isinstance(card_id, str) or not card_id:
        raise FieldError(f"{where}: card object without a string 'id': {dict(obj)!r:.120}")
    f = Fields(obj, where, card_id)
    embedded = f.mapping("set")
    if set_info is None and embedded:
        set_info = pokemon_set_from({"id": card_id.rpartition("-")[0], **embedded}, where)
    set_id = set_info.set_id if set_info else card_id.rpartition("-")[0]
    finishes: list[str] = []
    prices: list[tuple[str, float]] = []
    tcg = f.mapping("tcgplayer")
    for variant, quote in f.mapping("prices", tcg, "tcgplayer.prices").items():
        finish = POKEMONTCG_VARIANTS.get(variant)
        if finish is None:
            problems.append(ImportProblem("unknown_variant", f"{where}: record {card_id}",
                                          f"tcgplayer.prices variant '{variant}' is not one of "
                                          f"{sorted(POKEMONTCG_VARIANTS)}; not imported"))
            continue
        if not isinstance(quote, Mapping):
            raise f.error(f"tcgplayer.prices.{variant}", "an object", quote)
        market = f.price(quote.get("market"), f"tcgplayer.prices.{variant}.market", strings=False)
        mid = f.price(quote.get("mid"), f"tcgplayer.prices.{variant}.mid", strings=False)
        if finish not in finishes:
            finishes.append(finish)
            value = market if market is not None else mid
            if value is not None:
                prices.append((finish, value))
    finish = f.text("finish") or (finishes[0] if finishes else "normal")
    if finish not in FINISHES:
        raise f.error("finish", f"one of {FINISHES}", finish)
    price_usd = f.price(obj.get("price_usd"), "price_usd", strings=False)
    if price_usd is None:
        price_usd = dict(prices).get(finish)
    return CardRecord(
        card_id=card_id, name=f.text("name"), set_id=set_id, set_name=set_info.name if set_info else "",
        number=f.text("number"), rarity=f.text("rarity"), art_id=f.text("art_id"), finish=finish,
        supertype=f.text("supertype"), types=f.strings("types"), price_usd=price_usd,
        set_code=set_info.ptcgo_code if set_info else "", series=set_info.series if set_info else "",
        printed_total=set_info.printed_total if set_info else 0,
        release_date=set_info.release_date if set_info else "", language=language, game="pokemon",
        finishes=tuple(finishes), prices_usd=tuple(prices))


def _load_whole(path: pathlib.Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise StreamFormatError(f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}",
                                0, err.pos) from err
    except (OSError, UnicodeDecodeError) as err:
        raise FormatError(f"cannot read metadata file {path}: {err}") from err


def _card_list(raw: Any, path: pathlib.Path) -> list[Any]:
    """A list of card objects, ``{"data": [...]}`` (an API page), or ``{id: object}``."""
    if isinstance(raw, Mapping) and "data" in raw:
        raw = raw["data"]
        if not isinstance(raw, list):
            raise FormatError(f"metadata file {path}: 'data' must be a list of card objects, got "
                              f"{type(raw).__name__}")
    elif isinstance(raw, Mapping):
        if not all(isinstance(v, Mapping) for v in raw.values()):
            raise FormatError(f"metadata file {path} must hold a list of card objects, a {{\"data\": [...]}} page "
                              "or an {id: card object} map")
        raw = [{"id": key, **value} for key, value in raw.items()]
    if not isinstance(raw, list):
        raise FormatError(f"metadata file {path} must hold a list of card objects, got {type(raw).__name__}")
    return raw


def load_pokemon_sets(path: pathlib.Path, problems: list[ImportProblem]) -> dict[str, PokemonSet]:
    raw = _load_whole(path)
    if not isinstance(raw, list):
        raise FormatError(f"sets file {path} must hold a list of set objects, got {type(raw).__name__}")
    sets: dict[str, PokemonSet] = {}
    for obj in raw:
        if not isinstance(obj, Mapping):
            problems.append(ImportProblem("not_a_record", str(path), f"set entry is not an object: {obj!r:.60}"))
            continue
        try:
            s = pokemon_set_from(obj, str(path))
        except FieldError as err:
            problems.append(ImportProblem("bad_field", str(path), str(err)))
            continue
        if s.set_id in sets:
            problems.append(ImportProblem("duplicate_id", str(path), f"set {s.set_id} listed twice; first kept"))
            continue
        sets[s.set_id] = s
    return sets


def _sets_file_for(card_file: pathlib.Path) -> pathlib.Path | None:
    """``DUMP/cards/en/sv1.json`` → ``DUMP/sets/en.json`` when it exists (the dump's layout)."""
    if card_file.parent.parent.name == "cards":
        candidate = card_file.parent.parent.parent / "sets" / f"{card_file.parent.name}.json"
        if candidate.is_file():
            return candidate
    return None


def _language_of(card_file: pathlib.Path) -> str:
    return card_file.parent.name if card_file.parent.parent.name == "cards" else ""


def import_pokemontcg(path: pathlib.Path, progress: ProgressFn | None = None,
                      sets_path: pathlib.Path | None = None) -> ImportResult:
    """The pokemontcg.io dump folder (``cards/<lang>/<set>.json`` + ``sets/<lang>.json``) or one card file."""
    result = ImportResult("pokemontcg")
    if path.is_dir():
        card_files = sorted(path.glob("cards/*/*.json")) or sorted(path.glob("*.json"))
        if not card_files:
            raise FormatError(f"{path}: no cards/<language>/<set>.json files (the pokemontcg.io data dump layout)")
    else:
        card_files = [path]
    sets_cache: dict[pathlib.Path, dict[str, PokemonSet]] = {}
    for i, card_file in enumerate(card_files):
        result.files += 1
        sets_file = sets_path or _sets_file_for(card_file)
        sets: dict[str, PokemonSet] | None = None
        if sets_file is not None:
            if sets_file not in sets_cache:
                sets_cache[sets_file] = load_pokemon_sets(sets_file, result.problems)
            sets = sets_cache[sets_file]
        try:
            raw = _card_list(_load_whole(card_file), card_file)
        except FormatError as err:
            if not path.is_dir():
                raise
            result.problems.append(ImportProblem("malformed_json", str(card_file), f"{err}; file not imported"))
            continue
        in_set_file = path.is_dir() or card_file.parent.parent.name == "cards"
        set_id = card_file.stem if in_set_file else ""
        set_info = sets.get(set_id) if sets is not None and set_id else None
        if sets is not None and set_id and set_info is None:
            result.problems.append(ImportProblem(
                "missing_set", str(card_file), f"set '{set_id}' is not in {sets_file}: its {len(raw)} cards are "
                "imported without set name, series, printed total, ptcgo code or release date"))
        language = _language_of(card_file)
        for obj in raw:
            if not isinstance(obj, Mapping):
                result.problems.append(ImportProblem("not_a_record", str(card_file),
                                                     f"entry is not an object: {obj!r:.60}"))
                continue
            try:
                rec = pokemontcg_record(obj, str(card_file), set_info=set_info, language=language,
                                        problems=result.problems)
            except FieldError as err:
                result.problems.append(ImportProblem("bad_field", str(card_file), f"{err}; record not imported"))
                continue
            result.add(rec, str(card_file))
        if progress is not None:
            progress("import", i + 1, len(card_files))
    return result


# --- Scryfall -----------------------------------------------------------------------------------

def scryfall_record(obj: Mapping[str, Any], where: str) -> CardRecord:
    """One Scryfall card object (bulk data ``default_cards`` / ``all_cards``)."""
    card_id = obj.get("id")
    if not isinstance(card_id, str) or not card_id:
        raise FieldError(f"{where}: card object without a string 'id': {dict(obj)!r:.120}")
    f = Fields(obj, where, card_id)
    finishes: list[str] = []
    for name in f.strings("finishes"):
        finish = SCRYFALL_FINISHES.get(name)
        if finish is None:
            raise f.error("finishes", f"a list of {sorted(SCRYFALL_FINISHES)}", name)
        if finish not in finishes:
            finishes.append(finish)
    price_map = f.mapping("prices")
    prices: list[tuple[str, float]] = []
    for finish in finishes:
        key = SCRYFALL_PRICE_KEYS[finish]
        value = f.price(price_map.get(key), f"prices.{key}", strings=True)
        if value is not None:
            prices.append((finish, value))
    art = f.text("illustration_id")
    if not art:
        faces = obj.get("card_faces")
        if isinstance(faces, list) and faces and isinstance(faces[0], Mapping):
            art = f.text("illustration_id", obj=faces[0], path="card_faces[0].illustration_id")
    set_code = f.text("set")
    if not set_code:
        raise f.error("set", "a set code", obj.get("set"))
    finish = finishes[0] if finishes else "normal"
    return CardRecord(
        card_id=card_id, name=f.text("name"), set_id=set_code, set_name=f.text("set_name"),
        number=f.text("collector_number"), rarity=f.text("rarity"), art_id=art, finish=finish,
        supertype=f.text("type_line"), price_usd=dict(prices).get(finish), set_code=set_code,
        release_date=_date(f.text("released_at")), language=f.text("lang"), game="magic",
        finishes=tuple(finishes), prices_usd=tuple(prices), tcgplayer_product_id=f.integer("tcgplayer_id"))


def import_scryfall(path: pathlib.Path, progress: ProgressFn | None = None) -> ImportResult:
    """A Scryfall bulk file, streamed: memory is the records kept, not the file."""
    result = ImportResult("scryfall", files=1)
    total = path.stat().st_size
    where = str(path)
    report = (lambda done: progress("import", done, total)) if progress is not None else None
    try:
        with path.open("rb") as fh:
            for obj in iter_json_array(fh, where, progress=report):
                if not isinstance(obj, Mapping):
                    result.problems.append(ImportProblem("not_a_record", where, f"entry is not an object: {obj!r:.60}"))
                    continue
                if obj.get("object", "card") != "card":
                    result.problems.append(ImportProblem(
                        "not_a_record", where, f"entry of object type '{obj.get('object')}' is not a card"))
                    continue
                try:
                    rec = scryfall_record(obj, where)
                except FieldError as err:
                    result.problems.append(ImportProblem("bad_field", where, f"{err}; record not imported"))
                    continue
                result.add(rec, where)
    except StreamFormatError as err:
        if err.elements == 0:
            raise
        result.problems.append(ImportProblem(
            "malformed_json", where, f"{err}; the {err.elements} records before it are imported, the rest of the "
            "file is not"))
    except OSError as err:
        raise FormatError(f"cannot read metadata file {path}: {err}") from err
    return result


# --- ours ---------------------------------------------------------------------------------------

def import_cardsorter(path: pathlib.Path, progress: ProgressFn | None = None) -> ImportResult:
    """A database's own metadata.json (``{card id: record}``), e.g. copied from another database."""
    from cardsorter.db.records import record_from_json

    result = ImportResult("cardsorter", files=1)
    raw = _load_whole(path)
    if not isinstance(raw, Mapping):
        raise FormatError(f"{path}: a cardsorter metadata file maps card ids to records, got {type(raw).__name__}")
    for card_id, obj in raw.items():
        try:
            result.add(record_from_json(card_id, obj), str(path))
        except FormatError as err:
            result.problems.append(ImportProblem("bad_field", str(path), f"{err}; record not imported"))
    if progress is not None:
        progress("import", 1, 1)
    return result


# --- detection ----------------------------------------------------------------------------------

SNIFF_BYTES = 1 << 16


def _first_element(path: pathlib.Path) -> Any:
    with path.open("rb") as fh:
        head = fh.read(SNIFF_BYTES).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        try:
            with path.open("rb") as fh:
                return next(iter_json_array(fh, str(path)), None)
        except FormatError:
            return None
    return None


def detect_format(path: pathlib.Path) -> str:
    """pokemontcg | scryfall | cardsorter, from the folder layout or the first record's fields."""
    if not path.exists():
        raise FormatError(f"metadata not found: {path}")
    if path.is_dir():
        if list(path.glob("cards/*/*.json")) or list(path.glob("*.json")):
            return "pokemontcg"
        raise FormatError(f"{path}: a metadata folder must hold cards/<language>/<set>.json (pokemontcg.io dump)")
    first = _first_element(path)
    if isinstance(first, Mapping):
        if first.get("object") == "card" or "collector_number" in first:
            return "scryfall"
        return "pokemontcg"
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as err:
        raise FormatError(f"cannot read metadata file {path}: {err}") from err
    if re.search(rb'"card_id"\s*:', head) and not re.search(rb'"data"\s*:', head):
        return "cardsorter"
    return "pokemontcg"   # {"data": [...]} pages, {id: object} maps, and anything that fails there with its error


def import_catalogue(path: pathlib.Path, fmt: str = "auto", progress: ProgressFn | None = None) -> ImportResult:
    """Read a catalogue in ``fmt`` (or the detected format); problems are collected, not raised."""
    if fmt not in FORMATS:
        raise FormatError(f"metadata format must be one of {FORMATS}, got '{fmt}'")
    if fmt == "auto":
        fmt = detect_format(path)
    if not path.exists():
        raise FormatError(f"metadata not found: {path}")
    if fmt == "scryfall":
        if path.is_dir():
            raise FormatError(f"{path}: Scryfall bulk data is one JSON file (default_cards / all_cards)")
        return import_scryfall(path, progress)
    if fmt == "cardsorter":
        return import_cardsorter(path, progress)
    return import_pokemontcg(path, progress)


def iter_problem_lines(problems: Iterable[ImportProblem], limit: int = 20) -> Iterator[str]:
    problems = list(problems)
    for p in problems[:limit]:
        yield "  " + p.line()
    if len(problems) > limit:
        yield f"  ... and {len(problems) - limit} more (all listed in the database's manifest report)"
