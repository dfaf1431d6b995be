"""Finish benchmark: normal / holo / reverse holo told from a track's closeups, per nuisance, on procedural foils.

    python -m cardsorter.bench.finish [--arts 20] [--nuisances clean,glare,...] [--views 3] [--seed 14]
        [--corner-error 0.01] [--json FILE] [--real-images DIR]

Every artwork of a procedural catalogue is printed three times: normal, holo (foil in the artwork window)
and reverse holo (foil around it); sim/catalog.py draws each as scanned. The synthetic belt
(sim/scene.py) carries each printing through the camera's view under one nuisance at a time; the light
adds a rainbow sheen on the foil that moves as the card moves (SHEEN_PERIODS_PER_CARD_WIDTH). A track's
closeups are what the graph's printing reader gets: ``--views`` views ``--interval`` frames apart while
the card is wholly in view, each cut from the scene's main stream (3.2x) along the true corners moved by
a random ``--corner-error`` of the card's diagonal (the detector's error), rectified to 700 px. The
finish rule (core/finish.py) decides over them: *correct*, *unknown* (never assumed) or *wrong*.

Synthetic data throughout: the sheen is our model of a foil under a fixed light, not a measurement of
real foils (docs/PRINTINGS.md "Finish" says what is still to check on real cards).

``--real-images DIR`` adds what can be measured on real card scans (flat scans: no light moves over
them, so no view of them may show a foil): each scan is a track of ``--views`` views made as
cardsorter.bench.printing makes them (a rectifying warp's corner error, noise, JPEG, then the nuisance:
a glare spot that moves from view to view, blur, a finger, upside down, small), and the rule must not
name a foil. It reports per nuisance how many tracks it calls normal, unknown, and a foil (false foil).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from cardsorter.bench.printing_ocr import machine
from cardsorter.core.finish import (
    DEFAULT_FINISH_CONFIG,
    FOIL_CLASSES,
    FinishConfig,
    decide_finish,
    foil_class,
    view_chroma,
)
from cardsorter.core.types import as_quad
from cardsorter.sim.catalog import CardDesign, reprint_designs, write_catalog
from cardsorter.sim.scene import NUISANCES as SCENE_NUISANCES
from cardsorter.sim.scene import NuisanceConfig, SceneConfig, SyntheticScene, read_catalog_dir

# bench name -> the scene's nuisance it switches on (clean: none)
NUISANCES = {"clean": "", "glare": "glare", "haze": "haze", "motion_blur": "motion_blur",
             "focus_blur": "focus_blur", "finger": "finger", "shadow": "hand_shadow", "tilt": "tilt",
             "rot180": "rotated_180", "exposure": "exposure", "noise": "noise"}
MAIN_SCALE = 3.2            # the synthetic camera's main stream (camera.synthetic.main_scale)
CLOSEUP_HEIGHT_PX = 700     # printing.card_height_px
FPS = 30.0
BELT_SPEED_PX_PER_S = 300.0


def foil_designs(arts: int, seed: int) -> list[CardDesign]:
    """Each of ``arts`` artworks as a normal, a holo and a reverse-holo printing (card ids -n, -h, -rh)."""
    out = []
    for d in reprint_designs(arts, seed, 1, 1):
        for finish, suffix in (("normal", "n"), ("holo", "h"), ("reverse_holo", "rh")):
            rec = dataclasses.replace(d.record, card_id=f"{d.record.card_id}{suffix}",
                                      number=f"{d.record.number}{suffix}", finish=finish)
            out.append(dataclasses.replace(d, record=rec))
    return out


def _scene(catalog: pathlib.Path, nuisance: str, seed: int, card_height_px: int) -> SyntheticScene:
    cards = read_catalog_dir(catalog)
    probs = dict.fromkeys(SCENE_NUISANCES, 0.0)
    if nuisance:
        probs[nuisance] = 1.0
    config = SceneConfig(mode="belt", cards=len(cards), unknown_frac=0.0, seed=seed, card_height_px=card_height_px,
                         max_angle_deg=4.0, belt_speed_px_per_s=BELT_SPEED_PX_PER_S, belt_gap_px=60.0,
                         station_dwell_s=1.0, station_move_s=0.5, station_gap_s=0.5, background_bgr=[60, 70, 60])
    return SyntheticScene(config, NuisanceConfig(**probs), cards, FPS, (640, 480))


def _jitter(quad: np.ndarray, error: float, rng: np.random.Generator) -> np.ndarray:
    diag = float(np.linalg.norm(quad[2] - quad[0]))
    return quad + rng.normal(0.0, error * diag / math.sqrt(2.0), quad.shape)


def run(catalog: pathlib.Path, nuisance: str, *, views: int, interval: int, seed: int, corner_error: float,
        config: FinishConfig, card_height_px: int = 200) -> list[dict[str, Any]]:
    """One row per physical card: its finish, the rule's answer and the regions' changes."""
    scene = _scene(catalog, NUISANCES[nuisance], seed, card_height_px)
    finishes = {c.card_id: c.finish for c in read_catalog_dir(catalog)}
    frames: dict[int, list[tuple[int, np.ndarray]]] = {}   # physical -> (frame, true quad) wholly in view
    for i in range(scene.frame_count):
        _, truth = scene.render(i)
        for g in truth:
            if g.inside(scene.size_wh, margin_px=4.0):
                frames.setdefault(g.physical_id, []).append((i, np.asarray(g.quad_px, np.float64)))
    rows = []
    stack = {pid: card_id for pid, card_id, _, _ in scene.stack()}
    for pid, seen in sorted(frames.items()):
        chosen = seen[len(seen) // 3::interval][:views]
        if len(chosen) < views:
            continue
        rng = np.random.default_rng([seed, pid, zlib.crc32(nuisance.encode())])
        chromas = []
        ms = 0.0                        # the rule's cost: reducing each closeup, then deciding
        for frame, quad in chosen:
            closeup, _ = scene.render_closeup(frame, as_quad(_jitter(quad, corner_error, rng)), CLOSEUP_HEIGHT_PX,
                                              MAIN_SCALE)
            t0 = time.perf_counter()
            chromas.append(view_chroma(closeup))
            ms += (time.perf_counter() - t0) * 1000.0
        t0 = time.perf_counter()
        est = decide_finish(chromas, config)
        ms += (time.perf_counter() - t0) * 1000.0
        truth_class = foil_class(finishes[stack[pid]])
        verdict = "unknown" if est.finish == "unknown" else ("correct" if est.finish == truth_class else "wrong")
        rows.append({"card_id": stack[pid], "finish": truth_class, "decided": est.finish, "verdict": verdict,
                     "art_change": round(est.art_change, 2),
                     "body_change": round(est.body_change, 2), "decide_ms": ms})
    return rows


def real_scans(directory: pathlib.Path, nuisances: Sequence[str], views: int, seed: int,
               config: FinishConfig, height_px: int = CLOSEUP_HEIGHT_PX) -> dict[str, dict[str, Any]]:
    """Per nuisance of cardsorter.bench.printing: the rule's verdicts on real flat scans (never a foil)."""
    from cardsorter.bench.printing import camera_view
    from cardsorter.core.errors import ImageError
    from cardsorter.imagefiles import read_image_file

    out: dict[str, dict[str, Any]] = {}
    cards = []
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not paths:
        raise SystemExit(f"--real-images {directory}: no .png / .jpg files")
    for path in paths:
        try:
            image = read_image_file(path)
        except ImageError as err:
            print(f"skipped: {err}", file=sys.stderr)
            continue
        h, w = image.shape[:2]
        cards.append((path.name, cv2.resize(image, (round(w * height_px / h), height_px), interpolation=cv2.INTER_AREA)))
    for nuisance in nuisances:
        counts = {"normal": 0, "unknown": 0, "foil": 0}
        for name, card in cards:
            finger = int(np.random.default_rng([seed, zlib.crc32(name.encode())]).integers(4))
            chromas = [view_chroma(camera_view(card, nuisance, np.random.default_rng(
                [seed, zlib.crc32(f"{name}/{nuisance}/{v}".encode())]), finger)) for v in range(views)]
            est = decide_finish(chromas, config)
            counts["foil" if est.finish in ("holo", "reverse_holo") else est.finish] += 1
        n = max(1, len(cards))
        out[nuisance] = {"tracks": len(cards), **{k: round(v / n, 4) for k, v in counts.items()}}
    return out


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    n = len(rows)

    def share(k: str, finish: str | None = None) -> float:
        sel = [r for r in rows if finish is None or r["finish"] == finish]
        return round(sum(r["verdict"] == k for r in sel) / len(sel), 4) if sel else math.nan

    out: dict[str, Any] = {"tracks": n, "correct": share("correct"), "unknown": share("unknown"),
                           "wrong": share("wrong")}
    for f in FOIL_CLASSES:
        out[f"correct_{f}"] = share("correct", f)
    return out


def _pct(v: float) -> str:
    return "–" if math.isnan(v) else f"{100 * v:.1f} %"


def table(results: dict[str, dict[str, Any]]) -> str:
    out = ["| nuisance | tracks | correct | unknown | wrong | normal | holo | reverse holo |",
           "|---|---|---|---|---|---|---|---|"]
    for name, s in results.items():
        out.append(f"| {name} | {s['tracks']} | {_pct(s['correct'])} | {_pct(s['unknown'])} | {_pct(s['wrong'])} | "
                   f"{_pct(s['correct_normal'])} | {_pct(s['correct_holo'])} | {_pct(s['correct_reverse_holo'])} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cardsorter.bench.finish", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arts", type=int, default=20, help="artworks, each printed normal, holo and reverse holo")
    ap.add_argument("--nuisances", default=",".join(NUISANCES), help=f"comma-separated, of {', '.join(NUISANCES)}")
    ap.add_argument("--views", type=int, default=3, help="closeups per track (printing.views_max)")
    ap.add_argument("--interval", type=int, default=3, help="frames between closeups (printing.view_interval_frames)")
    ap.add_argument("--corner-error", type=float, default=0.01,
                    help="sd of the detector's corner error, fraction of the card's diagonal")
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--json", type=pathlib.Path, help="also write every track's row here")
    ap.add_argument("--real-images", type=pathlib.Path,
                    help="a folder of real card scans: check the rule names no foil on them (read, never copied)")
    args = ap.parse_args(argv)
    names = [n.strip() for n in args.nuisances.split(",") if n.strip()]
    bad = [n for n in names if n not in NUISANCES]
    if bad:
        ap.error(f"unknown nuisance(s) {', '.join(bad)} (known: {', '.join(NUISANCES)})")
    if args.views < DEFAULT_FINISH_CONFIG.min_views:
        ap.error(f"--views must be at least {DEFAULT_FINISH_CONFIG.min_views}")
    print(f"finish benchmark on {machine()}: {args.arts} artworks x 3 finishes, {args.views} views "
          f"{args.interval} frames apart, corner error {100 * args.corner_error:.1f} % of the diagonal, "
          f"seed {args.seed} (synthetic)", file=sys.stderr)
    results: dict[str, dict[str, Any]] = {}
    every: dict[str, list[dict[str, Any]]] = {}
    ms: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cardsorter-finish-") as tmp:
        catalog = pathlib.Path(tmp)
        write_catalog(foil_designs(args.arts, args.seed), catalog, card_height_px=CLOSEUP_HEIGHT_PX)
        for name in names:
            rows = run(catalog, name, views=args.views, interval=args.interval, seed=args.seed,
                       corner_error=args.corner_error, config=DEFAULT_FINISH_CONFIG)
            every[name] = rows
            results[name] = summarise(rows)
            ms += [r["decide_ms"] for r in rows]
            print(f"  {name}: {results[name]}", file=sys.stderr)
    print(table(results))
    if ms:
        print(f"\nrule cost: {np.median(ms):.2f} ms p50 per track ({args.views} closeups reduced, then decided)")
    real: dict[str, dict[str, Any]] = {}
    if args.real_images is not None:
        from cardsorter.bench.printing import NUISANCES as PRINTING_NUISANCES

        real = real_scans(args.real_images, PRINTING_NUISANCES, args.views, args.seed, DEFAULT_FINISH_CONFIG)
        print(f"\nreal scans in {args.real_images} (flat: no foil may be named), {args.views} views each:\n")
        print("| nuisance | tracks | normal | unknown | false foil |\n|---|---|---|---|---|")
        for name, r in real.items():
            print(f"| {name} | {r['tracks']} | {_pct(r['normal'])} | {_pct(r['unknown'])} | {_pct(r['foil'])} |")
    if args.json:
        args.json.write_text(json.dumps({"summary": results, "tracks": every, "real_scans": real}, indent=1) + "\n",
                             encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
