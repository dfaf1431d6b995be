"""Nearest-template search over unit vectors: exact BLAS inner product or a tuned usearch HNSW."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from cardsorter.core.errors import DatabaseError
from cardsorter.core.fields import check_ranges, doc

USEARCH_METRIC = "cos"
USEARCH_DTYPE = "f32"  # the benchmark's reference dtype; the index's own is SearchConfig.dtype (explicit:
                       # usearch's default depends on the CPU, bf16 on x86)
USEARCH_DTYPES = ("f32", "f16", "i8")
EXACT_BLOCK_SIMS = 1 << 25   # exact search: at most 32 M similarities (128 MB) in one block of queries
RERANK_OVERSAMPLE = 2   # HNSW returns 2x the rows asked for; exact f32 re-ranking keeps the best (quantised
                        # f16/i8 distances reorder near-ties: without it recall@5 stayed 0.999 at any ef, 40 rows)


@dataclass(frozen=True)
class SearchConfig:
    """How the reference embeddings are searched (see cardsorter.bench.search for the numbers)."""

    exact_max_rows: int = doc("at or below this many references search is exact (BLAS inner product); above, HNSW")
    dtype: str = doc("HNSW vector storage: f32 | f16 | i8 (candidates are re-ranked with the exact f32 vectors)")
    connectivity: int = doc("HNSW graph degree M (usearch connectivity); fixed when usearch.index is built")
    expansion_add: int = doc("HNSW efConstruction (usearch expansion_add); fixed when usearch.index is built")
    expansion_search: int = doc(
        "HNSW ef at query time; 0 = the database's (raised at build until recall@k vs exact is 1.000)")
    fallback_expansion_search: int = doc("ef for a database built before ef was measured")
    tune_expansion_start: int = doc("build: first ef tried when measuring recall@k (doubled until 1.000)")
    tune_expansion_max: int = doc("build: largest ef tried; a build that stops here below 1.000 says so")
    recall_k: int = doc("build: recall@k is measured for this many rows (the matcher's k)")
    threads: int = doc("search threads (0 = all cores)")

    def __post_init__(self) -> None:
        check_ranges(self)
        for name in ("exact_max_rows", "connectivity", "expansion_add", "fallback_expansion_search",
                     "tune_expansion_start", "tune_expansion_max", "recall_k"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.expansion_search < 0:
            raise ValueError(f"expansion_search must be >= 0 (0 = the database's), got {self.expansion_search}")
        if self.dtype not in USEARCH_DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(USEARCH_DTYPES)}, got '{self.dtype}'")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")

    def ef_for(self, measured: int | None) -> int:
        """The ef searched with: the YAML's when > 0, else the database's measured one, else the fallback."""
        if self.expansion_search > 0:
            return self.expansion_search
        return int(measured) if measured else self.fallback_expansion_search


def _usearch() -> Any:
    try:
        from usearch.index import Index
    except ImportError as err:  # pragma: no cover - usearch is a hard requirement
        raise DatabaseError("usearch is not installed (pip install usearch)") from err
    return Index


def build_usearch_index(vectors: np.ndarray, config: SearchConfig) -> Any:
    """A usearch HNSW index over ``vectors`` with keys = row numbers."""
    Index = _usearch()
    index = Index(ndim=int(vectors.shape[1]), metric=USEARCH_METRIC, dtype=config.dtype,
                  connectivity=config.connectivity, expansion_add=config.expansion_add,
                  expansion_search=config.ef_for(None))
    if len(vectors):
        index.add(np.arange(len(vectors), dtype=np.uint64), np.ascontiguousarray(vectors, dtype=np.float32),
                  threads=config.threads)
    return index


def save_usearch_index(vectors: np.ndarray, path: pathlib.Path, config: SearchConfig, index: Any = None) -> None:
    """Save ``index`` (or a new one built from ``vectors``) to ``path``."""
    (index if index is not None else build_usearch_index(vectors, config)).save(str(path))


def exact_top_rows(vectors: np.ndarray, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``count`` rows by cosine distance (1 − dot) for unit vectors: (rows, distances) sorted.
    Queries go in blocks of at most EXACT_BLOCK_SIMS similarities (a db build's calibration views against
    a large catalogue would otherwise need one (queries x references) matrix: 8 GB at 2,000 x 1,000,000)."""
    n = len(vectors)
    q = len(queries)
    count = min(count, n)
    if count == 0 or q == 0:
        return np.zeros((q, count), np.int64), np.zeros((q, count), np.float32)
    block = max(1, EXACT_BLOCK_SIMS // n)
    if q > block:
        parts = [exact_top_rows(vectors, queries[i:i + block], count) for i in range(0, q, block)]
        return np.concatenate([r for r, _ in parts]), np.concatenate([d for _, d in parts])
    sims = queries @ vectors.T  # one BLAS call for the whole block
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

    def __init__(self, vectors: np.ndarray, hnsw: Any, config: SearchConfig, measured_ef: int | None = None) -> None:
        """Exact over ``vectors`` when ``hnsw`` is None, else the given usearch index (keys = rows)."""
        self._vectors = vectors
        self._config = config
        self._hnsw = hnsw
        if hnsw is not None:
            hnsw.expansion_search = config.ef_for(measured_ef)

    @classmethod
    def in_memory(cls, vectors: np.ndarray, config: SearchConfig) -> CardIndex:
        """Exact up to exact_max_rows, else a freshly built HNSW (see ``hnsw`` to save it)."""
        hnsw = build_usearch_index(vectors, config) if len(vectors) > config.exact_max_rows else None
        return cls(vectors, hnsw, config)

    @classmethod
    def open(cls, vectors: np.ndarray, index_path: pathlib.Path, config: SearchConfig,
             measured_ef: int | None = None) -> CardIndex:
        """Exact up to exact_max_rows, else view (memory-map) the saved usearch index at the ef
        ``config.ef_for(measured_ef)`` (the database's measured ef unless the YAML sets one)."""
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
        return cls(vectors, hnsw, config, measured_ef)

    @property
    def hnsw(self) -> Any:
        """The usearch index object, or None when searching exactly."""
        return self._hnsw

    @property
    def expansion_search(self) -> int | None:
        return None if self._hnsw is None else int(self._hnsw.expansion_search)

    @expansion_search.setter
    def expansion_search(self, ef: int) -> None:
        if self._hnsw is not None:
            self._hnsw.expansion_search = int(ef)

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
        fetch = min(len(self._vectors), RERANK_OVERSAMPLE * count)   # f16/i8 order may differ from f32's
        matches = self._hnsw.search(queries, fetch, threads=self._config.threads)
        keys = np.asarray(matches.keys).reshape(len(queries), -1)
        dists = np.asarray(matches.distances, dtype=np.float32).reshape(len(queries), -1)
        counts = np.asarray(getattr(matches, "counts", [keys.shape[1]] * len(queries))).reshape(-1)
        rows = keys.astype(np.int64)
        for i, c in enumerate(counts):  # BatchMatches pads with key 0 / NaN beyond counts
            rows[i, int(c):] = -1
        rows, dists = rerank_exact(self._vectors, queries, rows)
        return rows[:, :count], dists[:, :count]


def rerank_exact(vectors: np.ndarray, queries: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact f32 cosine distances for candidate ``rows`` (-1 = none), sorted best first: the graph
    only proposes candidates, so f16/i8 storage changes no distance the bands see."""
    safe = np.where(rows >= 0, rows, 0)
    flat = np.unique(safe)
    gathered = np.asarray(vectors[flat], dtype=np.float32)   # one gather from the memory map
    pos = np.searchsorted(flat, safe)
    sims = np.einsum("qd,qkd->qk", queries, gathered[pos])
    dists = np.where(rows >= 0, 1.0 - sims, np.inf).astype(np.float32)
    order = np.argsort(dists, axis=1, kind="stable")
    return np.take_along_axis(rows, order, axis=1), np.take_along_axis(dists, order, axis=1)


def recall_vs_exact(found_rows: np.ndarray, found_d: np.ndarray, exact_rows: np.ndarray, exact_d: np.ndarray,
                    k: int, tie: float = 1e-6) -> tuple[float, float]:
    """(recall@1, recall@k): share of queries whose top-1 is the exact top-1, and share of the exact
    top-k rows found in the top-k; a row at the same distance as the exact one (a tie) counts as found."""
    k = min(k, exact_rows.shape[1], found_rows.shape[1])
    if len(exact_rows) == 0 or k == 0:
        return 1.0, 1.0
    r1 = (found_rows[:, 0] == exact_rows[:, 0]) | (np.abs(found_d[:, 0] - exact_d[:, 0]) <= tie)
    # found distances are exact (re-ranked): a found row no farther than the exact k-th is a true top-k row
    good = (found_rows[:, :k] >= 0) & (found_d[:, :k] <= exact_d[:, k - 1:k] + tie)
    return float(np.mean(r1)), float(good.sum() / (len(exact_rows) * k))


def tune_expansion(index: CardIndex, vectors: np.ndarray, queries: np.ndarray, config: SearchConfig,
                   ) -> dict[str, Any]:
    """Raise the HNSW ef from tune_expansion_start (doubling) until recall@1 and recall@k against exact
    search on ``queries`` are 1.000, or tune_expansion_max is reached; the manifest records the result."""
    import time

    k = config.recall_k
    exact_rows, exact_d = exact_top_rows(np.asarray(vectors, np.float32), queries, k)
    ef = config.tune_expansion_start
    trace: list[dict[str, float]] = []
    while True:
        index.expansion_search = ef
        t0 = time.perf_counter()
        rows, dists = index.search(queries, k)
        per_query_ms = (time.perf_counter() - t0) / max(len(queries), 1) * 1e3
        r1, rk = recall_vs_exact(rows, dists, exact_rows, exact_d, k)
        trace.append({"expansion_search": ef, "recall_at_1": round(r1, 5), "recall_at_k": round(rk, 5),
                      "batch_ms_per_query": round(per_query_ms, 4)})
        if (r1 >= 1.0 and rk >= 1.0) or ef >= config.tune_expansion_max:
            break
        ef = min(2 * ef, config.tune_expansion_max)
    reached = r1 >= 1.0 and rk >= 1.0
    return {"mode": "hnsw", "dtype": config.dtype, "connectivity": config.connectivity,
            "expansion_add": config.expansion_add, "expansion_search": ef, "k": k, "queries": len(queries),
            "recall_at_1": round(r1, 5), "recall_at_k": round(rk, 5), "reached_1_000": reached,
            "raised_from": config.tune_expansion_start, "trace": trace}
