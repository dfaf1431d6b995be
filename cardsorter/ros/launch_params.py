"""What the launch file hands each node: the parameters file, then an override file addressed to the node.

rcl applies a process's parameter-file blocks in the order their keys first appear, across every
``--params-file``; a later value for an already-seen key lands in that key's earlier slot. launch_ros
writes a Node's ``parameters=[{...}]`` under ``/**`` (when the Node has no namespace), a key the
parameters file itself opens with, so those overrides were applied before the file's ``/**/camera:``
block and lost. Here every override goes under a key the parameters file does not use — the node's
fully-qualified name — in a file passed after it, so it is applied last and wins under any namespace.
Pure (no launch, no rclpy): the launch file and the CI test that feeds these files to rclpy share it.
"""

from __future__ import annotations

import pathlib
import re
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from cardsorter.core.errors import ConfigError

# Launch argument → (node, parameter) it sets. An empty value leaves the parameters file's value.
LAUNCH_ARGUMENTS: dict[str, tuple[str, str]] = {
    "source": ("camera", "source"),
    "backend": ("embedder", "backend"),
    "database": ("matcher", "database"),
}
_NAME_TOKEN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def normalize_namespace(namespace: str) -> str:
    """``station2`` / ``/station2/`` → ``/station2``; ``""`` or ``/`` (the root) → ``""``."""
    parts = [p for p in namespace.split("/") if p]
    for part in parts:
        if not _NAME_TOKEN.match(part):
            raise ConfigError(f"namespace {namespace!r}: '{part}' is not a valid ROS name token "
                              "(letters, digits and _, not starting with a digit)")
    return "/" + "/".join(parts) if parts else ""


def node_fqn(namespace: str, name: str) -> str:
    return f"{normalize_namespace(namespace)}/{name}"


def overrides_from_launch(values: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """{node: {param: value}} for the launch arguments given a non-empty value."""
    unknown = set(values) - set(LAUNCH_ARGUMENTS)
    if unknown:
        raise ConfigError(f"unknown launch overrides {sorted(unknown)} (known: {', '.join(LAUNCH_ARGUMENTS)})")
    table: dict[str, dict[str, Any]] = {}
    for arg, value in values.items():
        if value != "":
            node, param = LAUNCH_ARGUMENTS[arg]
            table.setdefault(node, {})[param] = value
    return table


def params_file_keys(params_file: str | pathlib.Path) -> set[str]:
    try:
        raw = yaml.safe_load(pathlib.Path(params_file).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read parameters file {params_file}: {err}") from err
    if not isinstance(raw, Mapping):
        raise ConfigError(f"parameters file {params_file} must be a mapping of node names")
    return {"/" + str(k).lstrip("/") for k in raw}


def override_key(fqn: str, taken: Iterable[str]) -> str:
    """The node's full name, or (when the parameters file uses that key itself, so an override under it
    would be applied in the file's earlier slot) ``/**`` + full name, which matches the same node."""
    taken = set(taken)
    for key in (fqn, "/**" + fqn):
        if key not in taken:
            return key
    raise ConfigError(f"the parameters file uses both '{fqn}' and '/**{fqn}': the launch overrides cannot "
                      "be placed after them (keep one of the two keys)")


def override_document(params_file: str | pathlib.Path, namespace: str, nodes: Iterable[str],
                      overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    taken = params_file_keys(params_file)
    return {override_key(node_fqn(namespace, name), taken): {"ros__parameters": dict(overrides[name])}
            for name in nodes if overrides.get(name)}


def write_override_file(params_file: str | pathlib.Path, namespace: str, nodes: Iterable[str],
                        overrides: Mapping[str, Mapping[str, Any]], directory: str | None = None) -> pathlib.Path:
    """The override file (a temporary file, kept: the node processes read it when they start)."""
    doc = override_document(params_file, namespace, nodes, overrides)
    with tempfile.NamedTemporaryFile("w", prefix="cardsorter_launch_", suffix=".yaml", dir=directory,
                                     delete=False, encoding="utf-8") as fh:
        yaml.safe_dump(doc, fh, default_flow_style=False)
    return pathlib.Path(fh.name)


def node_ros_arguments(params_file: str | pathlib.Path, override_file: str | pathlib.Path,
                       namespace: str) -> list[str]:
    """The rcl arguments launch_ros gives each node process for ``namespace=…, parameters=[file, override]``."""
    ns = normalize_namespace(namespace)
    return ["--ros-args", *(["-r", f"__ns:={ns}"] if ns else []),
            "--params-file", str(params_file), "--params-file", str(override_file)]
