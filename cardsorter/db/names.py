"""Reference image file names: ``{set_id}-{number}_{name}.png`` (``_high`` / ``_hires`` = preferred resolution)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

from cardsorter.core.errors import DatabaseError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
HIGH_SUFFIX = "_high"
HIGH_SUFFIXES = (HIGH_SUFFIX, "_hires")   # ours, pokemontcg.io's large scan


@dataclass(frozen=True)
class ParsedName:
    """What a reference image's file name says about its card."""

    card_id: str
    set_id: str
    number: str
    name: str
    high: bool


def parse_reference_name(filename: str) -> ParsedName:
    """``sv10-38_Team Rocket's Mewtwo ex_high.png`` → card sv10-38, set sv10, number 38, high."""
    stem = pathlib.PurePath(filename).stem
    suffix = next((s for s in HIGH_SUFFIXES if stem.endswith(s)), "")
    high = bool(suffix)
    if high:
        stem = stem[: -len(suffix)]
    head, sep, name = stem.partition("_")
    set_id, dash, number = head.rpartition("-")
    if not dash or not set_id or not number:
        raise DatabaseError(f"reference image name '{filename}' is not '{{set_id}}-{{number}}_{{name}}.png'")
    return ParsedName(card_id=head, set_id=set_id, number=number, name=name.replace("_", " ") if sep else "",
                      high=high)


def list_reference_images(images_dir: pathlib.Path) -> list[pathlib.Path]:
    """Image files directly in ``images_dir``, sorted by name (the build order is reproducible)."""
    if not images_dir.is_dir():
        raise DatabaseError(f"images directory not found: {images_dir}")
    return sorted(p for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
