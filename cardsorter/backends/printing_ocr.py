"""Printing reader: OCR of the collector number and set code in the bottom band of a rectified card view.

RapidOCR (rapidocr-onnxruntime 1.4.4, the PP-OCRv4 models inside its wheel, on our pinned onnxruntime
1.22.1) was chosen by measurement on 200 real card scans (docs/PRINTINGS.md): 100/100 modern numbers
exact from 500 to 1024 px card height, none wrong; Tesseract read 35–64 %. It is not in the default
install (its wheel depends on opencv-python, which would shadow our opencv-python-headless): it is
imported only when a reader is built, and INSTALL_HINT says how to add it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, Self

import cv2
import numpy as np

from cardsorter.core.errors import ImageError, ModelError
from cardsorter.core.printing import ViewReading, read_lines

# --no-deps: rapidocr-onnxruntime declares opencv-python (GUI build), which would replace the cv2 of our
# opencv-python-headless; its other dependencies (numpy, onnxruntime, pillow, pyyaml) are in lock.txt.
INSTALL_HINT = ("pip install --no-deps rapidocr-onnxruntime==1.4.4 pyclipper==1.4.0 shapely==2.2.0 six==1.17.0 "
                "tqdm==4.70.1 (docs/PRINTINGS.md)")
# Facts from the research (docs/PRINTINGS.md), as fractions of the rectified card:
BAND_HEIGHT = 0.12                                # the number sits at 0.957 H (modern), 0.978 H (WOTC)
CORNERS_X = ((0.00, 0.45), (0.60, 1.00))          # bottom-left (modern layouts), bottom-right (WOTC era)
# Recognition-only fallback boxes (x0, x1, y0, y1) when the detector finds nothing (it fails on blur):
FIXED_BOXES = {"modern-bottom-left": (0.02, 0.40, 0.938, 0.978), "wotc-bottom-right": (0.70, 0.99, 0.950, 0.976)}
DETECT_CARD_HEIGHT_PX = 1000   # the band is upscaled (never down) to this card-height equivalent for detection
MIN_CARD_HEIGHT_PX = 500       # below: 13–17 % wrong reads at 350 px, so the view is not read at all
FIXED_BOX_MODES = ("fallback", "always")
DET_LIMIT_SIDE_PX = 2000       # the detector's input limit (rapidocr det_limit_type "max"), above the band's width
# Where each corner's collector number line sits (fraction of the card height): the fixed boxes' centres.
NUMBER_LINE_Y = ((FIXED_BOXES["modern-bottom-left"][2] + FIXED_BOXES["modern-bottom-left"][3]) / 2,
                 (FIXED_BOXES["wotc-bottom-right"][2] + FIXED_BOXES["wotc-bottom-right"][3]) / 2)
# The recogniser's input stays rapidocr's default 48x320 minimum (rec_img_shape). Narrower is cheaper (~39 ms a
# box at 320 px on one thread, ~12 ms at 96) but reads blurred numbers worse: at 96 or 160 px, 82 % of 100 real
# SV151 scans under blur at 700 px read exactly against 87 % at 320 (docs/PRINTINGS.md "Cost").
TEXT_SCORE = 0.5               # rapidocr's own cut (config text_score): recognised lines below it are dropped
SAME_LINE_OVERLAP = 0.5        # a box sharing this much of its height with the number's is on its line


class PrintingReader(Protocol):
    """Reads the printed collector number and set code of one rectified BGR uint8 card view."""

    def read(self, card_bgr: np.ndarray) -> ViewReading: ...

    def close(self) -> None: ...


def _load_rapidocr() -> Any:
    try:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-not-found, import-untyped, unused-ignore]
    except ImportError as err:
        raise ModelError(f"the printing reader needs the package rapidocr-onnxruntime ({err}); install it "
                         f"without its opencv-python: {INSTALL_HINT}") from err
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1, use_cls=False,
                    det_limit_type="max", det_limit_side_len=DET_LIMIT_SIDE_PX)


class RapidOcrReader:
    """PP-OCRv4 text detection on the two bottom corners, then recognition box by box, nearest the layouts'
    number line first, until a collector number is read (and the rest of its line, for the set code); one
    thread, no angle classifier; recognition alone on the layouts' fixed boxes when detection yields no
    collector number.

    Box by box rather than rapidocr's own ``engine(img)``: that recognises every detected box in batches of
    6 padded to the widest, and a real card's bottom band holds 4–8 boxes a corner (flavour text,
    illustrator, copyright), ~450 ms a view; a batch of 4 boxes costs 10x one box on one CPU thread
    (docs/PRINTINGS.md, "Cost")."""

    def __init__(self, engine: Any | None = None, *, fixed_boxes: str = "fallback",
                 upside_down_retry: bool = True) -> None:
        """``engine``: a RapidOCR instance (None: build one). ``fixed_boxes``: "fallback" recognises the fixed
        boxes only when detection yields no collector number; "always" adds their lines to every view
        (+~80 ms; a blurred detection can return a wrong number instead of none). ``upside_down_retry``:
        a view that yields no collector number is read once more turned by 180° (a card whose orientation
        the detector got wrong or did not know); it costs a second read only on such views."""
        if fixed_boxes not in FIXED_BOX_MODES:
            raise ModelError(f"fixed_boxes must be one of {', '.join(FIXED_BOX_MODES)}, got {fixed_boxes!r}")
        self._fixed_boxes = fixed_boxes
        self._upside_down_retry = upside_down_retry
        self._engine = engine if engine is not None else _load_rapidocr()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._engine = None

    def read(self, card_bgr: np.ndarray) -> ViewReading:
        engine = self._engine
        if engine is None:
            raise ModelError("the printing reader is closed")
        if card_bgr.ndim != 3 or card_bgr.shape[2] != 3 or card_bgr.dtype != np.uint8:
            raise ImageError(f"printing reader: a BGR uint8 card image expected, got shape {card_bgr.shape} "
                             f"dtype {card_bgr.dtype}")
        height = card_bgr.shape[0]
        if height < MIN_CARD_HEIGHT_PX:
            return ViewReading((), (), (), skipped=f"card {height} px high, below {MIN_CARD_HEIGHT_PX} px")
        reading = self._read_upright(engine, card_bgr)
        if reading.numbers or not self._upside_down_retry:
            return reading
        turned = self._read_upright(engine, cv2.rotate(card_bgr, cv2.ROTATE_180))
        if not turned.numbers:
            return reading
        return ViewReading(turned.lines, turned.numbers, turned.codes, f"{turned.method}, turned 180°")

    def _read_upright(self, engine: Any, card_bgr: np.ndarray) -> ViewReading:
        lines = self._read_detected(engine, card_bgr)
        reading = read_lines(lines, method="detect")
        if reading.numbers and self._fixed_boxes == "fallback":
            return reading
        recognised, _elapse = engine.text_rec(fixed_box_crops(card_bgr))
        lines += [(str(text), float(score)) for text, score in recognised]
        return read_lines(lines, method="detect+fixed-box" if reading.numbers else "fixed-box")

    def _read_detected(self, engine: Any, card_bgr: np.ndarray) -> list[tuple[str, float]]:
        """Detect the text boxes of both corners, then recognise them one at a time in order of their
        distance from their corner's number line; once a box reads as a collector number, only the boxes on
        its line (same corner) are recognised more."""
        h = card_bgr.shape[0]
        queue: list[tuple[float, int, np.ndarray, np.ndarray]] = []   # (distance, corner, crop, box)
        for corner, crop in enumerate(corner_crops(card_bgr)):
            boxes, _elapse = engine(crop, use_rec=False)
            px_per_card_h = crop.shape[0] / (h * BAND_HEIGHT)
            for pts in boxes or []:
                box = np.asarray(pts, np.float32).reshape(4, 2)
                y_card = 1 - BAND_HEIGHT + float(box[:, 1].mean()) / px_per_card_h / h
                queue.append((abs(y_card - NUMBER_LINE_Y[corner]), corner, crop, box))
        queue.sort(key=lambda q: q[0])
        lines: list[tuple[str, float]] = []
        number_at: tuple[int, np.ndarray] | None = None
        for _distance, corner, crop, box in queue:
            if number_at is not None and not (corner == number_at[0] and _same_line(box, number_at[1])):
                continue
            recognised, _elapse = engine.text_rec(engine.get_crop_img_list(crop, [box]))
            if not recognised or float(recognised[0][1]) < TEXT_SCORE:
                continue
            text, score = recognised[0]
            lines.append((str(text), float(score)))
            if number_at is None and read_lines([lines[-1]], method="detect").numbers:
                number_at = (corner, box)
        return lines


def _same_line(box: np.ndarray, other: np.ndarray) -> bool:
    top, bottom = float(box[:, 1].min()), float(box[:, 1].max())
    o_top, o_bottom = float(other[:, 1].min()), float(other[:, 1].max())
    overlap = min(bottom, o_bottom) - max(top, o_top)
    return overlap >= SAME_LINE_OVERLAP * min(bottom - top, o_bottom - o_top)


def corner_crops(card_bgr: np.ndarray) -> list[np.ndarray]:
    """The bottom band's two corners, upscaled (never down) to a DETECT_CARD_HEIGHT_PX card equivalent."""
    h = card_bgr.shape[0]
    band = card_bgr[int(h * (1 - BAND_HEIGHT)):, :]
    scale = DETECT_CARD_HEIGHT_PX / h
    if scale > 1:
        band = cv2.resize(band, (round(band.shape[1] * scale), round(band.shape[0] * scale)),
                          interpolation=cv2.INTER_CUBIC)
    w = band.shape[1]
    return [band[:, int(x0 * w):int(x1 * w)] for x0, x1 in CORNERS_X]


def fixed_box_crops(card_bgr: np.ndarray, boxes: Sequence[tuple[float, float, float, float]] | None = None
                    ) -> list[np.ndarray]:
    """The layouts' number boxes at native pixels (the recogniser resizes to its own input height)."""
    h, w = card_bgr.shape[:2]
    return [card_bgr[int(y0 * h):int(np.ceil(y1 * h)), int(x0 * w):int(np.ceil(x1 * w))]
            for x0, x1, y0, y1 in (boxes if boxes is not None else FIXED_BOXES.values())]
