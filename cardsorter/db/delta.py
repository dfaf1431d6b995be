"""`db add` (append images to DB/delta), `db merge` (freeze snapshot + delta into a new version), `db check`."""

from __future__ import annotations

import dataclasses
import pathlib
from dataclasses import dataclass

import numpy as np

from cardsorter.backends.card_index import CardIndex, SearchConfig
from cardsorter.backends.embedders import Embedder
from cardsorter.core.errors import DatabaseError
from cardsorter.core.types import CardRecord
from cardsorter.db.build import (
    BuildConfig,
    BuildReport,
    ProgressFn,
    SelfRetrievalReport,
    build_report,
    calibrate_rows,
    calibration_settings,
    embed_matched,
    import_report,
    read_sources,
    row_paths,
    search_report,
    self_retrieval,
    templates_max_of,
    trained_cards_of,
    views_for_images,
)
from cardsorter.db.calibrate import empty_views, load_views, trained_cards_from
from cardsorter.db.database import CombinedSearch, ReferenceDatabase
from cardsorter.db.errors import DuplicateIdError, listed
from cardsorter.db.store import CALIBRATION_VIEWS_FILE, USEARCH_FILE, write_block


def add_to_database(db_path: pathlib.Path, images_dir: pathlib.Path, embedder: Embedder, *,
                    build_config: BuildConfig, search_config: SearchConfig,
                    metadata_path: pathlib.Path | None = None,
                    progress: ProgressFn | None = None, metadata_format: str = "auto",
                    agreeing_views: int = 3) -> BuildReport:
    """Embed new images into DB/delta (the snapshot stays frozen); the matcher serves both."""
    db = ReferenceDatabase.load(db_path, embedder.model_id, search_config)
    sources = read_sources(images_dir, metadata_path, metadata_format, progress)
    skipped = list(sources.skipped)
    existing = {(r.card_id, r.source) for r in db.rows()}
    if not sources.match.images:
        raise DatabaseError(f"no image in {images_dir} could be added"
                            + (f" ({len(skipped)} matched no catalogue record)" if skipped else ""))
    vectors, new_rows, new_records, skipped_embed = embed_matched(sources, embedder, build_config.batch_size,
                                                                  progress)
    skipped += skipped_embed
    if not new_rows:
        raise DatabaseError(f"no image in {images_dir} could be added")
    again = [f"{r.card_id} ({r.source})" for r in new_rows if (r.card_id, r.source) in existing]
    if again:
        raise DuplicateIdError(f"images already in database {db_path}: {listed(again)}")
    delta = db.delta
    rows = (list(delta.rows) if delta else []) + new_rows
    all_vectors = np.concatenate([delta.vectors, vectors]) if delta else vectors
    records: dict[str, CardRecord] = dict(delta.records) if delta else {}
    for cid, rec in new_records.items():
        records[cid] = db.record(cid) if db.has_card(cid) else rec
    delta_index = CardIndex.in_memory(all_vectors, search_config)
    searcher = CombinedSearch([CardIndex.open(db.snapshot.vectors, db.snapshot.path / USEARCH_FILE,
                                              search_config, db.snapshot_measured_ef),
                               delta_index])
    combined_rows = list(db.snapshot.rows) + rows
    report = self_retrieval(vectors, new_rows, searcher, combined_rows, templates_max_of(combined_rows),
                            build_config.art_group_distance_max, progress)
    near = (list(delta.near_duplicates) if delta else []) + report.near_duplicates
    settings = calibration_settings(build_config, agreeing_views)
    old_views = db.calibration_views()
    new_views = views_for_images(row_paths(sources, new_rows), new_rows, embedder, build_config, settings,
                                 exclude_cards=sorted(set(old_views.truth)), progress=progress)
    delta_views = (load_views(delta.path / CALIBRATION_VIEWS_FILE, db.dimension) if delta
                   else empty_views(db.dimension)).concat(new_views)
    combined_records = {cid: db.record(cid) for cid in db.card_ids()} | records
    calibration = calibrate_rows(np.concatenate([np.asarray(db.snapshot.vectors), all_vectors]), combined_rows,
                                 combined_records, list(db.snapshot.near_duplicates) + near,
                                 old_views.concat(new_views), settings, trained_cards_of(embedder))
    db.write_delta(all_vectors, rows, records, near,
                   {"added_from": str(images_dir), "skipped_images": [[s.path, s.reason] for s in skipped],
                    "self_retrieval": report.as_dict(), "import": import_report(sources)},
                   calibration=calibration, calibration_views=delta_views,
                   search_measured=search_report(delta_index, all_vectors, delta_views, search_config))
    built = build_report(db_path / "delta", db.database_id, new_rows, new_records, skipped, sources, report)
    return dataclasses.replace(built, calibration=calibration)


def merge_database(db_path: pathlib.Path, out_path: pathlib.Path | None, *, build_config: BuildConfig,
                   search_config: SearchConfig, progress: ProgressFn | None = None,
                   agreeing_views: int = 3) -> BuildReport:
    """Freeze snapshot + delta into a new immutable snapshot directory (default: DB-<new id>)."""
    db = ReferenceDatabase.load(db_path, None, search_config)
    if db.delta is None:
        raise DatabaseError(f"database {db_path} has no delta to merge")
    vectors = db.vectors()
    rows = db.rows()
    records = {cid: db.record(cid) for cid in db.card_ids()}
    index = CardIndex.in_memory(vectors, search_config)
    report = self_retrieval(vectors, rows, index, rows, templates_max_of(rows),
                            build_config.art_group_distance_max, progress)
    snap = db.snapshot
    views = db.calibration_views()
    calibration = calibrate_rows(vectors, rows, records, report.near_duplicates, views,
                                 calibration_settings(build_config, agreeing_views),
                                 trained_cards_from(db.calibration, db.card_ids()))
    searched = search_report(index, vectors, views, search_config)
    target = out_path or db_path.with_name(f"{db_path.name}-merged-{db.delta.database_id[:8]}")
    manifest = write_block(target, vectors, rows, records, report.near_duplicates, model_id=snap.model_id,
                           model_sha256=str(snap.manifest["model"].get("sha256", "")), kind="snapshot",
                           parent_database_id="", search_config=search_config, usearch_index=index.hnsw,
                           calibration=calibration, calibration_views=views, search_measured=searched,
                           report={"merged_from": [snap.database_id, db.delta.database_id],
                                   "self_retrieval": report.as_dict()})
    return BuildReport(target, str(manifest["database_id"]), len(rows), len(records), [], [], 0, report,
                       calibration=calibration, search=searched)


@dataclass(frozen=True)
class CheckReport:
    path: pathlib.Path
    database_id: str
    model_id: str
    rows: int
    cards: int
    delta_rows: int
    art_grouped_cards: int
    self_retrieval: SelfRetrievalReport
    calibration: dict[str, object] | None = None


def check_database(db_path: pathlib.Path, *, expected_model_id: str | None, build_config: BuildConfig,
                   search_config: SearchConfig, progress: ProgressFn | None = None) -> CheckReport:
    """Every integrity check (raises the named DatabaseError) and the self-retrieval check (reported)."""
    db = ReferenceDatabase.load(db_path, expected_model_id, search_config)
    rows = db.rows()
    report = self_retrieval(db.vectors(), rows, db.row_searcher(), rows, templates_max_of(rows),
                            build_config.art_group_distance_max, progress)
    grouped = sum(len(cards) for cards in db.art_groups().values() if len(cards) > 1)
    return CheckReport(db_path, db.database_id, db.model_id, db.row_count, db.card_count,
                       len(db.delta.rows) if db.delta else 0, grouped, report, db.calibration)

