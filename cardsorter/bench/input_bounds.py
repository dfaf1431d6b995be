"""Input-check bounds measured: how far detector corners reach outside the frame, how far embedding norms are from 1.

`python -m cardsorter.bench.input_bounds` prints the figures behind `input.corner_margin_px` and
`input.norm_tolerance` in config/sorter.yaml (synthetic belt and station frames, the onnx model).
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import tempfile

import numpy as np

from cardsorter.backends.cameras import open_camera
from cardsorter.backends.detectors import open_detector
from cardsorter.backends.embedders import open_embedder
from cardsorter.config import resolve_path
from cardsorter.imagefiles import read_image_file
from cardsorter.settings import load_settings
from cardsorter.sim.catalog import generate_catalog


def corner_overshoot_px(catalog: pathlib.Path, mode: str, frames: int, seed: int) -> tuple[int, int, float]:
    """(frames, quads, farthest a corner or box reaches outside the frame in px; <= 0: all inside)."""
    camera = load_settings(overrides={"camera": {
        "source": "synthetic", "synthetic.catalog_dir": str(catalog), "synthetic.realtime": False,
        "synthetic.cards": 12, "synthetic.mode": mode, "synthetic.seed": seed}}).camera
    detector = open_detector(camera.detector)
    source = open_camera(camera)
    worst, quads, seen = -float("inf"), 0, 0
    try:
        while seen < frames:
            frame = source.read()
            if frame is None:
                break
            seen += 1
            h, w = frame.image_bgr.shape[:2]
            for det in detector.detect(frame.image_bgr):
                if det.quad_px is None:
                    continue
                quads += 1
                b = det.bbox_px
                for x, y in (*det.quad_px, (b.x, b.y), (b.x + b.w, b.y + b.h)):
                    worst = max(worst, -x, -y, x - w, y - h)
    finally:
        source.close()
    return seen, quads, worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=400)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}; synthetic data")
    with tempfile.TemporaryDirectory() as tmp:
        catalog = pathlib.Path(tmp) / "catalog"
        generate_catalog(catalog, cards=24, seed=11, unknown=4)
        for mode in ("belt", "station"):
            frames, quads, worst = corner_overshoot_px(catalog, mode, args.frames, seed=5)
            print(f"{mode}: {frames} frames, {quads} quads, farthest corner/box beyond the frame edge: {worst:.2f} px")
        embedder = open_embedder("onnx", resolve_path(load_settings().embedder.model_manifest), 2)
        images = [read_image_file(p) for p in sorted((catalog / "images").glob("*.png"))]
        vectors, ok = embedder.embed(images)
        deviation = np.abs(np.linalg.norm(vectors[ok].astype(np.float64), axis=1) - 1.0)
        print(f"onnx {embedder.model_id}: {int(ok.sum())} crops, max |L2 norm - 1| = {deviation.max():.2g}")
        embedder.close()


if __name__ == "__main__":
    main()
