"""Open-set benchmark on real card scans: calibrated bands vs fixed ones, on held-out cards and fresh views.

`python -m cardsorter.bench.open_set --faces DIR [--holdout 0.2]` builds a database from most of the
card images under DIR (with its calibration), then renders views the calibration never saw (another
seed, single nuisances and the mixed training augmentation) of the reference cards (known) and of the
held-out cards (unknown) and bands them as the matcher does: per view and per card (the smoother's
agreeing views). Nothing here is asserted in tests: a benchmark measures.

A held-out card whose artwork is also printed on a database card (a reprint: Base Set 2 and Jungle share
their art) is not an unknown the embedder could refuse: it looks known. The bench finds those by a
model-independent test (the art windows' correlation, ``same_art_pairs``) and reports them apart:
"unknown art" (held-out cards with art of their own: the open-set figure) and "reprint not in the
database" (confirming one as its database sibling is a wrong printing: the printing reader's job, #14).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import pathlib
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from cardsorter.backends.embedders import Embedder
from cardsorter.config import resolve_path
from cardsorter.core.matching import MatchBandsConfig, decide_match
from cardsorter.core.types import MatchBand
from cardsorter.db.names import IMAGE_SUFFIXES
from cardsorter.settings import load_settings

EVAL_SEED = 777_001            # views of the evaluation: a seed the calibration (seed 0) never used
SINGLE = ("clean", "glare", "blur", "occlusion20", "perspective", "downscale", "rot180")
MIXED_VIEWS = 3
# The art window of a card (fractions of height / width: top, bottom, left, right) in both eras the bench
# was run on (WOTC 1999-2002, Scarlet & Violet), compared as a 32x20 grey thumbnail.
ART_WINDOW = (0.10, 0.50, 0.08, 0.92)
ART_THUMB_WH = (32, 20)
# Normalised correlation of two art windows at or above which the cards share their artwork. Measured on
# 1,140 real WOTC scans: every same-art reprint pair the embedder confused scored 0.94-0.995; the highest
# pair of different art 0.92 (two trainer cards, Defender / PlusPower, that also look alike to a person).
SAME_ART_CORRELATION = 0.90


def _h(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


def split_faces(faces: pathlib.Path, holdout: float, out: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    """Symlink every image under ``faces`` into references/ or unknown/ with a parseable name
    (``{folder}-{index}_{original stem}``): a deterministic ``holdout`` fraction per folder is unknown."""
    refs, unk = out / "references", out / "unknown"
    refs.mkdir(parents=True)
    unk.mkdir(parents=True)
    for folder in sorted(p for p in faces.iterdir() if p.is_dir()) or [faces]:
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        tag = folder.name.replace("_", "-")
        for i, path in enumerate(images):
            dest = unk if (_h(path.name) % 10_000) < holdout * 10_000 else refs
            stem = path.stem.replace("_", " ")
            (dest / f"{tag}-{i:05d}_{stem}{path.suffix.lower()}").symlink_to(path.resolve())
    return refs, unk


def art_window_thumbs(images: Sequence[np.ndarray]) -> np.ndarray:
    """Zero-mean unit-norm grey thumbnails of each card image's art window (rows: images)."""
    out = np.zeros((len(images), ART_THUMB_WH[0] * ART_THUMB_WH[1]), np.float32)
    top, bottom, left, right = ART_WINDOW
    for i, img in enumerate(images):
        h, w = img.shape[:2]
        art = img[int(top * h):int(bottom * h), int(left * w):int(right * w)]
        grey = art if art.ndim == 2 else cv2.cvtColor(art, cv2.COLOR_BGR2GRAY)
        v = cv2.resize(grey, ART_THUMB_WH, interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
        v -= v.mean()
        norm = float(np.linalg.norm(v))
        out[i] = v / norm if norm > 1e-6 else 0.0
    return out


def same_art_pairs(queries: Sequence[np.ndarray], references: Sequence[np.ndarray],
                   threshold: float = SAME_ART_CORRELATION) -> list[tuple[int, float] | None]:
    """For each query image, (index of the reference whose art window correlates best, correlation) when it
    reaches ``threshold`` (the two share their artwork), else None. Independent of any model."""
    if not len(queries) or not len(references):
        return [None] * len(queries)
    sims = art_window_thumbs(queries) @ art_window_thumbs(references).T
    best = sims.argmax(axis=1)
    return [(int(j), float(sims[i, j])) if sims[i, j] >= threshold else None for i, j in enumerate(best)]


def reprints_of_references(unknown: Sequence[pathlib.Path], references: Sequence[pathlib.Path]) -> dict[str, str]:
    """Held-out card id → the database card whose artwork it shares (``same_art_pairs``), for those that do."""
    from cardsorter.db.build import read_image
    from cardsorter.db.names import parse_reference_name

    def thumbs_of(paths: Sequence[pathlib.Path]) -> list[np.ndarray]:
        return [cv2.resize(read_image(p), (252, 352), interpolation=cv2.INTER_AREA) for p in paths]

    pairs = same_art_pairs(thumbs_of(unknown), thumbs_of(references))
    return {parse_reference_name(u.name).card_id: parse_reference_name(references[p[0]].name).card_id
            for u, p in zip(unknown, pairs) if p is not None}


def render_eval_views(paths: Sequence[pathlib.Path], embedder: Embedder, batch: int = 64,
                      ) -> tuple[list[str], list[str], np.ndarray]:
    """(card ids, view names, vectors): each single nuisance once and MIXED_VIEWS mixed augmentations."""
    from cardsorter.db.build import read_image
    from cardsorter.db.names import parse_reference_name
    from cardsorter.sim.augment import TRAINING_MIX, apply, random_augment

    w, h = embedder.input_size_wh
    mix = tuple((n, p) for n, p in TRAINING_MIX if n != "rot180")
    cards: list[str] = []
    names: list[str] = []
    vecs: list[np.ndarray] = []
    crops: list[np.ndarray] = []

    def flush() -> None:
        if crops:
            v, ok = embedder.embed(crops)
            vecs.append(np.where(ok[:, None], v, 0.0).astype(np.float32))
            crops.clear()

    for path in paths:
        card = parse_reference_name(path.name).card_id
        rng = np.random.default_rng(EVAL_SEED + _h(card) % 1_000_000)
        base = cv2.resize(read_image(path), (2 * w, 2 * h), interpolation=cv2.INTER_AREA)
        for name in SINGLE:
            view = base if name == "clean" else apply(name, base, rng)
            crops.append(cv2.resize(view, (w, h), interpolation=cv2.INTER_AREA))
            cards.append(card)
            names.append(name)
        for j in range(MIXED_VIEWS):
            crops.append(cv2.resize(random_augment(base, rng, mix), (w, h), interpolation=cv2.INTER_AREA))
            cards.append(card)
            names.append(f"mixed{j}")
        if len(crops) >= batch:
            flush()
    flush()
    return cards, names, np.concatenate(vecs) if vecs else np.zeros((0, embedder.dimension), np.float32)


def evaluate(db: Any, bands: MatchBandsConfig, known: tuple[list[str], list[str], np.ndarray],
             unknown: tuple[list[str], list[str], np.ndarray], agreeing_views: int, k: int = 5,
             reprints: dict[str, str] | None = None) -> dict[str, Any]:
    """Per-view and per-card rates of the matcher's bands (a card is confirmed as X when
    ``agreeing_views`` of its views are CONFIRMED as X). ``reprints``: held-out cards that share their art
    with a database card (``reprints_of_references``), reported apart from the cards of unknown art."""
    reprints = reprints or {}
    def bands_of(views: tuple[list[str], list[str], np.ndarray]) -> list[tuple[str, str, MatchBand, str]]:
        cards, names, vecs = views
        out = []
        for start in range(0, len(vecs), 512):
            hits = db.search(vecs[start:start + 512], k)
            for i, h in enumerate(hits):
                m = decide_match(0, h, db.art_group, bands)
                best = m.best.card.card_id if m.best else ""
                out.append((cards[start + i], names[start + i], m.band, best))
        return out

    def per_card(rows: list[tuple[str, str, MatchBand, str]]) -> dict[str, str | None]:
        votes: dict[str, dict[str, int]] = {}
        for card, _, band, best in rows:
            per = votes.setdefault(card, {})
            if band == MatchBand.CONFIRMED:
                per[best] = per.get(best, 0) + 1
        return {c: max(v.items(), key=lambda kv: kv[1])[0] if v and max(v.values()) >= agreeing_views else None
                for c, v in votes.items()}

    kr, ur = bands_of(known), bands_of(unknown)
    result: dict[str, Any] = {"known_views": len(kr), "unknown_views": len(ur)}
    right = [r for r in kr if r[2] == MatchBand.CONFIRMED and db.art_group(r[3]) == db.art_group(r[0])]
    wrong = [r for r in kr if r[2] == MatchBand.CONFIRMED and db.art_group(r[3]) != db.art_group(r[0])]
    result["per_view"] = {
        "unknown_false_accept": round(sum(r[2] == MatchBand.CONFIRMED for r in ur) / max(len(ur), 1), 4),
        "unknown_banded_unknown": round(sum(r[2] == MatchBand.UNKNOWN for r in ur) / max(len(ur), 1), 4),
        "known_confirmed_right": round(len(right) / max(len(kr), 1), 4),
        "known_confirmed_wrong": round(len(wrong) / max(len(kr), 1), 4),
        "known_top1": round(sum(db.art_group(r[3]) == db.art_group(r[0]) for r in kr) / max(len(kr), 1), 4),
    }
    by_name: dict[str, dict[str, float]] = {}
    for name in sorted({r[1] for r in kr}):
        ks = [r for r in kr if r[1] == name]
        us = [r for r in ur if r[1] == name]
        by_name[name] = {
            "known_top1": round(sum(db.art_group(r[3]) == db.art_group(r[0]) for r in ks) / max(len(ks), 1), 4),
            "known_confirmed_right": round(sum(r[2] == MatchBand.CONFIRMED and db.art_group(r[3]) ==
                                               db.art_group(r[0]) for r in ks) / max(len(ks), 1), 4),
            "unknown_false_accept": round(sum(r[2] == MatchBand.CONFIRMED for r in us) / max(len(us), 1), 4)}
    result["per_view_by_nuisance"] = by_name
    kc, uc = per_card(kr), per_card(ur)
    result["per_card"] = {
        "unknown_cards": len(uc), "known_cards": len(kc),
        "unknown_false_accept": round(sum(v is not None for v in uc.values()) / max(len(uc), 1), 4),
        "known_confirmed_right": round(sum(v is not None and db.art_group(v) == db.art_group(c)
                                           for c, v in kc.items()) / max(len(kc), 1), 4),
        "known_confirmed_wrong": round(sum(v is not None and db.art_group(v) != db.art_group(c)
                                           for c, v in kc.items()) / max(len(kc), 1), 4),
        "known_not_confirmed": round(sum(v is None for v in kc.values()) / max(len(kc), 1), 4),
        # which unknown cards were confirmed, and as what (a reprint of a database card's art looks known)
        "unknown_confirmed_as": {c: v for c, v in sorted(uc.items()) if v is not None},
    }
    new_art = {c: v for c, v in uc.items() if c not in reprints}
    reprinted = {c: v for c, v in uc.items() if c in reprints}
    result["per_card"].update({
        # held-out cards whose art no database card shares: what the open-set bands must refuse
        "unknown_art_cards": len(new_art),
        "unknown_art_false_accept": round(sum(v is not None for v in new_art.values()) / max(len(new_art), 1), 4),
        # held-out reprints of a database card's art: confirmed as that card = a wrong printing
        "reprint_not_in_db_cards": len(reprinted),
        "reprint_not_in_db_confirmed": round(sum(v is not None for v in reprinted.values())
                                             / max(len(reprinted), 1), 4),
        "reprint_confirmed_as_its_art_sibling": sum(v is not None and db.art_group(v) == db.art_group(reprints[c])
                                                    for c, v in reprinted.items()),
    })
    return result


def run(faces: pathlib.Path, holdout: float, model_manifest: str | None, backend: str, threads: int,
        workdir: pathlib.Path, log: Any = print, target: float | None = None,
        cards_min: int | None = None) -> dict[str, Any]:
    from cardsorter.backends.embedders import open_embedder
    from cardsorter.db.build import build_database
    from cardsorter.db.database import ReferenceDatabase
    from cardsorter.db.names import list_reference_images

    settings = load_settings()
    matcher, emb = settings.matcher, settings.embedder
    build_config = matcher.build
    if target is not None:
        build_config = dataclasses.replace(build_config, calibration_target_false_accept=target)
    if cards_min is not None:
        build_config = dataclasses.replace(build_config, calibration_cards_min=cards_min)
    search_config = matcher.search
    yaml_bands = matcher.bands
    agreeing = settings.smoother.smoothing.confirm_views
    embedder = open_embedder(backend, str(resolve_path(model_manifest or emb.model_manifest)), threads)
    try:
        refs, unk = split_faces(faces, holdout, workdir / "split")
        t0 = time.perf_counter()
        report = build_database(refs, workdir / "db", embedder, build_config=build_config,
                                search_config=search_config, agreeing_views=agreeing)
        build_s = time.perf_counter() - t0
        log(f"built {report.cards} cards in {build_s:.0f} s (embedding, self-retrieval, calibration)")
        db = ReferenceDatabase.load(workdir / "db", embedder.model_id, search_config)
        known = render_eval_views(list_reference_images(refs), embedder)
        unknown = render_eval_views(list_reference_images(unk), embedder)
        log(f"evaluation views: {len(known[0])} known, {len(unknown[0])} unknown")
        reprints = reprints_of_references(list_reference_images(unk), list_reference_images(refs))
        log(f"{len(reprints)} of {len(set(unknown[0]))} held-out cards share their art with a database card "
            f"(art windows correlate >= {SAME_ART_CORRELATION}): reported as reprints, not unknown art")
        calibrated, source = db.bands(yaml_bands)
        fixed = dataclasses.replace(calibrated, confirm_distance_max=yaml_bands.fallback_confirm_distance_max,
                                    confirm_margin_min=yaml_bands.fallback_confirm_margin_min,
                                    uncertain_distance_max=yaml_bands.fallback_uncertain_distance_max)
        cal = report.calibration or {}
        return {
            "faces": str(faces), "holdout": holdout, "model_id": embedder.model_id,
            "references": report.cards, "unknown_cards": len(set(unknown[0])), "build_s": round(build_s, 1),
            "reprints_not_in_db": reprints,
            "agreeing_views": agreeing, "target_false_accept_per_view": build_config.calibration_target_false_accept,
            "calibration": {k: cal.get(k) for k in ("usable", "bands", "per_view", "per_card", "known_views",
                                                     "unknown_views", "per_nuisance", "reason")},
            "calibrated_bands": {"source": source, **{k: getattr(calibrated, k) for k in (
                "confirm_distance_max", "confirm_margin_min", "uncertain_distance_max")}},
            "at_calibrated_bands": evaluate(db, calibrated, known, unknown, agreeing, reprints=reprints),
            "at_fixed_bands_0.25_0.05": evaluate(db, fixed, known, unknown, agreeing, reprints=reprints),
        }
    finally:
        embedder.close()


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.open_set", description=__doc__)
    p.add_argument("--faces", required=True, help="folder of card images (or of folders of them)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of cards kept out of the database")
    p.add_argument("--model", help="model manifest (default: embedder.model_manifest)")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--target", type=float, help="calibration target false accepts per view (default: the YAML's)")
    p.add_argument("--cards-min", type=int, help="calibration_cards_min (default: the YAML's)")
    p.add_argument("--json", help="write the result here too")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(pathlib.Path(args.faces), args.holdout, args.model, args.backend, args.threads,
                     pathlib.Path(tmp), log=lambda s: print(s, file=sys.stderr), target=args.target,
                     cards_min=args.cards_min)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        pathlib.Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
