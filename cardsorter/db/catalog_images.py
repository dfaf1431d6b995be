"""Match a collector's image folder to catalogue records, in the layouts the sources publish them."""

from __future__ import annotations

import pathlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from cardsorter.core.errors import DatabaseError
from cardsorter.core.types import CardRecord
from cardsorter.db.names import IMAGE_SUFFIXES, parse_reference_name

# Suffixes that mark the preferred (larger) image of a card: ours, pokemontcg.io's, Scryfall's size names.
HIGH_SUFFIXES = ("_high", "_hires", "_large", "_png")
PLAIN_SUFFIXES = ("_small", "_normal")
PREFERRED_LANGUAGE = "en"   # `set/number` names the English printing when a bulk file holds several languages


@dataclass(frozen=True)
class MatchedImage:
    path: pathlib.Path
    source: str          # path relative to the images folder (what the database records)
    card_id: str
    high: bool
    from_name: bool = False   # no catalogue record: the record is the file name's


@dataclass
class ImageMatch:
    images: list[MatchedImage] = field(default_factory=list)
    without_record: list[tuple[str, str]] = field(default_factory=list)   # (path, reason): skipped
    named_from_file: list[str] = field(default_factory=list)              # card ids built from the file name
    records_without_image: list[str] = field(default_factory=list)


def list_images(images_dir: pathlib.Path, recursive: bool) -> list[pathlib.Path]:
    if not images_dir.is_dir():
        raise DatabaseError(f"images directory not found: {images_dir}")
    found = images_dir.rglob("*") if recursive else images_dir.iterdir()
    return sorted(p for p in found if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _strip_size(stem: str) -> tuple[str, bool]:
    for suffix in HIGH_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)], True
    for suffix in PLAIN_SUFFIXES:
        if stem.endswith(suffix):
            return stem[: -len(suffix)], False
    return stem, False


def _norm(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def lookup_keys(records: Mapping[str, CardRecord]) -> dict[str, str | None]:
    """Image keys → card id: the id, ``set/number`` and ``set-number``; None where a key is ambiguous."""
    keys: dict[str, str | None] = {}
    preferred: dict[str, bool] = {}
    for cid, rec in records.items():
        keys[cid] = cid
        if not rec.number:
            continue
        for set_key in {rec.set_id, rec.set_code.lower()} - {""}:
            for key in (f"{set_key}/{rec.number}", f"{set_key}-{rec.number}"):
                if key in records and key != cid:
                    continue   # a card id wins over another card's set/number spelling
                is_pref = rec.language in ("", PREFERRED_LANGUAGE)
                if key not in keys:
                    keys[key], preferred[key] = cid, is_pref
                elif keys[key] != cid:
                    if is_pref and not preferred.get(key, False):
                        keys[key], preferred[key] = cid, True
                    elif is_pref == preferred.get(key, False):
                        keys[key] = None
    return keys


def _candidates(rel: pathlib.PurePosixPath, folder: str) -> tuple[list[str], bool, str]:
    """Keys to try for one image, whether it is a preferred-size image, and the name part of its file name."""
    stem, high = _strip_size(rel.stem)
    head, sep, name = stem.partition("_")
    out = [stem, head] if sep else [stem]
    parent = rel.parent.name or folder   # --images IMGS/sv1 holding 1.png: the folder is the set
    if parent:
        out += [f"{parent}/{stem}", f"{parent}/{head}"] if sep else [f"{parent}/{stem}"]
    return list(dict.fromkeys(out)), high, name.replace("_", " ") if sep else ""


def match_images(images_dir: pathlib.Path, records: Mapping[str, CardRecord] | None) -> ImageMatch:
    """Which card each image shows; images of no record are reported (or named from a parseable name).

    Without a catalogue every image must be named ``{set_id}-{number}_{name}.png``. Two images of one
    card whose file names give it different names are an error naming both files.
    """
    match = ImageMatch()
    keys = lookup_keys(records) if records is not None else {}
    names_seen: dict[str, tuple[str, str]] = {}   # card id → (name from a file name, that file)
    for path in list_images(images_dir, recursive=records is not None):
        rel = pathlib.PurePosixPath(path.relative_to(images_dir).as_posix())
        tried, high, file_name = _candidates(rel, images_dir.name)
        card_id: str | None = None
        ambiguous = False
        for key in tried:
            if key in keys:
                if keys[key] is None:
                    ambiguous = True
                    continue
                card_id = keys[key]
                break
        from_name = False
        if card_id is None:
            try:
                parsed = parse_reference_name(path.name)
            except DatabaseError as err:
                parsed = None
                reason = str(err)
            if parsed is not None and (records is None or (parsed.name and not ambiguous)):
                card_id, high, file_name, from_name = parsed.card_id, parsed.high, parsed.name, True
            else:
                if records is not None:
                    reason = (f"matches several catalogue records ({', '.join(k for k in tried if k in keys)}): "
                              "name it by card id" if ambiguous else
                              f"no catalogue record for this image (tried {', '.join(tried)})")
                match.without_record.append((str(path), reason))
                continue
        if file_name:
            prev = names_seen.get(card_id)
            if prev is not None and _norm(prev[0]) != _norm(file_name):
                raise DatabaseError(f"two images of card {card_id} name it differently: '{prev[0]}' in {prev[1]} and "
                                    f"'{file_name}' in {path}")
            names_seen.setdefault(card_id, (file_name, str(path)))
        if from_name and records is not None and card_id not in match.named_from_file:
            match.named_from_file.append(card_id)
        match.images.append(MatchedImage(path, str(rel), card_id, high, from_name))
    if records is not None:
        with_image = {m.card_id for m in match.images}
        match.records_without_image = sorted(set(records) - with_image)
    return match


def records_from_match(match: ImageMatch, images: Sequence[MatchedImage],
                       records: Mapping[str, CardRecord] | None) -> dict[str, CardRecord]:
    """The record of every matched card: the catalogue's, or the file name's."""
    from cardsorter.db.records import record_from_name

    out: dict[str, CardRecord] = {}
    for m in images:
        if m.card_id in out:
            continue
        if records is not None and m.card_id in records:
            out[m.card_id] = records[m.card_id]
        else:
            out[m.card_id] = record_from_name(parse_reference_name(m.path.name))
    return out
