"""Perspective rectification of a card from its four corners, and crop sharpness."""

from __future__ import annotations

import cv2
import numpy as np

from cardsorter.core.errors import ImageError
from cardsorter.core.types import Quad


def check_bgr_image(image_bgr: np.ndarray, what: str = "image") -> None:
    """Raise ImageError unless ``image_bgr`` is a non-empty HxWx3 uint8 array."""
    if not isinstance(image_bgr, np.ndarray):
        raise ImageError(f"{what} must be a numpy array, got {type(image_bgr).__name__}")
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.dtype != np.uint8:
        raise ImageError(f"{what} must be HxWx3 uint8 (BGR), got shape {image_bgr.shape} dtype {image_bgr.dtype}")
    if image_bgr.shape[0] < 2 or image_bgr.shape[1] < 2:
        raise ImageError(f"{what} is too small: {image_bgr.shape[1]}x{image_bgr.shape[0]}")


def card_homography(quad: Quad, size_wh: tuple[int, int]) -> np.ndarray:
    """3x3 homography mapping image pixels inside ``quad`` onto a ``size_wh`` crop.

    The quad's corners are the card's outer corners in continuous pixel coordinates (pixel centres
    at integers), so they map onto the crop's outer pixel edges at -0.5 and size - 0.5.
    """
    w, h = size_wh
    if w < 1 or h < 1:
        raise ValueError(f"crop size must be positive, got {size_wh}")
    src = np.asarray(quad, dtype=np.float32).reshape(4, 2)
    if not np.all(np.isfinite(src)):
        raise ValueError(f"quad has non-finite corners: {quad}")
    dst = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]], dtype=np.float32)
    return cv2.getPerspectiveTransform(src, dst)


def quad_height_px(quad: Quad) -> float:
    """The card's height in pixels along ``quad`` (clockwise from its top-left): the mean of its two long sides."""
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2)
    return 0.5 * (float(np.linalg.norm(q[3] - q[0])) + float(np.linalg.norm(q[2] - q[1])))


def warp_card_closeup(image_bgr: np.ndarray, quad: Quad, size_wh: tuple[int, int]) -> np.ndarray:
    """As warp_card, area-averaged when the quad covers more pixels than the crop (a closeup from a larger
    stream), bilinear when fewer."""
    matrix = card_homography(quad, size_wh)
    flags = cv2.INTER_AREA if quad_height_px(quad) > size_wh[1] else cv2.INTER_LINEAR
    return np.asarray(cv2.warpPerspective(image_bgr, matrix, size_wh, flags=flags, borderMode=cv2.BORDER_REPLICATE))


def warp_card(image_bgr: np.ndarray, quad: Quad, size_wh: tuple[int, int]) -> np.ndarray:
    """The card inside ``quad`` (clockwise from its top-left) rectified to ``size_wh`` (BGR uint8)."""
    check_bgr_image(image_bgr)
    matrix = card_homography(quad, size_wh)
    return cv2.warpPerspective(image_bgr, matrix, size_wh, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def laplacian_sharpness(image_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: higher is sharper (compare equal-sized crops)."""
    check_bgr_image(image_bgr)
    grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())
