"""Card metadata: pokemontcg.io-style JSON in, CardRecord out, and the database's own JSON form."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Mapping
from typing import Any

from cardsorter.core.types import CardRecord
from cardsorter.db.errors import DuplicateIdError, FormatError, listed
from cardsorter.db.names import ParsedName

FINISHES = ("normal", "holo", "reverse_holo")


def record_from_source(obj: Mapping[str, Any]) -> CardRecord:
    """One pokemontcg.io card object (+ extras art_id, finish, price_usd) → CardRecord."""
    card_id = obj.get("id")
    if not isinstance(card_id, str) or not card_id:
        raise FormatError(f"metadata entry without a string 'id': {dict(obj)!r:.200}")
    set_obj = obj.get("set") or {}
    if not isinstance(set_obj, Mapping):
        raise FormatError(f"metadata entry {card_id}: 'set' must be an object")
    set_id = str(set_obj.get("id") or card_id.rpartition("-")[0])
    finish = str(obj.get("finish") or "normal")
    if finish not in FINISHES:
        raise FormatError(f"metadata entry {card_id}: finish '{finish}' is not one of {FINISHES}")
    price = obj.get("price_usd")
    types = obj.get("types") or ()
    return CardRecord(
        card_id=card_id, name=str(obj.get("name", "")), set_id=set_id,
        set_name=str(set_obj.get("name", "")), number=str(obj.get("number", "")),
        rarity=str(obj.get("rarity", "") or ""), art_id=str(obj.get("art_id", "") or ""), finish=finish,
        supertype=str(obj.get("supertype", "") or ""), types=tuple(str(t) for t in types),
        price_usd=float(price) if isinstance(price, (int, float)) else None)


def load_source_metadata(path: pathlib.Path) -> dict[str, CardRecord]:
    """Read a metadata file: a list of card objects, ``{"data": [...]}``, or ``{id: object}``."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f"cannot read metadata file {path}: {err}") from err
    if isinstance(raw, Mapping) and isinstance(raw.get("data"), list):
        raw = raw["data"]
    if isinstance(raw, Mapping):
        raw = [{"id": key, **value} for key, value in raw.items()]
    if not isinstance(raw, list):
        raise FormatError(f"metadata file {path} must hold a list of card objects")
    records: dict[str, CardRecord] = {}
    duplicates: list[str] = []
    for obj in raw:
        if not isinstance(obj, Mapping):
            raise FormatError(f"metadata file {path}: entries must be objects, got {obj!r:.80}")
        rec = record_from_source(obj)
        if rec.card_id in records:
            duplicates.append(rec.card_id)
        records[rec.card_id] = rec
    if duplicates:
        raise DuplicateIdError(f"metadata file {path} repeats card ids: {listed(duplicates)}")
    return records


def record_from_name(parsed: ParsedName) -> CardRecord:
    """The record a file name alone gives (no metadata for this card)."""
    return CardRecord(card_id=parsed.card_id, name=parsed.name, set_id=parsed.set_id, number=parsed.number)


def record_to_json(rec: CardRecord) -> dict[str, Any]:
    out = dataclasses.asdict(rec)
    out["types"] = list(rec.types)
    return out


def record_from_json(card_id: str, obj: Any) -> CardRecord:
    if not isinstance(obj, Mapping):
        raise FormatError(f"metadata.json record {card_id} must be an object")
    fields = {f.name for f in dataclasses.fields(CardRecord)}
    unknown = set(obj) - fields
    if unknown:
        raise FormatError(f"metadata.json record {card_id} has unknown fields {sorted(unknown)}")
    try:
        rec = CardRecord(**{**obj, "types": tuple(obj.get("types", ()))})
    except (TypeError, ValueError) as err:
        raise FormatError(f"metadata.json record {card_id} is invalid: {err}") from err
    if rec.card_id != card_id:
        raise FormatError(f"metadata.json key {card_id} holds a record for {rec.card_id}")
    return rec

