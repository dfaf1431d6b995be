"""The RapidOCR printing reader (backends/printing_ocr.py) against a fake of rapidocr 1.4.4's API, and the
real engine when the optional package is installed."""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import cv2
import numpy as np
import pytest

from cardsorter.backends.printing_ocr import (
    CORNERS_X,
    DETECT_CARD_HEIGHT_PX,
    FIXED_BOXES,
    MIN_CARD_HEIGHT_PX,
    RapidOcrReader,
)
from cardsorter.core.errors import ImageError, ModelError


class FakeRapidOCR:
    """rapidocr_onnxruntime 1.4.4's surface: ``RapidOCR()(img)`` returns (result, elapse), result a list of
    [box (4 [x, y] points), text, score] or, when the detector finds no text, (None, None);
    ``text_rec(img_list)`` (recognition only) returns ([(text, score), ...], elapse seconds)."""

    def __init__(self, detected: list[list[tuple[str, float]]], recognised: list[tuple[str, float]]) -> None:
        self._detected = list(detected)   # one answer per __call__, in call order
        self._recognised = recognised
        self.det_crops: list[np.ndarray] = []
        self.rec_crops: list[np.ndarray] = []

    def __call__(self, img_content: np.ndarray, use_det: bool | None = None, use_cls: bool | None = None,
                 use_rec: bool | None = None, **kwargs: Any) -> tuple[Any, Any]:
        self.det_crops.append(img_content)
        lines = self._detected.pop(0)
        if not lines:
            return None, None
        h, w = img_content.shape[:2]
        box = [[0.0, 0.0], [float(w), 0.0], [float(w), float(h)], [0.0, float(h)]]
        return [[box, text, np.float32(score)] for text, score in lines], [0.01, 0.0, 0.02]

    def text_rec(self, img_list: list[np.ndarray], return_word_box: bool = False) -> tuple[Any, float]:
        self.rec_crops.extend(img_list)
        return [(text, np.float32(score)) for text, score in self._recognised], 0.03


def card_image(height: int = 700, width: int = 501) -> np.ndarray:
    return np.full((height, width, 3), 200, np.uint8)


def test_detection_on_the_two_bottom_corners_reads_the_number() -> None:
    fake = FakeRapidOCR(detected=[[("MEW EN 025/165", 0.98)], [("Illus. Ken", 0.9)]], recognised=[])
    reading = RapidOcrReader(fake).read(card_image(700, 501))
    assert [n.text for n in reading.numbers] == ["025/165"]
    assert "MEW" in reading.codes
    assert reading.method == "detect"
    assert fake.rec_crops == []
    # the bottom 12 % band (84 of 700 rows), upscaled to a 1000 px card, cut into its two corners
    scale = DETECT_CARD_HEIGHT_PX / 700
    band_w = round(501 * scale)
    assert [c.shape[0] for c in fake.det_crops] == [round(84 * scale)] * 2
    assert [c.shape[1] for c in fake.det_crops] == [int(x1 * band_w) - int(x0 * band_w) for x0, x1 in CORNERS_X]


def test_detection_finding_nothing_falls_back_to_recognition_on_the_fixed_boxes() -> None:
    fake = FakeRapidOCR(detected=[[], []], recognised=[("O25/l65", 0.91), ("", 0.0)])
    reading = RapidOcrReader(fake).read(card_image(1000, 716))
    assert [n.text for n in reading.numbers] == ["025/165"]
    assert reading.method == "fixed-box"
    assert len(fake.rec_crops) == len(FIXED_BOXES)
    x0, x1, y0, y1 = FIXED_BOXES["modern-bottom-left"]
    assert fake.rec_crops[0].shape[:2] == (int(np.ceil(y1 * 1000)) - int(y0 * 1000),
                                           int(np.ceil(x1 * 716)) - int(x0 * 716))


def test_a_card_below_the_minimum_height_is_not_read() -> None:
    fake = FakeRapidOCR(detected=[], recognised=[])
    reading = RapidOcrReader(fake).read(card_image(MIN_CARD_HEIGHT_PX - 1, 350))
    assert reading.numbers == ()
    assert "below" in reading.skipped
    assert fake.det_crops == [] and fake.rec_crops == []


def test_a_grey_image_is_refused_with_its_shape() -> None:
    with pytest.raises(ImageError, match="BGR uint8"):
        RapidOcrReader(FakeRapidOCR([], [])).read(np.zeros((700, 500), np.uint8))


def test_a_closed_reader_refuses_to_read() -> None:
    reader = RapidOcrReader(FakeRapidOCR([], []))
    reader.close()
    with pytest.raises(ModelError, match="closed"):
        reader.read(card_image())


def test_the_missing_package_is_named_with_its_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr_onnxruntime", None)   # import raises ImportError
    with pytest.raises(ModelError, match="rapidocr-onnxruntime.*pip install"):
        RapidOcrReader()


@pytest.mark.skipif(importlib.util.find_spec("rapidocr_onnxruntime") is None,
                    reason="the optional package rapidocr-onnxruntime is not installed (docs/PRINTINGS.md)")
def test_the_real_engine_reads_a_rendered_collector_number() -> None:
    card = np.full((1000, 716, 3), 235, np.uint8)
    cv2.putText(card, "025/165", (30, 965), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (20, 20, 20), 2, cv2.LINE_AA)
    with RapidOcrReader() as reader:
        reading = reader.read(card)
    assert [n.text for n in reading.numbers] == ["025/165"]


def test_fixed_boxes_always_adds_their_lines_to_a_detected_number() -> None:
    fake = FakeRapidOCR(detected=[[("105/165", 0.93)], []], recognised=[("MW106/165", 0.9), ("", 0.0)])
    reading = RapidOcrReader(fake, fixed_boxes="always").read(card_image(1000, 716))
    assert [n.text for n in reading.numbers] == ["105/165", "MW106/165"]
    assert reading.method == "detect+fixed-box"


def test_an_unknown_fixed_box_mode_is_refused() -> None:
    with pytest.raises(ModelError, match="fixed_boxes"):
        RapidOcrReader(FakeRapidOCR([], []), fixed_boxes="sometimes")
