"""Render CardDet training scenes into shards (cardsorter.sim.composite), so training reads a fixed cache.

    python -m training.make_detector_data --out /work/data/det-train/cache --samples 16000 --seed 1 \
        --faces /work/data/card_faces --backgrounds /work/data/backgrounds --workers 2

Sources: procedural cards (cardsorter.sim.catalog, seed ``--catalog-seed``) always; card-face images
and background photos from the folders given (see models/README.md for the list used). Each shard
``shard-SSSS-NNNNN.npz`` holds ``images`` (N, H, W, 3) BGR uint8 and the labels: ``quads`` (M, 4, 2)
input pixels clockwise from the card's top-left, ``sample`` (M,) image index, ``hidden`` (M,),
``double_feed`` (M,). Deterministic: shard k uses seed (seed, k).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

import numpy as np

from cardsorter.sim.composite import compose, load_images
from training.detector_model import INPUT_H, INPUT_W

SHARD = 500


def _faces(faces_dir: Path | None, procedural: int, catalog_seed: int) -> list[np.ndarray]:
    from cardsorter.sim.catalog import render_catalog

    faces = [img for _, img in render_catalog(procedural, catalog_seed, namespace="det")]
    if faces_dir is not None:
        real = load_images(faces_dir, max_side_px=400)
        # real faces as often as procedural ones when there are enough of them
        faces += real * max(1, len(faces) // max(1, len(real))) if real else []
    return faces


_STATE: dict[str, list[np.ndarray]] = {}


def _init(faces_dir: str | None, backgrounds_dir: str | None, procedural: int, catalog_seed: int) -> None:
    _STATE["faces"] = _faces(Path(faces_dir) if faces_dir else None, procedural, catalog_seed)
    _STATE["backgrounds"] = load_images(backgrounds_dir, max_side_px=720) if backgrounds_dir else []


def _shard(args: tuple[int, int, int, str]) -> str:
    seed, index, count, out = args
    rng = np.random.default_rng([seed, index])
    images = np.empty((count, INPUT_H, INPUT_W, 3), np.uint8)
    quads, sample, hidden, double = [], [], [], []
    for i in range(count):
        img, labels = compose(_STATE["faces"], _STATE["backgrounds"], rng, (INPUT_W, INPUT_H))
        images[i] = img
        for lab in labels:
            quads.append(lab.quad_px)
            sample.append(i)
            hidden.append(lab.occluded_frac)
            double.append(lab.double_feed)
    path = Path(out) / f"shard-{seed:04d}-{index:05d}.npz"
    np.savez(path, images=images, quads=np.asarray(quads, np.float32).reshape(-1, 4, 2),
             sample=np.asarray(sample, np.int32), hidden=np.asarray(hidden, np.float32),
             double_feed=np.asarray(double, bool))
    return str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.make_detector_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--samples", type=int, default=16000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--faces", type=Path, default=None, help="folder of card-face images (optional)")
    p.add_argument("--backgrounds", type=Path, default=None, help="folder of background photos (optional)")
    p.add_argument("--procedural", type=int, default=400, help="procedural card faces to render")
    p.add_argument("--catalog-seed", type=int, default=2024)
    p.add_argument("--workers", type=int, default=1)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(args.seed, k, min(SHARD, args.samples - k * SHARD), str(args.out))
            for k in range((args.samples + SHARD - 1) // SHARD)]
    jobs = [j for j in jobs if not (args.out / f"shard-{j[0]:04d}-{j[1]:05d}.npz").exists()]
    t0 = time.time()
    init = (str(args.faces) if args.faces else None, str(args.backgrounds) if args.backgrounds else None,
            args.procedural, args.catalog_seed)
    if args.workers > 1:
        with multiprocessing.get_context("fork").Pool(args.workers, _init, init) as pool:
            for path in pool.imap_unordered(_shard, jobs):
                print(f"{time.time() - t0:7.1f}s {path}", flush=True)
    else:
        _init(*init)
        for job in jobs:
            print(f"{time.time() - t0:7.1f}s {_shard(job)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
