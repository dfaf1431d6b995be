"""Image files read whole or refused by name: unreadable, truncated (JPEG/PNG) or too small to hold a card."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np

from cardsorter.core.errors import ImageError

# A still for `identify` must be at least this many pixels on its short side. Measured with the
# default detector on test/perception_support.scene (one card filling ~40 % of the frame's height)
# downscaled: it is found down to 16 px (the card then ~7 px tall) and not at 8 px. A card that small
# is warped up ~9x to the model's 64x88 input, so 32 px (a card ~14 px tall, twice the smallest
# detectable) is the least we accept; a 1x1 or icon-sized file is named as too small, not "no card".
MIN_STILL_SIDE_PX = 32

_JPEG_SOI = b"\xff\xd8"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG markers without a length field: TEM, RST0-7, SOI, EOI
_STANDALONE = {0x01, *range(0xD0, 0xD8), 0xD8, 0xD9}


def jpeg_is_complete(data: bytes) -> bool:
    """True when a JPEG's segments and entropy-coded scans run to an EOI marker (data after it is allowed).

    Walks the marker segments by their lengths and scans each SOS's entropy-coded data for the next
    marker (``FF 00`` is a stuffed byte, ``FF D0``-``D7`` restart markers), so a file cut short
    anywhere before its EOI is caught: libjpeg would decode it, fill the rest with grey and only warn.
    """
    if not data.startswith(_JPEG_SOI):
        return False
    pos, n = 2, len(data)
    while True:
        while pos < n and data[pos] == 0xFF and pos + 1 < n and data[pos + 1] == 0xFF:
            pos += 1                                    # fill bytes before a marker
        if pos + 1 >= n or data[pos] != 0xFF:
            return False
        marker = data[pos + 1]
        if marker == 0xD9:
            return True
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 3 >= n:
            return False
        length = (data[pos + 2] << 8) | data[pos + 3]
        pos += 2 + length
        if pos > n:
            return False
        if marker == 0xDA:                              # SOS: entropy-coded data up to the next real marker
            while True:
                pos = data.find(b"\xff", pos)
                if pos < 0 or pos + 1 >= n:
                    return False
                nxt = data[pos + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    pos += 1 if nxt == 0xFF else 2
                    continue
                break


def png_is_complete(data: bytes) -> bool:
    """True when a PNG's chunks run, by their lengths, to an IEND chunk."""
    if not data.startswith(_PNG_SIGNATURE):
        return False
    pos, n = len(_PNG_SIGNATURE), len(data)
    while pos + 8 <= n:
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        if end > n:
            return False
        if kind == b"IEND":
            return True
        pos = end
    return False


def read_image_file(path: str | pathlib.Path, min_side_px: int = 2) -> np.ndarray:
    """The BGR uint8 image in ``path``; ImageError naming the file when it cannot be read, is not an
    image, is a truncated JPEG or PNG, or is smaller than ``min_side_px`` on a side."""
    path = pathlib.Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ImageError(f"{path}: cannot read: {err.strerror or err}") from err
    if not data:
        raise ImageError(f"{path}: empty file")
    if data.startswith(_JPEG_SOI) and not jpeg_is_complete(data):
        raise ImageError(f"{path}: truncated JPEG (the data ends before its end-of-image marker)")
    if data.startswith(_PNG_SIGNATURE) and not png_is_complete(data):
        raise ImageError(f"{path}: truncated PNG (the data ends before its IEND chunk)")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.ndim != 3:
        raise ImageError(f"{path}: cannot decode (corrupt or not an image)")
    h, w = image.shape[:2]
    if min(h, w) < min_side_px:
        raise ImageError(f"{path}: too small ({w}x{h} px; at least {min_side_px} px on each side)")
    return image
