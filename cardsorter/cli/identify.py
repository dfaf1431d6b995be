"""`cardsorter identify IMAGE…`: find cards in still images; one JSON object per card per line."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2

from cardsorter.config import from_params, node_params
from cardsorter.core.detection import CardDetector, DetectorConfig
from cardsorter.core.errors import ImageError


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("identify", help="detect cards (corners, orientation) in images")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to search")
    parser.add_argument("--params", default=None,
                        help="parameters file (default config/sorter.yaml); the camera node's detector.* is used")
    parser.set_defaults(func=_identify)


def detector_from_params(params_file: str | None = None) -> CardDetector:
    return CardDetector(from_params(DetectorConfig, node_params("camera", params_file), "detector."))


def detect_in_images(paths: Iterable[str | Path], detector: CardDetector) -> Iterator[dict[str, Any]]:
    """One dict per detected card: image, bbox [x, y, w, h], quad [[x, y] x4] clockwise from the card's
    top-left, score, class_name and orientation (upright / rotated_180 / unknown)."""
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise ImageError(f"cannot read image {path}")
        for det in detector.detect(image):
            yield {
                "image": str(path),
                "bbox": [round(v, 2) for v in det.bbox_px.as_tuple()],
                "quad": [[round(x, 2), round(y, 2)] for x, y in det.quad_px] if det.quad_px else None,
                "score": round(det.score, 4),
                "class_name": det.class_name,
                "orientation": det.orientation.name.lower(),
            }


def _identify(args: argparse.Namespace) -> int:
    detector = detector_from_params(args.params)
    for record in detect_in_images(args.images, detector):
        sys.stdout.write(json.dumps(record) + "\n")
    return 0
