"""Regression replays: the committed bags under test/data/ through the graph, against golden sort logs."""

from __future__ import annotations

import csv
import io
import math
import pathlib
import shlex
from collections.abc import Mapping, Sequence

from cardsorter.config import REPO_ROOT
from cardsorter.core.errors import ConfigError

DATA = REPO_ROOT / "test" / "data"
BAGS = ("belt4", "station_raw3")

# What a replay must reproduce exactly: which cards, in which order, what was decided and why.
EXACT_COLUMNS = ("track_id", "first_stamp_ns", "last_stamp_ns", "status", "card_id", "name", "set_code", "number",
                 "bin", "reason", "finish")
# Cosine distance and margin are compared within this tolerance. ONNX Runtime and OpenCV pick different
# kernels per CPU: the same belt4 replay gave margin 0.1790 on AMD EPYC and 0.1787 on Intel Xeon (3e-4).
# 0.005 leaves 16x that spread and is 4x below the smallest band step that decides anything
# (matcher.bands.art_margin_min 0.02); a change that moves a decision also changes an exact column.
FLOAT_TOLERANCE = {"distance": 0.005, "margin": 0.005}


def golden_path(bag: str) -> pathlib.Path:
    return DATA / f"{bag}.golden.csv"


CATALOG_OPTIONS = {"--cards": "cards", "--seed": "seed", "--unknown": "unknown"}


def catalog_spec(text: str, where: str = "test/data/CATALOG") -> dict[str, int]:
    """The catalogue the goldens were made with, from its command line (``catalog generate --cards N
    --seed S --unknown M``): generate_catalog's keyword arguments."""
    words = shlex.split(text)
    if words[:2] != ["catalog", "generate"] or len(words) % 2:
        raise ConfigError(f"{where}: expected 'catalog generate --cards N --seed S [--unknown M]', got {text!r}")
    spec: dict[str, int] = {}
    for option, value in zip(words[2::2], words[3::2], strict=True):
        if option not in CATALOG_OPTIONS:
            raise ConfigError(f"{where}: unknown option {option!r} (valid: {', '.join(CATALOG_OPTIONS)})")
        try:
            spec[CATALOG_OPTIONS[option]] = int(value)
        except ValueError as err:
            raise ConfigError(f"{where}: {option} needs an integer, got {value!r}") from err
    missing = [o for o, name in CATALOG_OPTIONS.items() if name in ("cards", "seed") and name not in spec]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    return spec


def build_reference_database(work: pathlib.Path) -> pathlib.Path:
    """The database the goldens were made with: the catalogue in test/data/CATALOG and the default model."""
    from cardsorter.database_setup import build_database_from_settings
    from cardsorter.sim.catalog import generate_catalog

    catalog = work / "catalog"
    generate_catalog(catalog, **catalog_spec((DATA / "CATALOG").read_text().strip()))
    db = work / "db"
    build_database_from_settings(catalog / "images", db, metadata=catalog / "metadata.json")
    return db


def replay_to(bag: str, db: pathlib.Path, out: pathlib.Path) -> str:
    """Replay ``bag`` into a fresh sort log at ``out``; returns that one session's rows as golden CSV text."""
    from cardsorter.inventory.sort_log import read_sort_log
    from cardsorter.ros.bag_replay import replay_bag

    replay_bag(DATA / bag, db, out)
    sessions = read_sort_log(out)
    if len(sessions) != 1:
        raise RuntimeError(f"replay of {bag} wrote {len(sessions)} sessions to {out}, expected one")
    return golden_text(sessions[0].rows)


def golden_text(rows: Sequence[Mapping[str, str]]) -> str:
    """The golden file format: the sort log's columns and rows, no session header."""
    from cardsorter.inventory.sort_log import SORT_LOG_COLUMNS

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SORT_LOG_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in SORT_LOG_COLUMNS])
    return out.getvalue()


def parse_golden(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def compare_sort_logs(want: Sequence[Mapping[str, str]], got: Sequence[Mapping[str, str]],
                      tolerance: Mapping[str, float] = FLOAT_TOLERANCE) -> list[str]:
    """Differences that matter between two sort logs (empty: the same): EXACT_COLUMNS and the order of
    rows exactly, the float columns within ``tolerance``."""
    problems = []
    if len(want) != len(got):
        problems.append(f"{len(got)} rows instead of {len(want)}")
    for i, (w, g) in enumerate(zip(want, got, strict=False), start=1):
        where = f"row {i} (track {w.get('track_id')})"
        for col in EXACT_COLUMNS:
            if w.get(col) != g.get(col):
                problems.append(f"{where}: {col} {g.get(col)!r} instead of {w.get(col)!r}")
        for col, tol in tolerance.items():
            try:
                wv, gv = float(w[col]), float(g[col])
            except (KeyError, ValueError) as err:
                problems.append(f"{where}: {col} unreadable ({err})")
                continue
            if not (math.isclose(wv, gv, rel_tol=0.0, abs_tol=tol) or (math.isinf(wv) and wv == gv)):
                problems.append(f"{where}: {col} {gv} differs from {wv} by more than {tol}")
    return problems
