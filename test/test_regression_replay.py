"""Committed bags replay through the real graph to their golden sort logs, and replay deterministically."""

from __future__ import annotations

import difflib
import pathlib

import pytest

from cardsorter.regression import BAGS, build_reference_database, golden_path, replay_to


@pytest.fixture(scope="module")
def reference_db(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_reference_database(tmp_path_factory.mktemp("regression"))


@pytest.mark.parametrize("bag", BAGS)
def test_bag_replays_to_its_golden_sort_log(bag: str, reference_db: pathlib.Path, tmp_path: pathlib.Path) -> None:
    got = replay_to(bag, reference_db, tmp_path / "log.csv")
    want = golden_path(bag).read_text()
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True), "golden", "replay"))
    assert got == want, f"{bag} sorted differently (run `make golden` only if the change is intended):\n{diff}"


def test_replaying_twice_gives_the_same_sort_log(reference_db: pathlib.Path, tmp_path: pathlib.Path) -> None:
    first = replay_to("belt4", reference_db, tmp_path / "a.csv")
    second = replay_to("belt4", reference_db, tmp_path / "b.csv")
    assert first == second
    assert first.count("\n") > 1, "the replay sorted no card"


def test_a_bag_with_only_raw_images_is_detected_and_sorted(reference_db: pathlib.Path, tmp_path: pathlib.Path) -> None:
    log = replay_to("station_raw3", reference_db, tmp_path / "log.csv")
    rows = log.strip().splitlines()[1:]
    assert len(rows) >= 3, log
