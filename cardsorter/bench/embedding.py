"""Embedding benchmark: held-out retrieval top-1/top-3, clean and under each nuisance, for the trained
model vs a perceptual hash, raw downsampled pixels and colour-histogram + gradient descriptors.

`python -m cardsorter.bench.embedding [--cards N]` prints a table and JSON; `run()` returns the dict.
The catalogue is generated with a seed never used in training (training uses 1000, its own check 777).
Gallery = the clean catalogue images (what `db build` embeds); queries = the same cards through a
camera model (downscale to camera resolution + sensor noise) plus one nuisance at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cardsorter.backends.embedders import Embedder, open_embedder
from cardsorter.bench.host import cpu_model
from cardsorter.config import resolve_path
from cardsorter.core.types import CardRecord
from cardsorter.sim import augment
from cardsorter.sim.catalog import render_catalog

HELDOUT_SEED = 4242
NUISANCES = ("clean", "glare", "blur", "occlusion20", "rot180", "holo", "shadow", "perspective", "matte")
ORIGINAL_BAR = {"clean_top1": 0.95, "occlusion20_top3": 0.85}  # recognition_system_plan.md, P0
UNKNOWN_DISTANCE = 0.40    # the original design's "unknown card" cosine distance
Descriptor = Callable[[list[np.ndarray]], np.ndarray]


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu": cpu, "cores": os.cpu_count(), "load_1min": round(load, 2), "python": platform.python_version()}


def camera(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """What every query goes through: the card at camera resolution, with sensor noise."""
    return augment.sensor_noise(augment.downscale(img, rng), rng)


def make_queries(images: Sequence[np.ndarray], nuisance: str, seed: int) -> list[np.ndarray]:
    out = []
    for i, img in enumerate(images):
        rng = np.random.default_rng([seed, i, sum(map(ord, nuisance))])
        q = camera(img, rng)
        out.append(q if nuisance == "clean" else augment.apply(nuisance, q, rng))
    return out


# --- classical baselines -------------------------------------------------------------------------------

def phash_bits(images: list[np.ndarray]) -> np.ndarray:
    """64-bit perceptual hash (32x32 grey DCT, 8x8 low frequencies without DC, median threshold)."""
    out = np.zeros((len(images), 64), np.uint8)
    for i, img in enumerate(images):
        grey = cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), (32, 32), interpolation=cv2.INTER_AREA)
        dct = cv2.dct(grey.astype(np.float32))[:8, :8].reshape(-1)
        low = dct[1:]
        bits = np.concatenate([[0], low > np.median(low)])
        out[i] = bits.astype(np.uint8)
    return out


def raw_pixels(images: list[np.ndarray]) -> np.ndarray:
    """16x22 colour thumbnails, mean-removed, L2-normalised (cosine)."""
    x = np.stack([cv2.resize(im, (16, 22), interpolation=cv2.INTER_AREA) for im in images]).astype(np.float32)
    x = x.reshape(len(images), -1)
    x -= x.mean(axis=1, keepdims=True)
    unit: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    return unit


def hist_gradients(images: list[np.ndarray]) -> np.ndarray:
    """HSV colour histogram (8x4x4) + 4x4-cell gradient-orientation histograms (8 bins), sqrt, L2."""
    feats = []
    for im in images:
        small = cv2.resize(im, (64, 88), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, [8, 4, 4], [0, 180, 0, 256, 0, 256]).reshape(-1)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        gx, gy = cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)
        mag, ang = cv2.cartToPolar(gx, gy)
        bins = np.minimum((ang % np.pi) / np.pi * 8, 7).astype(int)
        cells = []
        for cy in range(4):
            for cx in range(4):
                sl = (slice(cy * 22, (cy + 1) * 22), slice(cx * 16, (cx + 1) * 16))
                cells.append(np.bincount(bins[sl].ravel(), mag[sl].ravel(), 8))
        grad = np.concatenate(cells)
        f = np.concatenate([hist / max(hist.sum(), 1e-9), grad / max(grad.sum(), 1e-9)])
        feats.append(np.sqrt(f))
    x = np.stack(feats).astype(np.float32)
    unit: np.ndarray = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
    return unit


def model_descriptor(embedder: Embedder, batch: int = 32) -> Descriptor:
    def describe(images: list[np.ndarray]) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch):
            vectors, _ = embedder.embed(images[i:i + batch])
            out.append(vectors)
        return np.concatenate(out)
    return describe


# --- retrieval -----------------------------------------------------------------------------------------

def ranking(method: str, gallery: np.ndarray, queries: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Top-k gallery rows per query and the best distance (cosine distance, or Hamming bits for phash)."""
    if method == "phash":
        dist = np.count_nonzero(queries[:, None, :] != gallery[None, :, :], axis=2).astype(np.float32)
    else:
        dist = 1.0 - queries @ gallery.T
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(dist, order[:, :1], axis=1)[:, 0]


def scores(order: np.ndarray, records: Sequence[CardRecord]) -> dict[str, float]:
    truth = np.arange(len(records))
    arts = np.array([r.art_id for r in records])
    return {
        "top1": float(np.mean(order[:, 0] == truth)),
        "top3": float(np.mean(np.any(order == truth[:, None], axis=1))),
        "art_top1": float(np.mean(arts[order[:, 0]] == arts)),  # reprint/finish confusions forgiven
    }


def run(quick: bool = False, cards: int | None = None, seed: int = HELDOUT_SEED,
        manifest: str | Path | None = None, threads: int = 1, unknown: int | None = None,
        nuisances: Sequence[str] = NUISANCES) -> dict[str, Any]:
    """Measure everything; returns {"machine", "model", "results": {method: {nuisance: scores}}, ...}."""
    n = cards if cards is not None else (60 if quick else 400)
    n_unknown = unknown if unknown is not None else (20 if quick else 100)
    manifest_path = Path(manifest) if manifest is not None else resolve_path("models/cardnet.yaml")
    t0 = time.perf_counter()
    catalogue = render_catalog(n, seed)
    records = [r for r, _ in catalogue]
    gallery_imgs = [img for _, img in catalogue]
    embedder = open_embedder("onnx", manifest_path, threads)
    methods: dict[str, Descriptor] = {
        "model": model_descriptor(embedder), "phash": phash_bits, "pixels": raw_pixels,
        "hist_grad": hist_gradients,
    }
    galleries = {name: fn(gallery_imgs) for name, fn in methods.items()}
    results: dict[str, dict[str, dict[str, float]]] = {name: {} for name in methods}
    best_known: dict[str, np.ndarray] = {}
    for nuisance in nuisances:
        queries = make_queries(gallery_imgs, nuisance, seed)
        for name, fn in methods.items():
            order, best = ranking(name, galleries[name], fn(queries))
            results[name][nuisance] = scores(order, records)
            if nuisance == "clean":
                best_known[name] = best
    # Open set: unknown cards (new art, new sets) against this catalogue; model distances only.
    open_set: dict[str, float] = {}
    if n_unknown:
        unknown_imgs = [img for _, img in render_catalog(n_unknown, seed, namespace="unknown")]
        _, best_unknown = ranking("model", galleries["model"], methods["model"](make_queries(unknown_imgs, "clean",
                                                                                            seed + 1)))
        open_set = {
            "unknown_cards": n_unknown,
            "unknown_rejected_at_0.40": float(np.mean(best_unknown > UNKNOWN_DISTANCE)),
            "known_clean_within_0.40": float(np.mean(best_known["model"] <= UNKNOWN_DISTANCE)),
            "unknown_distance_p5": float(np.percentile(best_unknown, 5)),
            "known_clean_distance_p95": float(np.percentile(best_known["model"], 95)),
        }
    # Latency of the model alone: one batch of 8 crops at the model's input size, onnxruntime.
    crops = [cv2.resize(img, embedder.input_size_wh, interpolation=cv2.INTER_AREA) for img in gallery_imgs[:8]]
    embedder.embed(crops)
    reps = 3 if quick else 10
    start = time.perf_counter()
    for _ in range(reps):
        embedder.embed(crops)
    ms_per_crop = (time.perf_counter() - start) / (reps * len(crops)) * 1000
    start = time.perf_counter()
    for c in crops:
        embedder.embed([c])
    ms_single = (time.perf_counter() - start) / len(crops) * 1000
    model_id = embedder.model_id
    embedder.close()
    model = results["model"]
    bar = {key: {"target": target, "model": model[key.split("_")[0]][key.split("_")[1]],
                 "met": model[key.split("_")[0]][key.split("_")[1]] >= target}
           for key, target in ORIGINAL_BAR.items() if key.split("_")[0] in model}
    return {
        "benchmark": "embedding", "machine": machine(), "model_id": model_id, "manifest": str(manifest_path),
        "cards": n, "seed": seed, "distinct_artworks": len({r.art_id for r in records}),
        "onnxruntime_threads": threads, "ms_per_crop_batch8": round(ms_per_crop, 2),
        "ms_per_crop_batch1": round(ms_single, 2), "results": results, "open_set": open_set,
        "original_bar": bar, "seconds": round(time.perf_counter() - t0, 1),
    }


def format_table(report: dict[str, Any]) -> str:
    results = report["results"]
    nuisances = list(next(iter(results.values())))
    lines = [(f"embedding benchmark: {report['cards']} held-out cards (seed {report['seed']}, "
             f"{report['distinct_artworks']} artworks), model {report['model_id']}"),
             f"machine: {report['machine']}",
             (f"model latency (onnxruntime, {report['onnxruntime_threads']} thread): "
             f"{report['ms_per_crop_batch8']} ms/crop in batches of 8, {report['ms_per_crop_batch1']} ms one by one"),
             "top-1 / top-3 / art-level top-1 (%):",
             f"{'nuisance':<12}" + "".join(f"{m:>22}" for m in results)]
    for nuisance in nuisances:
        cells = []
        for m in results:
            s = results[m][nuisance]
            cells.append(f"{100 * s['top1']:6.1f} {100 * s['top3']:6.1f} {100 * s['art_top1']:6.1f}")
        lines.append(f"{nuisance:<12}" + "".join(f"{c:>22}" for c in cells))
    for key, v in report["original_bar"].items():
        lines.append(f"original bar {key} >= {100 * v['target']:.0f}%: model {100 * v['model']:.1f}% "
                     f"({'met' if v['met'] else 'NOT met'})")
    if report["open_set"]:
        lines.append("open set (model): " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                                     for k, v in report["open_set"].items()))
    lines.append(f"took {report['seconds']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="held-out retrieval benchmark of the embedding model vs baselines")
    p.add_argument("--cards", type=int, default=None, help="held-out catalogue size (default 400; --quick 60)")
    p.add_argument("--seed", type=int, default=HELDOUT_SEED)
    p.add_argument("--manifest", default=None, help="model manifest (default models/cardnet.yaml)")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime threads")
    p.add_argument("--unknown", type=int, default=None, help="unknown cards for the open-set figures")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write the report here")
    args = p.parse_args(argv)
    report = run(args.quick, args.cards, args.seed, args.manifest, args.threads, args.unknown)
    print(format_table(report))
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
