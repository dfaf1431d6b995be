"""Fake of adafruit_servokit (adafruit-circuitpython-servokit) for tests: same API surface, no I2C.

Mirrors ServoKit(*, channels, i2c=None, address=0x40, reference_clock_speed=25000000, frequency=50):
channels must be 8 or 16 (ValueError otherwise); ``kit.servo[n]`` is an adafruit_motor Servo whose
``angle`` setter raises ValueError("Angle out of range") outside [0, actuation_range] and accepts
None (stop pulsing). Tests inspect ``BOARDS`` (address → kit) and each servo's ``history``.
Setting ``MISSING_ADDRESSES`` simulates a HAT that does not answer on the bus.
"""

from __future__ import annotations

from typing import Any

BOARDS: dict[int, ServoKit] = {}
MISSING_ADDRESSES: set[int] = set()


class _Servo:
    def __init__(self, channel: int) -> None:
        self.channel = channel
        self.actuation_range = 180
        self.min_pulse = 750
        self.max_pulse = 2250
        self._angle: float | None = None
        self.history: list[float | None] = []

    def set_pulse_width_range(self, min_pulse: int = 750, max_pulse: int = 2250) -> None:
        self.min_pulse, self.max_pulse = min_pulse, max_pulse

    @property
    def angle(self) -> float | None:
        return self._angle

    @angle.setter
    def angle(self, new_angle: float | None) -> None:
        if new_angle is None:
            self._angle = None
            self.history.append(None)
            return
        if new_angle < 0 or new_angle > self.actuation_range:
            raise ValueError("Angle out of range")
        self._angle = new_angle
        self.history.append(new_angle)


class _Servos:
    def __init__(self, channels: int) -> None:
        self._items = [_Servo(i) for i in range(channels)]

    def __getitem__(self, index: int) -> _Servo:
        if not 0 <= index < len(self._items):
            raise ValueError(f"servo must be 0-{len(self._items) - 1}!")
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)


class ServoKit:
    def __init__(self, *, channels: int, i2c: Any = None, address: int = 0x40,
                 reference_clock_speed: int = 25000000, frequency: int = 50) -> None:
        if channels not in (8, 16):
            raise ValueError("servo_channels must be 8 or 16!")
        if address in MISSING_ADDRESSES:
            raise ValueError(f"No I2C device at address: 0x{address:x}")
        self.address = address
        self.frequency = frequency
        self._servo = _Servos(channels)
        BOARDS[address] = self

    @property
    def servo(self) -> _Servos:
        return self._servo
