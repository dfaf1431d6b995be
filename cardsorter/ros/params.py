"""declare_settings: a node's slice of the settings tree declared as typed ROS parameters, with ranges and runtime rules."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.exceptions import (
    InvalidParameterTypeException,
    InvalidParameterValueException,
    ParameterUninitializedException,
)
from rclpy.node import Node
from rclpy.parameter import Parameter

from cardsorter.core.errors import ConfigError
from cardsorter.core.fields import value_range
from cardsorter.settings import Leaf, build, every_parameter_name, leaves

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


def _declare(node: Node, leaf: Leaf, read_only: bool) -> Any:
    """Declare one typed parameter without a default and return its value as rclpy holds it."""
    ptype = parameter_type(leaf.annotation)
    try:
        node.declare_parameter(leaf.name, ptype,
                               descriptor(leaf.name, leaf.annotation, leaf.description, leaf.field, read_only))
        value = node.get_parameter(leaf.name).value
    except ParameterUninitializedException as err:
        raise ConfigError(f"node '{node.get_name()}': missing parameter '{leaf.name}' ({leaf.description})") from err
    except (InvalidParameterTypeException, InvalidParameterValueException) as err:
        raise ConfigError(f"node '{node.get_name()}': parameter '{leaf.name}' has the wrong type or value: {err}") from err
    return _plain(value)


def _plain(value: Any) -> Any:
    """Array parameters come back as array.array / tuples: the settings take lists."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    return list(value)


def declare_settings(node: Node, cls: type[T], on_change: Mapping[str, Callable[[Any], None]] | None = None) -> T:
    """Declare every parameter of the node's settings ``cls`` (cardsorter.settings, sections walked
    recursively) and build it with the same checks as ``load_settings``.

    ``on_change`` maps a top-level field of ``cls`` (``"bands"``, ``"gate"``) to a callback: that
    field's parameters may change at runtime; a change is checked by building the whole settings again
    (types, declared ranges, each dataclass's rules), refused with the reason when it fails, and the new
    value of the field handed to the callback once set. Every other parameter is read only.
    A parameter the node was given that no node has (a misspelt key) is a ConfigError naming it.
    """
    callbacks = dict(on_change or {})
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(callbacks) - fields)
    if unknown:
        raise TypeError(f"on_change for {unknown}: {cls.__name__} has no such field")
    every = leaves(cls)
    writable = {leaf.name: leaf.path[0] for leaf in every if leaf.path[0] in callbacks}
    values = {leaf.name: _declare(node, leaf, read_only=leaf.name not in writable) for leaf in every}
    _refuse_unknown_overrides(node)
    try:
        settings = build(cls, values)
    except ConfigError as err:
        raise ConfigError(f"node '{node.get_name()}': {err}") from err
    _guard_runtime_changes(node, cls, frozenset(values), writable, callbacks)
    return settings


def _refuse_unknown_overrides(node: Node) -> None:
    """rcl hands a node its own block and the ``/**`` one: a key there that no node has is misspelt."""
    given = getattr(node, "_parameter_overrides", {})
    stray = sorted(name for name in given if not node.has_parameter(name) and name not in every_parameter_name())
    if stray:
        raise ConfigError(f"node '{node.get_name()}': unknown parameter(s) {', '.join(stray)}; valid: "
                          f"{', '.join(sorted(node.get_parameters_by_prefix('').keys()))}")


def _guard_runtime_changes(node: Node, cls: type[T], names: frozenset[str], writable: Mapping[str, str],
                           on_change: Mapping[str, Callable[[Any], None]]) -> None:
    """Refuse runtime changes of read-only ``names``, and of writable ones that fail ``cls``'s checks."""

    def current(changes: Mapping[str, Any]) -> dict[str, Any]:
        values = {n: _plain(node.get_parameter(n).value) for n in names}
        values.update(changes)
        return values

    def check(params: list[Parameter]) -> SetParametersResult:
        changes = {p.name: _plain(p.value) for p in params if p.name in names}
        if not changes:
            return SetParametersResult(successful=True)
        fixed = sorted(n for n in changes if n not in writable)
        if fixed:
            return SetParametersResult(successful=False, reason=f"{', '.join(fixed)}: {READ_ONLY_REASON}")
        try:
            build(cls, current(changes))
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=f"refused: {err}")
        return SetParametersResult(successful=True)

    def apply(params: list[Parameter]) -> None:
        changed = {writable[p.name] for p in params if p.name in writable}
        if changed:
            settings = build(cls, current({}))
            for field in sorted(changed):
                on_change[field](getattr(settings, field))

    node.add_on_set_parameters_callback(check)
    if on_change:
        node.add_post_set_parameters_callback(apply)
