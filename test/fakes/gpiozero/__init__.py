"""Fake of gpiozero for tests: the API surface the actuators use, with a mock pin registry.

Mirrors gpiozero 2.x: AngularServo(pin, *, initial_angle=0.0, min_angle=-90, max_angle=90,
min_pulse_width=1/1000, max_pulse_width=2/1000, frame_width=20/1000, pin_factory=None) whose angle
outside [min_angle, max_angle] raises OutputDeviceBadValue; OutputDevice(pin, *, active_high=True,
initial_value=False) with on()/off()/value; DigitalInputDevice(pin, *, pull_up=False, ...) with
is_active / wait_for_active(timeout); close(); a pin in use raises GPIOPinInUse.
Tests drive inputs with ``PINS[n].drive(True)`` or ``AUTO_ACTIVATE`` and read ``PINS[n].history``.
"""

from __future__ import annotations

from typing import Any, Self

PINS: dict[int, _Pin] = {}
AUTO_ACTIVATE: set[int] = set()      # input pins that go active as soon as someone waits on them


class GPIOZeroError(Exception):
    pass


class GPIOPinInUse(GPIOZeroError):
    pass


class OutputDeviceError(GPIOZeroError):
    pass


class OutputDeviceBadValue(OutputDeviceError, ValueError):
    pass


class _Pin:
    def __init__(self, number: int) -> None:
        self.number = number
        self.state = False
        self.history: list[Any] = []
        self.owner: object | None = None

    def drive(self, value: bool) -> None:
        self.state = value


def _claim(pin: int | None, owner: object) -> _Pin:
    if pin is None:
        raise GPIOZeroError("No pin given")  # gpiozero raises GPIODeviceError for pin=None
    if isinstance(pin, bool) or not isinstance(pin, int) or pin < 0:
        raise GPIOZeroError(f"invalid pin {pin!r}")
    p = PINS.setdefault(pin, _Pin(pin))
    if p.owner is not None:
        raise GPIOPinInUse(f"pin GPIO{pin} is already in use by {p.owner!r}")
    p.owner = owner
    return p


class Device:
    def __init__(self, pin: int | None) -> None:
        self._pin = _claim(pin, self)
        self.closed = False

    def close(self) -> None:
        if not self.closed:
            self._pin.owner = None
            self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class OutputDevice(Device):
    def __init__(self, pin: int | None = None, *, active_high: bool = True, initial_value: bool | None = False,
                 pin_factory: Any = None) -> None:
        super().__init__(pin)
        self.active_high = active_high
        self._value = bool(initial_value)
        self._pin.history.append(self._value)

    def on(self) -> None:
        self.value = 1

    def off(self) -> None:
        self.value = 0

    @property
    def value(self) -> int:
        return int(self._value)

    @value.setter
    def value(self, value: Any) -> None:
        if self.closed:
            raise GPIOZeroError("device is closed")
        self._value = bool(value)
        self._pin.history.append(self._value)


class AngularServo(Device):
    def __init__(self, pin: int | None = None, *, initial_angle: float | None = 0.0, min_angle: float = -90,
                 max_angle: float = 90, min_pulse_width: float = 1 / 1000, max_pulse_width: float = 2 / 1000,
                 frame_width: float = 20 / 1000, pin_factory: Any = None) -> None:
        self._min_angle = min_angle
        self._angular_range = max_angle - min_angle
        if initial_angle is not None and not (min_angle <= initial_angle <= max_angle
                                              or max_angle <= initial_angle <= min_angle):
            raise OutputDeviceBadValue(f"AngularServo angle must be between {min_angle} and {max_angle}, or None")
        if min_pulse_width >= max_pulse_width or max_pulse_width > frame_width:
            raise ValueError("invalid pulse widths")
        super().__init__(pin)
        self.min_pulse_width, self.max_pulse_width = min_pulse_width, max_pulse_width
        self._angle = initial_angle
        self._pin.history.append(initial_angle)

    @property
    def min_angle(self) -> float:
        return self._min_angle

    @property
    def max_angle(self) -> float:
        return self._min_angle + self._angular_range

    @property
    def angle(self) -> float | None:
        return self._angle

    @angle.setter
    def angle(self, angle: float | None) -> None:
        if self.closed:
            raise GPIOZeroError("device is closed")
        if angle is not None and not (self.min_angle <= angle <= self.max_angle
                                      or self.max_angle <= angle <= self.min_angle):
            raise OutputDeviceBadValue(
                f"AngularServo angle must be between {self.min_angle} and {self.max_angle}, or None")
        self._angle = angle
        self._pin.history.append(angle)

    def detach(self) -> None:
        self.angle = None


class DigitalInputDevice(Device):
    def __init__(self, pin: int | None = None, *, pull_up: bool | None = False, active_state: bool | None = None,
                 bounce_time: float | None = None, pin_factory: Any = None) -> None:
        super().__init__(pin)
        self.pull_up = pull_up

    @property
    def is_active(self) -> bool:
        return self._pin.state

    @property
    def value(self) -> int:
        return int(self._pin.state)

    def wait_for_active(self, timeout: float | None = None) -> bool:
        if self._pin.number in AUTO_ACTIVATE:
            self._pin.state = True
        result = self._pin.state
        self._pin.history.append(("waited", timeout, result))
        if self._pin.number in AUTO_ACTIVATE:
            self._pin.state = False       # the card fell through: the beam is clear again
        return result
