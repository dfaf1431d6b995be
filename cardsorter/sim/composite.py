"""Domain-randomised training scenes for the card detector: card faces composited onto backgrounds, with labels.

``compose(faces, backgrounds, rng, size_wh)`` draws one scene: 1-6 cards, or a spread of up to 24 in
rows and columns (real card faces or procedural ones) in perspective on a real photo or a procedural texture, with sleeves, rounded
corners, glare, shadows, lighting gradients, fingers and hands, other rectangles (distractors),
overlapping cards (double feeds), blur, noise and JPEG. It returns the image and every card's
four corners (clockwise from the card's top-left, in pixel-centre coordinates) whether they are
visible or hidden under a finger or another card. Deterministic for a given generator state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from cardsorter.sim import augment

CARD_ASPECT_W_OVER_H = 63.0 / 88.0
CORNER_RADIUS_FRAC = 3.0 / 63.0      # a 63 x 88 mm card has ~3 mm corner radius
SKIN_TONES_BGR = ((120, 150, 215), (95, 125, 190), (70, 95, 150), (50, 70, 110), (140, 170, 225), (60, 85, 135))
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
GRID_SHARE = 0.12      # scenes of a spread of cards in rows and columns (real multi-card photos mostly are)


@dataclass(frozen=True)
class SceneCardLabel:
    """One card in a composite: corners clockwise from the card's top-left (frame pixels), and facts."""

    quad_px: np.ndarray          # (4, 2) float64
    occluded_frac: float         # share of the card hidden by later cards (0 if none)
    double_feed: bool            # deliberately overlapping another card


def load_images(directory: str | Path, max_side_px: int = 640, limit: int | None = None) -> list[np.ndarray]:
    """Every readable image under ``directory`` (recursive), shrunk to ``max_side_px``; BGR or BGRA uint8."""
    root = Path(directory)
    if not root.is_dir():
        return []
    out: list[np.ndarray] = []
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
        img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if img is None or img.ndim != 3 or img.shape[2] not in (3, 4) or min(img.shape[:2]) < 32:
            continue
        if img.dtype != np.uint8:
            img = (img / 257).astype(np.uint8) if img.dtype == np.uint16 else img.astype(np.uint8)
        s = max_side_px / max(img.shape[:2])
        if s < 1.0:
            img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
        out.append(img)
        if limit is not None and len(out) >= limit:
            break
    return out


# --- backgrounds -------------------------------------------------------------------------------

def _noise_field(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    small = rng.normal(0, 1, (max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC))


def procedural_background(rng: np.random.Generator, size_wh: tuple[int, int],
                          tint_bgr: np.ndarray | None = None) -> np.ndarray:
    """A textured surface: plain, wood-like, stripes, checks, blobs (play mats), or a cluttered shelf."""
    w, h = size_wh
    base = tint_bgr.astype(np.float32) if tint_bgr is not None else rng.uniform(0, 255, 3).astype(np.float32)
    kind = int(rng.integers(6))
    img: np.ndarray = np.empty((h, w, 3), np.float32)
    img[:] = base
    if kind == 0:      # plain with fine texture
        img += rng.uniform(2, 14) * _noise_field(rng, h, w, int(rng.integers(1, 6)))[..., None]
    elif kind == 1:    # wood / fabric grain
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        a = rng.uniform(0, math.pi)
        t = xx * math.cos(a) + yy * math.sin(a) + 8 * _noise_field(rng, h, w, 16)
        img += (rng.uniform(10, 40) * np.sin(t / rng.uniform(2, 9)))[..., None] * rng.uniform(0.5, 1, 3)
    elif kind == 2:    # stripes or checks of two colours
        other = rng.uniform(0, 255, 3).astype(np.float32)
        yy, xx = np.mgrid[0:h, 0:w]
        p = int(rng.integers(4, 40))
        mask = ((xx // p + yy // p) % 2 == 0) if rng.random() < 0.5 else ((xx + yy * int(rng.integers(0, 3))) // p % 2 == 0)
        img[mask] = other
    elif kind == 3:    # play mat: coloured blobs and shapes
        for _ in range(int(rng.integers(5, 30))):
            c = tuple(float(v) for v in rng.uniform(0, 255, 3))
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            if rng.random() < 0.5:
                cv2.circle(img, centre, int(rng.integers(3, max(4, h // 3))), c, -1, cv2.LINE_AA)
            else:
                axes = (int(rng.integers(3, w // 2)), int(rng.integers(3, h // 3)))
                cv2.ellipse(img, centre, axes, float(rng.uniform(0, 180)), 0, 360, c, -1, cv2.LINE_AA)
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.3, 3.0)))
    elif kind == 4:    # shelf / desk clutter: many rectangles and lines
        for _ in range(int(rng.integers(8, 40))):
            c = tuple(float(v) for v in rng.uniform(0, 255, 3))
            x0, y0 = int(rng.integers(-w // 4, w)), int(rng.integers(-h // 4, h))
            cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(4, w // 2)), y0 + int(rng.integers(4, h // 2))), c,
                          -1 if rng.random() < 0.8 else int(rng.integers(1, 4)))
    else:              # procedural "art" (the card generator's own texture maker)
        from cardsorter.sim.catalog import _procedural_art
        art = _procedural_art(int(rng.integers(1 << 30)), w, h, (int(base[0]), int(base[1]), int(base[2])))
        img = art.astype(np.float32)
    return img.clip(0, 255).astype(np.uint8)


def _background(backgrounds: Sequence[np.ndarray], rng: np.random.Generator, size_wh: tuple[int, int],
                tint_bgr: np.ndarray | None) -> np.ndarray:
    w, h = size_wh
    if backgrounds and tint_bgr is None and rng.random() < 0.75:
        src = backgrounds[int(rng.integers(len(backgrounds)))][:, :, :3]
        sh, sw = src.shape[:2]
        # a random crop of 30-100 % of the photo, resized to the frame
        frac = rng.uniform(0.3, 1.0)
        cw = max(8, min(sw, round(frac * min(sw, sh * w / h))))
        ch = max(8, min(sh, round(cw * h / w)))
        x0, y0 = int(rng.integers(0, sw - cw + 1)), int(rng.integers(0, sh - ch + 1))
        img = cv2.resize(src[y0:y0 + ch, x0:x0 + cw], (w, h), interpolation=cv2.INTER_AREA)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        return np.ascontiguousarray(img)
    return procedural_background(rng, size_wh, tint_bgr)


# --- cards -------------------------------------------------------------------------------------

def _face(faces: Sequence[np.ndarray], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A card face (BGR) at card aspect and its alpha (rounded corners, a real scan's transparency)."""
    src = faces[int(rng.integers(len(faces)))]
    h = int(rng.integers(110, 250))
    w = round(h * CARD_ASPECT_W_OVER_H)
    img = cv2.resize(src[:, :, :3], (w, h), interpolation=cv2.INTER_AREA)
    if src.shape[2] == 4:
        alpha = cv2.resize(src[:, :, 3], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        if float(alpha.mean()) < 0.5:       # a broken alpha channel: ignore it
            alpha = np.ones((h, w), np.float32)
    else:
        alpha = np.ones((h, w), np.float32)
    r = round(CORNER_RADIUS_FRAC * w * rng.uniform(0.6, 1.3))
    if r >= 2:
        corner = np.zeros((h, w), np.uint8)
        cv2.rectangle(corner, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(corner, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(corner, (cx, cy), r, 255, -1, cv2.LINE_AA)
        alpha = np.minimum(alpha, corner.astype(np.float32) / 255.0)
    # card-level nuisances from the embedder's training mix (no geometry changes here)
    for name, p in (("holo", 0.15), ("glare", 0.25), ("matte", 0.15), ("scuffs", 0.15), ("colour", 0.7),
                    ("shadow", 0.15)):
        if rng.random() < p:
            img = augment.NUISANCES[name](img, rng)
    return img, alpha


def _card_quad(rng: np.random.Generator, size_wh: tuple[int, int], long_px: float, centre: np.ndarray,
               angle_rad: float) -> np.ndarray:
    """Corners clockwise from the card's top-left: a 63:88 rectangle, rotated, tilted in perspective."""
    hh = long_px / 2.0
    hw = hh * CARD_ASPECT_W_OVER_H
    q = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    if rng.random() < 0.7:   # perspective: a tilted plane seen by a pinhole camera
        tilt_x, tilt_y = rng.normal(0, 0.25, 2)
        z = 1.0 + q[:, 0] / hh * math.sin(tilt_x) * 0.5 + q[:, 1] / hh * math.sin(tilt_y) * 0.5
        q = q / np.clip(z, 0.5, 2.0)[:, None]
    c, s = math.cos(angle_rad), math.sin(angle_rad)
    return np.asarray(q @ np.array([[c, s], [-s, c]]) + centre)


def _grid_quads(rng: np.random.Generator, size_wh: tuple[int, int]) -> list[np.ndarray]:
    """A spread of 4-24 cards in rows and columns, as collectors lay them out or a binder page holds them:
    one direction for all (a few turned 180°), small gaps, the grid anywhere (cards past the frame's edge
    are left out when their centre is)."""
    w, h = size_wh
    rows, cols = int(rng.integers(2, 5)), int(rng.integers(2, 7))
    long_px = h * rng.uniform(0.12, 0.42)
    short_px = long_px * CARD_ASPECT_W_OVER_H
    gap = short_px * rng.uniform(0.03, 0.3)
    angle = (0.0 if rng.random() < 0.6 else math.pi / 2 * int(rng.integers(4))) + rng.normal(0, 0.08)
    c, s = math.cos(angle), math.sin(angle)
    centre = np.array([w, h]) * rng.uniform(0.3, 0.7, 2)
    quads = []
    for row in range(rows):
        for col in range(cols):
            local = np.array([(col - (cols - 1) / 2) * (short_px + gap), (row - (rows - 1) / 2) * (long_px + gap)])
            at = centre + local @ np.array([[c, s], [-s, c]]) + rng.normal(0, 0.015 * long_px, 2)
            if not (0 <= at[0] < w and 0 <= at[1] < h):
                continue
            turn = math.pi if rng.random() < 0.1 else 0.0
            quads.append(_card_quad(rng, size_wh, long_px, at, angle + turn + rng.normal(0, 0.03)))
    return quads


def _paste(canvas: np.ndarray, cover: np.ndarray, img: np.ndarray, alpha: np.ndarray, quad: np.ndarray) -> None:
    """Warp ``img`` onto ``quad`` of the float canvas (alpha-blended); ``cover`` collects the coverage."""
    h, w = img.shape[:2]
    src = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], np.float32)
    m = cv2.getPerspectiveTransform(src, quad.astype(np.float32))
    size = (canvas.shape[1], canvas.shape[0])
    warped = cv2.warpPerspective(img, m, size, flags=cv2.INTER_AREA if _shrinks(quad, h) else cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    a = cv2.warpPerspective(alpha, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    canvas *= 1.0 - a[..., None]
    canvas += warped * a[..., None]
    np.maximum(cover, a, out=cover)


def _shrinks(quad: np.ndarray, h: int) -> bool:
    return float(np.linalg.norm(quad[3] - quad[0])) < 0.7 * h


def _sleeve(rng: np.random.Generator, quad: np.ndarray) -> np.ndarray:
    """The sleeve's outline: the card's quad grown by 2-6 % (the label stays the card's corners)."""
    centre = quad.mean(axis=0)
    return np.asarray(centre + (quad - centre) * rng.uniform(1.02, 1.07))


def _finger(canvas: np.ndarray, rng: np.random.Generator, target: np.ndarray, card_long_px: float,
            from_centre: np.ndarray) -> None:
    """A finger (shaded capsule) reaching over ``target`` from outside the card."""
    tone = np.array(SKIN_TONES_BGR[int(rng.integers(len(SKIN_TONES_BGR)))], np.float32) * rng.uniform(0.8, 1.15)
    out = target - from_centre
    out /= max(1e-6, float(np.linalg.norm(out)))
    out = out + rng.normal(0, 0.35, 2)
    out /= max(1e-6, float(np.linalg.norm(out)))
    tip = target - out * rng.uniform(0.0, 0.15) * card_long_px
    base = target + out * rng.uniform(0.4, 1.0) * card_long_px
    width = max(3, round(rng.uniform(0.07, 0.13) * card_long_px))
    layer: np.ndarray = np.zeros(canvas.shape[:2], np.float32)
    cv2.line(layer, (round(tip[0]), round(tip[1])), (round(base[0]), round(base[1])), 1.0, width, cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (0, 0), max(0.6, 0.12 * width))
    shade = cv2.GaussianBlur(layer, (0, 0), max(1.0, 0.3 * width))
    colour = tone[None, None, :] * (0.65 + 0.45 * shade[..., None])
    a = np.clip(layer * 1.4, 0, 1)[..., None]
    canvas *= 1 - a
    canvas += colour * a


def _hand(canvas: np.ndarray, rng: np.random.Generator, card_long_px: float, card_centre: np.ndarray) -> None:
    """A hand from the nearest frame edge: a palm blob and fingers, one of them over the card."""
    h, w = canvas.shape[:2]
    tone = np.array(SKIN_TONES_BGR[int(rng.integers(len(SKIN_TONES_BGR)))], np.float32)
    edges = [np.array([card_centre[0], h + 0.3 * card_long_px]), np.array([-0.3 * card_long_px, card_centre[1]]),
             np.array([w + 0.3 * card_long_px, card_centre[1]]), np.array([card_centre[0], -0.3 * card_long_px])]
    palm = edges[int(rng.integers(4))] + rng.normal(0, 0.2 * card_long_px, 2)
    layer: np.ndarray = np.zeros((h, w), np.float32)
    r = rng.uniform(0.3, 0.55) * card_long_px
    cv2.ellipse(layer, (round(palm[0]), round(palm[1])), (round(r), round(r * 0.8)), float(rng.uniform(0, 180)), 0,
                360, 1.0, -1, cv2.LINE_AA)
    direction = card_centre - palm
    base_angle = math.atan2(direction[1], direction[0])
    for k in range(int(rng.integers(1, 5))):
        a = base_angle + (k - 1.5) * rng.uniform(0.15, 0.35)
        length = rng.uniform(0.5, 1.1) * card_long_px
        end = palm + length * np.array([math.cos(a), math.sin(a)])
        width = max(3, round(rng.uniform(0.08, 0.13) * card_long_px))
        cv2.line(layer, (round(palm[0]), round(palm[1])), (round(end[0]), round(end[1])), 1.0, width, cv2.LINE_AA)
    layer = cv2.GaussianBlur(layer, (0, 0), 1.0)
    shade = cv2.GaussianBlur(layer, (0, 0), 0.08 * card_long_px + 1)
    colour = tone[None, None, :] * (0.6 + 0.5 * shade[..., None])
    alpha = layer[..., None]
    canvas *= 1 - alpha
    canvas += colour * alpha


def _distractor(canvas: np.ndarray, rng: np.random.Generator, size_wh: tuple[int, int]) -> None:
    """A rectangle that is not a card (book, phone, paper, coaster): other aspect ratios, flat or textured."""
    w, h = size_wh
    aspect = float(rng.choice([1.0, 1.414, 0.5625, 1.6, 0.45, 2.5]))
    long_px = rng.uniform(0.15, 0.8) * h
    hw, hh = long_px / 2 * min(1.0, aspect), long_px / 2 / max(1.0, aspect)
    q = np.array([[-hw, -hh], [hw, -hh], [hw, hh], [-hw, hh]])
    a = rng.uniform(0, math.pi)
    q = q @ np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]]) + rng.uniform([0, 0], [w, h])
    colour = rng.uniform(0, 255, 3)
    layer = np.zeros((h, w), np.float32)
    cv2.fillConvexPoly(layer, np.round(q * 4).astype(np.int32), 1.0, cv2.LINE_AA, shift=2)
    tex = procedural_background(rng, size_wh, colour) if rng.random() < 0.5 else None
    fill = tex.astype(np.float32) if tex is not None else colour.astype(np.float32)[None, None, :]
    canvas *= 1 - layer[..., None]
    canvas += fill * layer[..., None]


# --- photometric -------------------------------------------------------------------------------

def _lighting(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.6:   # light falling off across the scene
        a = rng.uniform(0, 2 * math.pi)
        g = ((xx - w / 2) * math.cos(a) + (yy - h / 2) * math.sin(a)) / max(w, h)
        img = img * (1.0 + rng.uniform(0.2, 0.9) * g)[..., None]
    if rng.random() < 0.4:   # vignette
        d2 = ((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2
        img = img * (1.0 - rng.uniform(0.2, 0.8) * d2)[..., None]
    if rng.random() < 0.35:  # a soft shadow (a hand, the phone) over part of the scene
        layer: np.ndarray = np.zeros((h, w), np.float32)
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        axes = (int(rng.integers(w // 8, w // 2)), int(rng.integers(h // 8, h // 2)))
        cv2.ellipse(layer, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        layer = cv2.GaussianBlur(layer, (0, 0), rng.uniform(3, 15))
        img = img * (1.0 - rng.uniform(0.25, 0.6) * layer)[..., None]
    if rng.random() < 0.3:   # a specular glare spot anywhere (lamp on a glossy sleeve or table)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sx, sy = rng.uniform(0.03, 0.2) * w, rng.uniform(0.03, 0.15) * h
        spot = np.exp(-0.5 * (((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2))
        img = img * (1 - 0.9 * spot[..., None]) + 255 * 0.9 * spot[..., None]
    # exposure and white balance
    img = img * rng.uniform(0.55, 1.35) * rng.uniform(0.85, 1.15, 3)[None, None, :]
    return img


def _camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    if rng.random() < 0.25:
        out = augment.motion_blur(out, rng)
    elif rng.random() < 0.25:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.6))
    if rng.random() < 0.6:
        out = augment.sensor_noise(out, rng) if rng.random() < 0.5 else np.clip(
            out.astype(np.float32) + rng.normal(0, rng.uniform(1, 6), out.shape), 0, 255).astype(np.uint8)
    if rng.random() < 0.6:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 95))])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out = decoded
    return out


# --- the scene ---------------------------------------------------------------------------------

def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    from cardsorter.core.card_detector_decode import quad_overlap
    return quad_overlap(a, b)


def compose(faces: Sequence[np.ndarray], backgrounds: Sequence[np.ndarray], rng: np.random.Generator,
            size_wh: tuple[int, int] = (256, 192)) -> tuple[np.ndarray, list[SceneCardLabel]]:
    """One training scene (BGR uint8, ``size_wh``) and its cards; ``faces`` must not be empty."""
    if not faces:
        raise ValueError("compose needs at least one card face")
    w, h = size_wh
    r = rng.random()
    n_cards = 0 if r < 0.05 else 1 if r < 0.55 else int(rng.integers(2, 7))
    grid = _grid_quads(rng, size_wh) if rng.random() < GRID_SHARE else None
    if grid is not None:
        n_cards = len(grid)
    near_border = rng.random() < 0.2     # the background takes the colour of a card's border
    card_imgs = [_face(faces, rng) for _ in range(n_cards)]
    tint = None
    if near_border and card_imgs:
        edge = card_imgs[0][0]
        tint = np.concatenate([edge[:4].reshape(-1, 3), edge[:, :4].reshape(-1, 3)]).mean(axis=0) + rng.normal(0, 8, 3)
    canvas = _background(backgrounds, rng, size_wh, tint).astype(np.float32)
    for _ in range(int(rng.poisson(0.6))):
        _distractor(canvas, rng, size_wh)
    cover = np.zeros((h, w), np.float32)
    labels: list[tuple[np.ndarray, bool, np.ndarray]] = []
    if n_cards == 1:
        long_frac = rng.uniform(0.18, 1.0) ** 0.8
    else:
        long_frac = rng.uniform(0.15, 0.55)
    base_angle = 0.0 if rng.random() < 0.75 else rng.uniform(0, 2 * math.pi)
    for i, (img, alpha) in enumerate(card_imgs):
        long_px = h * long_frac * rng.uniform(0.85, 1.15)
        double = i > 0 and rng.random() < 0.15 and bool(labels) and grid is None
        for _attempt in range(1 if grid is not None else 12):
            if grid is not None:     # a spread's place is fixed: no second try
                quad = grid[i]
                if all(_overlap(quad, q) < 0.04 for q, _, _ in labels):
                    break
                continue
            angle = base_angle + rng.normal(0, 0.25) + (math.pi if rng.random() < 0.25 else 0.0)
            if rng.random() < 0.15:
                angle = rng.uniform(0, 2 * math.pi)
            if double:
                prev = labels[-1][0]
                centre = prev.mean(axis=0) + rng.uniform(0.18, 0.4, 2) * rng.choice([-1, 1], 2) * long_px * 0.8
            else:
                margin = 0.3 * long_px if rng.random() < 0.9 else -0.1 * long_px   # some cards cut by the edge
                centre = rng.uniform([min(margin, w / 2), min(margin, h / 2)],
                                     [max(w - margin, w / 2 + 1), max(h - margin, h / 2 + 1)])
            quad = _card_quad(rng, size_wh, long_px, centre, angle)
            if double or all(_overlap(quad, q) < 0.04 for q, _, _ in labels):
                break
        else:
            continue
        if rng.random() < (0.6 if grid is not None else 0.3):   # a sleeve (binder pages: a pocket each)
            sleeve = _sleeve(rng, quad)
            sl_img = np.full((img.shape[0] + 8, img.shape[1] + 8, 3), rng.uniform(150, 255), np.uint8)
            sl_alpha = np.full(sl_img.shape[:2], rng.uniform(0.15, 0.5), np.float32)
            _paste(canvas, np.zeros_like(cover), sl_img, sl_alpha, sleeve)
        if rng.random() < 0.3:   # a cast shadow offset from the card
            shadow: np.ndarray = np.zeros((h, w), np.float32)
            off = rng.normal(0, 0.03, 2) * long_px
            cv2.fillConvexPoly(shadow, np.round((quad + off) * 4).astype(np.int32), 1.0, cv2.LINE_AA, shift=2)
            shadow = cv2.GaussianBlur(shadow, (0, 0), 1 + 0.02 * long_px)
            canvas *= (1 - rng.uniform(0.2, 0.5) * shadow)[..., None]
        before = cover.copy()
        _paste(canvas, cover, img, alpha, quad)
        labels.append((quad, bool(double), before))
    # hands and fingers (over cards and their corners)
    for q, _, _ in labels:
        lp = float(np.linalg.norm(q[3] - q[0]))
        if rng.random() < 0.25:
            k = int(rng.integers(4))
            target = q[k] if rng.random() < 0.7 else (q[k] + q[(k + 1) % 4]) / 2
            _finger(canvas, rng, target, lp, q.mean(axis=0))
        elif rng.random() < 0.08:
            _hand(canvas, rng, lp, q.mean(axis=0))
    canvas = _lighting(canvas, rng)
    image = _camera(canvas, rng)
    out: list[SceneCardLabel] = []
    for i, (q, double, _) in enumerate(labels):
        # share of this card hidden by cards pasted after it
        later = [labels[j][0] for j in range(i + 1, len(labels))]
        hidden = max((_overlap(q, p) for p in later), default=0.0)
        out.append(SceneCardLabel(q, float(hidden), double or any(labels[j][1] for j in range(i + 1, len(labels))
                                                                    if _overlap(q, labels[j][0]) > 0.04)))
    return image, out
