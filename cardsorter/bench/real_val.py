"""Detectors on a real validation set (photos + hand-checked corners; read from a path, never downloaded).

Schema: ``annotations.json`` next to ``single/`` and ``multi/`` (see models/README.md): per image
``file``, ``tags`` and ``cards`` with ``corners`` (TL, TR, BR, BL of the card's printed upright
frame, pixel centres at integers). Figures per subset (single-card photos, multi-card photos):
recall and precision at box IoU 0.5, corner error (mean, p95) in % of the card's diagonal with
the better of the two 180° readings, orientation accuracy, and end-to-end identification.

End-to-end identification without card identities: the reference database is the true-corner
rectified crop of every validation card (embedded by the default embedder); the query is the
crop rectified from the detected corners; a card counts as identified when its own reference is
the top-1. A missed card counts as not identified. With true corners the query equals the
reference, so true-corner top-1 is 100 % by construction and the detected-corner top-1 is the
detector's loss.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cardsorter.core.detection import CLASS_CARD
from cardsorter.core.errors import ConfigError
from cardsorter.core.types import BoxPx, Detection, Orientation, as_quad
from cardsorter.core.warp import warp_card

MATCH_IOU_MIN = 0.5
SUBSETS = ("single", "multi")


@dataclass(frozen=True)
class RealCard:
    quad_px: np.ndarray         # (4, 2) TL, TR, BR, BL of the card's printed upright frame
    occluded: tuple[bool, ...]


@dataclass(frozen=True)
class RealImage:
    path: Path
    subset: str
    tags: tuple[str, ...]
    cards: tuple[RealCard, ...]


def load_real_val(root: str | Path) -> list[RealImage]:
    """The annotated photos under ``root``; ConfigError names what is missing or malformed."""
    base = Path(root)
    ann = base / "annotations.json"
    if not ann.is_file():
        raise ConfigError(f"real validation set {base}: no annotations.json")
    try:
        raw = json.loads(ann.read_text(encoding="utf-8"))
        images = []
        for i, item in enumerate(raw["images"]):
            cards = tuple(RealCard(np.asarray(c["corners"], np.float64).reshape(4, 2),
                                   tuple(bool(o) for o in c.get("occluded", [False] * 4))) for c in item["cards"])
            subset = str(item["file"]).split("/", 1)[0]
            if subset not in SUBSETS:
                subset = "multi" if len(cards) > 1 else "single"
            images.append(RealImage(base / item["file"], subset, tuple(item.get("tags", [])), cards))
            if not cards:
                raise ValueError(f"image {i} has no cards")
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"real validation set {ann}: malformed ({err})") from err
    return images


def _match(dets: list[Detection], truth: Sequence[RealCard]) -> dict[int, int]:
    pairs = []
    for gi, g in enumerate(truth):
        gbox = BoxPx.from_quad(as_quad(g.quad_px))
        for di, d in enumerate(dets):
            iou = gbox.iou(d.bbox_px)
            if iou >= MATCH_IOU_MIN:
                pairs.append((-iou, gi, di))
    pairs.sort()
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _, gi, di in pairs:
        if gi not in matched and di not in used:
            matched[gi] = di
            used.add(di)
    return matched


def evaluate(images: Sequence[RealImage], detect: Callable[[np.ndarray], list[Detection]],
             embed: Callable[[list[np.ndarray]], np.ndarray] | None, crop_wh: tuple[int, int]) -> dict[str, Any]:
    """Figures per subset (and per tag for the identification) for one detector."""
    per: dict[str, dict[str, Any]] = {s: {"images": 0, "expected": 0, "found": 0, "detections": 0, "false_pos": 0,
                                          "errors_pct": [], "orient_ok": 0, "orient_known": 0, "ms": []}
                                      for s in SUBSETS}
    truth_crops: list[np.ndarray] = []
    det_crops: list[np.ndarray | None] = []
    card_tags: list[tuple[str, ...]] = []
    card_subset: list[str] = []
    for img in images:
        frame = cv2.imread(str(img.path), cv2.IMREAD_COLOR)
        if frame is None:
            raise ConfigError(f"cannot read validation image {img.path}")
        t0 = time.perf_counter()
        dets = [d for d in detect(frame) if d.class_name == CLASS_CARD and d.quad_px is not None]
        ms = 1000 * (time.perf_counter() - t0)
        r = per[img.subset]
        r["images"] += 1
        r["ms"].append(ms)
        r["expected"] += len(img.cards)
        r["detections"] += len(dets)
        matched = _match(dets, img.cards)
        r["found"] += len(matched)
        r["false_pos"] += len(dets) - len(matched)
        for gi, card in enumerate(img.cards):
            truth_crops.append(warp_card(frame, as_quad(card.quad_px), crop_wh))
            card_tags.append(img.tags)
            card_subset.append(img.subset)
            if gi not in matched:
                det_crops.append(None)
                continue
            d = dets[matched[gi]]
            f = np.asarray(d.quad_px, np.float64)
            diag = float(np.linalg.norm(card.quad_px[2] - card.quad_px[0]))
            same = float(np.mean(np.linalg.norm(f - card.quad_px, axis=1)))
            rot = float(np.mean(np.linalg.norm(np.roll(f, 2, axis=0) - card.quad_px, axis=1)))
            # corner error: the worst corner of the better of the two 180° readings
            worst = min(float(np.max(np.linalg.norm(f - card.quad_px, axis=1))),
                        float(np.max(np.linalg.norm(np.roll(f, 2, axis=0) - card.quad_px, axis=1))))
            r["errors_pct"].append(100.0 * worst / diag)
            if d.orientation != Orientation.UNKNOWN:
                r["orient_known"] += 1
                r["orient_ok"] += int(same <= rot)
            det_crops.append(warp_card(frame, as_quad(f), crop_wh))
    out: dict[str, Any] = {}
    for s, r in per.items():
        errs = r["errors_pct"]
        out[s] = {
            "images": r["images"], "cards": r["expected"],
            "recall": r["found"] / r["expected"] if r["expected"] else None,
            "precision": r["found"] / r["detections"] if r["detections"] else None,
            "false_positives": r["false_pos"],
            "corner_err_mean_pct": float(np.mean(errs)) if errs else None,
            "corner_err_p95_pct": float(np.percentile(errs, 95)) if errs else None,
            "orientation_known": r["orient_known"] / len(errs) if errs else None,
            "orientation_accuracy": r["orient_ok"] / r["orient_known"] if r["orient_known"] else None,
            "ms_per_image_p50": float(np.median(r["ms"])) if r["ms"] else None,
        }
    if embed is not None and truth_crops:
        out["identification"] = _identify(truth_crops, det_crops, card_tags, card_subset, embed)
    return out


def _identify(truth_crops: list[np.ndarray], det_crops: list[np.ndarray | None], tags: list[tuple[str, ...]],
              subsets: list[str], embed: Callable[[list[np.ndarray]], np.ndarray]) -> dict[str, Any]:
    refs = embed(truth_crops)
    have = [i for i, c in enumerate(det_crops) if c is not None]
    correct = np.zeros(len(truth_crops), bool)
    if have:
        queries = embed([det_crops[i] for i in have])     # type: ignore[misc]
        top = np.argmax(queries @ refs.T, axis=1)
        for qi, i in enumerate(have):
            correct[i] = int(top[qi]) == i
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (t, s) in enumerate(zip(tags, subsets, strict=True)):
        groups["all"].append(i)
        groups[s].append(i)
        for tag in t:
            if tag not in SUBSETS:      # the 'multi' tag is the multi subset
                groups[tag].append(i)
    return {name: {"cards": len(idx), "top1_detected": float(correct[idx].mean()), "top1_true": 1.0}
            for name, idx in sorted(groups.items())}
