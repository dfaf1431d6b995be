"""Real-model reference embeddings for the search benchmark: augmented renders of real and procedural cards.

`python -m cardsorter.bench.model_embeddings --faces DIR --procedural N --rows R --queries Q --out FILE.npz`
embeds, with the committed model, R references (each a distinct augmented render of one of the base
images: every card image under DIR plus N procedural cards) and Q queries (a fresh augmented render of
the base image of a random reference). It is slow on a small CPU (run it with nice); the search
benchmark reads the cache it writes.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time
from collections.abc import Sequence

import cv2
import numpy as np

from cardsorter.config import resolve_path
from cardsorter.db.names import IMAGE_SUFFIXES
from cardsorter.settings import load_settings

WORK_SCALE = 2      # augmentations at 2x the model input, then INTER_AREA down (as a camera crop)
BATCH = 256


def base_images(faces: pathlib.Path | None, procedural: int, size_wh: tuple[int, int], seed: int) -> list[np.ndarray]:
    """Every image under ``faces`` (recursively) and ``procedural`` rendered cards, at 2x the model input."""
    from cardsorter.sim.catalog import render_catalog

    work = (size_wh[0] * WORK_SCALE, size_wh[1] * WORK_SCALE)
    out: list[np.ndarray] = []
    if faces is not None:
        for path in sorted(p for p in faces.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES):
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if img is None:
                print(f"skipping unreadable {path}", file=sys.stderr)
                continue
            out.append(cv2.resize(img, work, interpolation=cv2.INTER_AREA))
    for start in range(0, procedural, 500):
        for _, img in render_catalog(min(500, procedural - start), seed + start, namespace=f"bench{start}"):
            out.append(cv2.resize(img, work, interpolation=cv2.INTER_AREA))
    return out


def embed_views(bases: Sequence[np.ndarray], picks: np.ndarray, embedder: object, rng: np.random.Generator,
                label: str) -> np.ndarray:
    """One augmented render (training mix without rotation) of bases[i] for each i in ``picks``, embedded."""
    from cardsorter.sim.augment import TRAINING_MIX, random_augment

    mix = tuple((n, p) for n, p in TRAINING_MIX if n != "rot180")
    w, h = embedder.input_size_wh  # type: ignore[attr-defined]
    out = np.zeros((len(picks), embedder.dimension), np.float32)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    for start in range(0, len(picks), BATCH):
        crops = [cv2.resize(random_augment(bases[int(i)], rng, mix), (w, h), interpolation=cv2.INTER_AREA)
                 for i in picks[start:start + BATCH]]
        vecs, ok = embedder.embed(crops)  # type: ignore[attr-defined]
        out[start:start + len(crops)] = np.where(ok[:, None], vecs, 0.0)
        done = start + len(crops)
        rate = done / max(time.perf_counter() - t0, 1e-9)
        print(f"\r{label}: {done}/{len(picks)} ({rate:.0f}/s, ETA {(len(picks) - done) / rate:.0f} s)",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    from cardsorter.backends.embedders import open_embedder

    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.model_embeddings", description=__doc__)
    p.add_argument("--faces", help="folder of real card images (searched recursively)")
    p.add_argument("--procedural", type=int, default=6000, help="procedural cards rendered as further bases")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--seed", type=int, default=20261201)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--model", help="model manifest (default: embedder.model_manifest)")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    manifest = resolve_path(args.model or load_settings().embedder.model_manifest)
    embedder = open_embedder("onnx", str(manifest), args.threads)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    bases = base_images(pathlib.Path(args.faces) if args.faces else None, args.procedural,
                        embedder.input_size_wh, args.seed)
    print(f"{len(bases)} base images in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    ref_base = np.arange(args.rows) % len(bases)          # every base image about rows/len(bases) times
    refs = embed_views(bases, ref_base, embedder, rng, "references")
    q_rows = rng.integers(0, args.rows, args.queries)     # a query is a new view of a reference's base image
    queries = embed_views(bases, ref_base[q_rows], embedder, rng, "queries")
    np.savez(args.out, references=refs, queries=queries, query_base=ref_base[q_rows], ref_base=ref_base,
             model_id=np.asarray(embedder.model_id), bases=np.asarray(len(bases)),
             faces=np.asarray(str(args.faces or "")), procedural=np.asarray(args.procedural))
    print(f"wrote {args.out}: {args.rows} references, {args.queries} queries, model {embedder.model_id}, "
          f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    embedder.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
