"""Build a reference database from a folder of card images: embed, verify, self-retrieve, write."""

from __future__ import annotations

import dataclasses
import logging
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from cardsorter.backends.card_index import CardIndex, SearchConfig, tune_expansion
from cardsorter.backends.embedders import Embedder
from cardsorter.core.errors import DatabaseError, ImageError
from cardsorter.core.fields import doc
from cardsorter.core.model_manifest import ModelManifest
from cardsorter.core.types import CardRecord
from cardsorter.db.calibrate import CalibrationSettings, CalibrationViews, calibrate, render_views, select_cards
from cardsorter.db.catalog_images import ImageMatch, match_images, records_from_match
from cardsorter.db.errors import DuplicateIdError, listed
from cardsorter.db.importers import ImportProblem, ImportResult, import_catalogue
from cardsorter.db.store import NearDuplicate, TemplateRow, write_block
from cardsorter.imagefiles import read_image_file

LOG = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]
"""progress(stage, done, total): called as work advances (stage is 'embed' or 'self-retrieval')."""

QUERY_CHUNK_ROWS = 512  # bounds the (chunk x rows) similarity matrix of the self-retrieval check


class RowSearcher(Protocol):
    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class BuildConfig:
    """Settings of `db build` / `db add` / `db merge`."""

    batch_size: int = doc("images embedded per inference call while building")
    art_group_distance_max: float = doc(
        "cards whose templates are within this cosine distance of each other are recorded as one art "
        "group (art-identical printings, duplicate images) by the self-retrieval check")
    calibration_target_false_accept: float = doc(
        "open-set calibration: largest fraction of unknown (left-out) views the chosen bands may confirm")
    calibration_known_unknown_rate: float = doc(
        "uncertain_distance_max is the known-view distance quantile 1 - this (known views banded UNKNOWN)")
    calibration_nuisances: list[str] = doc(  # noqa: RUF009 - doc() is a field() with no default
        "one augmented view of each calibration card per nuisance (cardsorter.sim.augment names)")
    calibration_cards_max: int = doc("at most this many cards get calibration views (a deterministic sample)")
    calibration_cards_min: int = doc(
        "below this many cards with views the database records no usable calibration (fallback bands)")
    calibration_folds: int = doc("leave-out folds: each fold's art groups are removed and queried as unknowns")

    def __post_init__(self) -> None:
        if not 0.0 < self.calibration_target_false_accept < 1.0:
            raise ValueError(f"calibration_target_false_accept must be in (0, 1), got "
                             f"{self.calibration_target_false_accept}")
        if not 0.0 <= self.calibration_known_unknown_rate < 1.0:
            raise ValueError(f"calibration_known_unknown_rate must be in [0, 1), got "
                             f"{self.calibration_known_unknown_rate}")
        from cardsorter.sim.augment import NUISANCES

        bad = [n for n in self.calibration_nuisances if n not in NUISANCES]
        if bad or not self.calibration_nuisances:
            raise ValueError(f"calibration_nuisances must be non-empty names from {', '.join(NUISANCES)}; "
                             f"unknown: {bad}")
        if self.calibration_cards_max < 1 or self.calibration_cards_min < 1 or self.calibration_folds < 2:
            raise ValueError("calibration_cards_max and calibration_cards_min must be >= 1, calibration_folds >= 2")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.art_group_distance_max < 1.0:
            raise ValueError(f"art_group_distance_max must be in [0, 1), got {self.art_group_distance_max}")


@dataclass(frozen=True)
class SkippedImage:
    path: str
    reason: str


@dataclass(frozen=True)
class NotSelf:
    """A template whose nearest neighbour is another card (or whose own card was not found)."""

    card_id: str
    source: str
    nearest_card: str
    distance_cos: float


@dataclass(frozen=True)
class SelfRetrievalReport:
    checked_rows: int
    not_self: list[NotSelf]
    near_duplicates: list[NearDuplicate]

    def as_dict(self) -> dict[str, Any]:
        return {"checked_rows": self.checked_rows,
                "not_self": [[n.card_id, n.source, n.nearest_card, round(n.distance_cos, 6)] for n in self.not_self],
                "near_duplicates": len(self.near_duplicates)}


@dataclass(frozen=True)
class BuildReport:
    path: pathlib.Path
    database_id: str
    rows: int
    cards: int
    skipped: list[SkippedImage]
    without_metadata: list[str] = field(default_factory=list)
    metadata_without_image: int = 0
    self_retrieval: SelfRetrievalReport | None = None
    calibration: dict[str, Any] | None = None
    search: dict[str, Any] | None = None
    metadata_format: str = ""
    catalogue_records: int = 0
    import_problems: list[ImportProblem] = field(default_factory=list)
    records_without_image: list[str] = field(default_factory=list)


def read_image(path: pathlib.Path) -> np.ndarray:
    """BGR uint8 image; raises DatabaseError naming the file when it cannot be decoded or is truncated."""
    try:
        return read_image_file(path)
    except ImageError as err:
        raise DatabaseError(f"cannot decode image {err}") from err


def fit_to_model(image_bgr: np.ndarray, input_size_wh: tuple[int, int]) -> np.ndarray:
    """Resize to the model input, as the frame selector's rectified crops are."""
    w, h = input_size_wh
    if image_bgr.shape[1] == w and image_bgr.shape[0] == h:
        return image_bgr
    interp = cv2.INTER_AREA if image_bgr.shape[1] > w else cv2.INTER_LINEAR
    return cv2.resize(image_bgr, (w, h), interpolation=interp)


def embed_images(paths: Sequence[pathlib.Path], embedder: Embedder, batch_size: int,
                 progress: ProgressFn | None = None) -> tuple[np.ndarray, list[pathlib.Path], list[SkippedImage]]:
    """Embed every readable image; unreadable ones and non-finite embeddings are skipped and reported."""
    vectors: list[np.ndarray] = []
    kept: list[pathlib.Path] = []
    skipped: list[SkippedImage] = []
    for start in range(0, len(paths), batch_size):
        batch_paths: list[pathlib.Path] = []
        crops: list[np.ndarray] = []
        for path in paths[start:start + batch_size]:
            try:
                crops.append(fit_to_model(read_image(path), embedder.input_size_wh))
                batch_paths.append(path)
            except DatabaseError as err:
                LOG.warning("skipping %s", err)
                skipped.append(SkippedImage(str(path), str(err)))
        if crops:
            out, ok = embedder.embed(crops)
            if out.shape != (len(crops), embedder.dimension):
                raise DatabaseError(f"embedder returned {out.shape} for {len(crops)} crops of dimension "
                                    f"{embedder.dimension}")
            for path, vec, good in zip(batch_paths, out, ok):
                if good:
                    vectors.append(np.asarray(vec, dtype=np.float32))
                    kept.append(path)
                else:
                    LOG.warning("skipping %s: embedding not finite", path)
                    skipped.append(SkippedImage(str(path), "embedding not finite (NaN/Inf model output)"))
        if progress is not None:
            progress("embed", min(start + batch_size, len(paths)), len(paths))
    dim = embedder.dimension
    matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    return matrix, kept, skipped


def self_retrieval(queries: np.ndarray, query_rows: Sequence[TemplateRow], index: RowSearcher,
                   index_rows: Sequence[TemplateRow], templates_max: int, distance_max: float,
                   progress: ProgressFn | None = None) -> SelfRetrievalReport:
    """Search each template against the database: its own card must come first (ties → near duplicate).

    Any other card within ``distance_max`` is recorded as a near duplicate (art group); a template
    whose nearest hit belongs to another card, strictly closer than its own card, is ``not_self``.
    """
    count = templates_max + 4
    not_self: list[NotSelf] = []
    pairs: dict[tuple[str, str], float] = {}
    for start in range(0, len(queries), QUERY_CHUNK_ROWS):
        hits, dists = index.search(np.asarray(queries[start:start + QUERY_CHUNK_ROWS]), count)
        for i in range(hits.shape[0]):
            me = query_rows[start + i]
            own = np.inf
            other_card, other = "", np.inf
            for r, d in zip(hits[i], dists[i]):
                if r < 0:
                    continue
                card = index_rows[int(r)].card_id
                if card == me.card_id:
                    own = min(own, float(d))
                    continue
                if float(d) < other:
                    other_card, other = card, float(d)
                if float(d) <= distance_max:
                    key = (min(card, me.card_id), max(card, me.card_id))
                    pairs[key] = min(pairs.get(key, np.inf), float(d))
            if other_card and other < own:
                not_self.append(NotSelf(me.card_id, me.source, other_card, other))
        if progress is not None:
            progress("self-retrieval", min(start + QUERY_CHUNK_ROWS, len(queries)), len(queries))
    near = [NearDuplicate(a, b, d) for (a, b), d in sorted(pairs.items())]
    return SelfRetrievalReport(len(queries), not_self, near)


def templates_max_of(rows: Sequence[TemplateRow]) -> int:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.card_id] = counts.get(r.card_id, 0) + 1
    return max(counts.values(), default=0)


@dataclass
class Sources:
    """What `db build` / `db add` read before embedding: the catalogue and the images matched to it."""

    catalogue: ImportResult | None
    match: ImageMatch
    skipped: list[SkippedImage]

    @property
    def records(self) -> Mapping[str, CardRecord] | None:
        return self.catalogue.records if self.catalogue is not None else None


def read_sources(images_dir: pathlib.Path, metadata_path: pathlib.Path | None, metadata_format: str = "auto",
                 progress: ProgressFn | None = None) -> Sources:
    """Import the catalogue (problems collected) and match every image to a record (or skip it, reported)."""
    catalogue = import_catalogue(metadata_path, metadata_format, progress) if metadata_path is not None else None
    if catalogue is not None:
        dup = [p.detail for p in catalogue.problems if p.kind == "duplicate_id"]
        if dup:   # which of two records is the card cannot be guessed: the build stops, naming each
            raise DuplicateIdError(f"metadata {metadata_path} repeats {len(dup)} card ids: {listed(dup)}")
    match = match_images(images_dir, catalogue.records if catalogue is not None else None)
    skipped = [SkippedImage(path, reason) for path, reason in match.without_record]
    for path, reason in match.without_record:
        LOG.warning("skipping %s: %s", path, reason)
    return Sources(catalogue, match, skipped)


def embed_matched(sources: Sources, embedder: Embedder, batch_size: int, progress: ProgressFn | None,
                  ) -> tuple[np.ndarray, list[TemplateRow], dict[str, CardRecord], list[SkippedImage]]:
    """Embed the matched images: rows (card id, source, high), the records of the embedded cards, skips."""
    by_path = {m.path: m for m in sources.match.images}
    vectors, kept, skipped = embed_images([m.path for m in sources.match.images], embedder, batch_size, progress)
    matched = [by_path[p] for p in kept]
    rows = [TemplateRow(m.card_id, m.source, m.high) for m in matched]
    return vectors, rows, records_from_match(sources.match, matched, sources.records), skipped


def calibration_settings(config: BuildConfig, agreeing_views: int) -> CalibrationSettings:
    return CalibrationSettings(config.calibration_target_false_accept, config.calibration_known_unknown_rate,
                               tuple(config.calibration_nuisances), config.calibration_cards_max,
                               config.calibration_cards_min, config.calibration_folds, agreeing_views)


def trained_cards_of(embedder: Embedder) -> frozenset[str] | None:
    """The cards the embedder's model was trained on (its manifest's ``training.trained_cards``), None for
    a model not trained on a catalogue's own cards or a backend without a manifest."""
    manifest = getattr(embedder, "manifest", None)
    return manifest.trained_cards if isinstance(manifest, ModelManifest) else None


def views_for_images(paths: Sequence[pathlib.Path], rows: Sequence[TemplateRow], embedder: Embedder,
                     config: BuildConfig, settings: CalibrationSettings, exclude_cards: Sequence[str] = (),
                     progress: ProgressFn | None = None) -> CalibrationViews:
    """Augmented views of one template image of each sampled card (cards in ``exclude_cards`` skipped).
    For a model trained on this catalogue the cards it never saw are sampled first (up to half of
    ``cards_max``): they are the calibration's unknowns."""
    skip = set(exclude_cards)
    first: dict[str, pathlib.Path] = {}
    for path, row in zip(paths, rows):
        if row.card_id not in skip:
            first.setdefault(row.card_id, path)
    trained = trained_cards_of(embedder)
    if trained is None:
        chosen = select_cards(list(first), settings.cards_max, settings.seed)
    else:
        unseen = select_cards([c for c in first if c not in trained], settings.cards_max // 2, settings.seed)
        chosen = unseen + select_cards([c for c in first if c in trained], settings.cards_max - len(unseen),
                                       settings.seed)
    images = []
    for card in chosen:
        try:
            images.append((card, read_image(first[card])))
        except DatabaseError as err:   # read once already; a file changed since is reported and skipped
            LOG.warning("calibration: skipping %s", err)
    return render_views(images, embedder, settings, config.batch_size, progress)


def calibrate_rows(vectors: np.ndarray, rows: Sequence[TemplateRow], records: Mapping[str, CardRecord],
                   near: Sequence[NearDuplicate], views: CalibrationViews,
                   settings: CalibrationSettings, trained_cards: frozenset[str] | None = None) -> dict[str, Any]:
    """The calibration section for these rows, art groups as the matcher forms them (``trained_cards``:
    those of a catalogue-trained model, ``trained_cards_of``)."""
    from cardsorter.db.database import art_group_labels

    labels = art_group_labels(records.values(), near)
    return calibrate(vectors, [r.card_id for r in rows], lambda c: labels.get(c, c), views, settings, trained_cards)


SEARCH_QUERIES_MAX = 10_000   # augmented views (else templates) the build's recall@k is measured on


def search_report(index: CardIndex, vectors: np.ndarray, views: CalibrationViews,
                  config: SearchConfig) -> dict[str, Any]:
    """Exact: recall 1 by construction. HNSW: ef raised until recall@1 and recall@k vs exact search on
    the catalogue's own augmented views are 1.000 (the manifest records the ef and the trace)."""
    if index.exact:
        return {"mode": "exact", "rows": len(vectors), "recall_at_1": 1.0, "recall_at_k": 1.0, "k": config.recall_k}
    queries = views.vectors[:SEARCH_QUERIES_MAX] if len(views) else np.asarray(vectors[:SEARCH_QUERIES_MAX])
    result = tune_expansion(index, vectors, np.ascontiguousarray(queries, np.float32), config)
    result["rows"] = len(vectors)
    if not result["reached_1_000"]:
        LOG.warning("HNSW recall@%d vs exact is %.5f (recall@1 %.5f) at the largest ef tried (%d): raise "
                    "search.tune_expansion_max or search.exact_max_rows", config.recall_k, result["recall_at_k"],
                    result["recall_at_1"], result["expansion_search"])
    return result


def build_database(images_dir: pathlib.Path, out_dir: pathlib.Path, embedder: Embedder, *,
                   build_config: BuildConfig, search_config: SearchConfig,
                   metadata_path: pathlib.Path | None = None, model_sha256: str = "",
                   progress: ProgressFn | None = None, metadata_format: str = "auto",
                   agreeing_views: int = 3) -> BuildReport:
    """Embed every image in ``images_dir`` into a new immutable database at ``out_dir``."""
    if out_dir.exists():
        raise DatabaseError(f"{out_dir} already exists: a database is immutable, choose a new --out")
    sources = read_sources(images_dir, metadata_path, metadata_format, progress)
    skipped = list(sources.skipped)
    if not sources.match.images:
        raise DatabaseError(f"no reference images (*.png/*.jpg named {{set_id}}-{{number}}_{{name}}, or by the "
                            f"catalogue's card ids / set/number) in {images_dir}"
                            + (f"; {len(skipped)} images matched no record" if skipped else ""))
    vectors, rows, records, skipped_embed = embed_matched(sources, embedder, build_config.batch_size, progress)
    skipped += skipped_embed
    if not rows:
        raise DatabaseError(f"none of the {len(sources.match.images)} images in {images_dir} could be embedded")
    index = CardIndex.in_memory(vectors, search_config)
    report = self_retrieval(vectors, rows, index, rows, templates_max_of(rows),
                            build_config.art_group_distance_max, progress)
    settings = calibration_settings(build_config, agreeing_views)
    views = views_for_images(row_paths(sources, rows), rows, embedder, build_config, settings, progress=progress)
    calibration = calibrate_rows(vectors, rows, records, report.near_duplicates, views, settings,
                                 trained_cards_of(embedder))
    searched = search_report(index, vectors, views, search_config)
    built = _finish(out_dir, vectors, rows, records, report, sources, skipped, embedder.model_id, model_sha256,
                    search_config, index, calibration, views, searched)
    return dataclasses.replace(built, calibration=calibration, search=searched)


def row_paths(sources: Sources, rows: Sequence[TemplateRow]) -> list[pathlib.Path]:
    """The image file of each row (the calibration renders its views from it)."""
    path_of = {(m.card_id, m.source): m.path for m in sources.match.images}
    return [pathlib.Path(path_of[(r.card_id, r.source)]) for r in rows]


def import_report(sources: Sources) -> dict[str, Any]:
    """The import's accounting, stored in the manifest: every problem, every record without an image."""
    cat = sources.catalogue
    return {"metadata_format": cat.format if cat else "",
            "catalogue_records": len(cat.records) if cat else 0,
            "problems": [[p.kind, p.where, p.detail] for p in cat.problems] if cat else [],
            "records_without_image": sources.match.records_without_image}


def _finish(out_dir: pathlib.Path, vectors: np.ndarray, rows: list[TemplateRow], records: dict[str, CardRecord],
            report: SelfRetrievalReport, sources: Sources, skipped: list[SkippedImage], model_id: str,
            model_sha256: str, search_config: SearchConfig, index: CardIndex,
            calibration: dict[str, Any] | None = None, views: CalibrationViews | None = None,
            searched: dict[str, Any] | None = None) -> BuildReport:
    without = list(sources.match.named_from_file)
    manifest = write_block(
        out_dir, vectors, rows, records, report.near_duplicates, model_id=model_id,
        model_sha256=model_sha256, kind="snapshot", parent_database_id="", search_config=search_config,
        usearch_index=index.hnsw, calibration=calibration, calibration_views=views, search_measured=searched,
        report={"skipped_images": [[s.path, s.reason] for s in skipped], "without_metadata": without,
                "self_retrieval": report.as_dict(), "import": import_report(sources)})
    return build_report(out_dir, str(manifest["database_id"]), rows, records, skipped, sources, report)


def build_report(path: pathlib.Path, database_id: str, rows: list[TemplateRow], records: Mapping[str, CardRecord],
                 skipped: list[SkippedImage], sources: Sources, report: SelfRetrievalReport) -> BuildReport:
    cat = sources.catalogue
    return BuildReport(path, database_id, len(rows), len(records), skipped, list(sources.match.named_from_file),
                       len(sources.match.records_without_image), report,
                       metadata_format=cat.format if cat else "", catalogue_records=len(cat.records) if cat else 0,
                       import_problems=list(cat.problems) if cat else [],
                       records_without_image=list(sources.match.records_without_image))
