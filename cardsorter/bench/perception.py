"""Perception benchmark: learned vs classical detector on real photos and the synthetic suite, CPU time, the gate.

`python -m cardsorter.bench.perception [--real-val DIR]` prints the numbers; `run()` returns them
as a dict (for `bench`). In one run: the real validation set (read from DIR, never downloaded; see
cardsorter/bench/real_val.py), the synthetic belt with one nuisance forced on at a time, for the
learned detector (with and without the sub-pixel edge refinement) and the former classical one
(cardsorter/core/classical_detection.py), the learned detector's CPU time per 640x480 frame (one
thread), and the gate on a belt run with the default nuisance mix (detector → tracker → frame
selector) against embedding every detected card in every frame. Nothing here is asserted in
tests: a benchmark measures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from cardsorter.backends.detectors import (
    PHOTO_TILES,
    CardFinder,
    HybridCardDetector,
    OnnxCardDetector,
    for_photos,
    open_detector,
    open_learned_detector,
)
from cardsorter.bench.host import cpu_model
from cardsorter.config import resolve_path
from cardsorter.core.classical_detection import ClassicalDetector
from cardsorter.core.detection import CLASS_CARD, CLASS_DOUBLE_FEED, quad_corner_error_px
from cardsorter.core.detector_manifest import load_detector_manifest
from cardsorter.core.frame_selection import FrameSelector
from cardsorter.core.model_manifest import load_manifest
from cardsorter.core.tracking import CardTracker
from cardsorter.core.types import BoxPx, Detection, Orientation
from cardsorter.settings import CameraSettings, FrameSelectorSettings, load_settings
from cardsorter.sim.scene import (
    NUISANCES,
    GroundTruthCard,
    NuisanceConfig,
    SceneCard,
    SyntheticScene,
    read_catalog_dir,
)

MATCH_IOU_MIN = 0.5          # a detection counts for a ground-truth card when their boxes overlap this much
DOUBLE_FEED_IOU_MIN = 0.3
IN_VIEW_MARGIN_PX = 2.0      # a card is expected to be found when all corners are this far inside the frame
VIEWS_TO_SETTLE = 3          # simulated smoother: a track is settled after this many embedded views
TIMING_FRAMES = 200          # 640x480 frames timed for the CPU figure


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on: CPU name (/proc/cpuinfo), cores, Python, platform."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform()}


def _catalog(catalog_dir: Path | None, workdir: Path) -> list[SceneCard]:
    if catalog_dir is not None:
        return read_catalog_dir(catalog_dir)
    from cardsorter.sim.catalog import generate_catalog

    generate_catalog(workdir / "catalog", 40, 11, 8)
    return read_catalog_dir(workdir / "catalog")


def _match(dets: list[Detection], truth: list[GroundTruthCard]) -> dict[int, int]:
    """Greedy one-to-one matching by box IoU: ground-truth index -> detection index."""
    pairs = []
    for gi, g in enumerate(truth):
        gbox = BoxPx.from_quad(g.quad_px)
        # a double feed's truth is the top card; the detection covers both cards
        iou_min = DOUBLE_FEED_IOU_MIN if "double_feed" in g.nuisances else MATCH_IOU_MIN
        for di, d in enumerate(dets):
            iou = gbox.iou(d.bbox_px)
            if iou >= iou_min:
                pairs.append((-iou, gi, di))
    pairs.sort()
    matched: dict[int, int] = {}
    used: set[int] = set()
    for _, gi, di in pairs:
        if gi not in matched and di not in used:
            matched[gi] = di
            used.add(di)
    return matched


def detector_on_nuisance(name: str, cards: list[SceneCard], params: CameraSettings, detector: CardFinder,
                         n_cards: int, stride: int) -> dict[str, Any]:
    """Detector scores on a belt where nuisance ``name`` hits every card ("none": a clean belt)."""
    probabilities = dict.fromkeys(NUISANCES, 0.0)
    if name != "none":
        probabilities[name] = 1.0
    scene_cfg = dataclasses.replace(params.synthetic.scene, mode="belt", cards=n_cards,
                                    seed=101)
    size = (params.frame.width, params.frame.height)
    scene = SyntheticScene(scene_cfg, NuisanceConfig(**probabilities), cards, params.frame.fps, size)
    expected = found = correct_class = false_pos = detections = 0
    errors: list[float] = []
    errors_any_rotation: list[float] = []
    errors_pct: list[float] = []
    orientation_known = orientation_right = 0
    render_s = detect_s = 0.0
    frames = 0
    for i in range(0, scene.frame_count, stride):
        t0 = time.perf_counter()
        image, truth = scene.render(i)
        t1 = time.perf_counter()
        dets = detector.detect(image)
        t2 = time.perf_counter()
        render_s += t1 - t0
        detect_s += t2 - t1
        frames += 1
        detections += len(dets)
        eligible = [g for g in truth if g.inside(size, IN_VIEW_MARGIN_PX)]
        matched = _match(dets, eligible)
        claimed = set(matched.values())
        # a detection of a card partly out of view is neither expected nor false
        partial = [g for g in truth if not g.inside(size, IN_VIEW_MARGIN_PX)]
        for di, d in enumerate(dets):
            if di not in claimed and not any(BoxPx.from_quad(g.quad_px).iou(d.bbox_px) >= MATCH_IOU_MIN
                                             for g in partial):
                false_pos += 1
        expected += len(eligible)
        for gi, di in matched.items():
            g, d = eligible[gi], dets[di]
            found += 1
            want = CLASS_DOUBLE_FEED if "double_feed" in g.nuisances else CLASS_CARD
            if d.class_name != want:
                continue
            correct_class += 1
            if want == CLASS_CARD and d.quad_px is not None:
                errors.append(quad_corner_error_px(d.quad_px, g.quad_px))
                free = quad_corner_error_px(d.quad_px, g.quad_px, allow_180=True)
                errors_any_rotation.append(free)
                f, t = np.asarray(d.quad_px), np.asarray(g.quad_px)
                worst = min(float(np.max(np.linalg.norm(f - t, axis=1))),
                            float(np.max(np.linalg.norm(np.roll(f, 2, axis=0) - t, axis=1))))
                errors_pct.append(100.0 * worst / float(np.linalg.norm(t[2] - t[0])))
                if d.orientation != Orientation.UNKNOWN:
                    orientation_known += 1
                    orientation_right += int(abs(errors[-1] - free) < 1e-9)
    return {
        "frames": frames, "expected": expected, "detections": detections,
        "recall": correct_class / expected if expected else None,
        "recall_any_class": found / expected if expected else None,
        "precision": correct_class / (correct_class + false_pos + (found - correct_class)) if detections else None,
        "false_positives": false_pos,
        "corner_error_px_mean": float(np.mean(errors_any_rotation)) if errors_any_rotation else None,
        "corner_error_px_p95": float(np.percentile(errors_any_rotation, 95)) if errors_any_rotation else None,
        "corner_err_p95_pct": float(np.percentile(errors_pct, 95)) if errors_pct else None,
        "orientation_known": orientation_known / len(errors) if errors else None,
        "orientation_correct_when_known": orientation_right / orientation_known if orientation_known else None,
        "render_ms": 1000 * render_s / frames if frames else None,
        "detect_ms": 1000 * detect_s / frames if frames else None,
    }


def gate_on_belt(cards: list[SceneCard], params: CameraSettings, fs_params: FrameSelectorSettings, n_cards: int,
                 mode: str, settle_feedback: bool, detector: CardFinder) -> dict[str, Any]:
    """Detector → tracker → frame selector over a whole run with the default nuisance mix."""
    scene_cfg = dataclasses.replace(params.synthetic.scene, mode=mode, cards=n_cards)
    size = (params.frame.width, params.frame.height)
    scene = SyntheticScene(scene_cfg, params.synthetic.nuisance, cards,
                           params.frame.fps, size)
    tracker = CardTracker(fs_params.tracker)
    crop_wh = load_manifest(resolve_path(fs_params.model_manifest)).input_size_wh
    selector = FrameSelector(fs_params.gate, crop_wh)
    views: Counter[int] = Counter()
    physical_votes: dict[int, Counter[int]] = defaultdict(Counter)
    fps = params.frame.fps
    select_s = 0.0
    for i in range(scene.frame_count):
        image, truth = scene.render(i)
        stamp = round(i * 1e9 / fps)
        tracked, ended = tracker.update(detector.detect(image), stamp)
        for end in ended:
            selector.forget(end.track_id)
        t0 = time.perf_counter()
        crops = selector.select(image, tracked)
        select_s += time.perf_counter() - t0
        for crop in crops:
            views[crop.track_id] += 1
            if settle_feedback and views[crop.track_id] >= VIEWS_TO_SETTLE:
                selector.set_settled(crop.track_id, True)
        for gi, di in _match(tracked, truth).items():
            physical_votes[tracked[di].track_id][truth[gi].physical_id] += 1
    stats = selector.stats
    physical_views: Counter[int] = Counter()
    for track_id, votes in physical_votes.items():
        physical_views[votes.most_common(1)[0][0]] += views[track_id]
    single = [pid for pid, _, _, tags in scene.stack() if "double_feed" not in tags]
    enough = sum(1 for pid in single if physical_views[pid] >= VIEWS_TO_SETTLE)
    return {
        "mode": mode, "settle_feedback": settle_feedback, "frames": stats.frames, "physical_cards": len(single),
        "tracks": len(physical_votes), "detections": stats.detections, "crops_requested": stats.crops_requested,
        "embeddings_saved_ratio": stats.saved_ratio, "reduction_factor": stats.reduction_factor,
        "skipped": dict(stats.skipped), "best_of_blurry": stats.best_of_blurry,
        "cards_with_enough_views": enough / len(single) if single else None,
        "select_ms_per_frame": 1000 * select_s / max(1, stats.frames),
    }


def detectors(params: CameraSettings) -> dict[str, CardFinder]:
    """The detectors compared: hybrid, learned (with and without edge refinement), and the classical one."""
    learned = open_learned_detector(params.detector)
    alone = OnnxCardDetector(learned.manifest, dataclasses.replace(learned.config, edge_refine=False))
    classical = ClassicalDetector(params.detector.classical)
    hybrid = HybridCardDetector(learned, classical, params.detector.config.hybrid_score_min)
    return {"hybrid": hybrid, "learned": learned, "learned_no_edge_refine": alone, "classical": classical}


def cpu_time(detector: CardFinder, cards: list[SceneCard], params: CameraSettings) -> dict[str, Any]:
    """p50 / p95 ms per 640x480 frame of detect() (one thread), and of the network alone where there is one."""
    scene_cfg = dataclasses.replace(params.synthetic.scene, mode="belt", cards=6, seed=5)
    scene = SyntheticScene(scene_cfg, params.synthetic.nuisance, cards, 30.0,
                           (640, 480))
    frames = [scene.render(i % scene.frame_count)[0] for i in range(0, 4 * TIMING_FRAMES, 4)]
    whole, net = [], []
    learned = detector.learned if isinstance(detector, HybridCardDetector) else detector
    network = learned if isinstance(learned, OnnxCardDetector) else None
    small = np.zeros((192, 256, 3), np.uint8) if network is None else np.zeros(
        (network.manifest.input_height, network.manifest.input_width, 3), np.uint8)
    for frame in frames[:10]:
        detector.detect(frame)
    for frame in frames:
        t0 = time.perf_counter()
        detector.detect(frame)
        t1 = time.perf_counter()
        if network is not None:
            network.infer(small)
        t2 = time.perf_counter()
        whole.append(1000 * (t1 - t0))
        net.append(1000 * (t2 - t1))
    return {"frames": len(frames), "detect_ms_p50": float(np.median(whole)),
            "detect_ms_p95": float(np.percentile(whole, 95)),
            "network_ms_p50": float(np.median(net)) if network is not None else None}


def run(quick: bool = False, catalog_dir: Path | None = None, real_val: Path | None = None,
        detector_manifest: Path | None = None) -> dict[str, Any]:
    """``detector_manifest``: another learned detector (its carddet.yaml) instead of the configured one."""
    settings = load_settings(None, {"camera": {"detector.model_manifest": str(detector_manifest)}}
                             if detector_manifest is not None else None)
    params, fs_params = settings.camera, settings.frame_selector
    found = detectors(params)
    n_cards, stride = (3, 6) if quick else (8, 3)
    result: dict[str, Any] = {"benchmark": "perception", "machine": machine(),
                              "frame_wh": [params.frame.width, params.frame.height], "views_to_settle": VIEWS_TO_SETTLE,
                              "detector_model": load_detector_manifest(
                                  resolve_path(params.detector.config.model_manifest)).model_id}
    if real_val is not None:
        from cardsorter.backends.embedders import open_embedder
        from cardsorter.bench import real_val as rv
        images = rv.load_real_val(real_val)
        embedder = open_embedder("onnx", resolve_path(fs_params.model_manifest), 1)
        # what `identify` runs on photos: the default detector with the tile search and the photo card limit
        on_photos = {f"{params.detector.config.mode}_photo_tiles{PHOTO_TILES}": open_detector(for_photos(params.detector)),
                     f"{params.detector.config.mode}_photo_tiles0": open_detector(for_photos(params.detector, 0))}
        try:
            result["real_val"] = {"path": str(real_val), "images": len(images),
                                  "detectors": {name: rv.evaluate(images, d.detect, lambda c: embedder.embed(c)[0],
                                                                  embedder.input_size_wh)
                                                for name, d in {**on_photos, **found}.items()}}
        finally:
            embedder.close()
    with tempfile.TemporaryDirectory(prefix="cardsorter-bench-perception-") as tmp:
        cards = _catalog(catalog_dir, Path(tmp))
        result["detector"] = {name: {nz: detector_on_nuisance(nz, cards, params, d, n_cards, stride)
                                     for nz in ("none", *NUISANCES)} for name, d in found.items()}
        default = found[params.detector.config.mode]
        result["cpu"] = {name: cpu_time(found[name], cards, params) for name in ("hybrid", "learned", "classical")}
        result["default_mode"] = params.detector.config.mode
        belt_cards = 6 if quick else 30
        result["gate"] = [gate_on_belt(cards, params, fs_params, belt_cards, "belt", False, default),
                          gate_on_belt(cards, params, fs_params, belt_cards, "belt", True, default),
                          gate_on_belt(cards, params, fs_params, max(2, belt_cards // 5), "station", True, default)]
    return result


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"perception benchmark on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
          f"frames {result['frame_wh'][0]}x{result['frame_wh'][1]}, learned detector {result['detector_model']}")
    if "real_val" in result:
        rv = result["real_val"]
        print(f"REAL validation set {rv['path']} ({rv['images']} photos): box IoU >= 0.5; corner error = worst "
              "corner, % of the card diagonal; e2e top-1 = detected-corner crop finds its own true-corner crop")
        print(f"{'detector':<24} {'subset':<7} {'cards':>5} {'recall':>7} {'prec':>6} {'err mean%':>9} "
              f"{'err p95%':>8} {'orient':>6} {'e2e top1':>8} {'ms/img':>7}")
        for name, r in rv["detectors"].items():
            ident = r.get("identification", {})
            for subset in ("single", "multi"):
                s = r[subset]
                top1 = ident.get(subset, {}).get("top1_detected")
                print(f"{name:<24} {subset:<7} {s['cards']:>5} {_fmt(s['recall'], '.3f'):>7} "
                      f"{_fmt(s['precision'], '.3f'):>6} {_fmt(s['corner_err_mean_pct'], '.2f'):>9} "
                      f"{_fmt(s['corner_err_p95_pct'], '.2f'):>8} {_fmt(s['orientation_accuracy'], '.2f'):>6} "
                      f"{_fmt(top1, '.3f'):>8} {_fmt(s['ms_per_image_p50'], '.1f'):>7}")
            tags = {k: v for k, v in ident.items() if k not in ("single", "multi")}
            if tags:
                print(f"{'':<24} e2e top-1 by tag (true corners: 1.000 by construction): " + ", ".join(
                    f"{k} {v['top1_detected']:.3f} ({v['cards']})" for k, v in tags.items()))
    print("SYNTHETIC suite (one nuisance on every card):")
    print(f"{'detector':<24} {'nuisance':<12} {'expected':>8} {'recall':>7} {'prec':>6} {'corner px':>9} {'p95 px':>7} "
          f"{'p95 %':>6} {'orient known':>12} {'orient ok':>9} {'detect ms':>9}")
    for dname, per in result["detector"].items():
        for name, r in per.items():
            print(f"{dname:<24} {name:<12} {r['expected']:>8} {_fmt(r['recall'], '.3f'):>7} "
                  f"{_fmt(r['precision'], '.3f'):>6} {_fmt(r['corner_error_px_mean'], '.2f'):>9} "
                  f"{_fmt(r['corner_error_px_p95'], '.2f'):>7} {_fmt(r['corner_err_p95_pct'], '.2f'):>6} "
                  f"{_fmt(r['orientation_known'], '.2f'):>12} {_fmt(r['orientation_correct_when_known'], '.2f'):>9} "
                  f"{_fmt(r['detect_ms'], '.1f'):>9}")
    for name, c in result["cpu"].items():
        print(f"CPU {name:<10} (1 thread, {c['frames']} frames 640x480): detect p50 {c['detect_ms_p50']:.1f} ms, "
              f"p95 {c['detect_ms_p95']:.1f} ms; network alone p50 {_fmt(c['network_ms_p50'], '.1f')} ms")
    print(f"gate ({result['default_mode']} detector; every detection of every frame would be one embedding run):")
    for g in result["gate"]:
        print(f"  {g['mode']:<7} settle-feedback={g['settle_feedback']!s:<5} frames={g['frames']} "
              f"detections={g['detections']} crops={g['crops_requested']} saved={g['embeddings_saved_ratio']:.1%} "
              f"({g['reduction_factor']:.1f}x fewer) cards with >= {result['views_to_settle']} views: "
              f"{_fmt(g['cards_with_enough_views'], '.0%')} skipped={g['skipped']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cardsorter.bench.perception", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer cards and frames")
    parser.add_argument("--catalog", type=Path, default=None, help="catalogue folder (default: generate one)")
    parser.add_argument("--real-val", type=Path, default=None,
                        help="real validation set folder (annotations.json, single/, multi/); read, never downloaded")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--detector-manifest", type=Path, default=None,
                        help="benchmark this learned detector (its carddet.yaml) instead of the configured one")
    args = parser.parse_args(argv)
    result = run(args.quick, args.catalog, args.real_val, args.detector_manifest)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
