"""The sorter node passes sorter.session.condition to its inventory session (and refuses a bad one)."""

from __future__ import annotations

import pathlib
import sqlite3

import pytest
from rosutil import overrides, ros_context, started

from cardsorter.ros.sorter_node import SorterNode


def test_session_condition_reaches_the_inventory(tmp_path: pathlib.Path) -> None:
    inv = tmp_path / "inv.sqlite"
    with ros_context() as (context, executor):
        sorter = started(SorterNode(context=context, parameter_overrides=overrides(
            "sorter", inventory_path=str(inv), **{"session.condition": "Lightly Played"})))
        executor.add_node(sorter)
        sorter.destroy_node()
    conn = sqlite3.connect(inv)
    assert conn.execute("SELECT condition FROM session_conditions").fetchall() == [("LP",)]
    conn.close()


def test_a_bad_session_condition_is_refused(tmp_path: pathlib.Path) -> None:
    with ros_context() as (context, _), pytest.raises(Exception, match="not one of NM, LP"):
        SorterNode(context=context, parameter_overrides=overrides(
            "sorter", inventory_path=str(tmp_path / "inv.sqlite"), **{"session.condition": "shiny"}))
