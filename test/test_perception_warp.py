"""Perspective warp from four corners and the Laplacian sharpness measure."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from perception_support import card_corners, card_image

from cardsorter.core.errors import ImageError
from cardsorter.core.warp import card_homography, laplacian_sharpness, warp_card


def known_homography() -> np.ndarray:
    return np.array([[0.55, -0.12, 210.0], [0.09, 0.6, 70.0], [0.0002, -0.0003, 1.0]])


def test_warp_recovers_the_card_through_a_known_homography() -> None:
    card = card_image(3)
    h_true = known_homography()
    frame = cv2.warpPerspective(card, h_true, (640, 480), flags=cv2.INTER_CUBIC)
    corners = cv2.perspectiveTransform(card_corners().reshape(1, 4, 2), h_true).reshape(4, 2)
    quad = tuple((float(x), float(y)) for x, y in corners)
    crop = warp_card(frame, quad, (125, 175))  # type: ignore[arg-type]
    expected = cv2.resize(card, (125, 175), interpolation=cv2.INTER_AREA)
    inner = (slice(4, -4), slice(4, -4))
    assert float(np.mean(np.abs(crop[inner].astype(int) - expected[inner].astype(int)))) < 8.0


def test_homography_is_the_inverse_of_the_projection_scaled_to_the_crop() -> None:
    h_true = known_homography()
    corners = cv2.perspectiveTransform(card_corners().reshape(1, 4, 2), h_true).reshape(4, 2)
    quad = tuple((float(x), float(y)) for x, y in corners)
    h_est = card_homography(quad, (250, 350))  # type: ignore[arg-type]
    product = h_est @ h_true
    np.testing.assert_allclose(product / product[2, 2], np.eye(3), atol=1e-4)  # float32 corners


def test_sharpness_drops_with_blur() -> None:
    card = card_image(4)
    assert laplacian_sharpness(cv2.GaussianBlur(card, (0, 0), 2.0)) < 0.2 * laplacian_sharpness(card)


def test_warp_rejects_a_grey_image() -> None:
    with pytest.raises(ImageError):
        warp_card(np.zeros((40, 40), np.uint8), ((0, 0), (10, 0), (10, 10), (0, 10)), (8, 8))
