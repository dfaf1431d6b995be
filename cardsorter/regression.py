"""Regression replays: the committed bags under test/data/ through the graph, against golden sort logs."""

from __future__ import annotations

import pathlib
import shlex

from cardsorter.config import REPO_ROOT

DATA = REPO_ROOT / "test" / "data"
BAGS = ("belt4", "station_raw3")


def golden_path(bag: str) -> pathlib.Path:
    return DATA / f"{bag}.golden.csv"


def build_reference_database(work: pathlib.Path) -> pathlib.Path:
    """The database the goldens were made with: the catalogue in test/data/CATALOG and the default model."""
    from cardsorter.cli.__main__ import main as cli_main

    spec = shlex.split((DATA / "CATALOG").read_text().strip())   # catalog generate --cards N --seed S --unknown M
    catalog = work / "catalog"
    if cli_main([*spec[:2], "--out", str(catalog), *spec[2:]]) != 0:
        raise RuntimeError("generating the regression catalogue failed")
    db = work / "db"
    if cli_main(["db", "build", "--images", str(catalog / "images"), "--metadata", str(catalog / "metadata.json"),
                 "--out", str(db)]) != 0:
        raise RuntimeError("building the regression database failed")
    return db


def replay_to(bag: str, db: pathlib.Path, out: pathlib.Path) -> str:
    from cardsorter.cli.bags import replay_bag

    replay_bag(DATA / bag, db, out)
    return out.read_text()
