"""The card index: exact BLAS search and the usearch HNSW path agree; padding is handled."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pytest
from db_support import PixelEmbedder, configs, standard_images

from cardsorter.backends.card_index import (
    CardIndex,
    SearchConfig,
    exact_top_rows,
    save_usearch_index,
)
from cardsorter.db.build import build_database
from cardsorter.db.database import ReferenceDatabase


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.standard_normal((n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def small_config(**kw: int) -> SearchConfig:
    base = dataclasses.replace(configs()[1], exact_max_rows=10, threads=1)
    return dataclasses.replace(base, **kw)


def test_exact_top_rows_matches_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    refs, queries = unit(rng, 300, 32), unit(rng, 5, 32)
    rows, dists = exact_top_rows(refs, queries, 7)
    expected = np.argsort(-(queries @ refs.T), axis=1)[:, :7]
    assert np.array_equal(rows, expected)
    assert np.allclose(dists, 1.0 - np.take_along_axis(queries @ refs.T, expected, axis=1), atol=1e-6)


def test_exact_search_in_blocks_of_queries_gives_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # a large catalogue is searched in blocks of queries (bounded memory): 300 refs, blocks of 2 queries
    from cardsorter.backends import card_index

    rng = np.random.default_rng(2)
    refs, queries = unit(rng, 300, 32), unit(rng, 7, 32)
    whole = exact_top_rows(refs, queries, 5)
    monkeypatch.setattr(card_index, "EXACT_BLOCK_SIMS", 600)
    blocked = exact_top_rows(refs, queries, 5)
    assert np.array_equal(blocked[0], whole[0]) and np.allclose(blocked[1], whole[1], atol=1e-6)
    assert exact_top_rows(refs, queries[:0], 5)[0].shape == (0, 5)


def test_exact_count_larger_than_the_gallery() -> None:
    rng = np.random.default_rng(1)
    rows, dists = exact_top_rows(unit(rng, 3, 8), unit(rng, 2, 8), 10)
    assert rows.shape == (2, 3) and np.all(np.diff(dists, axis=1) >= 0)


def test_hnsw_finds_the_same_nearest_as_exact_for_noisy_copies(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(2)
    refs = unit(rng, 500, 32)
    queries = refs[:50] + 0.05 * rng.standard_normal((50, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    config = small_config()
    save_usearch_index(refs, tmp_path / "u.index", config)
    hnsw = CardIndex.open(refs, tmp_path / "u.index", config)
    assert not hnsw.exact
    rows, dists = hnsw.search(queries, 3)
    exact_rows, exact_dists = exact_top_rows(refs, queries, 3)
    assert np.array_equal(rows[:, 0], exact_rows[:, 0]) and np.allclose(dists[:, 0], exact_dists[:, 0], atol=1e-4)  # SIMD vs BLAS sums; decisions need 1e-3


def test_hnsw_pads_missing_results(tmp_path: pathlib.Path) -> None:
    rng = np.random.default_rng(3)
    refs = unit(rng, 12, 16)
    config = small_config()
    save_usearch_index(refs, tmp_path / "u.index", config)
    rows, dists = CardIndex.open(refs, tmp_path / "u.index", config).search(unit(rng, 2, 16), 20)
    assert rows.shape[1] <= 12 and (rows >= -1).all()
    assert np.all(np.isfinite(dists[rows >= 0])) and np.all(np.isinf(dists[rows < 0]))
    one_rows, _ = CardIndex.open(refs, tmp_path / "u.index", config).search(unit(rng, 1, 16), 4)
    assert one_rows.shape == (1, 4)


def test_database_above_exact_max_rows_searches_hnsw_with_the_same_answers(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "images", n=20)
    build_config, _, _ = configs()
    config = small_config()
    build_database(tmp_path / "images", tmp_path / "db", PixelEmbedder(), build_config=build_config,
                   search_config=config)
    hnsw_db = ReferenceDatabase.load(tmp_path / "db", None, config)
    exact_db = ReferenceDatabase.load(tmp_path / "db", None, dataclasses.replace(config, exact_max_rows=1000))
    assert not hnsw_db.exact and exact_db.exact
    queries = np.asarray(hnsw_db.snapshot.vectors)
    a = [[c.card.card_id for c in q] for q in hnsw_db.search(queries, k=3)]
    b = [[c.card.card_id for c in q] for q in exact_db.search(queries, k=3)]
    assert [q[0] for q in a] == [q[0] for q in b] == [r.card_id for r in hnsw_db.rows()]


def test_bench_recall_counts_ties_as_found() -> None:
    from cardsorter.bench.search import recall_at_1

    exact_rows, exact_d = np.array([[0], [1], [2]]), np.array([[0.1], [0.2], [0.3]], np.float32)
    found_rows, found_d = np.array([[0], [7], [9]]), np.array([[0.1], [0.2], [0.35]], np.float32)
    assert recall_at_1(found_rows, found_d, exact_rows, exact_d) == 2 / 3


def test_bench_search_runs_at_a_tiny_size() -> None:
    from cardsorter.bench.search import search_benchmark

    config = small_config()
    out = search_benchmark([300], 16, ["clustered"], config, [16], 20, 2, True, 0, lambda s: None)
    methods = out[0]["methods"]
    assert len(methods) == 5 and all(0.0 <= m["recall_at_1_near"] <= 1.0 for m in methods.values())


def _embedding_cache(bases: int = 12, views: int = 5, dim: int = 48, queries: int = 40, span: int = 8,
                     seed: int = 3) -> dict[str, np.ndarray]:
    """A small bench.model_embeddings-like cache whose embeddings lie in a ``span``-dimensional subspace."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, span)))[0].T.astype(np.float32)
    centres = rng.standard_normal((bases, span)).astype(np.float32)
    ref_base = np.arange(bases * views) % bases
    query_base = rng.integers(0, bases, queries)

    def views_of(which: np.ndarray) -> np.ndarray:
        x = (centres[which] + 0.1 * rng.standard_normal((len(which), span)).astype(np.float32)) @ basis
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    return {"references": views_of(ref_base), "queries": views_of(query_base), "query_base": query_base,
            "ref_base": ref_base}


def _outside_span(cache: dict[str, np.ndarray], x: np.ndarray) -> float:
    basis = np.linalg.svd(cache["references"], full_matrices=False)[2][:8]
    return float(np.abs(x - (x @ basis.T) @ basis).max())


@pytest.mark.parametrize("beyond", ["mix", "rotate"])
def test_sizes_above_the_embedding_cache_are_unit_copies_that_start_with_the_cache(beyond: str) -> None:
    from cardsorter.bench.search import model_dataset

    cache = _embedding_cache()
    n = len(cache["references"])
    refs, queries, how = model_dataset(cache, 3 * n - 7, seed=1, beyond=beyond)
    assert refs.shape == (3 * n - 7, cache["references"].shape[1]) and queries.shape == cache["queries"].shape
    assert np.array_equal(refs[:n], cache["references"])
    assert np.allclose(np.linalg.norm(refs, axis=1), 1.0, atol=1e-4)
    assert np.allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(refs[n:2 * n], refs[:n], atol=1e-3)     # a copy is not the cache again
    assert "copies" in how
    small, q_small, _ = model_dataset(cache, n - 1, seed=1, beyond=beyond)
    assert np.array_equal(small, cache["references"][:n - 1]) and np.array_equal(q_small, cache["queries"])


def test_mixed_copies_stay_in_the_models_span_and_rotated_ones_leave_it_keeping_their_distances() -> None:
    from cardsorter.bench.search import model_dataset

    cache = _embedding_cache()
    n = len(cache["references"])
    mixed, mixed_q, _ = model_dataset(cache, 3 * n, seed=1, beyond="mix")
    rotated, _, _ = model_dataset(cache, 3 * n, seed=1, beyond="rotate")
    assert _outside_span(cache, mixed) < 1e-3 and _outside_span(cache, mixed_q) < 1e-3
    assert _outside_span(cache, rotated[n:2 * n]) > 0.1
    gram = cache["references"] @ cache["references"].T
    assert np.allclose(rotated[n:2 * n] @ rotated[n:2 * n].T, gram, atol=1e-4)


def test_an_unknown_construction_or_an_old_cache_without_ref_base_is_refused() -> None:
    from cardsorter.bench.search import model_dataset

    cache = _embedding_cache()
    with pytest.raises(ValueError, match="beyond must be one of"):
        model_dataset(cache, 100, seed=1, beyond="tile")
    old = {k: v for k, v in cache.items() if k != "ref_base"}
    with pytest.raises(ValueError, match="ref_base"):
        model_dataset(old, 100, seed=1, beyond="mix")
    assert len(model_dataset(old, 100, seed=1, beyond="rotate")[0]) == 100
