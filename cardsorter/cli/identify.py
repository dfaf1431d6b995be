"""`cardsorter identify IMAGE…`: find cards in still images; one JSON object per card per line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cardsorter.backends.detectors import PHOTO_TILES, CardFinder, for_photos, open_detector
from cardsorter.core.errors import ImageError
from cardsorter.imagefiles import MIN_STILL_SIDE_PX, read_image_file


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("identify", help="find cards in photos; with --db, say which card each is")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to search")
    parser.add_argument("--db", help="reference database: also rectify, embed and match every card found")
    parser.add_argument("--backend", default=None, help="embedding backend (default: the embedder node's)")
    parser.add_argument("--params", default=None,
                        help="parameters file (default config/sorter.yaml); the camera node's detector.* is used")
    parser.add_argument("--no-printing", action="store_true",
                        help="do not read the collector number of cards whose art has several printings")
    parser.add_argument("--tiles", type=int, default=PHOTO_TILES, choices=range(5), metavar="N",
                        help=f"also search an N x N grid of overlapping tiles (default {PHOTO_TILES}; 0: the whole "
                             "photo only): small cards in a large photo (models/README.md, 'Tiles')")
    parser.set_defaults(func=_identify)


def detector_from_params(params_file: str | None = None, tiles: int = PHOTO_TILES) -> CardFinder:
    """The camera's detector set up for photos: ``tiles`` and at least PHOTO_MAX_CARDS cards per image."""
    from cardsorter.settings import load_settings

    return open_detector(for_photos(load_settings(params_file).camera.detector, tiles))


def detect_in_images(paths: Iterable[str | Path], detector: CardFinder,
                     images: dict[str, np.ndarray] | None = None) -> Iterator[dict[str, Any]]:
    """One dict per detected card: image, bbox [x, y, w, h], quad [[x, y] x4] clockwise from the card's
    top-left, score, class_name and orientation (upright / rotated_180 / unknown). An image that cannot
    be read, is truncated or too small (MIN_STILL_SIDE_PX) yields one dict with "image" and "error"
    naming it, and the others go on. ``images`` (optional) receives each decoded image by path."""
    for path in paths:
        try:
            image = read_image_file(path, MIN_STILL_SIDE_PX)
            found = detector.detect(image)
        except ImageError as err:
            yield {"image": str(path), "error": str(err)}
            continue
        if images is not None:
            images[str(path)] = image
        for det in found:
            yield {
                "image": str(path),
                "bbox": [round(v, 2) for v in det.bbox_px.as_tuple()],
                "quad": [[round(x, 2), round(y, 2)] for x, y in det.quad_px] if det.quad_px else None,
                "score": round(det.score, 4),
                "class_name": det.class_name,
                "orientation": det.orientation.name.lower(),
            }


def _identify(args: argparse.Namespace) -> int:
    detector = detector_from_params(args.params, args.tiles)
    if not args.db:
        failed = 0
        for record in detect_in_images(args.images, detector):
            if "error" in record:
                failed += 1
                print(f"cardsorter identify: {record['error']} (skipped)", file=sys.stderr)
            sys.stdout.write(json.dumps(record) + "\n")
        _say_failed(failed, len(args.images))
        return 1 if failed else 0
    return _identify_with_db(args, detector)


def _identify_with_db(args: argparse.Namespace, detector: CardFinder) -> int:
    """Detect, rectify to the model's input, embed, match: the identity fields for every card."""
    from cardsorter.backends.embedders import open_embedder
    from cardsorter.backends.printing_ocr import PrintingReader, RapidOcrReader
    from cardsorter.config import resolve_path
    from cardsorter.core.errors import CardsorterError
    from cardsorter.core.warp import warp_card
    from cardsorter.db.database import ReferenceDatabase
    from cardsorter.db.identify_crops import identify_crops, printing_json
    from cardsorter.settings import load_settings

    settings = load_settings(args.params)
    embedder_settings, matcher = settings.embedder, settings.matcher
    bands = matcher.bands
    k = matcher.matching.k
    embedder = open_embedder(args.backend or embedder_settings.backend,
                             resolve_path(embedder_settings.model_manifest), embedder_settings.threads)
    failed = 0
    printing = settings.printing_reader.printing
    reader: PrintingReader | None = None
    reader_error = "off (--no-printing)" if args.no_printing else ""
    try:
        db = ReferenceDatabase.load(resolve_path(args.db), embedder.model_id,
                                    matcher.search)
        bands, _ = db.bands(bands)   # the database's calibration unless the YAML sets a number
        images: dict[str, np.ndarray] = {}
        for record in detect_in_images(args.images, detector, images):
            if "error" in record:
                failed += 1
                print(f"cardsorter identify: {record['error']} (skipped)", file=sys.stderr)
            elif record["quad"] is None or record["class_name"] != "card":
                record.update({"status": "unknown", "card_id": None, "name": None, "distance": None,
                               "margin": None, "top_k": [], "reason": record["class_name"]})
            else:
                quad = tuple((float(x), float(y)) for x, y in record["quad"])
                crop = warp_card(images[record["image"]], quad, embedder.input_size_wh)  # type: ignore[arg-type]
                (identity,) = identify_crops([crop], embedder, db, bands, k)
                record.update(identity)
                printings = db.printings(identity["card_id"]) if identity["card_id"] else []
                if len(printings) > 1 and not reader_error:
                    if reader is None:
                        try:
                            reader = RapidOcrReader(fixed_boxes=settings.printing_reader.fixed_boxes)
                        except CardsorterError as err:
                            reader_error = str(err)
                            print(f"cardsorter identify: printings not read: {err}", file=sys.stderr)
                    if reader is not None:
                        record["printing"] = printing_json(images[record["image"]], quad,  # type: ignore[arg-type]
                                                           printings, reader, printing)
            sys.stdout.write(json.dumps(record) + "\n")
    finally:
        embedder.close()
        if reader is not None:
            reader.close()
    _say_failed(failed, len(args.images))
    return 1 if failed else 0


def _say_failed(failed: int, total: int) -> None:
    if failed:
        print(f"cardsorter identify: {failed} of {total} images could not be used (named above)", file=sys.stderr)
