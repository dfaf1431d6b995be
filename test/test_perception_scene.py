"""Synthetic scene: plan, nuisances, kinematics and ground truth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from perception_support import card_image, detector

from cardsorter.core.detection import CLASS_DOUBLE_FEED
from cardsorter.core.errors import ConfigError
from cardsorter.core.types import BoxPx
from cardsorter.settings import load_settings
from cardsorter.sim.scene import (
    NUISANCES,
    NuisanceConfig,
    SceneCard,
    SyntheticScene,
    card_id_from_filename,
    read_catalog_dir,
)

SIZE = (640, 480)


@pytest.fixture
def cards(tmp_path: Path) -> list[SceneCard]:
    (tmp_path / "images").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "images" / f"sv2-{i}_Card.png"), card_image(i))
    return read_catalog_dir(tmp_path)


def scene(images: list[SceneCard], nuisances: NuisanceConfig, **overrides: object) -> SyntheticScene:
    cfg = dataclasses.replace(load_settings().camera.synthetic.scene, **overrides)  # type: ignore[arg-type]
    return SyntheticScene(cfg, nuisances, images, 30.0, SIZE)


def only(name: str) -> NuisanceConfig:
    return dataclasses.replace(NuisanceConfig.none(), **{name: 1.0})


def test_card_id_is_the_stem_before_the_first_underscore() -> None:
    assert card_id_from_filename(Path("sv10-38_Pikachu_ex.png")) == "sv10-38"
    assert card_id_from_filename(Path("base1-4h.png")) == "base1-4h"


def test_catalog_without_images_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no images"):
        read_catalog_dir(tmp_path)


@pytest.mark.parametrize("name", [n for n in NUISANCES if n not in ("close", "empty")])
def test_every_nuisance_renders_and_is_named_in_the_ground_truth(cards: list[SceneCard], name: str) -> None:
    sc = scene(cards, only(name), cards=2, mode="station")
    tagged = 0
    for i in range(0, sc.frame_count, 4):
        frame, truth = sc.render(i)
        assert frame.shape == (SIZE[1], SIZE[0], 3) and frame.dtype == np.uint8
        tagged += sum(name in g.nuisances for g in truth)
    assert tagged > 0


def test_station_card_stays_still_for_its_dwell_time(cards: list[SceneCard]) -> None:
    sc = scene(cards, NuisanceConfig.none(), cards=1, mode="station", station_dwell_s=1.0, station_move_s=0.2)
    quads = [sc.render(i)[1][0].quad_px for i in range(8, 36)]   # 0.27 s .. 1.2 s: dropped and resting
    assert all(q == quads[0] for q in quads)
    assert sc.render(sc.frame_count - 1)[1] == [] or not sc.render(sc.frame_count - 1)[1][0].inside(SIZE)


def test_belt_cards_move_at_the_belt_speed(cards: list[SceneCard]) -> None:
    sc = scene(cards, NuisanceConfig.none(), cards=1, mode="belt", belt_speed_px_per_s=300.0)
    a, b = sc.render(30)[1][0].quad_px, sc.render(33)[1][0].quad_px
    assert b[0][0] - a[0][0] == pytest.approx(30.0)
    assert b[0][1] == pytest.approx(a[0][1])


def test_rotated_card_truth_starts_at_its_own_top_left(cards: list[SceneCard]) -> None:
    sc = scene(cards, only("rotated_180"), cards=1, mode="station", max_angle_deg=0.0)
    _, truth = sc.render(20)
    quad = np.asarray(truth[0].quad_px)
    assert quad[0][1] > quad[2][1] and quad[0][0] > quad[2][0]   # top-left corner is at the bottom right


def test_double_feed_is_one_physical_card_that_the_detector_flags(cards: list[SceneCard]) -> None:
    sc = scene(cards, only("double_feed"), cards=1, mode="station")
    frame, truth = sc.render(20)
    assert len(truth) == 1 and "double_feed" in truth[0].nuisances
    found = detector().detect(frame)
    assert [d.class_name for d in found] == [CLASS_DOUBLE_FEED]
    assert found[0].bbox_px.iou(BoxPx.from_quad(truth[0].quad_px)) > 0.3


def test_empty_stretch_lengthens_the_run(cards: list[SceneCard]) -> None:
    plain = scene(cards, NuisanceConfig.none(), cards=3, mode="belt")
    gappy = scene(cards, only("empty"), cards=3, mode="belt")
    assert gappy.frame_count > plain.frame_count + 30
