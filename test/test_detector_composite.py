"""The detector's training compositor (sim/composite.py): labelled, deterministic, varied scenes; no real data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cardsorter.sim.catalog import render_catalog
from cardsorter.sim.composite import compose, load_images, procedural_background


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    return [img for _, img in render_catalog(6, 3)]


def shoelace(q: np.ndarray) -> float:
    return 0.5 * float(np.dot(q[:, 0], np.roll(q[:, 1], -1)) - np.dot(np.roll(q[:, 0], -1), q[:, 1]))


def test_scenes_are_deterministic_for_a_seed(faces: list[np.ndarray]) -> None:
    a, la = compose(faces, [], np.random.default_rng(5))
    b, lb = compose(faces, [], np.random.default_rng(5))
    assert np.array_equal(a, b) and len(la) == len(lb)
    assert all(np.array_equal(x.quad_px, y.quad_px) for x, y in zip(la, lb, strict=True))


def test_labels_are_clockwise_card_shaped_quads_and_scenes_vary(faces: list[np.ndarray]) -> None:
    rng = np.random.default_rng(11)
    counts, sizes = [], []
    for _ in range(30):
        img, labels = compose(faces, [], rng, (256, 192))
        assert img.shape == (192, 256, 3) and img.dtype == np.uint8
        counts.append(len(labels))
        for lab in labels:
            q = lab.quad_px
            assert q.shape == (4, 2) and shoelace(q) > 0        # clockwise on screen (y down)
            short = np.linalg.norm(q[1] - q[0]) + np.linalg.norm(q[3] - q[2])
            long = np.linalg.norm(q[2] - q[1]) + np.linalg.norm(q[0] - q[3])
            assert 0.45 < short / long < 1.05                  # 63:88 in perspective
            sizes.append(float(np.linalg.norm(q[2] - q[0])))
            assert 0.0 <= lab.occluded_frac <= 1.0
    assert max(counts) >= 2 and min(counts) <= 1               # single- and multi-card scenes
    assert max(sizes) > 3 * min(sizes)                         # small in frame to filling most of it


def test_card_is_where_its_label_says(faces: list[np.ndarray]) -> None:
    # a plain face on a plain background: the label's inside differs from the background
    face = np.full((350, 250, 3), (30, 200, 240), np.uint8)
    rng = np.random.default_rng(2)
    for _ in range(10):
        img, labels = compose([face], [], rng)
        for lab in labels:
            if lab.occluded_frac > 0:
                continue
            centre = lab.quad_px.mean(axis=0)
            inner = (lab.quad_px - centre) * 0.3 + centre
            mask = np.zeros(img.shape[:2], np.uint8)
            cv2.fillConvexPoly(mask, np.round(inner).astype(np.int32), 1)
            if mask.sum() < 20 or not (0 <= centre[0] < 256 and 0 <= centre[1] < 192):
                continue
            hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
            hue = hsv[:, :, 0][mask > 0]
            # the face's hue (yellow-orange, ~25 on OpenCV's 0-180 scale) survives lighting and jitter
            assert np.median(np.abs(hue.astype(int) - 25)) < 20


def test_backgrounds_and_faces_are_read_from_folders(tmp_path: Path) -> None:
    bg = procedural_background(np.random.default_rng(1), (320, 240))
    cv2.imwrite(str(tmp_path / "a.jpg"), bg)
    (tmp_path / "broken.png").write_bytes(b"not a png")
    loaded = load_images(tmp_path, max_side_px=160)
    assert len(loaded) == 1 and max(loaded[0].shape[:2]) == 160
    assert load_images(tmp_path / "missing") == []


def test_compose_needs_a_face() -> None:
    with pytest.raises(ValueError, match="card face"):
        compose([], [], np.random.default_rng(0))


def test_a_spread_of_cards_lies_in_rows_and_columns(faces: list[np.ndarray], monkeypatch: pytest.MonkeyPatch) -> None:
    # real multi-card photos are mostly spreads and binder pages: many small cards, one direction, small gaps
    from cardsorter.sim import composite

    monkeypatch.setattr(composite, "GRID_SHARE", 1.0)
    rng = np.random.default_rng(4)
    for _ in range(6):
        _, labels = compose(faces, [], rng, (256, 192))
        assert len(labels) >= 2
        heights = [float(np.linalg.norm(lab.quad_px[3] - lab.quad_px[0])) for lab in labels]
        assert max(heights) < 1.6 * min(heights)               # one card size (each tilted a little)
        ups = [(lab.quad_px[0] + lab.quad_px[1] - lab.quad_px[2] - lab.quad_px[3]) / 2 for lab in labels]
        angles = np.degrees([np.arctan2(u[1], u[0]) for u in ups])
        turned = np.abs(((angles - angles[0]) + 180) % 360 - 180)
        assert all(t < 15 or t > 165 for t in turned)           # one direction, a few cards turned 180°
        assert not any(lab.double_feed for lab in labels)
        for i, a in enumerate(labels):                          # side by side, not on top of each other
            for b in labels[i + 1:]:
                assert composite._overlap(a.quad_px, b.quad_px) < 0.04
