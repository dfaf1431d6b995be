"""Typed configuration: flat frozen dataclasses filled from the one parameters YAML.

Every tunable lives in ``config/sorter.yaml`` under its node's ``ros__parameters``; a config
dataclass names the fields, their types and a description (``field(metadata={"doc": ...})``).
The ROS nodes declare one parameter per field (so ``ros2 param`` works) and fail at start with the
parameter's name when it is missing or mistyped; tests and the CLI read the same YAML here.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import pathlib
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import yaml

from cardsorter.core.errors import ConfigError

T = TypeVar("T")
log = logging.getLogger(__name__)

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# Where a wheel (`pip install .`, see setup.py) puts config/, models/ and package.xml: inside the package.
WHEEL_SHARE = pathlib.Path(__file__).resolve().parent / "_share"
SCALAR_TYPES = (bool, int, float, str)


def is_source_checkout() -> bool:
    """True when this module runs from the repository (REPO_ROOT holds package.xml and config/)."""
    return (REPO_ROOT / "package.xml").is_file() and (REPO_ROOT / "config").is_dir()


def _ament_share() -> pathlib.Path | None:
    try:  # installed by colcon (robot): share/cardsorter/{config,models,package.xml}
        from ament_index_python.packages import get_package_share_directory

        return pathlib.Path(get_package_share_directory("cardsorter"))
    except Exception as err:  # noqa: BLE001 - ament_index absent (pip install) or the package is not installed
        log.debug("no installed share directory: %s", err)
        return None


def data_roots() -> list[pathlib.Path]:
    """Folders holding config/, models/ and package.xml, in the order they are searched: the source
    tree, the wheel's package data (cardsorter/_share), the colcon install's share/cardsorter."""
    roots = [REPO_ROOT] if is_source_checkout() else []
    if WHEEL_SHARE.is_dir():
        roots.append(WHEEL_SHARE)
    shared = _ament_share()
    if shared is not None:
        roots.append(shared)
    return roots


def find_data_file(relative: str | pathlib.Path) -> pathlib.Path | None:
    """The first existing ``root / relative`` over data_roots(), or None."""
    for root in data_roots():
        if (root / relative).exists():
            return root / relative
    return None


def default_params_file() -> pathlib.Path:
    """config/sorter.yaml from the source tree, else the wheel's package data, else the colcon share directory."""
    found = find_data_file("config/sorter.yaml")
    if found is None or not found.is_file():
        raise ConfigError("parameters file config/sorter.yaml not found in "
                          f"{[str(r) for r in data_roots()] or [str(REPO_ROOT), str(WHEEL_SHARE)]}")
    return found


def package_version() -> str:
    """cardsorter's version: package.xml (the one source; setup.py reads it too), else the installed wheel's."""
    import xml.etree.ElementTree as ET
    from importlib import metadata

    found = find_data_file("package.xml")
    if found is not None:
        try:
            version = ET.parse(found).getroot().findtext("version")
        except (OSError, ET.ParseError) as err:
            raise ConfigError(f"cannot read {found}: {err}") from err
        if version:
            return version.strip()
    try:
        return metadata.version("cardsorter")
    except metadata.PackageNotFoundError:
        return "unknown"


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mappings to ROS-style dotted names (``tracker: {iou: 0.3}`` → ``tracker.iou``)."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def node_key(key: str) -> str:
    """The node name a parameters-file key addresses: ``camera``, ``/camera`` and ``/**/camera`` → ``camera``."""
    key = key.strip("/")
    return key.removeprefix("**/") if key != "**" else key


def load_params_file(path: str | pathlib.Path, check: bool = True) -> dict[str, dict[str, Any]]:
    """Read a ROS 2 parameters YAML into {node_name: {dotted_param: value}} (``/**`` merged in).

    Node keys may be written ``camera``, ``/camera`` or ``/**/camera`` (any namespace); rcl itself
    applies the file's blocks to running nodes (runner.Graph passes it with ``--params-file``).
    ``check``: a file other than the default one may only name nodes and parameters the default file
    has (``config/sorter.yaml`` lists every parameter); anything else is a ConfigError listing the
    valid ones, so a misspelt key or section cannot be ignored silently.
    """
    path = pathlib.Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read parameters file {path}: {err}") from err
    if not isinstance(raw, Mapping):
        raise ConfigError(f"parameters file {path} must be a mapping of node names")
    common: dict[str, Any] = {}
    nodes: dict[str, dict[str, Any]] = {}
    for node, body in raw.items():
        if not isinstance(body, Mapping) or "ros__parameters" not in body:
            raise ConfigError(f"{path}: entry '{node}' must contain 'ros__parameters'")
        params = flatten(body["ros__parameters"] or {})
        key = node_key(str(node))
        if key in ("**", "*"):
            common.update(params)
        else:
            nodes[key] = params
    table = {node: {**common, **params} for node, params in nodes.items()} | {"**": common}
    if check:
        default = default_params_file()
        if path.resolve() != default.resolve():
            check_known_params(table, str(path), load_params_file(default, check=False))
    return table


def _unknown(what: str, name: str, valid: set[str]) -> str:
    close = difflib.get_close_matches(name, sorted(valid), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {what} '{name}'{hint}; valid: {', '.join(sorted(valid))}"


def check_known_params(table: Mapping[str, Mapping[str, Any]], where: str,
                       schema: Mapping[str, Mapping[str, Any]] | None = None) -> None:
    """Every node and parameter of ``table`` ({node: {dotted: value}}, ``**``: every node) must exist in
    ``schema`` (default: the default parameters file); ConfigError naming each unknown one otherwise."""
    if schema is None:
        schema = load_params_file(default_params_file(), check=False)
    nodes = {n for n in schema if n != "**"}
    every_key = set().union(*(set(v) for v in schema.values()))
    problems = []
    for node, params in table.items():
        if node == "**":
            problems += [f"{where}: /**: {_unknown('parameter', k, every_key)}" for k in params if k not in every_key]
        elif node not in nodes:
            problems.append(f"{where}: {_unknown('node section', node, nodes)}")
        else:
            valid = set(schema[node])
            problems += [f"{where}: node '{node}': {_unknown('parameter', k, valid)}"
                         for k in params if k not in valid and k not in table.get("**", {})]
    if problems:
        raise ConfigError("\n".join(problems))


def node_params(node: str, path: str | pathlib.Path | None = None) -> dict[str, Any]:
    """The flat parameters of one node from a parameters file (the default one when path is None)."""
    table = load_params_file(path or default_params_file())
    if node not in table:
        raise ConfigError(f"parameters file has no section for node '{node}'")
    return table[node]


def field_type(cls: type, f: dataclasses.Field[Any]) -> Any:
    hints = typing.get_type_hints(cls)
    return hints[f.name]


def _coerce(value: Any, annotation: Any, name: str) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        (item_type, *_) = typing.get_args(annotation) or (str,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"parameter '{name}' must be a list of {item_type.__name__}, got {value!r}")
        items = [_coerce(v, item_type, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"parameter '{name}': optional types are not allowed in configs")
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"parameter '{name}' must be a float, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"parameter '{name}' must be an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"parameter '{name}' must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"parameter '{name}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"parameter '{name}': unsupported config type {annotation!r}")


def from_params(cls: type[T], params: Mapping[str, Any], prefix: str = "") -> T:
    """Build config dataclass ``cls`` from flat params; every field must be present and typed right."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        if name not in params:
            raise ConfigError(f"missing parameter '{name}' ({describe(f)})")
        values[f.name] = _coerce(params[name], field_type(cls, f), name)
    try:
        return cls(**values)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid parameters under '{prefix or cls.__name__}': {err}") from err


def describe(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("doc", f.name))


def value_range(f: dataclasses.Field[Any]) -> tuple[float | None, float | None]:
    """The inclusive (low, high) bounds a field declares with ``doc(..., lo=, hi=)``; None: unbounded."""
    lo, hi = f.metadata.get("range", (None, None))
    return lo, hi


def doc(text: str, *, lo: float | None = None, hi: float | None = None) -> Any:
    """Field with a description and no default: ``fps: float = doc("frames per second", lo=1)``.

    ``lo`` / ``hi`` are inclusive bounds: checked by ``check_ranges`` (from the config's
    ``__post_init__``) and published as the ROS parameter's range (cardsorter.ros.params).
    """
    metadata: dict[str, Any] = {"doc": text}
    if lo is not None or hi is not None:
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"doc range low {lo} is above high {hi}")
        metadata["range"] = (lo, hi)
    return dataclasses.field(metadata=metadata)


def check_ranges(config: Any) -> None:
    """ValueError naming the first field of dataclass ``config`` outside its declared range."""
    for f in dataclasses.fields(config):
        lo, hi = value_range(f)
        value = getattr(config, f.name)
        if (lo is not None and not value >= lo) or (hi is not None and not value <= hi):
            bounds = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            raise ValueError(f"{f.name} must be in {bounds}, got {value}")


def resolve_path(path: str | pathlib.Path) -> pathlib.Path:
    """A relative path from the parameters file: the cwd first, then each of data_roots() (source tree,
    wheel package data, share/cardsorter). A path found nowhere (an output such as the inventory) is
    placed in the source tree when running from one, else left relative to the cwd."""
    p = pathlib.Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p
    found = find_data_file(p)
    if found is not None:
        return found
    return REPO_ROOT / p if is_source_checkout() else p
