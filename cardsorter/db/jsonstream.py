"""Incremental reader of one large JSON array (Scryfall bulk data): one element at a time, stdlib only."""

from __future__ import annotations

import codecs
import json
from collections.abc import Callable, Iterator
from typing import IO, Any

from cardsorter.db.errors import FormatError

CHUNK_BYTES = 1 << 20
# A single Scryfall card object is about 5 KB; one 16 MB element means the file is not an array of
# records (or a bracket is missing) and we stop instead of buffering the whole file.
ELEMENT_BYTES_MAX = 16 << 20
_WS = " \t\r\n"


class StreamFormatError(FormatError):
    """Malformed JSON at a known place: ``elements`` complete elements were read before ``offset``."""

    def __init__(self, message: str, elements: int, offset: int) -> None:
        super().__init__(message)
        self.elements = elements
        self.offset = offset


def iter_json_array(fh: IO[bytes], where: str, *, progress: Callable[[int], None] | None = None,
                    chunk_bytes: int = CHUNK_BYTES) -> Iterator[Any]:
    """Yield each element of the top-level JSON array in ``fh`` (UTF-8, BOM allowed).

    Memory stays at about one chunk plus one element. Raises StreamFormatError naming ``where``, the
    character offset and how many elements came before, when the text is not a JSON array.
    """
    decoder = json.JSONDecoder()
    text = codecs.getincrementaldecoder("utf-8-sig")(errors="strict")
    buf = ""
    pos = 0
    consumed = 0          # characters dropped from the front of buf
    read_bytes = 0
    eof = False
    count = 0

    def fill() -> bool:
        nonlocal buf, pos, consumed, read_bytes, eof
        if eof:
            return False
        raw = fh.read(chunk_bytes)
        read_bytes += len(raw)
        if progress is not None:
            progress(read_bytes)
        try:
            piece = text.decode(raw, final=not raw)
        except UnicodeDecodeError as err:
            raise StreamFormatError(f"{where}: not UTF-8 near byte {read_bytes}: {err.reason}", count,
                                    consumed + pos) from err
        if not raw:
            eof = True
        consumed += pos
        buf = buf[pos:] + piece
        pos = 0
        return bool(raw)

    def skip_ws() -> bool:
        """Advance past whitespace; False at the end of input."""
        nonlocal pos
        while True:
            while pos < len(buf) and buf[pos] in _WS:
                pos += 1
            if pos < len(buf):
                return True
            if not fill():
                return False

    def fail(what: str) -> StreamFormatError:
        return StreamFormatError(f"{where}: {what} at character {consumed + pos} (after {count} elements)",
                                 count, consumed + pos)

    if not skip_ws():
        raise fail("empty file, expected a JSON array")
    if buf[pos] != "[":
        raise fail(f"expected '[' (a JSON array), found {buf[pos:pos + 20]!r}")
    pos += 1
    expect_value = True   # right after '[' or ','
    first = True
    while True:
        if not skip_ws():
            raise fail("file ends inside the array (truncated download?)")
        ch = buf[pos]
        if ch == "]":
            if expect_value and not first:
                raise fail("trailing comma before ']'")
            pos += 1
            if skip_ws():
                raise fail(f"text after the closing ']': {buf[pos:pos + 20]!r}")
            return
        if not expect_value:
            if ch != ",":
                raise fail(f"expected ',' or ']', found {buf[pos:pos + 20]!r}")
            pos += 1
            expect_value = True
            continue
        while True:
            try:
                value, end = decoder.raw_decode(buf, pos)
                if end == len(buf) and not eof and isinstance(value, (int, float)):
                    raise json.JSONDecodeError("number may continue", buf, end)  # 12|34 split by a chunk
                break
            except json.JSONDecodeError as err:
                if len(buf) - pos > ELEMENT_BYTES_MAX or not fill():
                    raise fail(f"malformed JSON ({err.msg})") from err
        pos = end
        count += 1
        first = False
        expect_value = False
        yield value
