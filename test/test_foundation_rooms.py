"""Each room of the package imports only the rooms below it (docs/ARCHITECTURE.md, "Rooms")."""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "cardsorter"

# room -> the cardsorter rooms it may import (besides itself). A room is a sub-package or a top-level module.
MAY_IMPORT: dict[str, set[str]] = {
    "core": set(),
    "imagefiles": {"core"},
    "sim": {"core", "imagefiles"},
    "backends": {"core", "sim", "config"},   # config: data-file paths (models/)
    "db": {"core", "backends", "sim", "imagefiles"},
    "inventory": {"core", "db"},
    "web": {"core", "inventory", "db"},
    "config": {"core"},
    "console": set(),
    "settings": {"core", "config", "backends", "db", "sim", "web", "inventory"},
    "run_report": {"core"},
    "database_setup": {"core", "config", "settings", "backends", "db"},
    "demo_world": {"core", "config", "settings", "db", "sim", "database_setup"},
    "regression": {"core", "config", "settings", "db", "sim", "inventory", "ros", "database_setup", "demo_world"},
    "ros": {"core", "config", "settings", "backends", "db", "sim", "inventory", "web", "imagefiles",
            "database_setup", "console", "msg", "srv"},
    "bench": {"core", "config", "settings", "backends", "db", "sim", "inventory", "web", "imagefiles", "ros",
              "run_report", "regression", "database_setup", "demo_world", "console", "msg", "srv"},
    "cli": {"core", "config", "settings", "backends", "db", "sim", "inventory", "web", "imagefiles", "ros",
            "run_report", "regression", "bench", "database_setup", "demo_world", "console", "msg", "srv"},
}


def room_of(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return rel.parts[0]


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imported_rooms(path: pathlib.Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    rooms: set[str] = set()
    type_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If) and _is_type_checking(block.test)
                 for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in type_only:   # annotations only (`if TYPE_CHECKING:`): no import at run time
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] if node.module != "cardsorter" else [f"cardsorter.{a.name}" for a in node.names]
        rooms.update(name.split(".")[1] for name in names if name.startswith("cardsorter."))
    return rooms


def package_files() -> list[pathlib.Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py" or p.parent != PACKAGE)


def test_every_room_has_a_rule() -> None:
    rooms = {room_of(p) for p in package_files()}
    assert rooms - set(MAY_IMPORT) == set(), "add the new room to MAY_IMPORT and to docs/ARCHITECTURE.md"


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_rooms_below_it(path: pathlib.Path) -> None:
    room = room_of(path)
    bad = sorted(imported_rooms(path) - MAY_IMPORT.get(room, set()) - {room})
    assert bad == [], f"{path.relative_to(PACKAGE)} ({room}) imports {bad}"


def test_nothing_outside_cli_imports_cli() -> None:
    assert all("cli" not in allowed for room, allowed in MAY_IMPORT.items() if room != "cli")


def test_the_checker_sees_a_forbidden_import(tmp_path: pathlib.Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("from typing import TYPE_CHECKING\nfrom cardsorter.cli.demo import run\nimport cardsorter.ros.graph\n"
                     "from cardsorter import config\nif TYPE_CHECKING:\n    from cardsorter.settings import Settings\n")
    assert imported_rooms(probe) == {"cli", "ros", "config"}
