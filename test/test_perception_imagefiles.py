"""Image files: truncated JPEG/PNG detected by their structure, not decoded grey; names in every error."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cardsorter.core.errors import ImageError
from cardsorter.imagefiles import jpeg_is_complete, png_is_complete, read_image_file


def _noise(h: int = 120, w: int = 90) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("params", [[], [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], [cv2.IMWRITE_JPEG_RST_INTERVAL, 4]])
def test_a_jpeg_is_complete_only_up_to_its_end_marker(params: list[int]) -> None:
    ok, buf = cv2.imencode(".jpg", _noise(), params)
    data = buf.tobytes()
    assert ok and jpeg_is_complete(data)
    assert jpeg_is_complete(data + b"trailing data after EOI, as some cameras write")
    for cut in (len(data) - 2, len(data) // 2, 300, 3):
        assert not jpeg_is_complete(data[:cut]), cut


def test_a_png_is_complete_only_with_its_iend_chunk() -> None:
    ok, buf = cv2.imencode(".png", _noise())
    data = buf.tobytes()
    assert ok and png_is_complete(data)
    for cut in (len(data) - 1, len(data) // 2, 20):
        assert not png_is_complete(data[:cut]), cut


def test_read_image_file_names_the_file_and_the_fault(tmp_path: Path) -> None:
    good = tmp_path / "good.jpg"
    cv2.imwrite(str(good), _noise())
    assert read_image_file(good).shape == (120, 90, 3)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:-100])
    assert cv2.imread(str(cut)) is not None              # OpenCV alone decodes it (grey below the cut)
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated JPEG"):
        read_image_file(cut)
    small = tmp_path / "small.png"
    cv2.imwrite(str(small), _noise(10, 40))
    with pytest.raises(ImageError, match=r"small\.png: too small \(40x10 px"):
        read_image_file(small, min_side_px=32)
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        read_image_file(empty)
    with pytest.raises(ImageError, match=r"nothing\.png: cannot read"):
        read_image_file(tmp_path / "nothing.png")
