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
    BAND_HEIGHT,
    CORNERS_X,
    DETECT_CARD_HEIGHT_PX,
    FIXED_BOXES,
    MIN_CARD_HEIGHT_PX,
    TEXT_SCORE,
    RapidOcrReader,
)
from cardsorter.core.errors import ImageError, ModelError

Line = tuple[str, float] | tuple[str, float, tuple[float, float, float, float]]


class FakeRapidOCR:
    """rapidocr_onnxruntime 1.4.4's surface: ``RapidOCR()(img)`` returns (result, elapse), result a list of
    [box (4 [x, y] points clockwise from the top-left), text, score] or, when the detector finds no text,
    (None, None); ``RapidOCR()(img, use_rec=False)`` returns ([box, ...], [det elapse]) or (None, None);
    ``get_crop_img_list(img, boxes)`` cuts each box out (here: its bounding rectangle);
    ``text_rec(img_list)`` (recognition only) returns ([(text, score), ...], elapse seconds).

    ``detected``: one list of lines per detection call, in call order; a line is (text, score) or (text,
    score, (x0, y0, x1, y1)), its box as fractions of the image (default: the full height, 2 px narrower
    per line, so every line's box has its own width). Recognising one image the size of a box detected so far
    returns that box's line (boxes told apart by their size); any other call returns ``recognised``."""

    def __init__(self, detected: list[list[Line]], recognised: list[tuple[str, float]]) -> None:
        self._detected = list(detected)
        self._recognised = recognised
        self._by_box: dict[tuple[int, int], tuple[str, float]] = {}   # every detection's boxes so far
        self.det_crops: list[np.ndarray] = []
        self.rec_crops: list[np.ndarray] = []
        self.rec_texts: list[str] = []     # what each recognition of a detected box returned, in call order

    def __call__(self, img_content: np.ndarray, use_det: bool | None = None, use_cls: bool | None = None,
                 use_rec: bool | None = None, **kwargs: Any) -> tuple[Any, Any]:
        self.det_crops.append(img_content)
        lines = self._detected.pop(0)
        if not lines:
            return None, None
        h, w = img_content.shape[:2]
        boxes = []
        for i, line in enumerate(lines):
            x0, y0, x1, y1 = line[2] if len(line) == 3 else (0.0, 0.0, (w - 2 * i) / w, 1.0)
            box = [[x0 * w, y0 * h], [x1 * w, y0 * h], [x1 * w, y1 * h], [x0 * w, y1 * h]]
            boxes.append(box)
            self._by_box[(int(x1 * w - x0 * w), int(y1 * h - y0 * h))] = (line[0], line[1])
        if use_rec is False:
            return boxes, [0.01]
        return [[box, line[0], np.float32(line[1])] for box, line in zip(boxes, lines)], [0.01, 0.0, 0.02]

    @staticmethod
    def get_crop_img_list(img: np.ndarray, dt_boxes: list[np.ndarray]) -> list[np.ndarray]:
        crops = []
        for b in dt_boxes:
            x0, y0 = np.floor(b.min(axis=0)).astype(int)
            crops.append(img[y0:y0 + int(b[2][1] - b[0][1]), x0:x0 + int(b[1][0] - b[0][0])])
        return crops

    def text_rec(self, img_list: list[np.ndarray], return_word_box: bool = False) -> tuple[Any, float]:
        self.rec_crops.extend(img_list)
        size = (img_list[0].shape[1], img_list[0].shape[0]) if len(img_list) == 1 else (-10, -10)
        near = [b for b in self._by_box if abs(b[0] - size[0]) <= 1 and abs(b[1] - size[1]) <= 1]  # rounding
        if near:
            text, score = self._by_box[near[0]]
            self.rec_texts.append(text)
            return [(text, np.float32(score))], 0.01
        return [(text, np.float32(score)) for text, score in self._recognised], 0.03


def card_image(height: int = 700, width: int = 501) -> np.ndarray:
    return np.full((height, width, 3), 200, np.uint8)


def test_detection_on_the_two_bottom_corners_reads_the_number() -> None:
    fake = FakeRapidOCR(detected=[[("MEW EN 025/165", 0.98)], [("Illus. Ken", 0.9)]], recognised=[])
    reading = RapidOcrReader(fake).read(card_image(700, 501))
    assert [n.text for n in reading.numbers] == ["025/165"]
    assert "MEW" in reading.codes
    assert reading.method == "detect"
    assert fake.rec_texts == ["MEW EN 025/165"]    # the number is read: the other corner's box is not
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


def box(y0: float, y1: float, x0: float = 0.1, x1: float = 0.6) -> tuple[float, float, float, float]:
    """A box on the bottom-left corner crop of a 700 px card, its rows as fractions of the card height."""
    band_top = 1 - BAND_HEIGHT
    return (x0, (y0 - band_top) / BAND_HEIGHT, x1, (y1 - band_top) / BAND_HEIGHT)


def test_boxes_are_recognised_nearest_the_number_line_first_and_reading_stops_at_the_number() -> None:
    left = [("Illus. Ken Sugimori", 0.9, box(0.915, 0.935)),
            ("025/165", 0.99, box(0.948, 0.968, 0.35, 0.6)),
            ("Weakness x2", 0.9, box(0.890, 0.910))]
    right = [("flavour text line", 0.95, box(0.925, 0.945, 0.0, 0.9)),
             ("GAME FREAK", 0.99, box(0.976, 0.994, 0.0, 0.3))]
    fake = FakeRapidOCR(detected=[left, right], recognised=[])
    reading = RapidOcrReader(fake).read(card_image(700, 501))
    assert [n.text for n in reading.numbers] == ["025/165"]
    # the right corner's "GAME FREAK" (0.985) is as near its number line (0.963) as the illustrator is to
    # the left one's (0.958), and nearer than the flavour text: once the number is read, neither is
    assert fake.rec_texts == ["025/165"]


def test_the_rest_of_the_number_line_is_recognised_for_the_set_code() -> None:
    left = [("MEW EN", 0.97, box(0.940, 0.964, 0.2, 0.35)),
            ("025/165", 0.99, box(0.948, 0.968, 0.37, 0.6)),
            ("Illus. Ken Sugimori", 0.9, box(0.915, 0.935))]
    fake = FakeRapidOCR(detected=[left, []], recognised=[])
    reading = RapidOcrReader(fake).read(card_image(700, 501))
    assert [n.text for n in reading.numbers] == ["025/165"]
    assert "MEW" in reading.codes
    assert sorted(fake.rec_texts) == ["025/165", "MEW EN"]


def test_every_box_is_recognised_when_none_reads_as_a_number() -> None:
    left = [("Illus. Ken", 0.9, box(0.915, 0.935)), ("Pikachu", 0.9, box(0.945, 0.965, 0.1, 0.4))]
    right = [("GAME FREAK", 0.99, box(0.976, 0.994, 0.0, 0.3))]
    fake = FakeRapidOCR(detected=[left, right, [], []], recognised=[("", 0.0), ("", 0.0)])
    reading = RapidOcrReader(fake).read(card_image(700, 501))
    assert reading.numbers == ()
    assert sorted(fake.rec_texts) == ["GAME FREAK", "Illus. Ken", "Pikachu"]


def test_a_line_below_rapidocrs_text_score_is_dropped() -> None:
    fake = FakeRapidOCR(detected=[[("025/165", TEXT_SCORE - 0.01)], [], [], []], recognised=[("", 0.0)] * 2)
    reading = RapidOcrReader(fake).read(card_image(700, 501))
    assert reading.numbers == ()
    assert "025/165" not in [text for text, _score in reading.lines]


@pytest.mark.skipif(importlib.util.find_spec("rapidocr_onnxruntime") is None,
                    reason="the optional package rapidocr-onnxruntime is not installed (docs/PRINTINGS.md)")
def test_the_real_engine_detects_boxes_without_recognising_them() -> None:
    """The reader relies on use_rec=False returning the boxes alone (rapidocr 1.4.4's get_final_res)."""
    from cardsorter.backends.printing_ocr import _load_rapidocr
    img = np.full((120, 320, 3), 235, np.uint8)
    cv2.putText(img, "025/165", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (20, 20, 20), 2, cv2.LINE_AA)
    boxes, _elapse = _load_rapidocr()(img, use_rec=False)
    assert boxes is not None and len(boxes) == 1
    assert np.asarray(boxes[0]).shape == (4, 2)
