"""The loaded reference database: frozen snapshot + delta served together, searched by card."""

from __future__ import annotations

import logging
import math
import pathlib
import threading
from collections.abc import Iterable, Sequence

import numpy as np

from cardsorter.backends.card_index import CardIndex, SearchConfig
from cardsorter.core.calibration import bands_from_calibration
from cardsorter.core.errors import DatabaseError
from cardsorter.core.matching import MatchBandsConfig, group_templates, resolve_bands
from cardsorter.core.types import Candidate, CardRecord
from cardsorter.db.calibrate import CalibrationViews, load_views
from cardsorter.db.errors import (
    DeltaMismatchError,
    DimensionMismatchError,
    ModelMismatchError,
)
from cardsorter.db.store import (
    CALIBRATION_VIEWS_FILE,
    DELTA_DIR,
    USEARCH_FILE,
    Block,
    NearDuplicate,
    TemplateRow,
    check_vectors,
    read_block,
    write_block,
)

LOG = logging.getLogger(__name__)
ENROLLED_SOURCE_PREFIX = "enrolled#"


class CombinedSearch:
    """Several row blocks searched as one row space (block i's rows are offset by the rows before it)."""

    def __init__(self, indexes: Sequence[CardIndex]) -> None:
        self._indexes = list(indexes)
        self._offsets = np.cumsum([0] + [len(i) for i in self._indexes])[:-1]

    def __len__(self) -> int:
        return int(sum(len(i) for i in self._indexes))

    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        parts_r: list[np.ndarray] = []
        parts_d: list[np.ndarray] = []
        for index, offset in zip(self._indexes, self._offsets):
            if len(index) == 0:
                continue
            rows, dists = index.search(queries, count)
            parts_r.append(np.where(rows >= 0, rows + int(offset), -1))
            parts_d.append(dists)
        if not parts_r:
            return np.zeros((len(queries), 0), np.int64), np.zeros((len(queries), 0), np.float32)
        if len(parts_r) == 1:
            return parts_r[0], parts_d[0]
        rows = np.concatenate(parts_r, axis=1)
        dists = np.concatenate(parts_d, axis=1)
        order = np.argsort(dists, axis=1, kind="stable")[:, :count]
        return np.take_along_axis(rows, order, axis=1), np.take_along_axis(dists, order, axis=1)


class _ArtGroups:
    """Union-find over cards: same metadata art_id, or near-duplicate templates."""

    def __init__(self) -> None:
        self._parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self._parent.setdefault(x, x)
        while self._parent[x] != x:
            self._parent[x] = self._parent[self._parent[x]]
            x = self._parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self._parent[max(ra, rb)] = min(ra, rb)

    def labels(self, cards: Sequence[str]) -> dict[str, str]:
        """card → group label (the art_id if the group has one, else its smallest card id)."""
        members: dict[str, list[str]] = {}
        for node in self._parent:
            members.setdefault(self.find(node), []).append(node)
        out: dict[str, str] = {}
        for nodes in members.values():
            arts = sorted(n[4:] for n in nodes if n.startswith("art:"))
            ids = sorted(n for n in nodes if not n.startswith("art:"))
            if len(ids) < 2 and not arts:
                continue
            label = arts[0] if arts else ids[0]
            for n in ids:
                out[n] = label
        return {c: out[c] for c in cards if c in out}


def _measured_ef(block: Block) -> int | None:
    """The HNSW ef the build measured recall 1.000 at (manifest 'search'), if any."""
    searched = block.manifest.get("search")
    if isinstance(searched, dict) and searched.get("mode") == "hnsw":
        try:
            return int(searched["expansion_search"])
        except (KeyError, TypeError, ValueError):
            return None
    return None


def art_group_labels(records: Iterable[CardRecord], near: Iterable[NearDuplicate]) -> dict[str, str]:
    """card → art group label (metadata art_id, or near-duplicate templates); cards alone are absent."""
    groups = _ArtGroups()
    ids = []
    for rec in records:
        ids.append(rec.card_id)
        groups.find(rec.card_id)
        if rec.art_id:
            groups.union(rec.card_id, "art:" + rec.art_id)
    for n in near:
        groups.union(n.card_a, n.card_b)
    return groups.labels(ids)


class ReferenceDatabase:
    """Snapshot + delta, memory-mapped, searched in one batch per frame; ``enrol`` appends to the delta.

    Thread-safe: search and enrol may run from different callback threads.
    """

    def __init__(self, path: pathlib.Path, snapshot: Block, delta: Block | None, search_config: SearchConfig) -> None:
        self._path = path
        self._snapshot = snapshot
        self._search_config = search_config
        self._snapshot_index = CardIndex.open(snapshot.vectors, snapshot.path / USEARCH_FILE, search_config,
                                              _measured_ef(snapshot))
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one delta writer at a time
        self._install_delta(delta)

    # -- loading ---------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | pathlib.Path, expected_model_id: str | None, search_config: SearchConfig,
             verify_checksums: bool = True) -> ReferenceDatabase:
        """Open DB (and DB/delta if present) with every integrity check; raises a named DatabaseError."""
        path = pathlib.Path(path)
        snapshot = read_block(path, expected_model_id, verify_checksums)
        if snapshot.manifest.get("kind") != "snapshot":
            raise DeltaMismatchError(f"{path} is a {snapshot.manifest.get('kind')}, not a snapshot")
        delta = None
        if (path / DELTA_DIR).exists():
            delta = read_block(path / DELTA_DIR, snapshot.model_id, verify_checksums, mmap=False)
            cls._check_delta(snapshot, delta)
        db = cls(path, snapshot, delta, search_config)
        LOG.info("loaded database %s (%s): %d cards, %d rows%s, %s search", path, db.database_id, db.card_count,
                 db.row_count, f", delta {len(delta.rows)} rows" if delta else "",
                 "exact" if db._snapshot_index.exact else f"HNSW ef {db.expansion_search}")
        return db

    @staticmethod
    def _check_delta(snapshot: Block, delta: Block) -> None:
        where = f"delta {delta.path}"
        if delta.manifest.get("parent_database_id") != snapshot.database_id:
            raise DeltaMismatchError(f"{where} was written for database {delta.manifest.get('parent_database_id')}, "
                                     f"this snapshot is {snapshot.database_id}")
        if delta.model_id != snapshot.model_id:
            raise ModelMismatchError(f"{where} uses model {delta.model_id}, snapshot {snapshot.model_id}")
        if delta.vectors.shape[1] != snapshot.vectors.shape[1]:
            raise DimensionMismatchError(f"{where} has dimension {delta.vectors.shape[1]}, "
                                         f"snapshot {snapshot.vectors.shape[1]}")

    def _install_delta(self, delta: Block | None) -> None:
        """Recompute the combined view (rows, records, art groups, searcher) and swap it in."""
        snap = self._snapshot
        rows = list(snap.rows) + (list(delta.rows) if delta else [])
        records = dict(delta.records) if delta else {}
        records.update(snap.records)  # the snapshot's record of a card is authoritative
        labels = art_group_labels(records.values(),
                                  list(snap.near_duplicates) + (list(delta.near_duplicates) if delta else []))
        members: dict[str, list[str]] = {}
        for card, label in sorted(labels.items()):
            members.setdefault(label, []).append(card)
        indexes = [self._snapshot_index]
        if delta is not None:
            indexes.append(CardIndex.open(delta.vectors, delta.path / USEARCH_FILE, self._search_config,
                                          _measured_ef(delta)))
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.card_id] = counts.get(r.card_id, 0) + 1
        with self._lock:
            self._delta = delta
            self._rows = rows
            self._row_cards = [r.card_id for r in rows]
            self._records = records
            self._art_groups = labels
            self._group_cards = members
            self._searcher = CombinedSearch(indexes)
            self._templates_max = max(counts.values(), default=1)

    # -- queries ---------------------------------------------------------------------------
    @property
    def path(self) -> pathlib.Path:
        return self._path

    @property
    def database_id(self) -> str:
        """Content hash of the snapshot, plus the delta's when one is served."""
        delta = self._delta
        return self._snapshot.database_id + (f"+{delta.database_id}" if delta is not None else "")

    @property
    def model_id(self) -> str:
        return self._snapshot.model_id

    @property
    def dimension(self) -> int:
        return int(self._snapshot.vectors.shape[1])

    @property
    def card_count(self) -> int:
        return len(self._records)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def exact(self) -> bool:
        return self._snapshot_index.exact

    @property
    def manifest(self) -> dict[str, object]:
        return dict(self._snapshot.manifest)

    @property
    def snapshot_measured_ef(self) -> int | None:
        return _measured_ef(self._snapshot)

    @property
    def expansion_search(self) -> int | None:
        """The ef the snapshot's HNSW is searched with (None: exact search)."""
        return self._snapshot_index.expansion_search

    @property
    def calibration(self) -> dict[str, object] | None:
        """The open-set calibration served: the delta's (made over snapshot + delta) when it has one."""
        delta = self._delta
        if delta is not None and isinstance(delta.manifest.get("calibration"), dict):
            return dict(delta.manifest["calibration"])
        cal = self._snapshot.manifest.get("calibration")
        return dict(cal) if isinstance(cal, dict) else None

    def bands(self, config: MatchBandsConfig) -> tuple[MatchBandsConfig, str]:
        """The matcher's bands for this database: YAML numbers >= 0, else its calibration, else fallback."""
        t = bands_from_calibration(self.calibration)
        return resolve_bands(config, None if t is None else
                             (t.confirm_distance_max, t.confirm_margin_min, t.uncertain_distance_max))

    def calibration_views(self) -> CalibrationViews:
        """The augmented views stored with the snapshot and the delta (for add/merge recalibration)."""
        views = load_views(self._snapshot.path / CALIBRATION_VIEWS_FILE, self.dimension)
        if self._delta is not None:
            views = views.concat(load_views(self._delta.path / CALIBRATION_VIEWS_FILE, self.dimension))
        return views

    def card_ids(self) -> list[str]:
        return sorted(self._records)

    def rows(self) -> list[TemplateRow]:
        return list(self._rows)

    def vectors(self) -> np.ndarray:
        """Every row's vector, snapshot then delta (a copy when a delta exists)."""
        delta = self._delta
        if delta is None:
            return self._snapshot.vectors
        return np.concatenate([np.asarray(self._snapshot.vectors), delta.vectors])

    def near_duplicates(self) -> list[NearDuplicate]:
        delta = self._delta
        return list(self._snapshot.near_duplicates) + (list(delta.near_duplicates) if delta else [])

    def record(self, card_id: str) -> CardRecord:
        try:
            return self._records[card_id]
        except KeyError as err:
            raise DatabaseError(f"card id '{card_id}' is not in database {self._path}") from err

    def has_card(self, card_id: str) -> bool:
        return card_id in self._records

    def art_group(self, card_id: str) -> str:
        """The art group label of a card: printings of one artwork share it (else the card's own id)."""
        return self._art_groups.get(card_id, card_id)

    def printings(self, card_id: str) -> list[CardRecord]:
        """Every card of the card's art group (itself included), by card id: the printings a reader tells
        apart; [] for a card alone with its art."""
        with self._lock:
            label = self._art_groups.get(card_id)
            cards = list(self._group_cards.get(label, ())) if label is not None else []
            return [self._records[c] for c in cards if c in self._records]

    def art_groups(self) -> dict[str, list[str]]:
        """Group label → its cards (only cards that carry a group: metadata art_id or near duplicates)."""
        with self._lock:
            groups = dict(self._art_groups)
        out: dict[str, list[str]] = {}
        for card, label in sorted(groups.items()):
            out.setdefault(label, []).append(card)
        return out

    def row_searcher(self) -> CombinedSearch:
        """The current snapshot + delta row searcher (rows numbered as in ``rows()``)."""
        with self._lock:
            return self._searcher

    def search(self, vectors: np.ndarray, k: int) -> list[list[Candidate]]:
        """Top-k distinct CARDS per query (min distance over each card's templates), one batched search."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = np.asarray(vectors, dtype=np.float32)
        if queries.ndim == 1:
            queries = queries[None, :]
        if queries.ndim != 2 or queries.shape[1] != self.dimension:
            raise DimensionMismatchError(f"query vectors {queries.shape} do not match database dimension "
                                         f"{self.dimension} ({self._path})")
        if len(queries) == 0:
            return []
        with self._lock:
            searcher, row_cards, records = self._searcher, self._row_cards, self._records
            count = k * self._templates_max  # enough rows to hold the k best distinct cards
        rows, dists = searcher.search(queries, count)
        grouped = group_templates(rows, dists, row_cards, k)
        return [[Candidate(records[cid], max(0.0, d) if math.isfinite(d) else d) for cid, d in per_query]
                for per_query in grouped]

    # -- enrol -----------------------------------------------------------------------------
    def enrol(self, record: CardRecord, vector: np.ndarray) -> None:
        """Add ``vector`` as a template of ``record``'s card to DB/delta on disk; searchable on return.

        For a card already in the database its stored record is kept (the human gives the id)."""
        vec = np.asarray(vector, dtype=np.float32).reshape(1, -1)
        if vec.shape[1] != self.dimension:
            raise DimensionMismatchError(f"enrol vector has dimension {vec.shape[1]}, database {self.dimension}")
        with self._write_lock:
            self._enrol_locked(record, vec)

    def _enrol_locked(self, record: CardRecord, vec: np.ndarray) -> None:
        with self._lock:
            delta = self._delta
            record = self._records.get(record.card_id, record)
        row = TemplateRow(record.card_id, f"{ENROLLED_SOURCE_PREFIX}{len(delta.rows) if delta else 0}")
        check_vectors(vec, [row], f"enrol {record.card_id}")
        rows = (list(delta.rows) if delta else []) + [row]
        vectors = np.concatenate([delta.vectors, vec]) if delta else vec
        records = dict(delta.records) if delta else {}
        records[record.card_id] = record
        self.write_delta(vectors, rows, records, list(delta.near_duplicates) if delta else [],
                         {"enrolled": [record.card_id]})

    def write_delta(self, vectors: np.ndarray, rows: list[TemplateRow], records: dict[str, CardRecord],
                    near: list[NearDuplicate], report: dict[str, object],
                    calibration: dict[str, object] | None = None,
                    calibration_views: CalibrationViews | None = None,
                    search_measured: dict[str, object] | None = None) -> None:
        """Replace DB/delta with these rows (all of the delta, old and new) and serve it at once.

        Without a new ``calibration`` the delta keeps the one it had (enrolment does not recalibrate)."""
        snap = self._snapshot
        old = self._delta
        if calibration is None and old is not None and isinstance(old.manifest.get("calibration"), dict):
            calibration = dict(old.manifest["calibration"])
        if calibration_views is None and old is not None:
            calibration_views = load_views(old.path / CALIBRATION_VIEWS_FILE, self.dimension)
        write_block(self._path / DELTA_DIR, vectors, rows, records, near, model_id=snap.model_id,
                    model_sha256=str(snap.manifest["model"].get("sha256", "")), kind="delta",
                    parent_database_id=snap.database_id, search_config=self._search_config, report=report,
                    replace=True, calibration=calibration, calibration_views=calibration_views,
                    search_measured=search_measured)
        delta = read_block(self._path / DELTA_DIR, snap.model_id, verify_checksums=True, mmap=False)
        self._install_delta(delta)

    @property
    def snapshot(self) -> Block:
        return self._snapshot

    @property
    def delta(self) -> Block | None:
        return self._delta
