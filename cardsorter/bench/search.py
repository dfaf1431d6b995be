"""Search benchmark: latency and recall@1 vs exact at 17,592 and 100,000 references; open-set figures.

`python -m cardsorter.bench.search` prints the numbers; `run()` returns them as a dict (for `bench`).
Nothing here is asserted in tests: a benchmark measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from cardsorter.backends.card_index import (
    USEARCH_DTYPE,
    USEARCH_METRIC,
    SearchConfig,
    build_usearch_index,
    exact_top_rows,
)
from cardsorter.backends.embedders import Embedder
from cardsorter.bench.host import cpu_model
from cardsorter.config import resolve_path
from cardsorter.core.matching import MatchBandsConfig, decide_match
from cardsorter.core.types import MatchBand
from cardsorter.settings import load_settings

USER_CATALOGUE_ROWS = 17_592  # the first user's reference images
SCALED_ROWS = 100_000
MODEL_DIMENSION = 768          # the original design's embedding size
QUERY_DISTANCE_SIGMA2 = 0.18   # per-query noise energy: cos(query, its reference) ≈ 1/sqrt(1.18) ≈ 0.92
CLUSTER_SIZE = 8               # clustered data: references per cluster (a set's look-alikes, reprints)
CLUSTER_SIGMA2 = 0.25          # within-cluster spread: neighbours at cos distance ≈ 0.2 of each other
K = 5


def machine() -> dict[str, Any]:
    """CPU model, cores, load, BLAS, usearch SIMD: printed with every result."""
    cpu = cpu_model()
    try:
        import usearch

        usearch_version = usearch.__version__
    except ImportError:  # pragma: no cover
        usearch_version = "absent"
    blas = "unknown"
    try:
        cfg: Any = np.show_config(mode="dicts")
        blas = str(cfg["Build Dependencies"]["blas"]["name"])
    except Exception as err:  # noqa: BLE001 - informational only
        blas = f"unknown ({err.__class__.__name__})"
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas, "usearch": usearch_version}


def _unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def references(kind: str, rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """'random' unit vectors, or 'clustered' (groups of CLUSTER_SIZE near each other: harder)."""
    if kind == "random":
        return _unit(rng.standard_normal((rows, dim), dtype=np.float32))
    if kind == "clustered":
        centres = _unit(rng.standard_normal((rows // CLUSTER_SIZE + 1, dim), dtype=np.float32))
        members = centres[np.arange(rows) // CLUSTER_SIZE]
        noise = rng.standard_normal((rows, dim), dtype=np.float32) * np.float32(np.sqrt(CLUSTER_SIGMA2 / dim))
        return _unit(members + noise)
    raise ValueError(f"unknown dataset kind '{kind}' (random | clustered)")


def queries_near(refs: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Noisy views of random references (a photo of a known card)."""
    picks = rng.integers(0, len(refs), count)
    noise = rng.standard_normal((count, refs.shape[1]), dtype=np.float32)
    return _unit(refs[picks] + noise * np.float32(np.sqrt(QUERY_DISTANCE_SIGMA2 / refs.shape[1])))


def percentiles_ms(samples_s: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(samples_s) * 1e3
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3), "p95_ms": round(float(np.percentile(arr, 95)), 3)}


def time_batches(fn: Callable[[np.ndarray], object], queries: np.ndarray, batch: int, repeats: int) -> dict[str, float]:
    fn(queries[:batch])  # warm-up (page in the memory map, BLAS threads)
    samples = []
    for i in range(repeats):
        start = (i * batch) % max(1, len(queries) - batch)
        q = queries[start:start + batch]
        t0 = time.perf_counter()
        fn(q)
        samples.append(time.perf_counter() - t0)
    return percentiles_ms(samples)


def numpy_brute_force(refs: np.ndarray, q: np.ndarray) -> np.ndarray:
    """One matrix-vector product per query (what a naive loop does)."""
    return np.array([int(np.argmax(refs @ v)) for v in q])


def _exact(refs: np.ndarray, q: np.ndarray) -> object:
    return exact_top_rows(refs, q, K)


def _usearch_exact(refs: np.ndarray, q: np.ndarray) -> object:
    from usearch.index import search as usearch_search

    return usearch_search(refs, q, K, USEARCH_METRIC, exact=True)


def _hnsw(index: Any, threads: int, q: np.ndarray) -> object:
    return index.search(q, K, threads=threads)


def recall_at_1(found_rows: np.ndarray, found_d: np.ndarray, exact_rows: np.ndarray, exact_d: np.ndarray) -> float:
    """Share of queries whose top-1 is the exact top-1 (a tie at equal distance counts as found)."""
    same = (found_rows[:, 0] == exact_rows[:, 0]) | (np.abs(found_d[:, 0] - exact_d[:, 0]) <= 1e-6)
    return float(np.mean(same))


def search_benchmark(sizes: Sequence[int], dim: int, kinds: Sequence[str], search_config: SearchConfig,
                     ef_sweep: Sequence[int], recall_queries: int, repeats: int, hnsw: bool, seed: int,
                     log: Callable[[str], None]) -> list[dict[str, Any]]:
    """Latency p50/p95 (batch 1 and 4) and recall@1 vs exact for every method, dataset and size."""
    results: list[dict[str, Any]] = []
    for kind in kinds:
        for rows in sizes:
            rng = np.random.default_rng([seed, rows, len(kind)])
            refs = references(kind, rows, dim, rng)
            near = queries_near(refs, recall_queries, rng)
            far = _unit(rng.standard_normal((recall_queries, dim), dtype=np.float32))  # not in the gallery
            exact = {name: exact_top_rows(refs, q, K) for name, q in (("near", near), ("far", far))}
            entry: dict[str, Any] = {"dataset": kind, "rows": rows, "dim": dim, "methods": {}}
            methods = entry["methods"]
            for batch in (1, 4):
                methods.setdefault("numpy brute force (matvec per query)", {})[f"batch{batch}"] = time_batches(
                    functools.partial(numpy_brute_force, refs), near, batch, repeats)
                methods.setdefault("BLAS flat inner product (FAISS-flat equivalent; our exact path)", {})[
                    f"batch{batch}"] = time_batches(functools.partial(_exact, refs), near, batch, repeats)
                methods.setdefault(f"usearch exact=True {USEARCH_DTYPE}", {})[f"batch{batch}"] = time_batches(
                    functools.partial(_usearch_exact, refs), near, batch, repeats)
            for name in list(methods):
                methods[name]["recall_at_1_near"] = 1.0
                methods[name]["recall_at_1_far"] = 1.0  # exact by construction
            log(f"  {kind} {rows}: exact methods timed")
            if hnsw:
                t0 = time.perf_counter()
                index = build_usearch_index(refs, search_config)
                build_s = time.perf_counter() - t0
                for ef in sorted({*ef_sweep, search_config.expansion_search}):
                    index.expansion_search = ef
                    label = (f"usearch HNSW {USEARCH_DTYPE} M={search_config.connectivity} "
                             f"ef_add={search_config.expansion_add} ef={ef}")
                    rec: dict[str, Any] = {"build_s": round(build_s, 1)}
                    for qname, q in (("near", near), ("far", far)):
                        m = index.search(q, K, threads=search_config.threads)
                        rec[f"recall_at_1_{qname}"] = round(recall_at_1(
                            np.asarray(m.keys).astype(np.int64), np.asarray(m.distances), *exact[qname]), 4)
                    for batch in (1, 4):
                        rec[f"batch{batch}"] = time_batches(
                            functools.partial(_hnsw, index, search_config.threads), near, batch, repeats)
                    methods[label] = rec
                    log(f"  {kind} {rows}: {label}: recall@1 near {rec['recall_at_1_near']} "
                        f"far {rec['recall_at_1_far']}")
                del index
            results.append(entry)
    return results


ROTATED_COPY_ROWS = 1_000_000   # sizes above the cache are made of synthetic copies of it (model_dataset)


def _rotation(dim: int, rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * np.sign(np.diag(r))).astype(np.float32)


BEYOND_CACHE = ("mix", "rotate")


def model_dataset(cache: dict[str, np.ndarray], rows: int, seed: int,
                  beyond: str = "mix") -> tuple[np.ndarray, np.ndarray, str]:
    """(references, queries, how made) from a bench.model_embeddings cache. Up to the cache's size: its first
    ``rows`` real-model embeddings. Above, ceil(rows / cache) copies of the cache (copy 0 the cache itself),
    queries spread over the copies; synthetic beyond the cache, made one of two ways (``beyond``):

    - ``mix``: in copy c every embedding of base image b is pulled towards the mean embedding of another base
      image π_c(b) (x → normalise(λ_c x + (1 − λ_c) m_π_c(b)), λ_c in [0.6, 0.85]), and so is each query of b.
      The copies stay in the span of the model's embeddings, crowded among each other, as a larger
      catalogue embedded by one model would be; a base's views keep their arrangement (shrunk by λ_c).
    - ``rotate``: each copy turned by its own random orthogonal matrix. Distances inside a copy are the
      model's exactly, but each copy lies in its own subspace, nearly orthogonal to the others: islands no
      real catalogue has (usearch HNSW over 10 such copies of 100,000 stalls at recall@1 ~0.78 whatever the
      ef, while one copy alone reaches 1.000)."""
    if beyond not in BEYOND_CACHE:
        raise ValueError(f"beyond must be one of {BEYOND_CACHE}, got {beyond!r}")
    refs, queries, base = cache["references"], cache["queries"], cache["query_base"]
    n = len(refs)
    if rows <= n:
        return np.ascontiguousarray(refs[:rows]), queries, f"first {rows} of {n} real-model embeddings"
    copies = -(-rows // n)
    rng = np.random.default_rng([seed, rows])
    out = np.empty((rows, refs.shape[1]), np.float32)
    q_out = queries.astype(np.float32, copy=True)
    which = rng.integers(0, copies, len(queries))
    out[:n] = refs
    if beyond == "rotate":
        for c in range(1, copies):
            rot = _rotation(refs.shape[1], rng)
            take = min(n, rows - c * n)
            out[c * n:c * n + take] = refs[:take] @ rot
            q_out[which == c] = queries[which == c] @ rot
        return out, q_out, (f"{copies} copies of {n} real-model embeddings, each rotated by a random orthogonal "
                            "matrix (synthetic beyond the cache: within-copy geometry is the model's, each copy "
                            "in its own subspace)")
    if "ref_base" not in cache:
        raise ValueError("this embeddings cache has no ref_base (made by an older bench.model_embeddings): "
                         "use --beyond-cache rotate or regenerate it")
    ref_base = np.asarray(cache["ref_base"], np.int64)
    bases = int(max(ref_base.max(), base.max())) + 1
    means = np.zeros((bases, refs.shape[1]), np.float64)
    np.add.at(means, ref_base, refs)
    means = (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)
    for c in range(1, copies):
        lam = float(rng.uniform(0.6, 0.85))
        partner = rng.permutation(bases)
        take = min(n, rows - c * n)
        x = lam * refs[:take] + (1.0 - lam) * means[partner[ref_base[:take]]]
        out[c * n:c * n + take] = x / np.linalg.norm(x, axis=1, keepdims=True)
        sel = which == c
        y = lam * queries[sel] + (1.0 - lam) * means[partner[base[sel]]]
        q_out[sel] = y / np.linalg.norm(y, axis=1, keepdims=True)
    return out, q_out, (f"{copies} copies of {n} real-model embeddings, copy c pulling each base image's "
                        "embeddings towards another base's mean by 1 - lambda_c in [0.15, 0.4] (synthetic beyond "
                        "the cache: one crowded span, as one model's embeddings of a larger catalogue)")


def _rss_mb() -> float:
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def model_search_benchmark(cache_path: pathlib.Path, sizes: Sequence[int], dtypes: Sequence[str],
                           search_config: SearchConfig, ef_sweep: Sequence[int], repeats: int, k: int,
                           seed: int, log: Callable[[str], None], beyond: str = "mix") -> list[dict[str, Any]]:
    """Exact (BLAS) and usearch HNSW side by side on real-model embeddings: p50/p95 per query (batch 1,
    the path the matcher runs: CardIndex.search incl. exact re-ranking), recall@1 and recall@k vs
    exact, index memory, build time; 'chosen' is the smallest ef with recall@1 1.000 and recall@k >= 0.999."""
    from cardsorter.backends.card_index import CardIndex, build_usearch_index, recall_vs_exact

    with np.load(cache_path, allow_pickle=False) as data:
        cache = {name: np.asarray(data[name]) for name in ("references", "queries", "query_base", "ref_base")
                 if name in data.files}
        made = {"model_id": str(data["model_id"]), "base_images": int(data["bases"]),
                "faces": str(data["faces"]), "procedural_cards": int(data["procedural"])}
    results: list[dict[str, Any]] = []
    for rows in sizes:
        refs, queries, how = model_dataset(cache, rows, seed, beyond)
        log(f"  model {rows}: {how}")
        exact_rows, exact_d = exact_top_rows(refs, queries, k)
        exact_cfg = dataclasses.replace(search_config, exact_max_rows=rows)
        exact_index = CardIndex(refs, None, exact_cfg)
        entry: dict[str, Any] = {"dataset": "model", "rows": rows, "dim": int(refs.shape[1]), "made": how,
                                 **made, "queries": len(queries), "k": k, "methods": {}}
        entry["methods"]["exact (BLAS inner product, f32)"] = {
            "batch1": time_batches(functools.partial(exact_index.search, count=k), queries, 1, repeats),
            "recall_at_1": 1.0, "recall_at_k": 1.0, "memory_mb": round(refs.nbytes / 2**20, 1)}
        for dtype in dtypes:
            cfg = dataclasses.replace(search_config, exact_max_rows=1, dtype=dtype)
            rss0 = _rss_mb()
            t0 = time.perf_counter()
            hnsw = build_usearch_index(refs, cfg)
            build_s = time.perf_counter() - t0
            index = CardIndex(refs, hnsw, cfg)
            memory = getattr(hnsw, "memory_usage", None)
            sweep = []
            chosen = None
            for ef in sorted(ef_sweep):
                index.expansion_search = ef
                rows_f, d_f = index.search(queries, k)
                r1, rk = recall_vs_exact(rows_f, d_f, exact_rows, exact_d, k)
                rec: dict[str, Any] = {"ef": ef, "recall_at_1": round(r1, 5), "recall_at_k": round(rk, 5),
                       "batch1": time_batches(functools.partial(index.search, count=k), queries, 1, repeats)}
                sweep.append(rec)
                log(f"  model {rows} HNSW {dtype} ef {ef}: recall@1 {r1:.4f} recall@{k} {rk:.4f} "
                    f"p50 {rec['batch1']['p50_ms']} ms")
                if chosen is None and r1 >= 1.0 and rk >= 0.999:
                    chosen = rec
                    break
            label = f"usearch HNSW {dtype} M={cfg.connectivity} ef_add={cfg.expansion_add}"
            entry["methods"][label] = {"build_s": round(build_s, 1),
                                       "memory_mb": round(memory / 2**20, 1) if memory else None,
                                       "rss_growth_mb": round(_rss_mb() - rss0, 1), "sweep": sweep,
                                       "chosen": chosen}
            del index, hnsw
        exact_p50 = entry["methods"]["exact (BLAS inner product, f32)"]["batch1"]["p50_ms"]
        for m in entry["methods"].values():
            if m.get("chosen"):
                m["speedup_vs_exact_p50"] = round(exact_p50 / max(m["chosen"]["batch1"]["p50_ms"], 1e-6), 1)
        results.append(entry)
        del refs
    return results


def print_model_report(entries: Sequence[dict[str, Any]], stream: Any = None) -> None:
    out = stream or sys.stdout
    for e in entries:
        print(f"\nreal-model embeddings, {e['rows']} x {e['dim']} ({e['made']}; model {e['model_id']}, "
              f"{e['base_images']} base images), {e['queries']} queries, k={e['k']}:", file=out)
        print(f"  {'method':<44} {'ef':>5} {'p50 ms':>8} {'p95 ms':>8} {'R@1':>7} {'R@k':>7} {'MB':>7} "
              f"{'build s':>8} {'x exact':>8}", file=out)
        for name, m in e["methods"].items():
            c = m.get("chosen") or (m["sweep"][-1] if m.get("sweep") else None)
            if c is None:
                print(f"  {name:<44} {'-':>5} {m['batch1']['p50_ms']:>8.3f} {m['batch1']['p95_ms']:>8.3f} "
                      f"{1.0:>7.4f} {1.0:>7.4f} {m['memory_mb']:>7} {'-':>8} {'1':>8}", file=out)
                continue
            flag = "" if m.get("chosen") else "  (recall target not reached)"
            print(f"  {name:<44} {c['ef']:>5} {c['batch1']['p50_ms']:>8.3f} {c['batch1']['p95_ms']:>8.3f} "
                  f"{c['recall_at_1']:>7.4f} {c['recall_at_k']:>7.4f} {m['memory_mb']!s:>7} {m['build_s']:>8} "
                  f"{m.get('speedup_vs_exact_p50', '-')!s:>8}{flag}", file=out)


class PixelBaselineEmbedder:
    """NOT the model: mean-removed 12x16 colour thumbnails. Used only when no trained model is available,
    so the open-set numbers are labelled 'pixel baseline'."""

    model_id = "pixel-baseline-12x16"
    dimension = 12 * 16 * 3
    input_size_wh = (120, 168)

    def embed(self, crops_bgr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        out = np.zeros((len(crops_bgr), self.dimension), np.float32)
        for i, crop in enumerate(crops_bgr):
            v = cv2.resize(crop, (12, 16), interpolation=cv2.INTER_AREA).astype(np.float32).reshape(-1)
            v -= v.mean()
            out[i] = v / max(float(np.linalg.norm(v)), 1e-6)
        return out, np.ones(len(crops_bgr), bool)

    def close(self) -> None:
        pass


def open_model_embedder(manifest: pathlib.Path, backend: str, threads: int) -> Embedder | None:
    """The trained model if its manifest and the embedder backends exist, else None."""
    from cardsorter.backends import embedders

    opener = getattr(embedders, "open_embedder", None)
    if opener is None or not manifest.is_file():
        return None
    return opener(backend, str(manifest), threads)  # type: ignore[no-any-return]



def open_set_benchmark(embedder: Embedder, label: str, cards: int, unknown: int, views: int, seed: int,
                       bands: MatchBandsConfig, search_config: SearchConfig, log: Callable[[str], None],
                       workdir: pathlib.Path) -> dict[str, Any]:
    """Generated catalogue in the database, held-out cards not in it; augmented views of both."""
    from cardsorter.db.build import build_database, fit_to_model
    from cardsorter.db.database import ReferenceDatabase
    from cardsorter.sim.augment import TRAINING_MIX, random_augment
    from cardsorter.sim.catalog import generate_catalog, load_catalog

    build_config = load_settings().matcher.build
    generate_catalog(workdir / "catalog", cards, seed, unknown)
    t0 = time.perf_counter()
    build_database(workdir / "catalog" / "images", workdir / "db", embedder, build_config=build_config,
                   search_config=search_config, metadata_path=workdir / "catalog" / "metadata.json")
    build_s = time.perf_counter() - t0
    db = ReferenceDatabase.load(workdir / "db", embedder.model_id, search_config)
    bands, _ = db.bands(bands)   # the database's calibration unless the YAML sets a number
    mix = tuple((n, p) for n, p in TRAINING_MIX if n != "rot180")  # orientation is fixed upstream
    rng = np.random.default_rng(seed + 1)

    def views_of(items: list[tuple[Any, pathlib.Path]]) -> tuple[list[str], np.ndarray]:
        truth: list[str] = []
        crops: list[np.ndarray] = []
        for rec, path in items:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read generated card image {path}")
            for _ in range(views):
                crops.append(fit_to_model(random_augment(img, rng, mix), embedder.input_size_wh))
                truth.append(rec.card_id)
        vecs: list[np.ndarray] = []
        for s in range(0, len(crops), 32):
            v, ok = embedder.embed(crops[s:s + 32])
            vecs.append(np.where(ok[:, None], v, np.nan))
        return truth, np.concatenate(vecs)

    known_truth, known_vecs = views_of(load_catalog(workdir / "catalog"))
    _, unknown_vecs = views_of(load_catalog(workdir / "catalog" / "unknown")) if unknown else ([], np.zeros((0, 1)))
    known_hits = db.search(np.nan_to_num(known_vecs), K)
    unknown_hits = db.search(np.nan_to_num(unknown_vecs), K) if len(unknown_vecs) else []
    multi_art = {g for g, members in db.art_groups().items() if len(members) > 1}

    def evaluate(b: MatchBandsConfig) -> dict[str, Any]:
        counts: dict[str, Any] = {"known_views": len(known_truth), "confirmed_correct": 0, "confirmed_wrong_card": 0,
                  "false_rejects": 0, "ambiguous": 0, "art_printing_views": 0, "art_confirmed_correct": 0,
                  "art_confirmed_other_printing": 0, "art_ambiguous": 0, "unknown_views": len(unknown_hits),
                  "false_accepts": 0}
        for truth, hits in zip(known_truth, known_hits):
            m = decide_match(0, hits, db.art_group, b)
            best = m.best.card.card_id if m.best else ""
            in_group = db.art_group(truth) in multi_art
            counts["art_printing_views"] += in_group
            if m.band == MatchBand.CONFIRMED:
                ok = best == truth
                counts["confirmed_correct" if ok else "confirmed_wrong_card"] += 1
                if in_group:
                    same_art = db.art_group(best) == db.art_group(truth)
                    counts["art_confirmed_correct"] += ok
                    counts["art_confirmed_other_printing"] += (not ok) and same_art
            elif m.band == MatchBand.AMBIGUOUS:
                counts["ambiguous"] += 1
                counts["art_ambiguous"] += in_group
            else:
                counts["false_rejects"] += 1
        for hits in unknown_hits:
            if decide_match(0, hits, db.art_group, b).band == MatchBand.CONFIRMED:
                counts["false_accepts"] += 1
        n_known = max(1, counts["known_views"])
        counts["false_reject_rate"] = round(counts["false_rejects"] / n_known, 4)
        counts["wrong_confirm_rate"] = round(counts["confirmed_wrong_card"] / n_known, 4)
        counts["false_accept_rate"] = round(counts["false_accepts"] / max(1, counts["unknown_views"]), 4)
        return counts

    best_known = np.array([h[0].distance_cos for h, t in zip(known_hits, known_truth) if h and h[0].card.card_id == t])
    best_unknown = np.array([h[0].distance_cos for h in unknown_hits if h])
    sweep = []
    for cd in (0.15, 0.20, 0.25, 0.30):
        for cm in (0.0, 0.02, 0.05, 0.08):
            e = evaluate(dataclasses.replace(bands, confirm_distance_max=cd, confirm_margin_min=cm,
                                             uncertain_distance_max=max(cd, bands.uncertain_distance_max)))
            sweep.append({"confirm_distance_max": cd, "confirm_margin_min": cm,
                          "false_accept_rate": e["false_accept_rate"], "false_reject_rate": e["false_reject_rate"],
                          "wrong_confirm_rate": e["wrong_confirm_rate"]})
    art_sweep = []
    for am in (0.0, 0.01, 0.02, 0.03, 0.05):
        e = evaluate(dataclasses.replace(bands, art_margin_min=am))
        art_sweep.append({"art_margin_min": am, "art_confirmed_correct": e["art_confirmed_correct"],
                          "art_confirmed_other_printing": e["art_confirmed_other_printing"],
                          "art_ambiguous": e["art_ambiguous"], "art_printing_views": e["art_printing_views"]})
    q = (5, 50, 95)
    return {
        "art_margin_sweep": art_sweep,
        "embedder": label, "model_id": embedder.model_id, "cards": db.card_count, "unknown_cards": unknown,
        "views_per_card": views, "build_s": round(build_s, 1),
        "art_groups_with_several_printings": len(multi_art),
        "at_configured_bands": {**dataclasses.asdict(bands), **evaluate(bands)},
        "best_distance_known_correct_pcts": [round(float(np.percentile(best_known, p)), 3) for p in q]
        if len(best_known) else [],
        "best_distance_unknown_pcts": [round(float(np.percentile(best_unknown, p)), 3) for p in q]
        if len(best_unknown) else [],
        "sweep": sweep,
    }


def run(sizes: Sequence[int] = (USER_CATALOGUE_ROWS, SCALED_ROWS), dim: int = MODEL_DIMENSION,
        kinds: Sequence[str] = ("random", "clustered"), recall_queries: int = 1000, repeats: int = 60,
        hnsw: bool = True, ef_sweep: Sequence[int] = (64, 128, 256), open_set_cards: int = 300,
        open_set_unknown: int = 60, open_set_views: int = 3, model_manifest: str | None = None,
        backend: str = "onnx", seed: int = 0, log: Callable[[str], None] | None = None,
        pixel_baseline: bool = False) -> dict[str, Any]:
    """Every measurement of this benchmark as one dict (machine, search, open_set)."""
    say = log or (lambda s: None)
    matcher = load_settings().matcher
    search_config = matcher.search
    bands = matcher.bands
    out: dict[str, Any] = {"machine": machine(), "search_config": dataclasses.asdict(search_config)}
    say(f"machine: {out['machine']}")
    out["search"] = search_benchmark(sizes, dim, kinds, search_config, ef_sweep, recall_queries, repeats, hnsw,
                                     seed, say)
    if open_set_cards > 0:
        emb = load_settings().embedder
        manifest = resolve_path(model_manifest or emb.model_manifest)
        embedder: Embedder | None = (None if pixel_baseline else
                                     open_model_embedder(manifest, backend, emb.threads))
        label = f"model {manifest.name}"
        if embedder is None:
            embedder, label = PixelBaselineEmbedder(), "PIXEL BASELINE (thumbnail pixels; NOT the trained model)"
        say(f"open set with {label}")
        with tempfile.TemporaryDirectory(prefix="cardsorter-bench-") as tmp:
            try:
                out["open_set"] = open_set_benchmark(embedder, label, open_set_cards, open_set_unknown,
                                                     open_set_views, seed, bands, search_config, say,
                                                     pathlib.Path(tmp))
            finally:
                embedder.close()
    return out


def print_report(result: dict[str, Any], stream: Any = None) -> None:
    out = stream or sys.stdout
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load(1m) {m['load_average_1m']}, numpy {m['numpy']} "
          f"({m['blas']}), usearch {m['usearch']}, Python {m['python']}", file=out)
    print(f"search config: {result['search_config']}", file=out)
    for entry in result["search"]:
        print(f"\n{entry['dataset']} {entry['rows']} x {entry['dim']} (top-{K}):", file=out)
        print(f"  {'method':<78} {'b1 p50':>8} {'b1 p95':>8} {'b4 p50':>8} {'b4 p95':>8} {'R@1near':>8} "
              f"{'R@1far':>7}", file=out)
        for name, r in entry["methods"].items():
            print(f"  {name:<78} {r['batch1']['p50_ms']:>8.2f} {r['batch1']['p95_ms']:>8.2f} "
                  f"{r['batch4']['p50_ms']:>8.2f} {r['batch4']['p95_ms']:>8.2f} {r['recall_at_1_near']:>8.4f} "
                  f"{r['recall_at_1_far']:>7.4f}" + (f"  (build {r['build_s']} s)" if "build_s" in r else ""),
                  file=out)
    if "open_set" in result:
        o = result["open_set"]
        a = o["at_configured_bands"]
        print(f"\nopen set ({o['embedder']}, model_id {o['model_id']}): {o['cards']} cards in the database "
              f"({o['art_groups_with_several_printings']} arts with several printings), {o['unknown_cards']} held-out "
              f"cards, {o['views_per_card']} augmented views each", file=out)
        print(f"  bands: confirm <= {a['confirm_distance_max']} & margin >= {a['confirm_margin_min']}, "
              f"art margin {a['art_margin_min']}, unknown > {a['uncertain_distance_max']}", file=out)
        print(f"  false accepts (unknown confirmed): {a['false_accepts']}/{a['unknown_views']} "
              f"= {a['false_accept_rate']:.2%}", file=out)
        print(f"  false rejects (known not confirmed/ambiguous): {a['false_rejects']}/{a['known_views']} "
              f"= {a['false_reject_rate']:.2%}", file=out)
        print(f"  confirmed as the wrong card: {a['confirmed_wrong_card']}/{a['known_views']} "
              f"= {a['wrong_confirm_rate']:.2%}; ambiguous: {a['ambiguous']}", file=out)
        print(f"  art-identical printings: {a['art_printing_views']} views: confirmed correct "
              f"{a['art_confirmed_correct']}, confirmed as another printing {a['art_confirmed_other_printing']}, "
              f"ambiguous {a['art_ambiguous']}", file=out)
        print(f"  best distance percentiles 5/50/95: known {o['best_distance_known_correct_pcts']}, "
              f"unknown {o['best_distance_unknown_pcts']}", file=out)
        print("  sweep (confirm_distance_max, confirm_margin_min) → false accept / false reject / wrong confirm:",
              file=out)
        for s in o["sweep"]:
            print(f"    {s['confirm_distance_max']:.2f} {s['confirm_margin_min']:.2f} → "
                  f"{s['false_accept_rate']:.2%} / {s['false_reject_rate']:.2%} / {s['wrong_confirm_rate']:.2%}",
                  file=out)
        print("  art_margin_min → printing views confirmed correct / confirmed as another printing / ambiguous:",
              file=out)
        for s in o["art_margin_sweep"]:
            print(f"    {s['art_margin_min']:.2f} → {s['art_confirmed_correct']} / "
                  f"{s['art_confirmed_other_printing']} / {s['art_ambiguous']} of {s['art_printing_views']}", file=out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.search", description=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=[USER_CATALOGUE_ROWS, SCALED_ROWS])
    p.add_argument("--dim", type=int, default=MODEL_DIMENSION)
    p.add_argument("--kinds", nargs="+", default=["random", "clustered"])
    p.add_argument("--queries", type=int, default=1000, help="queries for recall@1")
    p.add_argument("--repeats", type=int, default=60, help="timed searches per batch size")
    p.add_argument("--ef", type=int, nargs="+", default=[64, 128, 256], help="HNSW expansion_search sweep")
    p.add_argument("--no-hnsw", action="store_true", help="skip building HNSW indexes (slow at 100k)")
    p.add_argument("--open-set-cards", type=int, default=300, help="0 skips the open-set part")
    p.add_argument("--open-set-unknown", type=int, default=60)
    p.add_argument("--views", type=int, default=3)
    p.add_argument("--model", help="model manifest (default: embedder.model_manifest)")
    p.add_argument("--backend", default="onnx")
    p.add_argument("--pixel-baseline", action="store_true",
                   help="open set with raw thumbnail pixels instead of the model (a reference point)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--model-embeddings", metavar="NPZ",
                   help="real-model embeddings from `python -m cardsorter.bench.model_embeddings`: measure exact "
                        "vs HNSW on them (at --model-sizes) instead of the random/clustered data and open set")
    p.add_argument("--model-sizes", type=int, nargs="+", default=[USER_CATALOGUE_ROWS, SCALED_ROWS, ROTATED_COPY_ROWS])
    p.add_argument("--dtypes", nargs="+", default=["f16", "i8"])
    p.add_argument("--model-ef", type=int, nargs="+", default=[16, 24, 32, 48, 64, 96, 128, 192, 256, 512])
    p.add_argument("--beyond-cache", choices=BEYOND_CACHE, default="mix",
                   help="how sizes above the cache are made (model_dataset): mix (one crowded span, default) or "
                        "rotate (orthogonal islands; HNSW's worst case)")
    args = p.parse_args(argv)
    if args.model_embeddings:
        search_config = load_settings().matcher.search
        say = (lambda s: print(s, file=sys.stderr, flush=True))
        result_m: dict[str, Any] = {"machine": machine(), "search_config": dataclasses.asdict(search_config),
                    "model_search": model_search_benchmark(pathlib.Path(args.model_embeddings), args.model_sizes,
                                                           args.dtypes, search_config, args.model_ef, args.repeats,
                                                           K, 0, say, args.beyond_cache)}
        m = result_m["machine"]
        print(f"machine: {m['cpu']}, {m['cores']} cores, load(1m) {m['load_average_1m']}, usearch {m['usearch']}")
        print_model_report(result_m["model_search"])
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(result_m, indent=1) + "\n", encoding="utf-8")
        return 0
    result = run(args.sizes, args.dim, args.kinds, args.queries, args.repeats, not args.no_hnsw, args.ef,
                 args.open_set_cards, args.open_set_unknown, args.views, args.model, args.backend,
                 log=lambda s: print(s, file=sys.stderr, flush=True), pixel_baseline=args.pixel_baseline)
    print_report(result)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
