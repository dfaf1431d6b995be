"""The demo's generated world under var/demo: a catalogue and its reference database, each made again
only when what it was made from changed. The demo and the graph and memory benchmarks share it."""

from __future__ import annotations

import json
import logging
import pathlib
import shutil

from cardsorter.config import REPO_ROOT, is_source_checkout
from cardsorter.db.build import ProgressFn

log = logging.getLogger("cardsorter.demo")

# In the source tree, else (a pip install) under the current directory.
VAR = (REPO_ROOT if is_source_checkout() else pathlib.Path.cwd()) / "var" / "demo"


def ensure_catalog(cards: int, unknown: int, seed: int) -> pathlib.Path:
    """var/demo/catalog, generated again only when asked for another size or seed, or drawn differently."""
    from cardsorter.sim.catalog import RENDER_VERSION, generate_catalog

    path = VAR / "catalog"
    wanted = {"cards": cards, "unknown": unknown, "seed": seed, "render_version": RENDER_VERSION}
    stamp = path / "generator.json"
    if not stamp.exists() or json.loads(stamp.read_text()) != wanted:
        shutil.rmtree(path, ignore_errors=True)
        log.info("generating a catalogue of %d cards (+%d unknown) in %s", cards, unknown, path)
        generate_catalog(path, cards=cards, seed=seed, unknown=unknown)
        stamp.write_text(json.dumps(wanted))
    return path


def ensure_database(catalog: pathlib.Path, manifest_path: pathlib.Path,
                    progress: ProgressFn | None = None) -> pathlib.Path:
    """var/demo/db, built again when the catalogue or the model changed."""
    from cardsorter.core.model_manifest import load_manifest
    from cardsorter.database_setup import build_database_from_settings

    path = VAR / "db"
    wanted = {"catalog": json.loads((catalog / "generator.json").read_text()),
              "model_id": load_manifest(manifest_path).model_id}
    stamp = VAR / "db.source.json"
    if not (path / "manifest.json").exists() or not stamp.exists() or json.loads(stamp.read_text()) != wanted:
        shutil.rmtree(path, ignore_errors=True)
        log.info("building the reference database %s with model %s", path, wanted["model_id"])
        report = build_database_from_settings(catalog / "images", path, metadata=catalog / "metadata.json",
                                              model=manifest_path, progress=progress)
        log.info("built %s: database %s, %d templates of %d cards", path, report.database_id, report.rows,
                 report.cards)
        stamp.write_text(json.dumps(wanted))
    return path
