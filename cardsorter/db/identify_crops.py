"""Identify rectified card crops against a reference database (the core of `identify --db`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from cardsorter.backends.cameras import cut_closeup
from cardsorter.backends.embedders import Embedder
from cardsorter.backends.printing_ocr import PrintingReader
from cardsorter.core.matching import MatchBandsConfig, decide_match
from cardsorter.core.printing import PrintingConfig, resolve_printing, view_matches
from cardsorter.core.types import UNKNOWN_FINISH, Candidate, CardRecord, MatchBand, Quad
from cardsorter.db.build import fit_to_model
from cardsorter.db.database import ReferenceDatabase
from cardsorter.db.errors import ModelMismatchError


def _num(value: float) -> float | None:
    """JSON-safe: inf/NaN (no runner-up, no candidate) become null."""
    return round(float(value), 6) if math.isfinite(value) else None


def candidate_json(c: Candidate) -> dict[str, Any]:
    return {"card_id": c.card.card_id, "name": c.card.name, "set": c.card.set_id, "number": c.card.number,
            "distance": _num(c.distance_cos)}


def record_json(rec: CardRecord) -> dict[str, Any]:
    """The catalogue facts of the identified card (set name, marketplace set code, printings, prices)."""
    return {"set_name": rec.set_name, "set_code": rec.set_code, "series": rec.series, "number": rec.number,
            "printed_total": rec.printed_total or None, "rarity": rec.rarity, "language": rec.language,
            "release_date": rec.release_date, "finish": rec.finish, "finishes": list(rec.finishes),
            "prices_usd": {f: p for f, p in rec.prices_usd} or (
                {rec.finish: rec.price_usd} if rec.price_usd is not None else {}),
            "tcgplayer_product_id": rec.tcgplayer_product_id or None}


def identify_crops(crops_bgr: Sequence[np.ndarray], embedder: Embedder, db: ReferenceDatabase,
                   bands: MatchBandsConfig, k: int) -> list[dict[str, Any]]:
    """One dict per crop: status, card_id, name, distance, margin, top_k [{card_id, name, set, number, distance}].

    Crops are resized to the model input like reference images; a crop whose embedding is not
    finite gets status 'unknown' with an 'error'."""
    if embedder.model_id != db.model_id:
        raise ModelMismatchError(f"database {db.path} was built with model '{db.model_id}', "
                                 f"the embedder is '{embedder.model_id}'")
    if not crops_bgr:
        return []
    if not bands.resolved:   # YAML placeholders: the database's calibration (else the fallback bands)
        bands, _ = db.bands(bands)
    vectors, ok = embedder.embed([fit_to_model(c, embedder.input_size_wh) for c in crops_bgr])
    good = np.flatnonzero(ok)
    found = db.search(vectors[good], k) if len(good) else []
    by_crop = dict(zip(good.tolist(), found))
    out: list[dict[str, Any]] = []
    for i in range(len(crops_bgr)):
        if i not in by_crop:
            out.append({"status": "unknown", "card_id": None, "name": None, "distance": None, "margin": None,
                        "top_k": [], "error": "embedding not finite"})
            continue
        match = decide_match(i, by_crop[i], db.art_group, bands)
        best = match.best if match.band != MatchBand.UNKNOWN else None  # nearest stays visible in top_k
        out.append({
            "status": match.band.name.lower(),
            "card_id": best.card.card_id if best else None,
            "name": best.card.name if best else None,
            "distance": _num(match.distance_cos),
            "margin": _num(match.margin_to_runner_up),
            "top_k": [candidate_json(c) for c in match.candidates],
            "record": record_json(best.card) if best else None,
        })
    return out


def printing_json(image_bgr: np.ndarray, quad: Quad, printings: Sequence[CardRecord], reader: PrintingReader,
                  config: PrintingConfig) -> dict[str, Any]:
    """What the printing reader reads on the card in a photo, and which of its art's printings that names.

    One photo is one view: the resolver's verdict needs ``config.min_agreeing_views`` views, so a single
    photo shows what was read and the printings it names ("names") but does not change the match."""
    closeup = cut_closeup(image_bgr, quad, config.card_height_px)
    reading = reader.read(closeup.image_bgr)
    resolution = resolve_printing([reading], printings, config.resolver)
    return {"read": list(resolution.read), "lines": [text for text, _ in reading.lines], "views": 1,
            "names": [printings[i].card_id for i in sorted(view_matches(reading, printings))],
            "verdict": resolution.verdict.value, "reason": reading.skipped or resolution.reason,
            "card_height_px": round(closeup.source_card_height_px, 1),
            "printings": [c.card_id for c in printings],
            # a foil shows in how its colours change between views (core/finish.py): one photo cannot tell
            "finish": UNKNOWN_FINISH, "finish_reason": "one photo is one view: the finish needs the colour change "
                                                       "between at least 2 views"}
