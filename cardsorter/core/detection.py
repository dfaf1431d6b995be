"""Card geometry shared by the detectors: classes, corner errors, and sub-pixel refinement of corners onto edges.

The learned detector (backends/detectors.py) finds the cards; ``refine_quad_edges`` then moves each
side onto the colour edge along its normal on the full-resolution image (robust line fits, the
sides re-intersected), which is what this module keeps of the former classical detector
(core/classical_detection.py is that detector).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from cardsorter.core.types import BoxPx, Quad

CLASS_CARD = "card"
CLASS_DOUBLE_FEED = "double_feed"
CARD_ASPECT_SHORT_OVER_LONG = 63.0 / 88.0
"""A standard trading card is 63 x 88 mm (Pokémon, Magic and most others)."""

_EDGE_SAMPLES_PER_SIDE = 24    # normals sampled per side for the sub-pixel edge search
_EDGE_T_RANGE = (0.12, 0.88)   # skip the rounded / occluded ends of each side
_EDGE_PASSES_MAX = 4           # edge-search passes (a blurred edge is reached search_px per pass)
_REFINE_MARGIN_PX = 4          # the edge search reads the quad's neighbourhood plus this margin


def refine_quad_edges(image_bgr: np.ndarray, quad: np.ndarray, search_px: float) -> np.ndarray | None:
    """``quad`` (4x2, any cyclic order kept) moved onto the card's edges; None where the edges are unclear."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    if not np.all(np.isfinite(q)) or not _is_convex(q):
        return None
    h, w = image_bgr.shape[:2]
    margin = math.ceil(2 * search_px * _EDGE_PASSES_MAX) + _REFINE_MARGIN_PX
    x0, y0 = np.floor(q.min(axis=0)).astype(int) - margin
    x1, y1 = np.ceil(q.max(axis=0)).astype(int) + margin
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1 + 1), min(h, y1 + 1)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    work = image_bgr[y0:y1, x0:x1].astype(np.float32)
    origin = np.array([x0, y0], np.float64)
    found = _refine_edges(work, q - origin, search_px)
    if found is None:
        return None
    refined = found[0] + origin
    # _refine_edges returns clockwise corners starting anywhere: keep the input's corner order
    order = [int(np.argmin(np.linalg.norm(refined - p, axis=1))) for p in q]
    if len(set(order)) != 4:
        return None
    return np.asarray(refined[order])


def _shoelace(quad: np.ndarray) -> float:
    x, y = quad[:, 0], quad[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def _clockwise(quad: np.ndarray) -> np.ndarray:
    """Corners in on-screen clockwise order (positive shoelace area with y pointing down)."""
    quad = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    centre = quad.mean(axis=0)
    angles = np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0])
    quad = quad[np.argsort(angles)]
    if _shoelace(quad) < 0:
        quad = quad[::-1]
    return quad


def _is_convex(quad: np.ndarray) -> bool:
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    if not np.all(np.isfinite(q)):
        return False
    crosses = []
    for i in range(4):
        a, b, c = q[i], q[(i + 1) % 4], q[(i + 2) % 4]
        crosses.append((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]))
    return all(c > 0 for c in crosses) or all(c < 0 for c in crosses)


def _fit_line(points: np.ndarray) -> np.ndarray | None:
    """Robust (Huber, then inliers within 1.5 px) line as (nx, ny, c) with nx*x + ny*y = c."""
    if len(points) < 4:
        return None
    vx, vy, x0, y0 = cv2.fitLine(points.astype(np.float32), cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
    normal = np.array([-vy, vx], dtype=np.float64)
    c = float(normal @ np.array([x0, y0]))
    residual = np.abs(points @ normal - c)
    inliers = points[residual <= 1.5]
    if len(inliers) >= max(4, len(points) // 3):
        vx, vy, x0, y0 = cv2.fitLine(inliers.astype(np.float32), cv2.DIST_L2, 0, 0.01, 0.01).ravel()
        normal = np.array([-vy, vx], dtype=np.float64)
        c = float(normal @ np.array([x0, y0]))
    return np.array([normal[0], normal[1], c])


def _intersect_lines(lines: list[np.ndarray]) -> np.ndarray | None:
    corners = []
    for i in range(4):
        l1, l2 = lines[(i - 1) % 4], lines[i]
        a = np.array([[l1[0], l1[1]], [l2[0], l2[1]]])
        det = float(np.linalg.det(a))
        if abs(det) < 1e-6:
            return None
        corners.append(np.linalg.solve(a, np.array([l1[2], l2[2]])))
    return np.array(corners)


def _refine_edges(work: np.ndarray, quad: np.ndarray, search_px: float) -> tuple[np.ndarray, float] | None:
    """Move each side onto the colour edge along its normal (sub-pixel); re-intersect the sides.

    Repeated passes let a blurred edge be reached (motion or focus blur moves the mask's outline off
    the edge's centre by up to half the blur) while each pass looks only ``search_px`` either side,
    so the card's inner frame is never mistaken for its edge. Returns the refined quad and the
    fraction of sampled normals that found a clear edge in the last pass.
    """
    current = _clockwise(quad)
    result: tuple[np.ndarray, float] | None = None
    final = False
    for attempt in range(_EDGE_PASSES_MAX):
        final = final or attempt == _EDGE_PASSES_MAX - 1
        found = _edge_pass(work, current, search_px, final)
        if found is None:
            break
        moved = float(np.max(np.linalg.norm(found[0] - current, axis=1)))
        if moved > 2.0 * search_px + 1.0 or not _is_convex(found[0]):
            break
        current = found[0]
        result = found
        if final:
            break
        final = moved < 1.0     # converged within a pixel: one last pass that demands clean edges
    return result


def _edge_pass(work: np.ndarray, quad: np.ndarray, search_px: float, final: bool
               ) -> tuple[np.ndarray, float] | None:
    """One edge search: (quad, share of the sampled normals that found a clear edge)."""
    centre = quad.mean(axis=0)
    steps = np.arange(-search_px, search_px + 1e-9, 0.5)
    ts = np.linspace(_EDGE_T_RANGE[0], _EDGE_T_RANGE[1], _EDGE_SAMPLES_PER_SIDE)
    map_x = np.empty((4 * len(ts), len(steps)), np.float32)
    map_y = np.empty_like(map_x)
    bases, normals = [], []
    for i in range(4):
        a, b = quad[i], quad[(i + 1) % 4]
        u = (b - a) / max(1e-9, float(np.linalg.norm(b - a)))
        n = np.array([-u[1], u[0]])
        if n @ ((a + b) / 2.0 - centre) < 0:
            n = -n                                  # outward
        base = a[None, :] + ts[:, None] * (b - a)[None, :]
        pts = base[:, None, :] + steps[None, :, None] * n[None, None, :]
        map_x[i * len(ts):(i + 1) * len(ts)] = pts[:, :, 0]
        map_y[i * len(ts):(i + 1) * len(ts)] = pts[:, :, 1]
        bases.append(base)
        normals.append(n)
    profiles = cv2.remap(work, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    deriv = np.diff(profiles, axis=1)                 # (rows, steps-1, 3)
    magnitude = np.sqrt(np.sum(deriv * deriv, axis=2))
    rows, width = magnitude.shape
    peak = np.argmax(magnitude, axis=1)
    peak_val = magnitude[np.arange(rows), peak]
    # the contiguous run around the peak above half its height; its weighted centre is the edge
    # (a sharp edge gives a narrow symmetric run, a motion-blurred one a flat plateau)
    half = 0.5 * peak_val
    idx = np.arange(width)[None, :]
    below = magnitude < half[:, None]
    left = np.where(below & (idx < peak[:, None]), idx, -1).max(axis=1) + 1
    right = np.where(below & (idx > peak[:, None]), idx, width).min(axis=1) - 1
    in_run = (idx >= left[:, None]) & (idx <= right[:, None])
    weight = np.where(in_run, magnitude - half[:, None], 0.0) + np.where(idx == peak[:, None], 1e-6, 0.0)
    centroid = (weight * idx).sum(axis=1) / weight.sum(axis=1)
    s = steps[0] + 0.5 * (centroid + 0.5)             # derivative sample k sits between steps k and k+1
    median_peak = float(np.median(peak_val))
    good = peak_val > max(0.3 * median_peak, 8.0)
    if final:
        good &= (left > 0) & (right < width - 1)
    lines = []
    for i in range(4):
        sl = slice(i * len(ts), (i + 1) * len(ts))
        ok = good[sl]
        if ok.sum() < 5:
            return None
        pts = bases[i][ok] + s[sl][ok, None] * normals[i][None, :]
        line = _fit_line(pts)
        if line is None:
            return None
        lines.append(line)
    refined = _intersect_lines(lines)
    if refined is None:
        return None
    return _clockwise(refined), float(good.mean())


def box_quad(box: BoxPx) -> Quad:
    """The four corners of an axis-aligned box, clockwise from its top-left."""
    x0, y0, x1, y1 = box.x, box.y, box.x + box.w, box.y + box.h
    return ((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def quad_corner_error_px(found: Quad, truth: Quad, allow_180: bool = False) -> float:
    """Mean distance between corresponding corners; with allow_180 the better of the two rotations."""
    f = np.asarray(found, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    err = float(np.mean(np.linalg.norm(f - t, axis=1)))
    if allow_180:
        err = min(err, float(np.mean(np.linalg.norm(np.roll(f, 2, axis=0) - t, axis=1))))
    return err
