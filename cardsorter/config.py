"""Where the package's files are (source tree, wheel, colcon share directory) and the parameters YAML's shape.

The YAML's keys and values are checked and typed once by cardsorter.settings (the settings tree).
"""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Mapping
from typing import Any

import yaml

from cardsorter.core.errors import ConfigError

log = logging.getLogger(__name__)

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# Where a wheel (`pip install .`, see setup.py) puts config/, models/ and package.xml: inside the package.
WHEEL_SHARE = pathlib.Path(__file__).resolve().parent / "_share"


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


def params_file_blocks(path: str | pathlib.Path) -> dict[str, dict[str, Any]]:
    """A ROS 2 parameters YAML as written: {node_name: {dotted_param: value}}, ``**`` for the ``/**`` block.

    Node keys may be written ``camera``, ``/camera`` or ``/**/camera`` (any namespace); rcl itself
    applies the file's blocks to running nodes (runner.Graph passes it with ``--params-file``).
    Only the file's shape is checked here; cardsorter.settings.load_settings checks its keys and values.
    """
    path = pathlib.Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read parameters file {path}: {err}") from err
    if not isinstance(raw, Mapping):
        raise ConfigError(f"parameters file {path} must be a mapping of node names")
    blocks: dict[str, dict[str, Any]] = {"**": {}}
    for node, body in raw.items():
        if not isinstance(body, Mapping) or "ros__parameters" not in body:
            raise ConfigError(f"{path}: entry '{node}' must contain 'ros__parameters'")
        params = flatten(body["ros__parameters"] or {})
        key = node_key(str(node))
        key = "**" if key == "*" else key
        blocks[key] = {**blocks.get(key, {}), **params}
    return blocks


def load_params_file(path: str | pathlib.Path) -> dict[str, dict[str, Any]]:
    """A ROS 2 parameters YAML as each node receives it: {node_name: {dotted_param: value}} with the
    ``/**`` block merged in (and under ``**`` itself)."""
    blocks = params_file_blocks(path)
    common = blocks["**"]
    return {node: {**common, **params} for node, params in blocks.items() if node != "**"} | {"**": common}


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
