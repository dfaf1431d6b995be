"""Build a reference database from a folder of card images: embed, verify, self-retrieve, write."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import numpy as np

from cardsorter.backends.card_index import CardIndex, SearchConfig
from cardsorter.backends.embedders import Embedder
from cardsorter.config import doc
from cardsorter.core.errors import DatabaseError
from cardsorter.core.types import CardRecord
from cardsorter.db.names import list_reference_images, parse_reference_name
from cardsorter.db.records import load_source_metadata, record_from_name
from cardsorter.db.store import NearDuplicate, TemplateRow, write_block

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

    def __post_init__(self) -> None:
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


def read_image(path: pathlib.Path) -> np.ndarray:
    """BGR uint8 image; raises DatabaseError naming the file when it cannot be decoded."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as err:
        raise DatabaseError(f"cannot read {path}: {err}") from err
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None or image.ndim != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise DatabaseError(f"cannot decode image {path} (corrupt or not an image)")
    return image


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


def records_for_images(paths: Sequence[pathlib.Path], metadata: Mapping[str, CardRecord] | None,
                       ) -> tuple[list[TemplateRow], dict[str, CardRecord], list[str]]:
    """Rows and records for the embedded images; ids come from metadata when it lists the card."""
    rows: list[TemplateRow] = []
    records: dict[str, CardRecord] = {}
    without: list[str] = []
    for path in paths:
        parsed = parse_reference_name(path.name)
        if metadata is not None and parsed.card_id in metadata:
            records[parsed.card_id] = metadata[parsed.card_id]
        else:
            if metadata is not None and parsed.card_id not in records:
                without.append(parsed.card_id)
            records.setdefault(parsed.card_id, record_from_name(parsed))
        rows.append(TemplateRow(parsed.card_id, path.name, parsed.high))
    return rows, records, without


def prepare_images(images_dir: pathlib.Path) -> tuple[list[pathlib.Path], list[SkippedImage]]:
    """Reference images with a parseable name; the others are reported and skipped."""
    good: list[pathlib.Path] = []
    skipped: list[SkippedImage] = []
    for path in list_reference_images(images_dir):
        try:
            parse_reference_name(path.name)
            good.append(path)
        except DatabaseError as err:
            LOG.warning("skipping %s", err)
            skipped.append(SkippedImage(str(path), str(err)))
    return good, skipped


def build_database(images_dir: pathlib.Path, out_dir: pathlib.Path, embedder: Embedder, *,
                   build_config: BuildConfig, search_config: SearchConfig,
                   metadata_path: pathlib.Path | None = None, model_sha256: str = "",
                   progress: ProgressFn | None = None) -> BuildReport:
    """Embed every image in ``images_dir`` into a new immutable database at ``out_dir``."""
    if out_dir.exists():
        raise DatabaseError(f"{out_dir} already exists: a database is immutable, choose a new --out")
    metadata = load_source_metadata(metadata_path) if metadata_path is not None else None
    paths, skipped = prepare_images(images_dir)
    if not paths:
        raise DatabaseError(f"no reference images (*.png/*.jpg named {{set_id}}-{{number}}_{{name}}) in {images_dir}")
    vectors, kept, skipped_embed = embed_images(paths, embedder, build_config.batch_size, progress)
    skipped += skipped_embed
    if not kept:
        raise DatabaseError(f"none of the {len(paths)} images in {images_dir} could be embedded")
    rows, records, without = records_for_images(kept, metadata)
    index = CardIndex.in_memory(vectors, search_config)
    report = self_retrieval(vectors, rows, index, rows, templates_max_of(rows),
                            build_config.art_group_distance_max, progress)
    used = set(records)
    manifest = write_block(
        out_dir, vectors, rows, records, report.near_duplicates, model_id=embedder.model_id,
        model_sha256=model_sha256, kind="snapshot", parent_database_id="", search_config=search_config,
        usearch_index=index.hnsw,
        report={"skipped_images": [[s.path, s.reason] for s in skipped], "without_metadata": without,
                "self_retrieval": report.as_dict()})
    unused = len(set(metadata) - used) if metadata is not None else 0
    return BuildReport(out_dir, str(manifest["database_id"]), len(rows), len(records), skipped, without,
                       unused, report)
