"""Decoding of the learned card detector's outputs (CardDet, training/detector_model.py) into Detections; numpy only.

One implementation for every place the network runs: the CPU ONNX backend and the camera node's
IMX500 post-processing both call ``decode``. Tensor layout (see training/detector_model.py):
``heatmaps`` (2, H, W) after sigmoid (card centre, card corner) and ``geometry`` (12, H, W)
(four corner vectors in CORNER_UNIT_PX input pixels, corner sub-cell offset, up vector), both at
``stride`` input pixels per cell. ``Letterbox`` maps input pixels back to frame pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from cardsorter.core.fields import doc
from cardsorter.core.types import BoxPx, Detection, Orientation, as_quad

CLASS_CARD = "card"
CLASS_DOUBLE_FEED = "double_feed"
STRIDE = 4
CORNER_UNIT_PX = 16.0
PAD_GREY = 114
HEATMAP_CHANNELS = 2
GEOMETRY_CHANNELS = 12


@dataclass(frozen=True)
class Letterbox:
    """Frame → network input: input = scale * (frame + 0.5) + offset - 0.5 (pixel-centre coordinates)."""

    scale: float
    offset_x_px: float
    offset_y_px: float
    frame_w_px: int
    frame_h_px: int

    def to_frame(self, pts_input: np.ndarray) -> np.ndarray:
        out = np.empty_like(pts_input, dtype=np.float64)
        out[..., 0] = (pts_input[..., 0] + 0.5 - self.offset_x_px) / self.scale - 0.5
        out[..., 1] = (pts_input[..., 1] + 0.5 - self.offset_y_px) / self.scale - 0.5
        return out


def letterbox_for(frame_wh: tuple[int, int], input_wh: tuple[int, int]) -> Letterbox:
    """The aspect-keeping fit of a frame into the input, centred (the resize the backend does)."""
    fw, fh = frame_wh
    iw, ih = input_wh
    if fw <= 0 or fh <= 0:
        raise ValueError(f"frame size must be positive, got {fw}x{fh}")
    scale = min(iw / fw, ih / fh)
    new_w, new_h = max(1, round(fw * scale)), max(1, round(fh * scale))
    # the resize maps the frame onto new_w x new_h exactly: use the per-axis scale of that resize
    ox, oy = (iw - new_w) // 2, (ih - new_h) // 2
    return Letterbox(scale=min(new_w / fw, new_h / fh), offset_x_px=float(ox), offset_y_px=float(oy),
                     frame_w_px=fw, frame_h_px=fh)


@dataclass(frozen=True)
class DecodeConfig:
    score_min: float = doc("minimum card-centre heatmap peak (0-1) for a detection")
    max_cards: int = doc("at most this many detections per frame (highest scores)")
    nms_iou: float = doc("detections whose boxes overlap more than this IoU: the lower-scored one is dropped")
    snap_radius_cells: int = doc("corner snap: search this many heatmap cells around a regressed corner (0: off)")
    snap_score_min: float = doc("corner snap: minimum corner-heatmap peak to move a regressed corner onto it")
    orientation_min: float = doc("up-vector length (0-1) needed to report the orientation; below: UNKNOWN")
    double_feed_overlap: float = doc("two cards whose quads overlap by this share of the smaller: one double feed")
    edge_margin_px: float = doc("a card with a corner closer than this to (or beyond) the frame edge is dropped")

    def __post_init__(self) -> None:
        if not 0.0 < self.score_min < 1.0:
            raise ValueError("score_min must be in (0, 1)")
        if self.max_cards < 1:
            raise ValueError("max_cards must be >= 1")
        if self.snap_radius_cells < 0:
            raise ValueError("snap_radius_cells must be >= 0")
        if not 0.0 < self.double_feed_overlap <= 1.0:
            raise ValueError("double_feed_overlap must be in (0, 1]")


DEFAULT_DECODE = DecodeConfig(score_min=0.3, max_cards=20, nms_iou=0.5, snap_radius_cells=1, snap_score_min=0.3,
                              orientation_min=0.5, double_feed_overlap=0.12, edge_margin_px=-1e9)
"""Defaults for tests and tools; the robot reads config/sorter.yaml (camera detector.*)."""


def check_outputs(heatmaps: np.ndarray, geometry: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop a batch axis of 1 and check the shapes; raises ValueError naming the bad tensor."""
    hm = np.asarray(heatmaps, dtype=np.float32)
    geo = np.asarray(geometry, dtype=np.float32)
    if hm.ndim == 4:
        if hm.shape[0] != 1:
            raise ValueError(f"heatmaps: batch of {hm.shape[0]}, decode one frame at a time")
        hm = hm[0]
    if geo.ndim == 4:
        if geo.shape[0] != 1:
            raise ValueError(f"geometry: batch of {geo.shape[0]}, decode one frame at a time")
        geo = geo[0]
    if hm.ndim != 3 or hm.shape[0] != HEATMAP_CHANNELS:
        raise ValueError(f"heatmaps must be ({HEATMAP_CHANNELS}, H, W), got {hm.shape}")
    if geo.shape != (GEOMETRY_CHANNELS, *hm.shape[1:]):
        raise ValueError(f"geometry must be ({GEOMETRY_CHANNELS}, {hm.shape[1]}, {hm.shape[2]}), got {geo.shape}")
    return hm, geo


def local_maxima(heat: np.ndarray, threshold: float, limit: int) -> list[tuple[int, int, float]]:
    """(row, col, value) of 3x3 local maxima above ``threshold``, highest first, at most ``limit``."""
    h, w = heat.shape
    padded = np.pad(heat, 1, mode="constant", constant_values=-np.inf)
    neighbours = np.stack([padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])
    peak = (heat >= neighbours.max(axis=0)) & (heat > threshold)
    rows, cols = np.nonzero(peak)
    values = heat[rows, cols]
    order = np.argsort(-values, kind="stable")[:limit]
    return [(int(rows[i]), int(cols[i]), float(values[i])) for i in order]


_Cell = TypeVar("_Cell", float, np.ndarray)


def cell_centre_px(row: _Cell, col: _Cell, stride: int = STRIDE) -> tuple[_Cell, _Cell]:
    """The input-pixel centre (x, y) of grid cell (row, col); elementwise for arrays of rows and columns."""
    return ((col + 0.5) * stride - 0.5, (row + 0.5) * stride - 0.5)


def _shoelace(q: np.ndarray) -> float:
    x, y = q[:, 0], q[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def clockwise(quad: np.ndarray) -> np.ndarray:
    """Same corners, on-screen clockwise (y down), keeping corner 0 first when already cyclic."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    if _shoelace(q) < 0:
        q = q[[0, 3, 2, 1]]
    return q


def start_at_short_top(quad: np.ndarray) -> np.ndarray:
    """Cyclic shift so side 0→1 is the short side nearer the top of the image (no orientation known)."""
    q = np.asarray(quad, dtype=np.float64)
    s = np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1)
    if s[0] + s[2] > s[1] + s[3]:
        q = np.roll(q, -1, axis=0)
    if (q[2, 1] + q[3, 1]) < (q[0, 1] + q[1, 1]):
        q = np.roll(q, -2, axis=0)
    return q


def order_by_up(quad: np.ndarray, up: np.ndarray, orientation_min: float) -> tuple[np.ndarray, Orientation]:
    """Cyclic shift putting the card's top-left first, from the up vector; and the orientation.

    A card's top edge is one of its short sides (63 of 88 mm): of the two shifts that start at a
    short side, the one whose top edge lies more in the up direction from the centre wins. With an
    up vector shorter than ``orientation_min`` the order is geometric (short side nearer the image
    top first) and the orientation UNKNOWN.
    """
    q = clockwise(quad)
    norm = float(np.linalg.norm(up))
    if not math.isfinite(norm) or norm < orientation_min:
        return start_at_short_top(q), Orientation.UNKNOWN
    centre = q.mean(axis=0)
    sides = np.linalg.norm(np.roll(q, -1, axis=0) - q, axis=1)
    first = 0 if sides[0] + sides[2] <= sides[1] + sides[3] else 1
    best, best_dot = q, -math.inf
    for r in (first, first + 2):
        cand = np.roll(q, -r, axis=0)
        mid = (cand[0] + cand[1]) / 2.0 - centre
        dot = float(mid @ up) / max(1e-9, float(np.linalg.norm(mid)))
        if dot > best_dot:
            best, best_dot = cand, dot
    top_y = (best[0, 1] + best[1, 1]) / 2.0
    bottom_y = (best[2, 1] + best[3, 1]) / 2.0
    return best, (Orientation.UPRIGHT if top_y <= bottom_y else Orientation.ROTATED_180)


def _snap(corners_in: np.ndarray, corner_heat: np.ndarray, sub: np.ndarray, radius: int, score_min: float,
          stride: int) -> np.ndarray:
    """Move each regressed corner onto the strongest corner-heatmap cell within ``radius`` cells."""
    h, w = corner_heat.shape
    out = corners_in.copy()
    for k, (x, y) in enumerate(corners_in):
        col, row = round((x + 0.5) / stride - 0.5), round((y + 0.5) / stride - 0.5)
        r0, r1 = max(0, row - radius), min(h, row + radius + 1)
        c0, c1 = max(0, col - radius), min(w, col + radius + 1)
        if r0 >= r1 or c0 >= c1:
            continue
        window = corner_heat[r0:r1, c0:c1]
        idx = int(np.argmax(window))
        if float(window.flat[idx]) < score_min:
            continue
        pr, pc = r0 + idx // window.shape[1], c0 + idx % window.shape[1]
        cx, cy = cell_centre_px(pr, pc, stride)
        out[k] = (cx + stride * float(sub[0, pr, pc]), cy + stride * float(sub[1, pr, pc]))
    return out


def _cell_corners(geo: np.ndarray, row: int, col: int) -> np.ndarray:
    cx, cy = cell_centre_px(row, col)
    return np.asarray(geo[0:8, row, col].astype(np.float64).reshape(4, 2) * CORNER_UNIT_PX + np.array([cx, cy]))


POOL_AGREE_PX = 8.0
"""A neighbour's corners are averaged in only when within 8 input px of the peak's on average (half a
corner unit): where two cards overlap, neighbouring cells regress the other card."""


def _pooled_corners(centre_heat: np.ndarray, geo: np.ndarray, row: int, col: int) -> np.ndarray:
    """The corners regressed at the peak, averaged with its 3x3 neighbours' (weighted by their heat).

    Each neighbour's corners are first put in the peak's cyclic order (the regression is trained
    invariant to the starting corner, so neighbouring cells may start at different corners).
    """
    h, w = centre_heat.shape
    ref = _cell_corners(geo, row, col)
    total = np.zeros((4, 2))
    weight_sum = 0.0
    for r in range(max(0, row - 1), min(h, row + 2)):
        for c in range(max(0, col - 1), min(w, col + 2)):
            wgt = float(centre_heat[r, c])
            if wgt <= 0.0:
                continue
            q = ref if (r, c) == (row, col) else _cell_corners(geo, r, c)
            shifts = [np.roll(q, -k, axis=0) for k in range(4)]
            best = min(shifts, key=lambda s: float(np.sum((s - ref) ** 2)))
            if float(np.mean(np.linalg.norm(best - ref, axis=1))) > POOL_AGREE_PX:
                continue   # that cell describes another card (two cards overlapping): not averaged in
            total += wgt * best
            weight_sum += wgt
    return total / weight_sum if weight_sum > 0 else ref


def _clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland-Hodgman: ``subject`` clipped by the convex clockwise polygon ``clip``."""
    out = [p for p in subject]
    n = len(clip)
    for i in range(n):
        if not out:
            break
        a, b = clip[i], clip[(i + 1) % n]
        edge = b - a

        def inside(p: np.ndarray, a: np.ndarray = a, edge: np.ndarray = edge) -> bool:
            return float(edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0])) >= 0.0   # clockwise, y down

        src, out = out, []
        for j in range(len(src)):
            cur, prev = src[j], src[j - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(_intersect(prev, cur, a, b))
                out.append(cur)
            elif inside(prev):
                out.append(_intersect(prev, cur, a, b))
    return np.array(out, dtype=np.float64).reshape(-1, 2)


def _intersect(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d1, d2 = q - p, b - a
    denom = d1[0] * d2[1] - d1[1] * d2[0]
    if abs(denom) < 1e-12:
        return q
    t = ((a[0] - p[0]) * d2[1] - (a[1] - p[1]) * d2[0]) / denom
    return np.asarray(p + t * d1)


def quad_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area of two convex quads over the smaller one's area (0..1)."""
    a, b = clockwise(a), clockwise(b)
    area_a, area_b = abs(_shoelace(a)), abs(_shoelace(b))
    if min(area_a, area_b) <= 0:
        return 0.0
    inter = _clip_polygon(a, b)
    if len(inter) < 3:
        return 0.0
    return abs(_shoelace(inter)) / min(area_a, area_b)


def _box(q: np.ndarray) -> BoxPx:
    lo, hi = q.min(axis=0), q.max(axis=0)
    return BoxPx(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


def _convex(q: np.ndarray) -> bool:
    crosses = []
    for i in range(4):
        a, b, c = q[i], q[(i + 1) % 4], q[(i + 2) % 4]
        crosses.append((b[0] - a[0]) * (c[1] - b[1]) - (b[1] - a[1]) * (c[0] - b[0]))
    return all(x > 0 for x in crosses) or all(x < 0 for x in crosses)


def decode(heatmaps: np.ndarray, geometry: np.ndarray, letterbox: Letterbox, config: DecodeConfig = DEFAULT_DECODE
           ) -> list[Detection]:
    """Card detections in frame pixels, highest score first; overlapping cards become one double feed.

    Each card: quad clockwise from the card's top-left (when the orientation is UNKNOWN: from the
    top-left of the short side nearer the image top), bbox of the quad, score = centre peak.
    """
    hm, geo = check_outputs(heatmaps, geometry)
    peaks = local_maxima(hm[0], config.score_min, 4 * config.max_cards)
    cards: list[tuple[np.ndarray, float, np.ndarray]] = []
    for row, col, score in peaks:
        corners = _pooled_corners(hm[0], geo, row, col)
        if config.snap_radius_cells > 0:
            corners = _snap(corners, hm[1], geo[8:10], config.snap_radius_cells, config.snap_score_min, STRIDE)
        quad = letterbox.to_frame(corners)
        if not np.all(np.isfinite(quad)) or not _convex(quad):
            continue
        up = geo[10:12, row, col].astype(np.float64)
        cards.append((quad, score, up))
    # non-maximum suppression on the boxes (peaks are already 3x3 maxima; this removes split peaks)
    kept: list[tuple[np.ndarray, float, np.ndarray]] = []
    for quad, score, up in cards:
        box = _box(quad)
        if all(box.iou(_box(k[0])) <= config.nms_iou for k in kept):
            kept.append((quad, score, up))
        if len(kept) >= config.max_cards:
            break
    frame_wh = (letterbox.frame_w_px, letterbox.frame_h_px)
    kept = [k for k in kept if within_edge(k[0], frame_wh, config.edge_margin_px)]
    return _with_double_feeds(kept, config)


def within_edge(quad: np.ndarray, frame_wh: tuple[int, int], margin_px: float) -> bool:
    """The edge rule: every corner of ``quad`` (4x2) at least ``margin_px`` inside the frame (negative: at
    most that far beyond it)."""
    w, h = frame_wh
    return bool(np.all((quad[:, 0] >= margin_px) & (quad[:, 0] <= w - 1 - margin_px)
                       & (quad[:, 1] >= margin_px) & (quad[:, 1] <= h - 1 - margin_px)))


def _with_double_feeds(cards: list[tuple[np.ndarray, float, np.ndarray]], config: DecodeConfig) -> list[Detection]:
    """Cards overlapping each other (a double feed) are merged into one CLASS_DOUBLE_FEED detection."""
    n = len(cards)
    group = list(range(n))

    def find(i: int) -> int:
        while group[i] != i:
            group[i] = group[group[i]]
            i = group[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if quad_overlap(cards[i][0], cards[j][0]) >= config.double_feed_overlap:
                group[find(j)] = find(i)
    members: dict[int, list[int]] = {}
    for i in range(n):
        members.setdefault(find(i), []).append(i)
    out: list[Detection] = []
    for root in sorted(members, key=lambda r: -cards[r][1]):
        idx = members[root]
        if len(idx) == 1:
            quad, score, up = cards[idx[0]]
            ordered, orientation = order_by_up(quad, up, config.orientation_min)
            out.append(Detection(_box(ordered), as_quad(ordered), float(np.clip(score, 0.0, 1.0)), CLASS_CARD,
                                 orientation))
            continue
        pts = np.vstack([cards[i][0] for i in idx])
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        hull = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
        score = max(cards[i][1] for i in idx)
        out.append(Detection(_box(hull), as_quad(start_at_short_top(hull)), float(np.clip(0.5 * score, 0.0, 1.0)),
                             CLASS_DOUBLE_FEED, Orientation.UNKNOWN))
    return out
