"""Printing benchmark: the reader's reads and the resolver's exact / ambiguous / wrong printings, on reprints.

    python -m cardsorter.bench.printing [--arts 12] [--printings 2-8] [--heights 1000,700,500]
        [--nuisances clean,glare,blur,finger,rot180,small] [--views 3] [--json FILE]

A procedural catalogue in which every artwork has 2–8 printings, each in another set (another collector
number, printed total and set code; cardsorter.sim.catalog.reprint_designs), so the embedder knows the art
and only the printed marks tell the printing. Each printing is a track of ``--views`` views; a view is the
card rendered at the card height (the camera's high-resolution stream), then what a camera and a rectifying
warp do to it (every corner off by a random 0.4 % of the card height, sensor noise, JPEG quality 85), then
the nuisance:

  clean   nothing more
  glare   a sleeve's specular highlight (random place and size, as the synthetic camera draws it)
  blur    gaussian, sigma 1.5 px at the card height (the research's blur, docs/PRINTINGS.md)
  finger  a finger over one corner, the same in every view of a track (in 1 of 4 tracks the number's)
  rot180  the view upside down (orientation wrong or unknown)
  small   the card covered half the pixels: downscaled 2x, then warped back up to the card height

The reader (RapidOcrReader, one thread) reads every view; the resolver (core/printing.py, 2 agreeing views)
compares the track's readings with every printing of the art. *exact read*: the view's most confident
collector number is the printing's; *exact printing / ambiguous / wrong printing*: the resolver's verdict
per track. Synthetic data throughout: the real-scan figures are cardsorter.bench.printing_ocr's.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import statistics
import sys
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from cardsorter.backends.printing_ocr import PrintingReader, RapidOcrReader
from cardsorter.bench.printing_ocr import machine
from cardsorter.core.errors import CardsorterError
from cardsorter.core.printing import (
    RECOMMENDED_MIN_AGREEING_VIEWS,
    PrintingResolverConfig,
    PrintingVerdict,
    ViewReading,
    number_matches,
    resolve_printing,
)
from cardsorter.core.types import CardRecord
from cardsorter.sim.catalog import CardDesign, render_card, reprint_designs

NUISANCES = ("clean", "glare", "blur", "finger", "rot180", "small")
CORNER_JITTER = 0.004      # sd of each corner's offset, fraction of the card height (a rectifying warp's error)
NOISE_SIGMA = 2.0          # sensor noise, grey levels
CAMERA_JPEG_QUALITY = 85
BLUR_SIGMA_PX = 1.5
SMALL_FACTOR = 0.5
SKIN_BGR = (120, 150, 205)


@dataclass(frozen=True)
class TrackResult:
    views: int
    exact_reads: int
    wrong_reads: int
    no_reads: int
    verdict: str          # exact | ambiguous | unreadable | wrong
    ms: tuple[float, ...]


def _rng(seed: int, *keys: object) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(str(k).encode()) for k in keys])


def camera_view(card: np.ndarray, nuisance: str, rng: np.random.Generator,
                finger_corner: int | None = None) -> np.ndarray:
    """One rectified view of ``card`` (BGR uint8 at the card height) as the frame selector would crop it;
    ``finger_corner`` (0–3 clockwise from the top-left; None: drawn from ``rng``): where the finger holds it."""
    if nuisance not in NUISANCES:
        raise ValueError(f"unknown nuisance {nuisance!r} (known: {', '.join(NUISANCES)})")
    h, w = card.shape[:2]
    img = card
    if nuisance == "glare":
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        gx, gy, gr = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.35)
        peak = rng.uniform(90.0, 170.0)
        d2 = ((xx - gx * w) ** 2 + ((yy - gy * h) * 0.6) ** 2) / (gr * w) ** 2
        img = np.clip(img.astype(np.float32) + peak * np.exp(-d2)[:, :, None], 0, 255).astype(np.uint8)
    elif nuisance == "finger":
        img = img.copy()
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        corner = corners[int(rng.integers(4)) if finger_corner is None else finger_corner]
        outward = corner - [w / 2, h / 2]
        outward /= np.linalg.norm(outward)
        tip, base = corner - outward * 0.12 * h, corner + outward * 0.25 * h
        cv2.line(img, (round(tip[0]), round(tip[1])), (round(base[0]), round(base[1])), SKIN_BGR,
                 round(0.14 * h), cv2.LINE_AA)
    # the camera and the warp: corners off by a fraction of a percent, resampled at the card height
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    scale = SMALL_FACTOR if nuisance == "small" else 1.0
    dst_w, dst_h = round(w * scale), round(h * scale)
    dst = np.array([[0, 0], [dst_w, 0], [dst_w, dst_h], [0, dst_h]], np.float32)
    dst += rng.normal(0.0, CORNER_JITTER * dst_h, dst.shape).astype(np.float32)
    warped = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (dst_w, dst_h),
                                 flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    noisy = np.clip(warped.astype(np.float32) + rng.normal(0.0, NOISE_SIGMA, warped.shape), 0, 255).astype(np.uint8)
    if nuisance == "blur":
        noisy = cv2.GaussianBlur(noisy, (0, 0), BLUR_SIGMA_PX)
    ok, buf = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, CAMERA_JPEG_QUALITY])
    view: np.ndarray | None = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
    if view is None:
        raise CardsorterError("JPEG encoding of a benchmark view failed")
    if scale != 1.0:
        view = cv2.resize(view, (w, h), interpolation=cv2.INTER_CUBIC)
    if nuisance == "rot180":
        view = cv2.rotate(view, cv2.ROTATE_180)
    return view


def _read_is(reading: ViewReading, record: CardRecord) -> str:
    if not reading.numbers:
        return "none"
    best = max(reading.numbers, key=lambda r: r.confidence)
    return "exact" if number_matches(best, record) else "wrong"


def run_track(reader: PrintingReader, design: CardDesign, candidates: Sequence[CardRecord], card: np.ndarray,
              nuisance: str, views: int, seed: int, config: PrintingResolverConfig) -> TrackResult:
    readings: list[ViewReading] = []
    counts = {"exact": 0, "wrong": 0, "none": 0}
    ms: list[float] = []
    # a finger holds the card at one corner for the whole track
    finger = int(_rng(seed, design.record.card_id, "finger", card.shape[0]).integers(4))
    for v in range(views):
        view = camera_view(card, nuisance, _rng(seed, design.record.card_id, nuisance, card.shape[0], v), finger)
        start = time.perf_counter()
        reading = reader.read(view)
        ms.append((time.perf_counter() - start) * 1000.0)
        counts[_read_is(reading, design.record)] += 1
        readings.append(reading)
    resolution = resolve_printing(readings, candidates, config)
    verdict = resolution.verdict.value
    if resolution.verdict is PrintingVerdict.EXACT:
        assert resolution.card is not None
        verdict = "exact" if resolution.card.card_id == design.record.card_id else "wrong"
    return TrackResult(views, counts["exact"], counts["wrong"], counts["none"], verdict, tuple(ms))


def summarise(results: Sequence[TrackResult]) -> dict[str, Any]:
    views = sum(r.views for r in results)
    tracks = len(results)
    ms = [m for r in results for m in r.ms]

    def share(n: int, of: int) -> float:
        return round(n / of, 4) if of else math.nan

    return {"tracks": tracks, "views": views,
            "exact_read": share(sum(r.exact_reads for r in results), views),
            "wrong_read": share(sum(r.wrong_reads for r in results), views),
            "no_read": share(sum(r.no_reads for r in results), views),
            "exact_printing": share(sum(r.verdict == "exact" for r in results), tracks),
            "ambiguous": share(sum(r.verdict in ("ambiguous", "unreadable") for r in results), tracks),
            "wrong_printing": share(sum(r.verdict == "wrong" for r in results), tracks),
            "ms_per_view_p50": round(statistics.median(ms), 1) if ms else math.nan,
            "ms_per_view_p90": round(float(np.percentile(ms, 90)), 1) if ms else math.nan}


def _percent(v: float) -> str:
    return "–" if math.isnan(v) else f"{100 * v:.1f} %"


def table(rows: Sequence[dict[str, Any]]) -> str:
    head = ("| nuisance | card height px | tracks (views) | exact read | wrong read | no read | exact printing | "
            "ambiguous | wrong printing | ms/view p50 (p90) |")
    out = [head, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['nuisance']} | {r['height']} | {r['tracks']} ({r['views']}) | {_percent(r['exact_read'])} | "
                   f"{_percent(r['wrong_read'])} | {_percent(r['no_read'])} | {_percent(r['exact_printing'])} | "
                   f"{_percent(r['ambiguous'])} | {_percent(r['wrong_printing'])} | "
                   f"{r['ms_per_view_p50']:.0f} ({r['ms_per_view_p90']:.0f}) |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m cardsorter.bench.printing", description=__doc__.split("\n\n")[0])
    ap.add_argument("--arts", type=int, default=12, help="artworks, each with --printings printings")
    ap.add_argument("--printings", default="2-8", help="printings per artwork, MIN-MAX")
    ap.add_argument("--heights", default="1000,700,500", help="card heights in pixels, comma-separated")
    ap.add_argument("--nuisances", default=",".join(NUISANCES), help=f"comma-separated, of {', '.join(NUISANCES)}")
    ap.add_argument("--views", type=int, default=3, help="views per track")
    ap.add_argument("--min-agreeing-views", type=int, default=RECOMMENDED_MIN_AGREEING_VIEWS)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--json", type=pathlib.Path, help="also write the rows here")
    args = ap.parse_args(argv)
    try:
        low, high = (int(v) for v in args.printings.split("-"))
        heights = [int(h) for h in args.heights.split(",")]
    except ValueError:
        ap.error(f"--printings {args.printings!r} (MIN-MAX) or --heights {args.heights!r} (integers) malformed")
    nuisances = args.nuisances.split(",")
    if unknown := [n for n in nuisances if n not in NUISANCES]:
        ap.error(f"--nuisances: unknown {', '.join(unknown)} (known: {', '.join(NUISANCES)})")
    if args.views < 1 or args.arts < 1:
        ap.error("--views and --arts must be >= 1")
    cv2.setNumThreads(1)
    try:
        designs = reprint_designs(args.arts, args.seed, low, high)
        reader = RapidOcrReader()
    except (CardsorterError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    by_art: dict[str, list[CardRecord]] = {}
    for d in designs:
        by_art.setdefault(d.record.art_id, []).append(d.record)
    config = PrintingResolverConfig(min_agreeing_views=args.min_agreeing_views)
    print(f"machine: {machine()}")
    print(f"catalogue: {args.arts} artworks, {len(designs)} printings ({low}-{high} each, seed {args.seed}); "
          f"{args.views} views a track, {args.min_agreeing_views} agreeing views to name a printing", flush=True)
    rows: list[dict[str, Any]] = []
    with reader:
        for height in heights:
            cards = {d.record.card_id: render_card(d, height) for d in designs}
            for nuisance in nuisances:
                results = [run_track(reader, d, by_art[d.record.art_id], cards[d.record.card_id], nuisance,
                                     args.views, args.seed, config) for d in designs]
                row = {"nuisance": nuisance, "height": height, **summarise(results)}
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "arts": args.arts, "printings": len(designs),
                                         "views": args.views, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
