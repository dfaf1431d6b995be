"""Actuator drivers against fakes of their libraries; no acknowledgement → ActuatorError → sorter stops."""

from __future__ import annotations

import dataclasses
import importlib
import pathlib
import sys
from types import ModuleType
from typing import Any

import pytest
from decisions_support import BASIC_BINS, card, identity, rules_from, sorter_config

from cardsorter.backends.actuators import (
    ACTUATOR_CONFIGS,
    KINDS,
    GpioActuatorConfig,
    Pca9685ActuatorConfig,
    SerialActuatorConfig,
    SimulatedActuatorConfig,
    actuator_from_config,
    open_actuator,
)
from cardsorter.core.bin_rules import BinSpec, SortRules
from cardsorter.core.errors import ActuatorError, ConfigError
from cardsorter.core.sort_execution import SorterState, SortEvent
from cardsorter.core.sorting import SorterCore
from cardsorter.core.types import TrackState
from cardsorter.settings import load_settings

FAKES = pathlib.Path(__file__).resolve().parent / "fakes"


def fake(monkeypatch: pytest.MonkeyPatch, name: str) -> ModuleType:
    """Import the fake library ``name`` from test/fakes, fresh for this test."""
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.delitem(sys.modules, name, raising=False)
    module = importlib.import_module(name)
    assert pathlib.Path(module.__file__ or "").is_relative_to(FAKES), f"{name} is not the fake"
    return module


def cfg(cls: type, **overrides: Any) -> Any:
    kind = {v: k for k, v in ACTUATOR_CONFIGS.items()}[cls]
    return dataclasses.replace(load_settings().sorter.actuator.of(kind), **overrides)


@pytest.fixture
def rules(tmp_path: pathlib.Path) -> SortRules:
    return rules_from(tmp_path, "rules:\n  - {bin: a, set: s1}\n  - {bin: b, any: true}\n")


def no_sleep(_: float) -> None:
    pass


def test_every_kind_has_a_config_in_sorter_yaml() -> None:
    sorter = load_settings().sorter
    assert sorter.actuator_kind in KINDS
    for kind in KINDS:
        assert isinstance(sorter.actuator.of(kind), ACTUATOR_CONFIGS[kind])


def test_unknown_kind_is_refused(rules: SortRules) -> None:
    with pytest.raises(ConfigError, match="unknown actuator kind 'laser'"):
        open_actuator("laser", load_settings().sorter.actuator, rules.bins)


# --- simulated ----------------------------------------------------------------------------------

def test_simulated_models_move_and_settle_time(rules: SortRules) -> None:
    act = open_actuator("simulated", load_settings().sorter.actuator, rules.bins)
    c = cfg(SimulatedActuatorConfig)
    first = act.route("a")
    assert first.bin_name == "a" and first.arrived is None
    assert first.duration_s == pytest.approx((c.move_ms + c.settle_ms) / 1000.0)
    far = act.route("reject")                         # four bins away
    assert far.duration_s == pytest.approx((c.move_ms + 4 * c.move_ms_per_bin + c.settle_ms) / 1000.0)


def test_simulated_sleeps_only_in_realtime(rules: SortRules) -> None:
    slept: list[float] = []
    act = actuator_from_config(cfg(SimulatedActuatorConfig, realtime=False), rules.bins, slept.append)
    act.route("a")
    assert slept == []
    act = actuator_from_config(cfg(SimulatedActuatorConfig, realtime=True), rules.bins, slept.append)
    result = act.route("a")
    assert slept == [result.duration_s]


def test_simulated_jams_are_seeded_and_sticky(rules: SortRules) -> None:
    def jams(seed: int) -> list[int]:
        act = actuator_from_config(cfg(SimulatedActuatorConfig, jam_probability=0.3, seed=seed), rules.bins)
        out = []
        for i in range(30):
            try:
                act.route("a" if i % 2 else "b")
            except ActuatorError:
                out.append(i)
                assert "fault" in act.status
                with pytest.raises(ActuatorError, match="uncleared fault"):
                    act.route("a")
                act.clear_fault()
        return out

    assert jams(3) == jams(3) and jams(3)
    assert jams(3) != jams(4)


def test_simulated_drop_sensor_reports_misroutes(tmp_path: pathlib.Path) -> None:
    bins = BASIC_BINS.replace("{name: a, capacity: 100,", "{name: a, capacity: 100, drop_sensor_pin: 5,")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    act = actuator_from_config(cfg(SimulatedActuatorConfig, misroute_probability=1.0), rules.bins)
    assert act.route("a").arrived is False
    assert act.route("b").arrived is None


# --- serial -------------------------------------------------------------------------------------

def controller(ack: bool = True, drop: bool = False, err: str = "", chatter: bool = False, pong: bool = True):
    def handle(line: str) -> list[str]:
        if line == "PING":
            return ["PONG"] if pong else []
        verb, _, name = line.partition(" ")
        assert verb == "ROUTE"
        out = ["# debug: moving"] if chatter else []
        if err:
            return out + [f"ERR {err}"]
        if ack:
            out.append(f"ACK {name}")
            if drop:
                out.append(f"DROP {name}")
        return out
    return handle


def serial_actuator(monkeypatch: pytest.MonkeyPatch, bins: dict[str, BinSpec], handler, **overrides: Any):
    serial = fake(monkeypatch, "serial")
    serial.DEVICES["/dev/ttyFAKE0"] = handler
    config = cfg(SerialActuatorConfig, **{"port": "/dev/ttyFAKE0", "timeout_ms": 60.0, "drop_timeout_ms": 60.0,
                                          **overrides})
    return actuator_from_config(config, bins, no_sleep), serial


def test_serial_sends_route_and_waits_for_ack(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    act, _ = serial_actuator(monkeypatch, rules.bins, controller(chatter=True))
    result = act.route("b")
    assert result.bin_name == "b" and result.arrived is None
    assert act._port.written == [b"PING\n", b"ROUTE b\n"]


def test_serial_handshake_failure_is_named(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    with pytest.raises(ActuatorError, match="did not answer PING with PONG within 60 ms"):
        serial_actuator(monkeypatch, rules.bins, controller(pong=False))
    act, _ = serial_actuator(monkeypatch, rules.bins, controller(pong=False), handshake=False)
    assert act.route("a").bin_name == "a"


def test_serial_waits_for_the_controller_to_boot(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    serial = fake(monkeypatch, "serial")
    serial.DEVICES["/dev/ttyFAKE1"] = controller()
    slept: list[float] = []
    actuator_from_config(cfg(SerialActuatorConfig, port="/dev/ttyFAKE1", startup_ms=1500.0), rules.bins, slept.append)
    assert slept == [1.5]


def test_serial_without_ack_raises_and_stays_faulted(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    act, _ = serial_actuator(monkeypatch, rules.bins, controller(ack=False))
    with pytest.raises(ActuatorError, match="no 'ACK a' within 60 ms"):
        act.route("a")
    with pytest.raises(ActuatorError, match="uncleared fault"):
        act.route("a")


def test_serial_err_reply_is_an_error(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    act, _ = serial_actuator(monkeypatch, rules.bins, controller(err="jam at gate 3"))
    with pytest.raises(ActuatorError, match="jam at gate 3"):
        act.route("a")


def test_serial_ack_for_another_bin_is_an_error(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    act, _ = serial_actuator(monkeypatch, rules.bins, lambda line: ["ACK c"], handshake=False)
    with pytest.raises(ActuatorError, match="acknowledged 'c' instead of 'a'"):
        act.route("a")


def test_serial_drop_report(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    bins = BASIC_BINS.replace("{name: a, capacity: 100,", "{name: a, capacity: 100, drop_sensor_pin: 2,")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    act, _ = serial_actuator(monkeypatch, rules.bins, controller(drop=True))
    assert act.route("a").arrived is True
    act2, _ = serial_actuator(monkeypatch, rules.bins, controller(drop=False))
    assert act2.route("a").arrived is False


def test_serial_missing_port_is_named(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    fake(monkeypatch, "serial")
    with pytest.raises(ActuatorError, match="cannot open /dev/ttyNOPE"):
        actuator_from_config(cfg(SerialActuatorConfig, port="/dev/ttyNOPE"), rules.bins)


def test_actuator_timeout_stops_the_sorter(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    acks = {"on": True}
    act, _ = serial_actuator(monkeypatch, rules.bins,
                             lambda line: [f"ACK {line.split()[1]}"] if acks["on"] else [], handshake=False)
    core = SorterCore(sorter_config(mode="station"), rules)
    for tid, cid in enumerate(["s1-1", "s2-1", "s1-2"], start=1):
        core.on_identity(identity(tid, TrackState.CONFIRMED, card(cid), tid))
    events: list[SortEvent] = []
    acks["on"] = False
    core.execute_due(10, act, events.append)
    assert events == [] and core.state == SorterState.STOPPED and "no 'ACK a'" in core.message
    assert len(core.queued) == 3
    acks["on"] = True
    act.clear_fault()
    core.resume()
    core.execute_due(20, act, events.append)
    assert [e.decision.bin_name for e in events] == ["a", "b", "a"]


# --- PCA9685 servo HAT --------------------------------------------------------------------------

def test_pca9685_sets_the_calibrated_angle(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    servokit = fake(monkeypatch, "adafruit_servokit")
    act = actuator_from_config(cfg(Pca9685ActuatorConfig, channel=3), rules.bins, no_sleep)
    act.route("b")
    act.route("reject")
    servo = servokit.BOARDS[64].servo[3]
    assert servo.history == [20.0, 50.0]
    assert (servo.min_pulse, servo.max_pulse) == (500, 2500)
    act.close()
    assert servo.angle is None


def test_pca9685_needs_a_position_for_every_bin(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    fake(monkeypatch, "adafruit_servokit")
    bins = BASIC_BINS.replace("{name: b, capacity: 100, position: 20.0,", "{name: b, capacity: 100,")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    with pytest.raises(ConfigError, match="bin 'b' \\(bins file line 5\\) has no calibrated 'position'"):
        actuator_from_config(cfg(Pca9685ActuatorConfig), rules.bins, no_sleep)


def test_pca9685_position_out_of_range(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    fake(monkeypatch, "adafruit_servokit")
    with pytest.raises(ConfigError, match="outside \\[0.0, 40.0\\]"):
        actuator_from_config(cfg(Pca9685ActuatorConfig, actuation_range_deg=40.0), rules.bins, no_sleep)


def test_pca9685_missing_board_is_an_actuator_error(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    servokit = fake(monkeypatch, "adafruit_servokit")
    servokit.MISSING_ADDRESSES.add(0x41)
    with pytest.raises(ActuatorError, match="0x41"):
        actuator_from_config(cfg(Pca9685ActuatorConfig, address=0x41), rules.bins, no_sleep)


def test_pca9685_with_drop_sensor(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    fake(monkeypatch, "adafruit_servokit")
    gpiozero = fake(monkeypatch, "gpiozero")
    bins = BASIC_BINS.replace("{name: a, capacity: 100,", "{name: a, capacity: 100, drop_sensor_pin: 17,")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    act = actuator_from_config(cfg(Pca9685ActuatorConfig), rules.bins, no_sleep)
    assert act.route("a").arrived is False                 # the beam never broke
    gpiozero.AUTO_ACTIVATE.add(17)
    assert act.route("a").arrived is True
    assert act.route("b").arrived is None                  # no sensor on b
    act.close()
    assert gpiozero.PINS[17].owner is None


# --- GPIO (gpiozero) ----------------------------------------------------------------------------

def test_gpio_servo_moves_to_the_bin_angle(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    gpiozero = fake(monkeypatch, "gpiozero")
    act = actuator_from_config(cfg(GpioActuatorConfig, driver="servo", servo_pin=12), rules.bins, no_sleep)
    act.route("c")
    assert gpiozero.PINS[12].history[-1] == 30.0
    act.close()
    assert gpiozero.PINS[12].owner is None


def test_gpio_servo_angle_outside_the_servo_range(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    fake(monkeypatch, "gpiozero")
    with pytest.raises(ConfigError, match="outside \\[0.0, 45.0\\]"):
        actuator_from_config(cfg(GpioActuatorConfig, driver="servo", max_angle=45.0), rules.bins, no_sleep)


def test_gpio_pin_in_use_is_an_actuator_error(monkeypatch: pytest.MonkeyPatch, rules: SortRules) -> None:
    fake(monkeypatch, "gpiozero")
    first = actuator_from_config(cfg(GpioActuatorConfig, driver="servo", servo_pin=13), rules.bins, no_sleep)
    with pytest.raises(ActuatorError, match="GPIO13 is already in use"):
        actuator_from_config(cfg(GpioActuatorConfig, driver="servo", servo_pin=13), rules.bins, no_sleep)
    first.close()


def test_gpio_stepper_steps_between_bins(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    gpiozero = fake(monkeypatch, "gpiozero")
    bins = BASIC_BINS.replace("10.0", "10").replace("20.0", "25").replace("30.0", "5")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    act = actuator_from_config(cfg(GpioActuatorConfig, driver="stepper", step_pin=20, dir_pin=21, enable_pin=16),
                               rules.bins, no_sleep)

    def pulses() -> int:
        return sum(1 for v in gpiozero.PINS[20].history if v is True)

    act.route("a")
    assert pulses() == 10 and gpiozero.PINS[21].history[-1] is True
    act.route("b")
    assert pulses() == 25
    act.route("c")
    assert pulses() == 45 and gpiozero.PINS[21].history[-1] is False
    act.close()


def test_gpio_stepper_needs_whole_steps(monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path) -> None:
    fake(monkeypatch, "gpiozero")
    bins = BASIC_BINS.replace("10.0", "10.5")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    with pytest.raises(ConfigError, match="whole steps"):
        actuator_from_config(cfg(GpioActuatorConfig, driver="stepper", step_pin=22, dir_pin=23, enable_pin=-1),
                             rules.bins, no_sleep)
