"""Nearest-template search over unit vectors: exact BLAS inner product or a tuned usearch HNSW."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from cardsorter.config import check_ranges, doc
from cardsorter.core.errors import DatabaseError

USEARCH_METRIC = "cos"
USEARCH_DTYPE = "f32"  # explicit: usearch's default dtype depends on the CPU (bf16 on x86)


@dataclass(frozen=True)
class SearchConfig:
    """How the reference embeddings are searched (see cardsorter.bench.search for the numbers)."""

    exact_max_rows: int = doc("at or below this many references search is exact (BLAS inner product); above, HNSW",
                              lo=1)
    connectivity: int = doc("HNSW graph degree M (usearch connectivity); fixed when usearch.index is built", lo=1)
    expansion_add: int = doc("HNSW efConstruction (usearch expansion_add); fixed when usearch.index is built", lo=1)
    expansion_search: int = doc("HNSW ef at query time (usearch expansion_search)", lo=1)
    threads: int = doc("search threads (0 = all cores)", lo=0)

    def __post_init__(self) -> None:
        check_ranges(self)


def _usearch() -> Any:
    try:
        from usearch.index import Index
    except ImportError as err:  # pragma: no cover - usearch is a hard requirement
        raise DatabaseError("usearch is not installed (pip install usearch)") from err
    return Index


def build_usearch_index(vectors: np.ndarray, config: SearchConfig) -> Any:
    """A usearch HNSW index over ``vectors`` with keys = row numbers."""
    Index = _usearch()
    index = Index(ndim=int(vectors.shape[1]), metric=USEARCH_METRIC, dtype=USEARCH_DTYPE,
                  connectivity=config.connectivity, expansion_add=config.expansion_add,
                  expansion_search=config.expansion_search)
    if len(vectors):
        index.add(np.arange(len(vectors), dtype=np.uint64), np.ascontiguousarray(vectors, dtype=np.float32),
                  threads=config.threads)
    return index


def save_usearch_index(vectors: np.ndarray, path: pathlib.Path, config: SearchConfig, index: Any = None) -> None:
    """Save ``index`` (or a new one built from ``vectors``) to ``path``."""
    (index if index is not None else build_usearch_index(vectors, config)).save(str(path))


def exact_top_rows(vectors: np.ndarray, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``count`` rows by cosine distance (1 − dot) for unit vectors: (rows, distances) sorted."""
    n = len(vectors)
    q = len(queries)
    count = min(count, n)
    if count == 0:
        return np.zeros((q, 0), np.int64), np.zeros((q, 0), np.float32)
    sims = queries @ vectors.T  # one BLAS call for the whole batch
    if count < n:
        part = np.argpartition(-sims, count - 1, axis=1)[:, :count]
    else:
        part = np.broadcast_to(np.arange(n), (q, n)).copy()
    part_sims = np.take_along_axis(sims, part, axis=1)
    order = np.argsort(-part_sims, axis=1, kind="stable")
    rows = np.take_along_axis(part, order, axis=1).astype(np.int64)
    dists = (1.0 - np.take_along_axis(part_sims, order, axis=1)).astype(np.float32)
    return rows, dists


class CardIndex:
    """Searches one block of reference vectors (snapshot or delta); owns the usearch view if any."""

    def __init__(self, vectors: np.ndarray, hnsw: Any, config: SearchConfig) -> None:
        """Exact over ``vectors`` when ``hnsw`` is None, else the given usearch index (keys = rows)."""
        self._vectors = vectors
        self._config = config
        self._hnsw = hnsw
        if hnsw is not None:
            hnsw.expansion_search = config.expansion_search

    @classmethod
    def in_memory(cls, vectors: np.ndarray, config: SearchConfig) -> CardIndex:
        """Exact up to exact_max_rows, else a freshly built HNSW (see ``hnsw`` to save it)."""
        hnsw = build_usearch_index(vectors, config) if len(vectors) > config.exact_max_rows else None
        return cls(vectors, hnsw, config)

    @classmethod
    def open(cls, vectors: np.ndarray, index_path: pathlib.Path, config: SearchConfig) -> CardIndex:
        """Exact up to exact_max_rows, else view (memory-map) the saved usearch index."""
        if len(vectors) <= config.exact_max_rows:
            return cls(vectors, None, config)
        if not index_path.is_file():
            raise DatabaseError(f"usearch index missing: {index_path} (needed above "
                                f"search.exact_max_rows={config.exact_max_rows} rows)")
        hnsw = _usearch().restore(str(index_path), view=True)
        if hnsw is None:
            raise DatabaseError(f"usearch index unreadable: {index_path}")
        if len(hnsw) != len(vectors) or hnsw.ndim != vectors.shape[1]:
            raise DatabaseError(f"usearch index {index_path} holds {len(hnsw)}x{hnsw.ndim}, "
                                f"embeddings are {vectors.shape[0]}x{vectors.shape[1]}: rebuild the database")
        return cls(vectors, hnsw, config)

    @property
    def hnsw(self) -> Any:
        """The usearch index object, or None when searching exactly."""
        return self._hnsw

    @property
    def exact(self) -> bool:
        return self._hnsw is None

    def __len__(self) -> int:
        return len(self._vectors)

    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows (N, c) int64 with -1 padding, distances (N, c) float32 with inf padding), best first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if self._hnsw is None:
            return exact_top_rows(self._vectors, queries, count)
        count = min(count, len(self._vectors))
        matches = self._hnsw.search(queries, count, threads=self._config.threads)
        keys = np.asarray(matches.keys).reshape(len(queries), -1)
        dists = np.asarray(matches.distances, dtype=np.float32).reshape(len(queries), -1)
        counts = np.asarray(getattr(matches, "counts", [keys.shape[1]] * len(queries))).reshape(-1)
        rows = keys.astype(np.int64)
        for i, c in enumerate(counts):  # BatchMatches pads with key 0 / NaN beyond counts
            rows[i, int(c):] = -1
            dists[i, int(c):] = np.inf
        return rows, dists
