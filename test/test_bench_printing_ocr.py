"""The printing-reader benchmark's ground truth from scan file names and its scan loading."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest

from cardsorter.bench.printing_ocr import BACKGROUND_GREY, load_scan, main, truth_from_name, with_nuisance


@pytest.mark.parametrize(("name", "truth"), [
    ("025_Pikachu.png", (25, 165, "sv151")),
    ("181_Charizard_ex.png", (181, 165, "sv151")),
    ("charizard-base-set-4.jpg", (4, 102, "wotc")),
    ("blastoise-base-set-2-2.jpg", (2, 130, "wotc")),
    ("dark-raichu-team-rocket-83.jpg", (83, 82, "wotc")),   # secret rare above the printed total
    ("pikachu-wizards-promo-1.jpg", None),                  # promos print no N/T
    ("README.md", None),
])
def test_ground_truth_comes_from_the_file_name(name: str, truth: tuple[int, int, str] | None) -> None:
    got = truth_from_name(pathlib.Path("/scans") / name, printed_total=165)
    assert (None if got is None else (got.number, got.total, got.layout)) == truth


def test_sv_names_without_a_printed_total_are_skipped() -> None:
    assert truth_from_name(pathlib.Path("025_Pikachu.png"), printed_total=0) is None


def test_a_transparent_corner_is_composited_on_grey(tmp_path: pathlib.Path) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[1:, :, 3] = 255          # the first row is transparent
    path = tmp_path / "001_X.png"
    cv2.imwrite(str(path), rgba)
    img = load_scan(path)
    assert img.shape == (4, 4, 3)
    assert img[0, 0].tolist() == [BACKGROUND_GREY] * 3
    assert img[2, 2].tolist() == [255, 255, 255]


def test_a_folder_without_named_scans_is_an_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"")
    with pytest.raises(SystemExit):
        main(["--images", str(tmp_path), "--printed-total", "165"])


def test_the_nuisances_change_the_image_and_an_unknown_one_is_named() -> None:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (60, 40, 3), dtype=np.uint8)
    assert with_nuisance(img, "clean") is img
    for nuisance in ("blur", "jpeg40"):
        out = with_nuisance(img, nuisance)
        assert out.shape == img.shape and out.dtype == np.uint8
        assert not np.array_equal(out, img)
    with pytest.raises(ValueError, match="fog"):
        with_nuisance(img, "fog")
