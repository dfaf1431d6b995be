"""Card metadata: pokemontcg.io-style JSON in, CardRecord out, and the database's own JSON form."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

from cardsorter.core.types import CardRecord
from cardsorter.db.errors import DuplicateIdError, FormatError, listed
from cardsorter.db.names import ParsedName


def record_from_source(obj: Mapping[str, Any]) -> CardRecord:
    """One pokemontcg.io card object (+ extras art_id, finish, price_usd) → CardRecord; FormatError names the field."""
    from cardsorter.db.importers import pokemontcg_record

    if not isinstance(obj, Mapping):
        raise FormatError(f"metadata entry must be an object, got {obj!r:.80}")
    return pokemontcg_record(obj, "metadata", set_info=None, language="", problems=[])


def load_source_metadata(path: pathlib.Path) -> dict[str, CardRecord]:
    """Read a pokemontcg-style metadata file strictly: the first problem is raised (tests, small files)."""
    from cardsorter.db.importers import import_pokemontcg

    result = import_pokemontcg(path)
    dup = [p.detail for p in result.problems if p.kind == "duplicate_id"]
    if dup:
        raise DuplicateIdError(f"metadata file {path} repeats card ids: {listed(dup)}")
    if result.problems:
        raise FormatError(result.problems[0].line())
    return result.records


def record_from_name(parsed: ParsedName) -> CardRecord:
    """The record a file name alone gives (no metadata for this card)."""
    return CardRecord(card_id=parsed.card_id, name=parsed.name, set_id=parsed.set_id, number=parsed.number)


_TUPLE_FIELDS = ("types", "finishes", "prices_usd", "tcgplayer_skus")


def record_to_json(rec: CardRecord) -> dict[str, Any]:
    """Every field; the catalogue fields only when set (older databases' files stay as they were)."""
    out = dataclasses.asdict(rec)
    defaults = {f.name: f.default for f in dataclasses.fields(CardRecord)}
    for name in _CATALOGUE_FIELDS:
        if out[name] == defaults[name] or out[name] == []:
            del out[name]
    for name in _TUPLE_FIELDS:
        if name in out:
            out[name] = [list(v) if isinstance(v, tuple) else v for v in out[name]]
    return out


_CATALOGUE_FIELDS = ("set_code", "series", "printed_total", "release_date", "language", "game", "finishes",
                     "prices_usd", "tcgplayer_product_id", "tcgplayer_skus")


def record_from_json(card_id: str, obj: Any) -> CardRecord:
    if not isinstance(obj, Mapping):
        raise FormatError(f"metadata.json record {card_id} must be an object")
    fields = {f.name for f in dataclasses.fields(CardRecord)}
    unknown = set(obj) - fields
    if unknown:
        raise FormatError(f"metadata.json record {card_id} has unknown fields {sorted(unknown)}")
    try:
        values = dict(obj)
        for name in _TUPLE_FIELDS:
            if name in values:
                if not isinstance(values[name], list):
                    raise FormatError(f"metadata.json record {card_id}: field '{name}' must be a list, got "
                                      f"{type(values[name]).__name__} {values[name]!r:.40}")
                values[name] = tuple(tuple(v) if isinstance(v, list) else v for v in values[name])
        rec = CardRecord(**values)
    except (TypeError, ValueError) as err:
        raise FormatError(f"metadata.json record {card_id} is invalid: {err}") from err
    if rec.card_id != card_id:
        raise FormatError(f"metadata.json key {card_id} holds a record for {rec.card_id}")
    return rec

