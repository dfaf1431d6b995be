"""Classical card detector (colour mask + Canny, robust side lines): precise on plain belts, blind on textures.

The default detector (backends/detectors.py, mode hybrid) runs it next to the learned CardDet: its
cards, when it finds them, come with sub-pixel corners and the double-feed shape check; the learned
detector adds the cards it cannot separate from a textured background. Mode ``learned`` drops it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from cardsorter.core.card_detector_decode import within_edge
from cardsorter.core.detection import (
    CARD_ASPECT_SHORT_OVER_LONG,
    CLASS_CARD,
    CLASS_DOUBLE_FEED,
    _clockwise,
    _fit_line,
    _intersect_lines,
    _is_convex,
    _refine_edges,
    _shoelace,
    box_quad,
)
from cardsorter.core.fields import doc
from cardsorter.core.types import BoxPx, Detection, Orientation, Point, as_quad
from cardsorter.core.warp import check_bgr_image, warp_card

ORIENTATION_PROBE_WH = (48, 66)
"""Size of the small rectified view the orientation check reads (cheap, plenty for a layout cue)."""

_BORDER_STRIP_FRAC = 0.02      # share of the frame's short side sampled as background on each edge
_EDGE_T_RANGE = (0.12, 0.88)   # skip the rounded / occluded ends of each side
_EDGE_SAMPLES_PER_SIDE = 24    # rim samples per side (half the shape check's count)
_SIDE_ANGLE_TOL_DEG = 20.0     # contour tangent vs side direction (covers a perspective tilt)
_FRAME_EDGE_MARGIN_PX = 2.0    # a card touching the frame edge is found only with all corners this far inside
_BORDER_PROBE_FRAC = 0.02      # the card's border in the orientation probe (cards: 4 % of the width)
_BAND_CUE_WEIGHT = 2.0         # name-band lightness ratio difference vs the art cue's log ratio
_RIM_INSET_PX = 3.0            # the shape check samples the blob this far inside the quad's sides
_SHADOW_CHROMA_TOL = 0.15      # relative channel-ratio spread still counted as an even (shadow) darkening
_NOISE_TO_THRESHOLD = 4.0      # mask threshold vs the median background distance on the frame border


@dataclass(frozen=True)
class ClassicalConfig:
    min_area_frac: float = doc("smallest card area as a fraction of the searched image area")
    max_area_frac: float = doc("largest blob area as a fraction of the searched image area")
    min_contrast: float = doc("minimum colour distance (0-255) from the background for the foreground mask")
    canny_low: float = doc("Canny hysteresis low threshold on the blurred grey image")
    canny_high: float = doc("Canny hysteresis high threshold on the blurred grey image")
    aspect_tolerance: float = doc("allowed |short/long - 63/88| of a single card (perspective tilt included)")
    shape_fit_min: float = doc("min fraction of the blob explained by the fitted quad; below: double feed")
    edge_search_px: float = doc("half-length in pixels of the sub-pixel edge search along each side's normal")
    orientation_margin: float = doc("|upright_score| of the card layout needed to report the orientation")
    work_max_width_px: int = doc("frames wider than this are searched downscaled; corners refined at full size")
    refine_pad_frac: float = doc("padding around an IMX500 box, as a fraction of its size, searched for corners")
    refine_min_iou: float = doc("min IoU between an IMX500 box and the refined quad's box to accept it")
    rim_gap_max: float = doc("max share of the quad's inner rim off the blob; above: double feed")
    shadow_gain_min: float = doc("belt darkened evenly down to this gain is a shadow, not a card (0 disables)")

    def __post_init__(self) -> None:
        if not 0.0 < self.min_area_frac < self.max_area_frac <= 1.0:
            raise ValueError("need 0 < min_area_frac < max_area_frac <= 1")
        if self.edge_search_px <= 0.0:
            raise ValueError("edge_search_px must be > 0")
        if self.work_max_width_px < 64:
            raise ValueError("work_max_width_px must be >= 64")
        if not 0.0 < self.shape_fit_min <= 1.0:
            raise ValueError("shape_fit_min must be in (0, 1]")


@dataclass(frozen=True)
class _Blob:
    contour: np.ndarray      # Nx2 float, full-resolution pixels
    area_px2: float
    touches_border: bool     # a hand reaching in from outside, or a card only partly in view


class ClassicalDetector:
    """Finds cards in a BGR frame (``detect``) or inside a detector box (``refine``)."""

    def __init__(self, config: ClassicalConfig) -> None:
        self._cfg = config

    @property
    def config(self) -> ClassicalConfig:
        return self._cfg

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Every card whose four corners are in the frame, largest first (cards cut by the edge are skipped)."""
        check_bgr_image(image_bgr, "frame")
        h, w = image_bgr.shape[:2]
        area = float(h * w)
        return self._find(image_bgr, self._cfg.min_area_frac * area, self._cfg.max_area_frac * area)

    def refine(self, image_bgr: np.ndarray, box: BoxPx, score: float) -> Detection:
        """The card's corners inside (a padded) ``box``; the box's own corners if none is found."""
        check_bgr_image(image_bgr, "frame")
        h, w = image_bgr.shape[:2]
        pad_x, pad_y = box.w * self._cfg.refine_pad_frac, box.h * self._cfg.refine_pad_frac
        x0, y0 = max(0, math.floor(box.x - pad_x)), max(0, math.floor(box.y - pad_y))
        x1, y1 = min(w, math.ceil(box.x + box.w + pad_x)), min(h, math.ceil(box.y + box.h + pad_y))
        best: Detection | None = None
        if x1 - x0 >= 8 and y1 - y0 >= 8:
            crop = image_bgr[y0:y1, x0:x1]
            crop_area = float((x1 - x0) * (y1 - y0))
            found = self._find(crop, 0.25 * box.area_px2, crop_area)
            best_iou = self._cfg.refine_min_iou
            for det in found:
                shifted = _shift_detection(det, x0, y0)
                iou = shifted.bbox_px.iou(box)
                if iou >= best_iou:
                    best, best_iou = shifted, iou
        if best is None:
            return Detection(box, box_quad(box), score)
        return Detection(best.bbox_px, best.quad_px, score, best.class_name, best.orientation)

    # --- internals -------------------------------------------------------------------------

    def _find(self, image_bgr: np.ndarray, min_area: float, max_area: float) -> list[Detection]:
        blobs = self._blobs(image_bgr, min_area, max_area)
        detections: list[Detection] = []
        h, w = image_bgr.shape[:2]
        margin = math.ceil(self._cfg.edge_search_px) + 4
        for blob in blobs:
            # the edge search reads a float copy of the blob's neighbourhood only
            x0, y0 = np.floor(blob.contour.min(axis=0)).astype(int) - margin
            x1, y1 = np.ceil(blob.contour.max(axis=0)).astype(int) + margin
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1 + 1), min(h, y1 + 1)
            work = image_bgr[y0:y1, x0:x1].astype(np.float32)
            det = self._blob_to_detection(image_bgr, work, (float(x0), float(y0)), blob)
            if det is not None:
                detections.append(det)
        return detections

    def _blobs(self, image_bgr: np.ndarray, min_area: float, max_area: float) -> list[_Blob]:
        cfg = self._cfg
        h, w = image_bgr.shape[:2]
        scale = min(1.0, cfg.work_max_width_px / float(w))
        small = image_bgr if scale == 1.0 else cv2.resize(image_bgr, (max(1, round(w * scale)), max(1, round(h * scale))),
                                                          interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        blur = cv2.GaussianBlur(small, (5, 5), 0)
        strip = max(2, round(_BORDER_STRIP_FRAC * min(sh, sw)))
        border = np.concatenate([blur[:strip].reshape(-1, 3), blur[-strip:].reshape(-1, 3),
                                 blur[:, :strip].reshape(-1, 3), blur[:, -strip:].reshape(-1, 3)])
        background = np.median(border, axis=0)
        diff = cv2.absdiff(blur, tuple(float(v) for v in background) + (0.0,))  # type: ignore[call-overload]
        distance = cv2.max(cv2.max(diff[:, :, 0], diff[:, :, 1]), diff[:, :, 2])
        # The belt's own noise and texture raise the threshold; a colourful card must not (no Otsu).
        border_distance = np.concatenate([distance[:strip].ravel(), distance[-strip:].ravel(),
                                          distance[:, :strip].ravel(), distance[:, -strip:].ravel()])
        threshold = max(cfg.min_contrast, _NOISE_TO_THRESHOLD * float(np.median(border_distance)))
        mask = (distance > threshold).astype(np.uint8) * 255
        if cfg.shadow_gain_min > 0:
            mask[_shadow_like(blur, background, cfg.shadow_gain_min)] = 0
        grey = cv2.cvtColor(blur, cv2.COLOR_BGR2GRAY)
        edges = cv2.Canny(grey, cfg.canny_low, cfg.canny_high)
        mask = cv2.bitwise_or(mask, cv2.dilate(edges, np.ones((3, 3), np.uint8)))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        blobs: list[_Blob] = []
        area_scale = scale * scale
        for contour in contours:
            area = cv2.contourArea(contour) / area_scale
            if area < min_area or area > max_area:
                continue
            bx, by, bw, bh = cv2.boundingRect(contour)
            touches = bx <= 1 or by <= 1 or bx + bw >= sw - 1 or by + bh >= sh - 1
            points = contour.reshape(-1, 2).astype(np.float64)
            # back to full-resolution pixel centres; the half-pixel bias of a contour is fixed by the edge search
            blobs.append(_Blob((points + 0.5) / scale - 0.5, area, touches))
        blobs.sort(key=lambda b: -b.area_px2)
        return blobs

    def _blob_to_detection(self, image_bgr: np.ndarray, work: np.ndarray, work_origin: Point,
                           blob: _Blob) -> Detection | None:
        cfg = self._cfg
        rect = cv2.minAreaRect(blob.contour.astype(np.float32))
        initial = cv2.boxPoints(rect).astype(np.float64)
        lines = _fit_side_lines(blob.contour, initial)
        quad = _intersect_lines(lines) if lines is not None else None
        if quad is None or not _is_convex(quad):
            quad = initial
        origin = np.array(work_origin)
        refined = _refine_edges(work, quad - origin, cfg.edge_search_px)
        edge_support = 0.0
        if refined is not None:
            refined_quad, edge_support = refined[0] + origin, refined[1]
            quad = refined_quad
        quad = _clockwise(quad)
        aspect = _aspect_short_over_long(quad)
        quad_area = abs(_shoelace(quad))
        if quad_area <= 0:
            return None
        # Shape fit: 1 - |blob XOR quad| / |quad|. One card (even with a finger over a corner) fills
        # its quad and barely spills out; two overlapping cards spill far outside any quad fitted to them.
        mismatch_px2, rim_gaps = _shape_mismatch(blob.contour, quad)
        fit = 1.0 - mismatch_px2 / quad_area
        single = (abs(aspect - CARD_ASPECT_SHORT_OVER_LONG) <= cfg.aspect_tolerance and fit >= cfg.shape_fit_min
                  and rim_gaps <= cfg.rim_gap_max)
        bbox = BoxPx.from_quad(as_quad(quad))
        if blob.touches_border:
            # only a whole card held by a hand from outside counts; a card cut by the frame edge
            # has no four corners to find yet
            h, w = image_bgr.shape[:2]
            if not (single and within_edge(quad, (w, h), _FRAME_EDGE_MARGIN_PX)):
                return None
        if not single:
            # the rectangle around two overlapping cards can reach past the frame while the cards do not:
            # clipped, so the camera never reports a box the pipeline's input checks would drop
            h, w = image_bgr.shape[:2]
            hull_quad = np.clip(_clockwise(initial), 0.0, [w - 1.0, h - 1.0])
            return Detection(BoxPx.from_quad(as_quad(hull_quad)), as_quad(_start_at_short_top(hull_quad)),
                             float(np.clip(0.5 * fit, 0.0, 1.0)), CLASS_DOUBLE_FEED, Orientation.UNKNOWN)
        quad = _start_at_short_top(quad)
        quad, orientation = self._orient(image_bgr, quad)
        score = float(np.clip(fit * (0.5 + 0.5 * edge_support), 0.0, 1.0))
        return Detection(bbox, as_quad(quad), score, CLASS_CARD, orientation)

    def _orient(self, image_bgr: np.ndarray, quad: np.ndarray) -> tuple[np.ndarray, Orientation]:
        """Put the card's top first using its layout (see ``upright_score``)."""
        probe = warp_card(image_bgr, as_quad(quad), ORIENTATION_PROBE_WH)
        score = upright_score(probe)
        margin = self._cfg.orientation_margin
        if score >= margin:
            card_top_first = quad
        elif score <= -margin:
            card_top_first = np.roll(quad, -2, axis=0)
        else:
            return quad, Orientation.UNKNOWN
        top_mid = (card_top_first[0] + card_top_first[1]) / 2.0
        bottom_mid = (card_top_first[2] + card_top_first[3]) / 2.0
        upright = top_mid[1] <= bottom_mid[1]
        return card_top_first, Orientation.UPRIGHT if upright else Orientation.ROTATED_180


def _shadow_like(blur: np.ndarray, background: np.ndarray, gain_min: float) -> np.ndarray:
    """Pixels that are the belt's colour, only darker by the same factor in every channel."""
    ratio = [cv2.multiply(channel, 1.0, scale=1.0 / (float(level) + 1.0), dtype=cv2.CV_32F)  # type: ignore[call-overload]
             for channel, level in zip(cv2.split(blur), background, strict=True)]
    rmax = cv2.max(cv2.max(ratio[0], ratio[1]), ratio[2])
    rmin = cv2.min(cv2.min(ratio[0], ratio[1]), ratio[2])
    return np.asarray((rmax <= 1.0) & (rmin >= gain_min) & (rmax - rmin <= _SHADOW_CHROMA_TOL * rmax))


def _shape_mismatch(contour: np.ndarray, quad: np.ndarray) -> tuple[float, float]:
    """(pixels in exactly one of blob and quad, share of the quad's inner rim that is not blob).

    The rim is a line _RIM_INSET_PX inside each side (ends skipped for rounded corners). One card
    fills its rim even when a finger covers a corner (that adds blob outside the quad); a quad
    fitted around two overlapping cards crosses belt where the cards' outlines notch in.
    """
    pts = np.vstack([contour, quad])
    origin = np.floor(pts.min(axis=0)) - 2
    size = np.ceil(pts.max(axis=0) - origin).astype(int) + 3
    blob_mask = np.zeros((size[1], size[0]), np.uint8)
    quad_mask = np.zeros_like(blob_mask)
    cv2.fillPoly(blob_mask, [np.round(contour - origin).astype(np.int32)], 1)
    cv2.fillConvexPoly(quad_mask, np.round(quad - origin).astype(np.int32), 1)
    xor = float(cv2.countNonZero(cv2.bitwise_xor(blob_mask, quad_mask)))
    centre = quad.mean(axis=0)
    ts = np.linspace(_EDGE_T_RANGE[0], _EDGE_T_RANGE[1], 2 * _EDGE_SAMPLES_PER_SIDE)
    samples = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        line = a[None, :] + ts[:, None] * (b - a)[None, :]
        inward = centre - (a + b) / 2.0
        inward /= max(1e-9, float(np.linalg.norm(inward)))
        samples.append(line + _RIM_INSET_PX * inward)
    rim = np.round(np.vstack(samples) - origin).astype(int)
    rim[:, 0] = np.clip(rim[:, 0], 0, size[0] - 1)
    rim[:, 1] = np.clip(rim[:, 1], 0, size[1] - 1)
    gaps = float(np.mean(blob_mask[rim[:, 1], rim[:, 0]] == 0))
    return xor, gaps


def upright_score(card_bgr: np.ndarray) -> float:
    """Evidence that a rectified card is upright (> 0) rather than upside down (< 0).

    Two layout cues of trading cards, each normalised so a shadow or an exposure change cancels:
    the art window (y 14-50 % of the height) is more colourful per unit brightness than the text
    box below it (log ratio), and the name band near the top edge (y 5-12 %) is lighter, relative to
    the card's own border in the same rows, than the strip as far from the bottom edge. Full-art
    cards carry the second cue, plain cards the first. Every upright card of a generated catalogue
    (48 cards) scored >= 0.6, median 1.36.
    """
    img = card_bgr.astype(np.float32)
    b, g, r = img[:, :, 0], img[:, :, 1], img[:, :, 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    h = card_bgr.shape[0]

    brightness = img.mean(axis=2)
    edge = max(1, round(_BORDER_PROBE_FRAC * card_bgr.shape[1]))

    def colourfulness(rows: slice) -> float:
        # chroma spread per unit brightness: a shadow or an exposure change scales both alike
        spread = math.sqrt(float(np.var(rg[rows])) + float(np.var(yb[rows]))) + 1.0
        return spread / (float(brightness[rows].mean()) + 1.0)

    def band_lightness(rows: slice) -> float:
        # the band's lightest-channel floor against the card's own border in the same rows
        border = float(np.concatenate([brightness[rows, edge:2 * edge].ravel(),
                                       brightness[rows, -2 * edge:-edge].ravel()]).mean()) + 1.0
        return float(whiteness[rows].mean()) / border

    art_cue = math.log(colourfulness(slice(int(0.14 * h), int(0.50 * h)))
                       / colourfulness(slice(int(0.50 * h), int(0.86 * h))))
    whiteness = card_bgr.min(axis=2).astype(np.float32)
    band_top = band_lightness(slice(int(0.05 * h), int(0.12 * h)))
    band_bottom = band_lightness(slice(h - int(0.12 * h), h - int(0.05 * h)))
    return art_cue + _BAND_CUE_WEIGHT * (band_top - band_bottom)


def _shift_detection(det: Detection, dx: float, dy: float) -> Detection:
    quad = None if det.quad_px is None else as_quad(np.asarray(det.quad_px) + np.array([dx, dy]))
    box = BoxPx(det.bbox_px.x + dx, det.bbox_px.y + dy, det.bbox_px.w, det.bbox_px.h)
    return Detection(box, quad, det.score, det.class_name, det.orientation, det.track_id)


def _side_lengths(quad: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.norm(np.roll(quad, -1, axis=0) - quad, axis=1))


def _aspect_short_over_long(quad: np.ndarray) -> float:
    s = _side_lengths(quad)
    a, b = (s[0] + s[2]) / 2.0, (s[1] + s[3]) / 2.0
    return float(min(a, b) / max(a, b)) if max(a, b) > 0 else 0.0


def _start_at_short_top(quad: np.ndarray) -> np.ndarray:
    """Rotate the corner order so side 0→1 is the short side nearer the top of the image."""
    s = _side_lengths(quad)
    if s[0] + s[2] > s[1] + s[3]:
        quad = np.roll(quad, -1, axis=0)
    mid01 = (quad[0] + quad[1]) / 2.0
    mid23 = (quad[2] + quad[3]) / 2.0
    if mid23[1] < mid01[1] or (mid23[1] == mid01[1] and mid23[0] < mid01[0]):
        quad = np.roll(quad, -2, axis=0)
    return quad


def _fit_side_lines(contour: np.ndarray, initial: np.ndarray) -> list[np.ndarray] | None:
    """One robust line per side: contour points grouped by tangent direction and by side.

    A point belongs to a side when its local tangent is within _SIDE_ANGLE_TOL_DEG of that side's
    direction in ``initial`` (the blob's min-area rectangle) and it lies on that side of the centre;
    rounded corners and a finger over a corner have other tangents or are outliers to the fit.
    """
    quad = _clockwise(initial)
    n = len(contour)
    if n < 40:
        return None
    k = max(3, n // 80)
    tangent = np.roll(contour, -k, axis=0) - np.roll(contour, k, axis=0)
    tangent_len = np.linalg.norm(tangent, axis=1)
    steps = np.linalg.norm(np.diff(contour, axis=0, append=contour[:1]), axis=1)
    arc = np.convolve(np.concatenate([steps[-k:], steps, steps[:k]]), np.ones(2 * k), mode="valid")[:n]
    straight = tangent_len >= 0.9 * arc
    centre = quad.mean(axis=0)
    cos_tol = math.cos(math.radians(_SIDE_ANGLE_TOL_DEG))
    lines = []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        u = (b - a) / max(1e-9, float(np.linalg.norm(b - a)))
        normal = np.array([-u[1], u[0]])
        side_sign = np.sign(normal @ ((a + b) / 2.0 - centre))
        along = np.abs(tangent @ u) >= cos_tol * np.maximum(tangent_len, 1e-9)
        on_side = np.sign((contour - centre) @ normal) == side_sign
        line = _fit_line(contour[straight & along & on_side])
        if line is None:
            return None
        lines.append(line)
    return lines


