"""Printing-reader benchmark: exact and wrong collector-number reads per card height on real card scans.

    python -m cardsorter.bench.printing_ocr --images DIR [--printed-total 165] [--heights 1000,700,500]
        [--nuisances clean,blur,jpeg40] [--fixed-boxes fallback|always]

Ground truth comes from the file names (downloads nothing; docs/PRINTINGS.md names the sources):
``NNN_Name.png`` (the SV151 collection: number NNN, printed total from --printed-total) and
``name-<set-slug>[-xx]-N.jpg`` (the WOTC-era scans: the set's printed total from WOTC_TOTALS).
Each card is scaled to each height (INTER_AREA down, INTER_CUBIC up) and read by RapidOcrReader on
one thread, clean or with a nuisance at that height (blur: gaussian sigma 1.5 px; jpeg40: re-encoded
at JPEG quality 40, the research's two deterministic nuisances). exact: the reader's most confident
collector number is the card's; wrong: it is another; "a reading names the card": one of its readings
matches the card's catalogue number and total as the resolver compares them (core/printing.py).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import random
import re
import statistics
import sys
import time
from dataclasses import dataclass

import cv2
import numpy as np

from cardsorter.backends.printing_ocr import FIXED_BOX_MODES, RapidOcrReader
from cardsorter.bench.host import cpu_model
from cardsorter.core.errors import CardsorterError
from cardsorter.core.printing import number_matches
from cardsorter.core.types import CardRecord

# The printed totals of the WOTC-era sets (the number after the slash on the card).
WOTC_TOTALS = {
    "base-set-2": 130, "base-set": 102, "jungle": 64, "fossil": 62, "team-rocket": 82,
    "gym-heroes": 132, "gym-challenge": 132, "neo-genesis": 111, "neo-discovery": 75,
    "neo-revelation": 64, "neo-destiny": 105, "southern-islands": 18,
}
_SV_NAME = re.compile(r"^(\d{1,3})_.+\.png$", re.IGNORECASE)
_WOTC_NAME = re.compile(r"^(.*)-(\d+)\.jpe?g$", re.IGNORECASE)
BACKGROUND_GREY = 128   # transparent rounded corners are composited on mid grey
BLUR_SIGMA_PX = 1.5     # the research's blur: defeats the text detector at 700 px (docs/PRINTINGS.md)
JPEG_QUALITY = 40
NUISANCES = ("clean", "blur", "jpeg40")


@dataclass(frozen=True)
class ScanTruth:
    path: pathlib.Path
    number: int
    total: int
    layout: str   # sv151 | wotc


def truth_from_name(path: pathlib.Path, printed_total: int) -> ScanTruth | None:
    """The card's number and printed total from its file name, or None for a name of another form."""
    m = _SV_NAME.match(path.name)
    if m is not None:
        return ScanTruth(path, int(m.group(1)), printed_total, "sv151") if printed_total > 0 else None
    m = _WOTC_NAME.match(path.name)
    if m is not None:
        for slug in sorted(WOTC_TOTALS, key=len, reverse=True):
            if re.search(rf"-{re.escape(slug)}(-[a-z0-9]{{2}})?$", m.group(1)):
                return ScanTruth(path, int(m.group(2)), WOTC_TOTALS[slug], "wotc")
    return None


def load_scan(path: pathlib.Path) -> np.ndarray:
    img: np.ndarray | None = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None or img.ndim not in (2, 3):
        raise CardsorterError(f"{path}: not a readable image")
    if img.ndim == 2:
        grey: np.ndarray = cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
        return grey
    if img.shape[2] == 4:
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        out = img[:, :, :3].astype(np.float32) * alpha + BACKGROUND_GREY * (1.0 - alpha)
        composited: np.ndarray = np.clip(out + 0.5, 0, 255).astype(np.uint8)
        return composited
    return img


def scale_to_height(img: np.ndarray, height: int) -> np.ndarray:
    s = height / img.shape[0]
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
    return cv2.resize(img, (max(1, round(img.shape[1] * s)), height), interpolation=interp)


def with_nuisance(img: np.ndarray, nuisance: str) -> np.ndarray:
    if nuisance == "clean":
        return img
    if nuisance == "blur":
        blurred: np.ndarray = cv2.GaussianBlur(img, (0, 0), BLUR_SIGMA_PX)
        return blurred
    if nuisance == "jpeg40":
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        decoded: np.ndarray | None = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is None:
            raise CardsorterError("JPEG re-encoding failed")
        return decoded
    raise ValueError(f"unknown nuisance {nuisance!r} (known: {', '.join(NUISANCES)})")


def machine() -> str:
    cpu = cpu_model()
    from importlib.metadata import version

    import onnxruntime  # type: ignore[import-untyped]
    return (f"{cpu}, {os.cpu_count()} cores visible, one OCR thread; python {platform.python_version()}, "
            f"onnxruntime {onnxruntime.__version__}, rapidocr-onnxruntime {version('rapidocr-onnxruntime')}, "
            f"opencv {cv2.__version__}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", required=True, type=pathlib.Path, help="folder of card scans (searched recursively)")
    ap.add_argument("--printed-total", type=int, default=0,
                    help="printed total of the NNN_Name.png scans (165 for SV151); 0: skip those files")
    ap.add_argument("--heights", default="1000,700,500", help="card heights in pixels, comma-separated")
    ap.add_argument("--nuisances", default="clean", help=f"comma-separated, of {', '.join(NUISANCES)}")
    ap.add_argument("--fixed-boxes", default="fallback", choices=FIXED_BOX_MODES,
                    help="recognise the layouts' fixed boxes only when detection reads no number, or always")
    ap.add_argument("--limit", type=int, default=0, help="at most this many cards per layout (random, --seed)")
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args(argv)
    if not args.images.is_dir():
        ap.error(f"--images {args.images}: not a folder")
    try:
        heights = [int(h) for h in args.heights.split(",")]
    except ValueError:
        ap.error(f"--heights {args.heights!r}: comma-separated integers expected")
    nuisances = args.nuisances.split(",")
    if unknown := [n for n in nuisances if n not in NUISANCES]:
        ap.error(f"--nuisances: unknown {', '.join(unknown)} (known: {', '.join(NUISANCES)})")
    cv2.setNumThreads(1)
    scans = [t for p in sorted(args.images.rglob("*")) if p.is_file()
             if (t := truth_from_name(p, args.printed_total)) is not None]
    by_layout: dict[str, list[ScanTruth]] = {}
    for t in scans:
        by_layout.setdefault(t.layout, []).append(t)
    rng = random.Random(args.seed)
    for layout, cards in by_layout.items():
        if args.limit and len(cards) > args.limit:
            by_layout[layout] = rng.sample(cards, args.limit)
    if not by_layout:
        ap.error(f"--images {args.images}: no file named NNN_Name.png (with --printed-total) or "
                 "name-<set>-N.jpg")
    try:
        reader = RapidOcrReader(fixed_boxes=args.fixed_boxes)
    except CardsorterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"machine: {machine()}; fixed boxes: {args.fixed_boxes}")
    print(f"images: {args.images} ({', '.join(f'{len(c)} {k}' for k, c in by_layout.items())})")
    print("| layout | nuisance | card height px | cards | exact | wrong | none | a reading names the card | fixed boxes read | ms/card median (p90) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    with reader:
        for layout, cards in by_layout.items():
            images = [(t, load_scan(t.path)) for t in cards]
            for nuisance, height in ((nu, h) for nu in nuisances for h in heights):
                exact = wrong = none = fallback = names_card = 0
                ms: list[float] = []
                for truth, img in images:
                    card = with_nuisance(scale_to_height(img, height), nuisance)
                    start = time.perf_counter()
                    reading = reader.read(card)
                    ms.append((time.perf_counter() - start) * 1000.0)
                    fallback += reading.method != "detect"
                    if not reading.numbers:
                        none += 1
                        continue
                    record = CardRecord(card_id=truth.path.name, name="", set_id="", number=str(truth.number),
                                        printed_total=truth.total)
                    names_card += any(number_matches(r, record) for r in reading.numbers)
                    best = max(reading.numbers, key=lambda r: r.confidence)
                    # a code glued before the number ("MEWEN025/165") is not the number's: the research's rule
                    if int(best.digits) == truth.number and int(best.total_digits) == truth.total:
                        exact += 1
                    else:
                        wrong += 1
                n = len(images)
                p90 = float(np.percentile(ms, 90))
                print(f"| {layout} | {nuisance} | {height} | {n} | {100 * exact / n:.0f} % | {100 * wrong / n:.0f} % | "
                      f"{100 * none / n:.0f} % | {100 * names_card / n:.0f} % | {100 * fallback / n:.0f} % | "
                      f"{statistics.median(ms):.0f} ({p90:.0f}) |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
