"""Finish from the card: normal, holo or reverse holo, told by where the foil's colours change between views.

A foil reflects a rainbow that moves as the card moves under the light; print does not. Over a track's
rectified closeups (the printing reader's, core/printing.py) the colour of a holo's artwork window changes
from view to view and the rest of the card does not; a reverse holo is the other way round; a normal card
changes nowhere. Each view is registered onto the first (phase correlation) and reduced to Lab on a
coarse grid (what misregistration is left and sharp print edges average out); every pair of views is
compared cell by cell, leaving out cells whose lightness jumped (a glare moving over the card, not a
foil), and each region's change is the 35th percentile of its cells (a finger or a glare spot covers a
minority of them). The decision needs
``min_views`` views and names a finish only when one region's change clears ``foil_change_min`` and is
``region_ratio_min`` times the other's, or when neither reaches ``still_change_max`` (normal). Anything
between is unknown: the finish is never assumed (docs/PRINTINGS.md "Finish").

Pure: numpy and OpenCV on images; the printing_reader node keeps a FinishTracker per track.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from cardsorter.core.fields import check_ranges, doc

NORMAL, HOLO, REVERSE_HOLO, UNKNOWN = "normal", "holo", "reverse_holo", "unknown"
FOIL_CLASSES = (NORMAL, HOLO, REVERSE_HOLO)
# The catalogue's finishes (core/types.py FINISHES) by what the foil looks like; "etched" is a foil too.
_CLASS_OF = {"normal": NORMAL, "first_edition": NORMAL, "holo": HOLO, "first_edition_holo": HOLO,
             "unlimited_holo": HOLO, "foil": HOLO, "etched": HOLO, "reverse_holo": REVERSE_HOLO}
# Where a Pokémon card's artwork window sits, as fractions of the card (x0, y0, x1, y1), card upright; the
# procedural catalogue draws it there too (sim/catalog.py ART_BOX_PX / CARD_W_PX, CARD_H_PX).
ART_WINDOW = (0.08, 0.143, 0.92, 0.543)
BODY_INSET = 0.06          # the body region starts this far inside the card's edge (corner error, background)
GRID_WH = (40, 56)         # the chroma grid a view is reduced to (card 63 x 88 mm: 1.6 mm cells)
ALIGN_WH = (160, 224)      # views are registered to the first at this size (a detector's corners differ by ~1 %)
# Lab L (0..255) a cell may change between two views and still be compared: chosen on 60 real scans
# (moving glare: 40 % of them called a foil with no limit, 5 % at 15) and the tuning seed 7
GLARE_LIGHTNESS_STEP = 15.0
# A region's change is this percentile of its cells' (a foil changes nearly all of them; a glare's halo, a
# finger or misregistration some): 35 cut real scans' false foils under a moving glare from 5 % to 1.7 %
# (the tuning scans) with the same synthetic figures as the median on seed 7
REGION_PERCENTILE = 35.0
CLIPPED_L = 250.0          # Lab lightness (0..255) of a cell blown out to white: it shows no colour at all
CLIPPED_SHARE_MAX = 0.3    # a region more blown out than this in some view cannot show that it is no foil


def foil_class(finish: str) -> str:
    """normal / holo / reverse_holo: what a catalogue finish looks like ("" for one we cannot tell)."""
    return _CLASS_OF.get(finish, "")


@dataclass(frozen=True)
class FinishConfig:
    """When the views' colour changes name a finish (chroma units: Lab a/b, 0..255 scale)."""

    min_views: int = doc("closeups of a track compared before a finish is named", lo=2)
    foil_change_min: float = doc("chroma change of a region between views (35th percentile of its cells) from "
                                 "which it is foil", lo=0.0)
    still_change_max: float = doc("both regions change less than this: not a foil (normal)", lo=0.0)
    region_ratio_min: float = doc("the foil region must change this many times more than the other", lo=1.0)

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.still_change_max > self.foil_change_min:
            raise ValueError(f"still_change_max {self.still_change_max} must not exceed foil_change_min "
                             f"{self.foil_change_min}")


# Chosen on the procedural foil benchmark's tuning seed (python -m cardsorter.bench.finish; docs/PRINTINGS.md).
DEFAULT_FINISH_CONFIG = FinishConfig(min_views=2, foil_change_min=8.0, still_change_max=6.0, region_ratio_min=2.0)


def _masks(flipped: bool) -> tuple[np.ndarray, np.ndarray]:
    w, h = GRID_WH
    yy, xx = np.mgrid[0:h, 0:w]
    fx, fy = (xx + 0.5) / w, (yy + 0.5) / h
    if flipped:
        fx, fy = 1.0 - fx, 1.0 - fy
    x0, y0, x1, y1 = ART_WINDOW
    art = (fx >= x0) & (fx <= x1) & (fy >= y0) & (fy <= y1)
    inset = (fx >= BODY_INSET) & (fx <= 1 - BODY_INSET) & (fy >= BODY_INSET) & (fy <= 1 - BODY_INSET)
    # the body: inside the inset, away from the art window's frame (misalignment shows most on its edge)
    margin = 0.03
    near_art = (fx >= x0 - margin) & (fx <= x1 + margin) & (fy >= y0 - margin) & (fy <= y1 + margin)
    return art, inset & ~near_art


_MASKS = {False: _masks(False), True: _masks(True)}
_WINDOW = cv2.createHanningWindow(ALIGN_WH, cv2.CV_32F)   # phase correlation's taper, one for every view


@dataclass(frozen=True)
class ViewChroma:
    """One closeup reduced for the comparison: Lab at the registration size, float32 (h, w, 3)."""

    lab: np.ndarray

    @property
    def lightness(self) -> np.ndarray:
        return np.asarray(self.lab[:, :, 0])

    def turned(self) -> ViewChroma:
        return ViewChroma(np.ascontiguousarray(self.lab[::-1, ::-1]))

    def registered_to(self, ref: ViewChroma) -> ViewChroma:
        """This view shifted onto ``ref`` (phase correlation of the lightness: the corners' error)."""
        (dx, dy), _ = cv2.phaseCorrelate(ref.lightness, self.lightness, _WINDOW)
        shift = np.array([[1.0, 0.0, -dx], [0.0, 1.0, -dy]], np.float32)
        moved = cv2.warpAffine(self.lab, shift, ALIGN_WH, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return ViewChroma(np.asarray(moved))

    def grid_lab(self) -> np.ndarray:
        """Lab on the comparison grid, (h, w, 3)."""
        return np.asarray(cv2.resize(self.lab, GRID_WH, interpolation=cv2.INTER_AREA))


def view_chroma(closeup_bgr: np.ndarray) -> ViewChroma:
    """Reduce one rectified closeup (BGR uint8, card filling it) for the comparison."""
    if closeup_bgr.ndim != 3 or closeup_bgr.shape[2] != 3 or closeup_bgr.dtype != np.uint8:
        raise ValueError(f"closeup must be BGR uint8 HxWx3, got {closeup_bgr.dtype} {closeup_bgr.shape}")
    if min(closeup_bgr.shape[:2]) < 16:
        raise ValueError(f"closeup too small for the finish: {closeup_bgr.shape[1]}x{closeup_bgr.shape[0]}")
    small = cv2.resize(closeup_bgr, ALIGN_WH, interpolation=cv2.INTER_AREA)
    return ViewChroma(cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32))


@dataclass(frozen=True)
class FinishEstimate:
    finish: str              # normal | holo | reverse_holo | unknown
    views: int
    art_change: float        # chroma change of the artwork window between views (REGION_PERCENTILE of its cells)
    body_change: float       # ... of the rest of the card
    reason: str


def _aligned(ref: ViewChroma, view: ViewChroma) -> ViewChroma:
    """``view`` turned 180 degrees when that brings its lightness closer to ``ref``'s (a view read upside
    down), then registered onto ``ref``."""
    turned = view.turned()
    same = float(np.mean(np.abs(ref.lightness - view.lightness)))
    flip = float(np.mean(np.abs(ref.lightness - turned.lightness)))
    return (turned if flip < same else view).registered_to(ref)


def clipped_share(views: Sequence[ViewChroma]) -> float:
    """The largest share of the card's cells blown out to white in any one view."""
    return max(float(np.mean(cv2.resize(v.lightness, GRID_WH, interpolation=cv2.INTER_AREA) >= CLIPPED_L))
               for v in views)


def region_changes(views: Sequence[ViewChroma]) -> tuple[float, float]:
    """(art window, body) chroma change (REGION_PERCENTILE of the cells) over every pair of views, in the orientation (upright or
    turned) where the two regions differ most."""
    if len(views) < 2:
        raise ValueError(f"the finish needs at least 2 views, got {len(views)}")
    ref = views[0]
    aligned = [ref] + [_aligned(ref, v) for v in views[1:]]
    grids = [v.grid_lab() for v in aligned]
    total = np.zeros(grids[0].shape[:2], np.float32)
    pairs = np.zeros(grids[0].shape[:2], np.float32)
    for i in range(len(grids)):
        for j in range(i + 1, len(grids)):
            # a cell much brighter in one view than in the other is under a moving glare, not a foil
            lit = np.abs(grids[i][:, :, 0] - grids[j][:, :, 0]) <= GLARE_LIGHTNESS_STEP
            total += np.where(lit, np.linalg.norm(grids[i][:, :, 1:] - grids[j][:, :, 1:], axis=2), 0.0)
            pairs += lit
    change = np.where(pairs > 0, total / np.maximum(pairs, 1), np.nan)
    best = (0.0, 0.0)
    for flipped in (False, True):
        art, body = _MASKS[flipped]
        a, b = change[art], change[body]
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        scores = (float(np.percentile(a, REGION_PERCENTILE)) if a.size else 0.0,
                  float(np.percentile(b, REGION_PERCENTILE)) if b.size else 0.0)
        if abs(scores[0] - scores[1]) >= abs(best[0] - best[1]):
            best = scores
    return best


def decide_finish(views: Sequence[ViewChroma], config: FinishConfig) -> FinishEstimate:
    """The finish the views show, or unknown (too few views, or changes no rule names)."""
    n = len(views)
    if n < config.min_views:
        return FinishEstimate(UNKNOWN, n, 0.0, 0.0, f"{n} of {config.min_views} views compared")
    art, body = region_changes(views)
    shown = f"colour change artwork {art:.1f}, body {body:.1f} over {n} views"
    if max(art, body) < config.still_change_max:
        clipped = clipped_share(views)
        if clipped > CLIPPED_SHARE_MAX:
            return FinishEstimate(UNKNOWN, n, art, body, f"{100 * clipped:.0f} % of the card blown out to white, "
                                                         f"a foil would not show: {shown}")
        return FinishEstimate(NORMAL, n, art, body, f"no foil: {shown}")
    if art >= config.foil_change_min and art >= config.region_ratio_min * body:
        return FinishEstimate(HOLO, n, art, body, f"foil in the artwork: {shown}")
    if body >= config.foil_change_min and body >= config.region_ratio_min * art:
        return FinishEstimate(REVERSE_HOLO, n, art, body, f"foil around the artwork: {shown}")
    return FinishEstimate(UNKNOWN, n, art, body, f"undecided: {shown}")


@dataclass
class FinishTracker:
    """The closeups of one track, reduced; the finish decided over all of them so far."""

    config: FinishConfig
    views: list[ViewChroma] = field(default_factory=list)

    def add(self, closeup_bgr: np.ndarray) -> FinishEstimate:
        self.views.append(view_chroma(closeup_bgr))
        return decide_finish(self.views, self.config)


def narrow_by_finish(candidates: Sequence[str], finish: str) -> list[int]:
    """Indices of the catalogue finishes in ``candidates`` that look like ``finish`` (all when it is unknown)."""
    if finish not in FOIL_CLASSES:
        return list(range(len(candidates)))
    return [i for i, f in enumerate(candidates) if foil_class(f) == finish]
