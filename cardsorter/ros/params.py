"""Typed parameter declaration: one ROS parameter per config-dataclass field, loaded once at start."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from cardsorter.config import describe, from_params
from cardsorter.core.errors import ConfigError

T = TypeVar("T")

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


def declare_value(node: Node, name: str, annotation: Any, description: str) -> Any:
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
        node.declare_parameter(name, ptype, ParameterDescriptor(description=description, dynamic_typing=False))
        value = node.get_parameter(name).value
    except ParameterUninitializedException as err:
        raise ConfigError(f"node '{node.get_name()}': missing parameter '{name}' ({description})") from err
    except (InvalidParameterTypeException, InvalidParameterValueException) as err:
        raise ConfigError(f"node '{node.get_name()}': parameter '{name}' has the wrong type or value: {err}") from err
    if ptype == Parameter.Type.DOUBLE_ARRAY or ptype == Parameter.Type.INTEGER_ARRAY:
        value = list(value)
    return value


def declare_config(node: Node, cls: type[T], prefix: str = "") -> T:
    """Declare every field of config dataclass ``cls`` under ``prefix`` and build it."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = prefix + f.name
        values[name] = declare_value(node, name, hints[f.name], describe(f))
    try:
        return from_params(cls, values, prefix)
    except ConfigError as err:
        raise ConfigError(f"node '{node.get_name()}': {err}") from err
