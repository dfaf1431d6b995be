"""Fake of pyserial for tests: serial_for_url / Serial with a scripted microcontroller behind them.

Mirrors the pyserial surface the serial actuator uses: serial_for_url(url, *args, **kwargs) and
Serial(port, baudrate, timeout=..., write_timeout=...), write(bytes) → int, readline() → bytes
(b"" when the read timeout passes with no line), flush(), reset_input_buffer(), close(), is_open,
SerialException / SerialTimeoutException. A missing device raises SerialException like pyserial's
"[Errno 2] could not open port". Tests register a device with ``DEVICES[url] = handler`` where
handler(line: str) -> list[str] are the lines the controller answers (an empty list: silence).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any

DEVICES: dict[str, Callable[[str], list[str]]] = {}


class SerialException(IOError):
    pass


class SerialTimeoutException(SerialException):
    pass


class Serial:
    def __init__(self, port: str | None = None, baudrate: int = 9600, bytesize: int = 8, parity: str = "N",
                 stopbits: float = 1, timeout: float | None = None, xonxoff: bool = False, rtscts: bool = False,
                 write_timeout: float | None = None, dsrdtr: bool = False, inter_byte_timeout: float | None = None,
                 exclusive: bool | None = None, **kwargs: Any) -> None:
        if port not in DEVICES:
            raise SerialException(f"[Errno 2] could not open port {port}: [Errno 2] No such file or directory: '{port}'")
        self.port = port
        self.baudrate = baudrate
        self.timeout = timeout
        self.write_timeout = write_timeout
        self._handler = DEVICES[port]
        self._rx: deque[bytes] = deque()
        self._tx = b""
        self.written: list[bytes] = []
        self.is_open = True

    def write(self, data: bytes) -> int:
        if not self.is_open:
            raise SerialException("Attempting to use a port that is not open")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"unicode strings are not supported, please encode to bytes: {data!r}")
        self.written.append(bytes(data))
        self._tx += bytes(data)
        while b"\n" in self._tx:
            line, self._tx = self._tx.split(b"\n", 1)
            for reply in self._handler(line.decode("ascii")):
                self._rx.append(reply.encode("ascii") + b"\n")
        return len(data)

    def readline(self, size: int = -1) -> bytes:
        if not self.is_open:
            raise SerialException("Attempting to use a port that is not open")
        if self._rx:
            return self._rx.popleft()
        if self.timeout:
            time.sleep(self.timeout)   # like a real port: block for the read timeout, then give up
        return b""

    @property
    def in_waiting(self) -> int:
        return sum(len(x) for x in self._rx)

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        self._rx.clear()

    def close(self) -> None:
        self.is_open = False


def serial_for_url(url: str, *args: Any, **kwargs: Any) -> Serial:
    return Serial(url, *args, **kwargs)
