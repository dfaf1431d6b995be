"""Bin actuators behind one Protocol: simulated, pca9685 (servo HAT), gpio (servo / stepper), serial."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, Self

from cardsorter.core.bin_rules import BinSpec
from cardsorter.core.errors import ActuatorError, ConfigError
from cardsorter.core.fields import check_ranges, doc, section
from cardsorter.core.sort_execution import ActuationResult

KINDS = ("simulated", "pca9685", "gpio", "serial")


class Actuator(Protocol):
    """Moves the diverter so the next card lands in a bin; raises ActuatorError rather than guess."""

    kind: str

    def route(self, bin_name: str) -> ActuationResult:
        """Move to ``bin_name`` and return once acknowledged (and, with a drop sensor, once seen)."""
        ...

    def clear_fault(self) -> None:
        """The user cleared a jam: accept commands again."""
        ...

    def close(self) -> None: ...

    @property
    def status(self) -> str: ...


# --- configs (sorter.yaml: sorter.actuator.<kind>.*) --------------------------------------------

@dataclass(frozen=True)
class SimulatedActuatorConfig:
    """A timing model of a diverter: move time grows with the distance between bins."""

    move_ms: float = doc("time to start moving and reach an adjacent bin's position", lo=0.0)
    move_ms_per_bin: float = doc("extra move time per bin of distance along the bin list", lo=0.0)
    settle_ms: float = doc("time for the diverter to stop oscillating after a move", lo=0.0)
    jam_probability: float = doc("probability that a move jams (no acknowledgement); 0 for a perfect machine",
                                 lo=0.0, hi=1.0)
    misroute_probability: float = doc("probability that a drop sensor does not see the card (bins with "
                                      "drop_sensor_pin)", lo=0.0, hi=1.0)
    seed: int = doc("seed of the jam / mis-route random draws")
    realtime: bool = doc("really sleep the modelled time (false: the demo may run faster than real time)")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class Pca9685ActuatorConfig:
    """One diverter servo on an Adafruit PCA9685 servo HAT (adafruit-circuitpython-servokit)."""

    address: int = doc("I2C address of the PCA9685 (64 = 0x40)")
    channels: int = doc("8 or 16: the board's servo channel count")
    channel: int = doc("servo channel of the diverter")
    frequency_hz: int = doc("PWM frequency for the servo (50 for analogue servos)")
    min_pulse_us: int = doc("pulse width at angle 0 (servo calibration)")
    max_pulse_us: int = doc("pulse width at actuation_range_deg (servo calibration)")
    actuation_range_deg: float = doc("angle the pulse range spans; bin positions are angles in [0, this]")
    move_ms: float = doc("time for the servo to reach a new angle (it gives no feedback)")
    drop_timeout_ms: float = doc("how long a bin's drop sensor may take to see the card")


@dataclass(frozen=True)
class GpioActuatorConfig:
    """A diverter on GPIO via gpiozero: a hobby servo (AngularServo) or a step/dir stepper driver."""

    driver: str = doc("servo | stepper")
    servo_pin: int = doc("servo: GPIO of the signal wire")
    min_angle: float = doc("servo: angle at min_pulse_us")
    max_angle: float = doc("servo: angle at max_pulse_us")
    min_pulse_us: int = doc("servo: shortest pulse")
    max_pulse_us: int = doc("servo: longest pulse")
    step_pin: int = doc("stepper: STEP GPIO")
    dir_pin: int = doc("stepper: DIR GPIO")
    enable_pin: int = doc("stepper: active-low ENABLE GPIO, -1 when wired permanently on")
    step_delay_us: int = doc("stepper: half-period of a step pulse")
    move_ms: float = doc("servo: time to reach a new angle; stepper: settle time after the last step")
    drop_timeout_ms: float = doc("how long a bin's drop sensor may take to see the card")

    def __post_init__(self) -> None:
        if self.driver not in ("servo", "stepper"):
            raise ValueError(f"driver must be servo or stepper, got {self.driver!r}")


@dataclass(frozen=True)
class SerialActuatorConfig:
    """A microcontroller on a serial line: ``ROUTE <bin>`` → ``ACK <bin>`` | ``ERR <text>``."""

    port: str = doc("serial device, e.g. /dev/ttyACM0 (or a pyserial URL such as loop://)")
    baudrate: int = doc("line speed")
    timeout_ms: float = doc("no ACK within this time stops the sorter")
    drop_timeout_ms: float = doc("for bins with a drop sensor: wait this long for ``DROP <bin>``")
    startup_ms: float = doc("wait after opening the port before the first command (an Arduino resets on open)")
    handshake: bool = doc("at start send ``PING`` and require ``PONG`` within timeout_ms (is the firmware there?)")


ACTUATOR_CONFIGS: dict[str, type] = {
    "simulated": SimulatedActuatorConfig, "pca9685": Pca9685ActuatorConfig,
    "gpio": GpioActuatorConfig, "serial": SerialActuatorConfig,
}


@dataclass(frozen=True)
class ActuatorSettings:
    """The sorter's ``actuator.<kind>.*`` parameters, one section per kind (``actuator_kind`` picks one)."""

    simulated: SimulatedActuatorConfig = section("the simulated actuator (demo, tests)")
    pca9685: Pca9685ActuatorConfig = section("servo on a PCA9685 HAT")
    gpio: GpioActuatorConfig = section("servo or stepper on the Pi's GPIO")
    serial: SerialActuatorConfig = section("a microcontroller on a serial port")

    def of(self, kind: str) -> Any:
        """The config of actuator ``kind``; ConfigError naming the kinds for any other."""
        if kind not in ACTUATOR_CONFIGS:
            raise ConfigError(f"unknown actuator kind {kind!r} (known: {', '.join(KINDS)})")
        return getattr(self, kind)


def open_actuator(kind: str, settings: ActuatorSettings, bins: Mapping[str, BinSpec]) -> Actuator:
    """Open the ``kind`` actuator from the sorter's actuator settings (``load_settings().sorter.actuator``)."""
    return actuator_from_config(settings.of(kind), bins)


def actuator_from_config(config: Any, bins: Mapping[str, BinSpec],
                         sleep: Callable[[float], None] = time.sleep) -> Actuator:
    """The actuator for a config dataclass of ACTUATOR_CONFIGS."""
    if isinstance(config, SimulatedActuatorConfig):
        return SimulatedActuator(config, bins, sleep)
    if isinstance(config, Pca9685ActuatorConfig):
        return Pca9685Actuator(config, bins, sleep)
    if isinstance(config, GpioActuatorConfig):
        return GpioActuator(config, bins, sleep)
    if isinstance(config, SerialActuatorConfig):
        return SerialActuator(config, bins, sleep)
    raise ConfigError(f"not an actuator config: {config!r}")


def _positions(bins: Mapping[str, BinSpec], kind: str, lo: float, hi: float, unit: str) -> dict[str, float]:
    """Every bin's calibrated position, checked against the mechanism's range."""
    out: dict[str, float] = {}
    for spec in bins.values():
        if spec.position is None:
            raise ConfigError(f"{kind} actuator: bin {spec.name!r} (bins file line {spec.line}) has no "
                              f"calibrated 'position' ({unit})")
        if not lo <= spec.position <= hi:
            raise ConfigError(f"{kind} actuator: bin {spec.name!r} (bins file line {spec.line}) position "
                              f"{spec.position} is outside [{lo}, {hi}] {unit}")
        out[spec.name] = spec.position
    return out


class _Base:
    kind = "base"

    def __init__(self, bins: Mapping[str, BinSpec]) -> None:
        self._bins = dict(bins)
        self._fault = ""
        self._current: str | None = None
        self._closed = False

    @property
    def status(self) -> str:
        if self._closed:
            return "closed"
        return f"fault: {self._fault}" if self._fault else f"ok at {self._current or 'home'}"

    def clear_fault(self) -> None:
        self._fault = ""

    def _check(self, bin_name: str) -> BinSpec:
        if self._closed:
            raise ActuatorError(f"{self.kind} actuator is closed")
        if self._fault:
            raise ActuatorError(f"{self.kind} actuator has an uncleared fault: {self._fault}")
        spec = self._bins.get(bin_name)
        if spec is None:
            raise ActuatorError(f"{self.kind} actuator has no bin named {bin_name!r}")
        return spec

    def _raise_fault(self, message: str, err: BaseException | None = None) -> ActuatorError:
        self._fault = message
        error = ActuatorError(f"{self.kind} actuator: {message}")
        if err is not None:
            error.__cause__ = err
        return error

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]


class _DropSensors:
    """One gpiozero DigitalInputDevice per bin that has a drop_sensor_pin."""

    def __init__(self, bins: Mapping[str, BinSpec], kind: str) -> None:
        self._sensors: dict[str, Any] = {}
        pins = {name: spec.drop_sensor_pin for name, spec in bins.items() if spec.drop_sensor_pin is not None}
        if not pins:
            return
        try:
            import gpiozero  # type: ignore[import-not-found]
        except ImportError as err:
            raise ActuatorError(f"{kind} actuator: drop sensors need gpiozero (pip install gpiozero)") from err
        try:
            for name, pin in pins.items():
                self._sensors[name] = gpiozero.DigitalInputDevice(pin, pull_up=True)
        except Exception as err:
            self.close()
            raise ActuatorError(f"{kind} actuator: cannot open drop sensor of bin {name!r} on GPIO{pin}: {err}") from err

    def arrived(self, bin_name: str, timeout_s: float) -> bool | None:
        sensor = self._sensors.get(bin_name)
        if sensor is None:
            return None
        return bool(sensor.wait_for_active(timeout=timeout_s))

    def close(self) -> None:
        for sensor in self._sensors.values():
            sensor.close()
        self._sensors.clear()


# --- simulated ----------------------------------------------------------------------------------

class SimulatedActuator(_Base):
    """A modelled diverter: move + settle time, seeded jams and mis-routes. Used by the demo."""

    kind = "simulated"

    def __init__(self, config: SimulatedActuatorConfig, bins: Mapping[str, BinSpec],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(bins)
        self._config = config
        self._rng = random.Random(config.seed)
        self._index = {name: i for i, name in enumerate(bins)}
        self._sleep = sleep
        self.moves = 0
        self.modelled_s = 0.0

    def route(self, bin_name: str) -> ActuationResult:
        spec = self._check(bin_name)
        c = self._config
        here = self._index[self._current] if self._current is not None else 0
        distance = abs(self._index[bin_name] - here)
        move_s = 0.0 if distance == 0 and self._current is not None else (c.move_ms + c.move_ms_per_bin * distance) / 1000.0
        duration = move_s + c.settle_ms / 1000.0
        jammed = self._rng.random() < c.jam_probability
        misrouted = self._rng.random() < c.misroute_probability
        if c.realtime:
            self._sleep(duration)
        self.modelled_s += duration
        if jammed:
            raise self._raise_fault(f"jammed moving to {bin_name!r}: no acknowledgement")
        self._current = bin_name
        self.moves += 1
        arrived = None if spec.drop_sensor_pin is None else not misrouted
        return ActuationResult(bin_name, duration, arrived)

    def close(self) -> None:
        self._closed = True


# --- PCA9685 servo HAT --------------------------------------------------------------------------

class Pca9685Actuator(_Base):
    """adafruit_servokit.ServoKit; each bin's ``position`` is a servo angle in degrees."""

    kind = "pca9685"

    def __init__(self, config: Pca9685ActuatorConfig, bins: Mapping[str, BinSpec],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(bins)
        self._config = config
        self._sleep = sleep
        self._angles = _positions(bins, self.kind, 0.0, config.actuation_range_deg, "degrees")
        try:
            from adafruit_servokit import ServoKit  # type: ignore[import-not-found]
        except ImportError as err:
            raise ActuatorError("pca9685 actuator needs adafruit-circuitpython-servokit "
                                "(pip install adafruit-circuitpython-servokit)") from err
        try:
            self._kit = ServoKit(channels=config.channels, address=config.address, frequency=config.frequency_hz)
            self._servo = self._kit.servo[config.channel]
            self._servo.set_pulse_width_range(config.min_pulse_us, config.max_pulse_us)
            self._servo.actuation_range = config.actuation_range_deg
        except (ValueError, OSError, IndexError, RuntimeError) as err:
            raise ActuatorError(f"pca9685 actuator: cannot open the servo HAT at I2C 0x{config.address:02x} "
                                f"channel {config.channel}: {err}") from err
        self._drops = _DropSensors(bins, self.kind)

    def route(self, bin_name: str) -> ActuationResult:
        self._check(bin_name)
        start = time.monotonic()
        try:
            self._servo.angle = self._angles[bin_name]
        except (ValueError, OSError) as err:
            raise self._raise_fault(f"cannot set angle {self._angles[bin_name]} for {bin_name!r}: {err}", err) from err
        self._sleep(self._config.move_ms / 1000.0)
        self._current = bin_name
        arrived = self._drops.arrived(bin_name, self._config.drop_timeout_ms / 1000.0)
        return ActuationResult(bin_name, time.monotonic() - start, arrived)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._drops.close()
            try:
                self._servo.angle = None    # stop driving the servo
            except (ValueError, OSError):
                pass


# --- GPIO (gpiozero) ----------------------------------------------------------------------------

class GpioActuator(_Base):
    """gpiozero AngularServo (bin position = angle) or a step/dir stepper (bin position = steps from home)."""

    kind = "gpio"

    def __init__(self, config: GpioActuatorConfig, bins: Mapping[str, BinSpec],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(bins)
        self._config = config
        self._sleep = sleep
        try:
            import gpiozero
        except ImportError as err:
            raise ActuatorError("gpio actuator needs gpiozero (pip install gpiozero)") from err
        self._devices: list[Any] = []
        try:
            if config.driver == "servo":
                lo, hi = sorted((config.min_angle, config.max_angle))
                self._targets = _positions(bins, self.kind, lo, hi, "degrees")
                first = next(iter(self._targets.values()))
                self._servo = gpiozero.AngularServo(
                    config.servo_pin, initial_angle=first, min_angle=config.min_angle, max_angle=config.max_angle,
                    min_pulse_width=config.min_pulse_us / 1e6, max_pulse_width=config.max_pulse_us / 1e6)
                self._devices.append(self._servo)
            else:
                self._targets = _positions(bins, self.kind, 0.0, float(2**31), "steps")
                if any(t != int(t) for t in self._targets.values()):
                    raise ConfigError("gpio stepper: bin positions must be whole steps")
                self._step = gpiozero.OutputDevice(config.step_pin)
                self._dir = gpiozero.OutputDevice(config.dir_pin)
                self._devices += [self._step, self._dir]
                self._enable = None
                if config.enable_pin >= 0:
                    self._enable = gpiozero.OutputDevice(config.enable_pin, active_high=False, initial_value=True)
                    self._devices.append(self._enable)
                self._steps_at = 0        # the stepper starts at home (position 0)
        except ConfigError:
            self._close_devices()
            raise
        except Exception as err:
            self._close_devices()
            raise ActuatorError(f"gpio actuator: cannot open the {config.driver}: {err}") from err
        self._drops = _DropSensors(bins, self.kind)

    def route(self, bin_name: str) -> ActuationResult:
        self._check(bin_name)
        start = time.monotonic()
        target = self._targets[bin_name]
        try:
            if self._config.driver == "servo":
                self._servo.angle = target
            else:
                self._step_to(int(target))
        except Exception as err:
            raise self._raise_fault(f"cannot move to {bin_name!r}: {err}", err) from err
        self._sleep(self._config.move_ms / 1000.0)
        self._current = bin_name
        arrived = self._drops.arrived(bin_name, self._config.drop_timeout_ms / 1000.0)
        return ActuationResult(bin_name, time.monotonic() - start, arrived)

    def _step_to(self, target: int) -> None:
        delta = target - self._steps_at
        if delta == 0:
            return
        self._dir.value = 1 if delta > 0 else 0
        half = self._config.step_delay_us / 1e6
        for _ in range(abs(delta)):
            self._step.on()
            self._sleep(half)
            self._step.off()
            self._sleep(half)
            self._steps_at += 1 if delta > 0 else -1

    def _close_devices(self) -> None:
        for device in self._devices:
            device.close()
        self._devices.clear()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._drops.close()
            self._close_devices()


# --- serial line protocol -----------------------------------------------------------------------

class SerialActuator(_Base):
    """pyserial line protocol: ``ROUTE <bin>\\n`` → ``ACK <bin>`` (or ``ERR <text>``) within timeout_ms;
    for a bin with a drop sensor the controller then sends ``DROP <bin>`` when the card lands."""

    kind = "serial"

    def __init__(self, config: SerialActuatorConfig, bins: Mapping[str, BinSpec],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(bins)
        for name in bins:
            if not name or any(c.isspace() for c in name):
                raise ConfigError(f"serial actuator: bin name {name!r} must be one word (it is sent on the line)")
        self._config = config
        try:
            import serial  # type: ignore[import-untyped]
        except ImportError as err:
            raise ActuatorError("serial actuator needs pyserial (pip install pyserial)") from err
        self._serial_mod = serial
        try:
            # A short read timeout so the overall deadline below is kept to within ~50 ms.
            self._port = serial.serial_for_url(config.port, baudrate=config.baudrate,
                                               timeout=min(0.05, config.timeout_ms / 1000.0),
                                               write_timeout=config.timeout_ms / 1000.0)
        except (serial.SerialException, ValueError) as err:
            raise ActuatorError(f"serial actuator: cannot open {config.port}: {err}") from err
        sleep(config.startup_ms / 1000.0)
        if config.handshake:
            try:
                self._port.reset_input_buffer()
                self._port.write(b"PING\n")
                self._port.flush()
                self._await("PONG", time.monotonic() + config.timeout_ms / 1000.0, "PING")
            except ActuatorError as err:
                self._port.close()
                raise ActuatorError(f"serial actuator on {config.port}: the controller did not answer PING with "
                                    f"PONG within {config.timeout_ms:.0f} ms (wrong port or firmware?)") from err
            except serial.SerialException as err:
                self._port.close()
                raise ActuatorError(f"serial actuator: I/O error on {config.port} during the handshake: {err}") from err

    def route(self, bin_name: str) -> ActuationResult:
        spec = self._check(bin_name)
        start = time.monotonic()
        serial = self._serial_mod
        try:
            self._port.reset_input_buffer()
            self._port.write(f"ROUTE {bin_name}\n".encode("ascii"))
            self._port.flush()
            self._await(f"ACK {bin_name}", start + self._config.timeout_ms / 1000.0, bin_name)
            self._current = bin_name
            arrived: bool | None = None
            if spec.drop_sensor_pin is not None:
                arrived = self._await(f"DROP {bin_name}", time.monotonic() + self._config.drop_timeout_ms / 1000.0,
                                      bin_name, required=False)
        except serial.SerialException as err:
            raise self._raise_fault(f"serial I/O error on {self._config.port}: {err}", err) from err
        return ActuationResult(bin_name, time.monotonic() - start, arrived)

    def _await(self, expected: str, deadline: float, bin_name: str, required: bool = True) -> bool:
        while time.monotonic() < deadline:
            raw = self._port.readline()
            if not raw:
                continue
            line = raw.decode("ascii", errors="replace").strip()
            if line == expected:
                return True
            if line.startswith("ERR"):
                raise self._raise_fault(f"controller refused {bin_name!r}: {line[3:].strip() or line}")
            if line.startswith("ACK "):
                raise self._raise_fault(f"controller acknowledged {line[4:]!r} instead of {bin_name!r}")
            # anything else (debug output, DROP of an earlier card) is not ours: keep reading
        if required:
            raise self._raise_fault(f"no '{expected}' within {self._config.timeout_ms:.0f} ms")
        return False

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._port.close()
