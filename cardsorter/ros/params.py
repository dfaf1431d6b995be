"""Typed parameter declaration: one ROS parameter per config-dataclass field, with its range and runtime rule."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from cardsorter.config import describe, from_params, value_range
from cardsorter.core.errors import ConfigError

T = TypeVar("T")

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
READ_ONLY_REASON = "read only: this node reads it once at start (change it in the parameters file and restart)"

_SCALAR = {bool: Parameter.Type.BOOL, int: Parameter.Type.INTEGER, float: Parameter.Type.DOUBLE,
           str: Parameter.Type.STRING}
_ARRAY = {bool: Parameter.Type.BOOL_ARRAY, int: Parameter.Type.INTEGER_ARRAY,
          float: Parameter.Type.DOUBLE_ARRAY, str: Parameter.Type.STRING_ARRAY}


def parameter_type(annotation: Any) -> Parameter.Type:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        (item,) = typing.get_args(annotation)[:1]
        return _ARRAY[item]
    return _SCALAR[annotation]


def descriptor(name: str, annotation: Any, description: str, field: dataclasses.Field[Any] | None = None,
               read_only: bool = True) -> ParameterDescriptor:
    """The descriptor of one parameter: description, read_only, and the field's declared range if any."""
    desc = ParameterDescriptor(name=name, description=description, dynamic_typing=False, read_only=read_only)
    lo, hi = value_range(field) if field is not None else (None, None)
    if lo is None and hi is None:
        return desc
    ptype = parameter_type(annotation)
    if ptype == Parameter.Type.INTEGER:
        desc.integer_range = [IntegerRange(from_value=int(lo) if lo is not None else INT64_MIN,
                                           to_value=int(hi) if hi is not None else INT64_MAX, step=0)]
    elif ptype == Parameter.Type.DOUBLE:
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo) if lo is not None else -math.inf,
                                                        to_value=float(hi) if hi is not None else math.inf,
                                                        step=0.0)]
    return desc


def declare_value(node: Node, name: str, annotation: Any, description: str,
                  field: dataclasses.Field[Any] | None = None, read_only: bool = True) -> Any:
    """Declare one typed parameter without a default and return its value; ConfigError names it."""
    ptype = parameter_type(annotation)
    try:
        if node.has_parameter(name):  # declared from the overrides (nodes with source-specific blocks)
            param = node.get_parameter(name)
            if param.type_ != ptype and not (ptype == Parameter.Type.DOUBLE and param.type_ == Parameter.Type.INTEGER):
                raise ConfigError(f"node '{node.get_name()}': parameter '{name}' must be {ptype.name.lower()}, "
                                  f"got {param.value!r}")
            value = param.value
            return float(value) if ptype == Parameter.Type.DOUBLE else value
        node.declare_parameter(name, ptype, descriptor(name, annotation, description, field, read_only))
        value = node.get_parameter(name).value
    except ParameterUninitializedException as err:
        raise ConfigError(f"node '{node.get_name()}': missing parameter '{name}' ({description})") from err
    except (InvalidParameterTypeException, InvalidParameterValueException) as err:
        raise ConfigError(f"node '{node.get_name()}': parameter '{name}' has the wrong type or value: {err}") from err
    return _plain(value)


def _plain(value: Any) -> Any:
    """Array parameters come back as array.array / tuples: the config checks take lists."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    return list(value)


def declare_config(node: Node, cls: type[T], prefix: str = "",
                   on_change: Callable[[T], None] | None = None) -> T:
    """Declare every field of config dataclass ``cls`` under ``prefix`` and build it.

    Without ``on_change`` the parameters are read only (a runtime change would be accepted and
    ignored otherwise). With it, a runtime change is checked by the same config checks as at start
    (``from_params``: types, declared ranges, ``__post_init__``), refused with their reason when
    they fail, and the new config is handed to ``on_change`` once the parameters are set.
    """
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = prefix + f.name
        values[name] = declare_value(node, name, hints[f.name], describe(f), f, read_only=on_change is None)
    try:
        config = from_params(cls, values, prefix)
    except ConfigError as err:
        raise ConfigError(f"node '{node.get_name()}': {err}") from err
    guard_runtime_changes(node, cls, prefix, values, on_change)
    return config


def guard_runtime_changes(node: Node, cls: type[T], prefix: str, names: Iterable[str],
                          on_change: Callable[[T], None] | None) -> None:
    """Refuse runtime changes of ``names`` that fail ``cls``'s checks (all of them without on_change)."""
    names = frozenset(names)

    def current(changes: Mapping[str, Any]) -> dict[str, Any]:
        values = {n: _plain(node.get_parameter(n).value) for n in names}
        values.update(changes)
        return values

    def check(params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: _plain(p.value) for p in params if p.name in names}
        if not changes:
            return SetParametersResult(successful=True)
        if on_change is None:
            return SetParametersResult(successful=False, reason=f"{', '.join(sorted(changes))}: {READ_ONLY_REASON}")
        try:
            from_params(cls, current(changes), prefix)
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=f"refused: {err}")
        return SetParametersResult(successful=True)

    def apply(params: list[Parameter]) -> None:
        if on_change is not None and any(p.name in names for p in params):
            on_change(from_params(cls, current({}), prefix))

    node.add_on_set_parameters_callback(check)
    if on_change is not None:
        node.add_post_set_parameters_callback(apply)


def refuse_runtime_changes(node: Node, why: str = READ_ONLY_REASON) -> None:
    """Runtime changes of every parameter ``node`` has declared so far are refused with ``why``
    (parameters declared from the overrides carry no read_only descriptor)."""
    declared = frozenset(node.get_parameters_by_prefix("").keys())

    def check(params: list[Parameter]) -> SetParametersResult:
        refused = sorted(p.name for p in params if p.name in declared)
        return SetParametersResult(successful=not refused, reason=f"{', '.join(refused)}: {why}" if refused else "")

    node.add_on_set_parameters_callback(check)
