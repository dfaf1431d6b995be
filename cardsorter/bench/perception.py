"""Perception benchmark: detector recall / precision / corner error per nuisance, and the gate's savings.

`python -m cardsorter.bench.perception` prints the numbers; `run()` returns them as a dict (for
`bench`). Scenes are the synthetic belt with one nuisance forced on at a time; the gate is measured
on a belt run with the default nuisance mix, detector → tracker → frame selector, against embedding
every detected card in every frame. Nothing here is asserted in tests: a benchmark measures.
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

from cardsorter.config import from_params, node_params, resolve_path
from cardsorter.core.detection import (
    CLASS_CARD,
    CLASS_DOUBLE_FEED,
    CardDetector,
    DetectorConfig,
    quad_corner_error_px,
)
from cardsorter.core.frame_selection import FrameSelector, FrameSelectorConfig
from cardsorter.core.model_manifest import load_manifest
from cardsorter.core.tracking import CardTracker, TrackerConfig
from cardsorter.core.types import BoxPx, Detection, Orientation
from cardsorter.sim.scene import (
    NUISANCES,
    GroundTruthCard,
    NuisanceConfig,
    SceneCard,
    SceneConfig,
    SyntheticScene,
    read_catalog_dir,
)

MATCH_IOU_MIN = 0.5          # a detection counts for a ground-truth card when their boxes overlap this much
DOUBLE_FEED_IOU_MIN = 0.3
IN_VIEW_MARGIN_PX = 2.0      # a card is expected to be found when all corners are this far inside the frame
VIEWS_TO_SETTLE = 3          # simulated smoother: a track is settled after this many embedded views


def machine() -> dict[str, Any]:
    return {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
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


def detector_on_nuisance(name: str, cards: list[SceneCard], params: dict[str, Any], detector: CardDetector,
                         n_cards: int, stride: int) -> dict[str, Any]:
    """Detector scores on a belt where nuisance ``name`` hits every card ("none": a clean belt)."""
    probabilities = dict.fromkeys(NUISANCES, 0.0)
    if name != "none":
        probabilities[name] = 1.0
    scene_cfg = dataclasses.replace(from_params(SceneConfig, params, "synthetic."), mode="belt", cards=n_cards,
                                    seed=101)
    size = (int(params["width"]), int(params["height"]))
    scene = SyntheticScene(scene_cfg, NuisanceConfig(**probabilities), cards, float(params["fps"]), size)
    expected = found = correct_class = false_pos = detections = 0
    errors: list[float] = []
    errors_any_rotation: list[float] = []
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
        "orientation_known": orientation_known / len(errors) if errors else None,
        "orientation_correct_when_known": orientation_right / orientation_known if orientation_known else None,
        "render_ms": 1000 * render_s / frames if frames else None,
        "detect_ms": 1000 * detect_s / frames if frames else None,
    }


def gate_on_belt(cards: list[SceneCard], params: dict[str, Any], fs_params: dict[str, Any], n_cards: int,
                 mode: str, settle_feedback: bool) -> dict[str, Any]:
    """Detector → tracker → frame selector over a whole run with the default nuisance mix."""
    scene_cfg = dataclasses.replace(from_params(SceneConfig, params, "synthetic."), mode=mode, cards=n_cards)
    size = (int(params["width"]), int(params["height"]))
    scene = SyntheticScene(scene_cfg, from_params(NuisanceConfig, params, "synthetic.nuisance."), cards,
                           float(params["fps"]), size)
    detector = CardDetector(from_params(DetectorConfig, params, "detector."))
    tracker = CardTracker(from_params(TrackerConfig, fs_params, "tracker."))
    crop_wh = load_manifest(resolve_path(str(fs_params["model_manifest"]))).input_size_wh
    selector = FrameSelector(from_params(FrameSelectorConfig, fs_params, "gate."), crop_wh)
    views: Counter[int] = Counter()
    physical_votes: dict[int, Counter[int]] = defaultdict(Counter)
    fps = float(params["fps"])
    select_s = 0.0
    for i in range(scene.frame_count):
        image, truth = scene.render(i)
        stamp = round(i * 1e9 / fps)
        tracked, ended = tracker.update(detector.detect(image), stamp)
        for end in ended:
            selector.forget(end.track_id)
        t0 = time.perf_counter()
        crops = selector.select(image, tracked, stamp)
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


def run(quick: bool = False, catalog_dir: Path | None = None) -> dict[str, Any]:
    params = dict(node_params("camera"))
    fs_params = dict(node_params("frame_selector"))
    detector = CardDetector(from_params(DetectorConfig, params, "detector."))
    n_cards, stride = (3, 6) if quick else (8, 3)
    with tempfile.TemporaryDirectory(prefix="cardsorter-bench-perception-") as tmp:
        cards = _catalog(catalog_dir, Path(tmp))
        per_nuisance = {name: detector_on_nuisance(name, cards, params, detector, n_cards, stride)
                        for name in ("none", *NUISANCES)}
        belt_cards = 6 if quick else 30
        gate = [gate_on_belt(cards, params, fs_params, belt_cards, "belt", False),
                gate_on_belt(cards, params, fs_params, belt_cards, "belt", True),
                gate_on_belt(cards, params, fs_params, max(2, belt_cards // 5), "station", True)]
    return {"benchmark": "perception", "machine": machine(), "frame_wh": [params["width"], params["height"]],
            "detector": per_nuisance, "gate": gate, "views_to_settle": VIEWS_TO_SETTLE}


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_report(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(f"perception benchmark on {m['cpu']} ({m['cores']} cores), Python {m['python']}, "
          f"frames {result['frame_wh'][0]}x{result['frame_wh'][1]}")
    print(f"{'nuisance':<12} {'expected':>8} {'recall':>7} {'prec':>6} {'corner px':>9} {'p95 px':>7} "
          f"{'orient known':>12} {'orient ok':>9} {'render ms':>9} {'detect ms':>9}")
    for name, r in result["detector"].items():
        print(f"{name:<12} {r['expected']:>8} {_fmt(r['recall'], '.3f'):>7} {_fmt(r['precision'], '.3f'):>6} "
              f"{_fmt(r['corner_error_px_mean'], '.2f'):>9} {_fmt(r['corner_error_px_p95'], '.2f'):>7} "
              f"{_fmt(r['orientation_known'], '.2f'):>12} {_fmt(r['orientation_correct_when_known'], '.2f'):>9} "
              f"{_fmt(r['render_ms'], '.1f'):>9} {_fmt(r['detect_ms'], '.1f'):>9}")
    print("gate (every detection of every frame would be one embedding run):")
    for g in result["gate"]:
        print(f"  {g['mode']:<7} settle-feedback={g['settle_feedback']!s:<5} frames={g['frames']} "
              f"detections={g['detections']} crops={g['crops_requested']} saved={g['embeddings_saved_ratio']:.1%} "
              f"({g['reduction_factor']:.1f}x fewer) cards with >= {result['views_to_settle']} views: "
              f"{_fmt(g['cards_with_enough_views'], '.0%')} skipped={g['skipped']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cardsorter.bench.perception", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer cards and frames")
    parser.add_argument("--catalog", type=Path, default=None, help="catalogue folder (default: generate one)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = run(args.quick, args.catalog)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print_report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
