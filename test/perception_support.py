"""Test helpers for perception: card-like images, scenes with known corners, configs from the YAML."""

from __future__ import annotations

import cv2
import numpy as np

from cardsorter.backends.detectors import CardFinder, open_detector
from cardsorter.core.frame_selection import FrameSelectorConfig
from cardsorter.core.tracking import TrackerConfig
from cardsorter.core.types import BoxPx, Detection, Quad
from cardsorter.settings import load_settings

CARD_WH = (250, 350)
BORDERS_BGR = ((40, 200, 235), (160, 165, 170), (170, 110, 50), (60, 60, 190))  # yellow, silver, blue, red
DARK_BELT_BGR = (60, 62, 58)
LIGHT_BELT_BGR = (225, 228, 222)


_DETECTOR: list[CardFinder] = []


def detector() -> CardFinder:
    """The default detector (detector.mode in config/sorter.yaml), loaded once per test process."""
    if not _DETECTOR:
        _DETECTOR.append(open_detector(load_settings().camera.detector))
    return _DETECTOR[0]


def tracker_config() -> TrackerConfig:
    return load_settings().frame_selector.tracker


def gate_config() -> FrameSelectorConfig:
    return load_settings().frame_selector.gate


def card_image(seed: int, wh: tuple[int, int] = CARD_WH) -> np.ndarray:
    """A card-like image: coloured border, colourful random art in the top half, light text box below."""
    rng = np.random.default_rng(seed)
    w, h = wh
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BORDERS_BGR[int(rng.integers(len(BORDERS_BGR)))]
    inner = (int(0.04 * w), int(0.03 * h), w - int(0.04 * w), h - int(0.03 * h))
    cv2.rectangle(img, inner[:2], (inner[2] - 1, inner[3] - 1), tuple(int(v) for v in rng.integers(170, 230, 3)), -1)
    art = cv2.resize(rng.integers(0, 255, (6, 9, 3)).astype(np.uint8), (int(0.84 * w), int(0.40 * h)),
                     interpolation=cv2.INTER_CUBIC)
    ax, ay = int(0.08 * w), int(0.14 * h)
    img[ay:ay + art.shape[0], ax:ax + art.shape[1]] = art
    for k in range(3):
        y = int((0.63 + 0.08 * k) * h)
        cv2.putText(img, f"Attack {seed % 97} {k}", (int(0.12 * w), y), cv2.FONT_HERSHEY_SIMPLEX, 0.45 * w / 250,
                    (25, 25, 25), 1, cv2.LINE_AA)
    return img


def card_corners(wh: tuple[int, int] = CARD_WH) -> np.ndarray:
    w, h = wh
    return np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], np.float64)


def pose_quad(centre: tuple[float, float], height_px: float, angle_deg: float, tilt: float = 0.0,
              wh: tuple[int, int] = CARD_WH) -> np.ndarray:
    """Corners (card top-left first, clockwise) of a card centred at ``centre``, rotated by angle_deg."""
    w, h = wh
    s = height_px / h
    corners = (card_corners(wh) - [(w - 1) / 2, (h - 1) / 2]) * s
    corners[:2, 0] *= 1.0 - tilt        # top side shorter: a perspective tilt
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return np.asarray(corners @ rot.T + np.asarray(centre))


def paste_card(frame: np.ndarray, card: np.ndarray, quad: np.ndarray) -> None:
    """Draw ``card`` into ``frame`` (in place) so its corners land on ``quad`` (anti-aliased edge)."""
    h, w = card.shape[:2]
    matrix = cv2.getPerspectiveTransform(card_corners((w, h)).astype(np.float32), quad.astype(np.float32))
    fh, fw = frame.shape[:2]
    # supersampled coverage mask so the edge position is exact to a fraction of a pixel
    ss = 4
    up = np.array([[ss, 0, (ss - 1) / 2], [0, ss, (ss - 1) / 2], [0, 0, 1]], np.float64)
    big = cv2.warpPerspective(np.full((h, w), 255, np.uint8), up @ matrix, (fw * ss, fh * ss), flags=cv2.INTER_NEAREST)
    alpha = cv2.resize(big, (fw, fh), interpolation=cv2.INTER_AREA).astype(np.float32)[:, :, None] / 255.0
    warped = cv2.warpPerspective(card, matrix, (fw, fh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    frame[:] = (warped * alpha + frame * (1.0 - alpha)).astype(np.uint8)


def scene(quads: list[np.ndarray], seeds: list[int], background: tuple[int, int, int] = (60, 62, 58),
          size_wh: tuple[int, int] = (640, 480)) -> np.ndarray:
    frame = np.empty((size_wh[1], size_wh[0], 3), np.uint8)
    frame[:] = background
    for quad, seed in zip(quads, seeds, strict=True):
        paste_card(frame, card_image(seed), quad)
    return frame


def as_quad(points: np.ndarray) -> Quad:
    p = [(float(x), float(y)) for x, y in points]
    return (p[0], p[1], p[2], p[3])


def box_detection(x: float, y: float, w: float = 60.0, h: float = 84.0, track_id: int = -1,
                  class_name: str = "card") -> Detection:
    box = BoxPx(x, y, w, h)
    quad = ((x, y), (x + w, y), (x + w, y + h), (x, y + h))
    return Detection(box, quad, 0.9, class_name, track_id=track_id)
