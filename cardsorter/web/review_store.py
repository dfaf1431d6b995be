"""The review queue on disk (one JSON and one JPEG per item, beside the inventory): it survives a restart."""

from __future__ import annotations

import json
import os
import pathlib
import re
from dataclasses import asdict, replace

from cardsorter.core.errors import InventoryError
from cardsorter.web.state import Candidate, ReviewItem

_SAFE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
FORMAT = 1


class ReviewStore:
    """Writes each review item as it is created and again when it is resolved; reads back the open ones.

    The item id is the page's handle for this run only; an item is named on disk by its session and track,
    which the inventory row it corrects is named by too."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InventoryError(f"cannot create the review folder {folder}: {err}") from err

    def _stem(self, item: ReviewItem) -> pathlib.Path:
        if not _SAFE.match(item.session_id):
            raise InventoryError(f"session id {item.session_id!r} cannot name a review file")
        return self.folder / f"{item.session_id}-{item.track_id}"

    def crop_path(self, item: ReviewItem) -> pathlib.Path:
        """Where the item's crop is kept (a person can enrol it with `cardsorter db add`)."""
        return self._stem(item).with_suffix(".jpg")

    def save(self, item: ReviewItem) -> None:
        stem = self._stem(item)
        record = asdict(item)
        record.pop("crop_jpeg")
        record.pop("item_id")
        record.pop("restored")
        record["format"] = FORMAT
        try:
            crop = self.crop_path(item)
            if item.crop_jpeg is not None and not crop.exists():
                _write_atomic(crop, item.crop_jpeg)
            _write_atomic(stem.with_suffix(".json"), json.dumps(record, indent=1).encode())
        except OSError as err:
            raise InventoryError(f"cannot write review item {stem.name} in {self.folder}: {err}") from err

    def load_open(self) -> tuple[list[ReviewItem], list[str]]:
        """Every unresolved item, oldest first (item ids are given by the LiveState that takes them), and a
        message naming each file that cannot be read: that one is skipped and left where it is (nothing is
        lost; the operator can look at it), the others still come back."""
        items, unreadable = [], []
        for path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(path.read_text())
                if record.pop("format", None) != FORMAT:
                    raise ValueError("unknown format")
                record["candidates"] = tuple(Candidate(**c) for c in record["candidates"])
                crop = path.with_suffix(".jpg")
                item = ReviewItem(item_id=0, crop_jpeg=crop.read_bytes() if crop.is_file() else None,
                                  restored=True, **record)
            except (OSError, ValueError, TypeError, KeyError) as err:
                unreadable.append(f"review item {path} cannot be read, skipped: {err}")
                continue
            if item.open:
                items.append(item)
        return sorted(items, key=lambda i: i.stamp_ns), unreadable

    def resolved(self, item: ReviewItem, resolution: str, message: str) -> ReviewItem:
        done = replace(item, resolution=resolution, message=message)
        self.save(done)
        return done


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
