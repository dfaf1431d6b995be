"""Card nuisances: deterministic for a generator state, same shape, they change the image."""

from __future__ import annotations

import numpy as np
import pytest

from cardsorter.sim import augment
from cardsorter.sim.catalog import render_catalog


@pytest.fixture(scope="module")
def card() -> np.ndarray:
    return render_catalog(3, seed=11)[0][1]


@pytest.mark.parametrize("name", sorted(augment.NUISANCES))
def test_nuisance_is_deterministic_and_keeps_shape(card: np.ndarray, name: str) -> None:
    a = augment.apply(name, card, np.random.default_rng(5))
    b = augment.apply(name, card, np.random.default_rng(5))
    assert a.shape == card.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, card)


def test_occlusion_covers_the_requested_fraction() -> None:
    img = np.full((350, 250, 3), (1, 2, 3), np.uint8)
    for seed in range(5):
        out = augment.occlusion(img, np.random.default_rng(seed), 0.2)
        covered = np.mean(np.any(out != img, axis=2))
        assert 0.17 < covered <= 0.22


def test_rotation_is_exactly_180_degrees(card: np.ndarray) -> None:
    out = augment.rotate_180(card, np.random.default_rng(0))
    assert np.array_equal(out[::-1, ::-1], card)


def test_random_augment_is_deterministic(card: np.ndarray) -> None:
    a = augment.random_augment(card, np.random.default_rng(3))
    b = augment.random_augment(card, np.random.default_rng(3))
    assert np.array_equal(a, b)


def test_unknown_nuisance_is_named() -> None:
    with pytest.raises(KeyError, match="sparkles"):
        augment.apply("sparkles", np.zeros((4, 4, 3), np.uint8), np.random.default_rng(0))


def test_rejects_a_grey_image() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        augment.sleeve_glare(np.zeros((10, 10), np.uint8), np.random.default_rng(0))
