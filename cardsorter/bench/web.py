"""Web view benchmark: page loads while the graph sorts, and what the web node costs the graph's latency."""

from __future__ import annotations

import argparse
import json
import pathlib
import threading
import time
import urllib.request
from typing import Any

from cardsorter.bench.perception import machine
from cardsorter.core.stats import percentile

PAGES = {
    # What a browser fetches to show each page (the HTML, its assets and the first API answers).
    "live": ("/live", "/static/app.js", "/static/style.css", "/api/session", "/api/live", "/api/frame.jpg"),
    "review": ("/review", "/static/app.js", "/static/style.css", "/api/session", "/api/live", "/api/review"),
    "inventory": ("/inventory", "/static/app.js", "/static/style.css", "/api/session", "/api/live",
                  "/api/inventory"),
}
LOADS_MAX = 2000          # bounded: the client stops by itself
PAUSE_S = 0.2             # between page loads (an operator clicking around, not a load test)


class PageLoader:
    """A client thread on loopback that loads the three pages in turn until stopped; times each load."""

    def __init__(self, live_url: str) -> None:
        self._base = live_url.removesuffix("/live")
        self._times: dict[str, list[float]] = {name: [] for name in PAGES}
        self._errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-web-client", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _loop(self) -> None:
        n = 0
        while not self._stop.is_set() and n < LOADS_MAX:
            for name, paths in PAGES.items():
                t0 = time.perf_counter()
                try:
                    for path in paths:
                        with urllib.request.urlopen(self._base + path, timeout=10) as r:
                            r.read()
                except OSError as err:
                    self._errors.append(f"{name}: {err}")
                    continue
                self._times[name].append(time.perf_counter() - t0)
                n += 1
                self._stop.wait(PAUSE_S)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=15.0)
        out: dict[str, Any] = {}
        for name, times in self._times.items():
            ms = [t * 1000.0 for t in times]
            out[name] = {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
                         "max_ms": round(max(ms), 1) if ms else float("nan")}
        out["errors"] = self._errors[:10]
        return out


def run(cards: int, fps: float, rounds: int) -> dict[str, Any]:
    from cardsorter.bench.pipeline import run as run_graph

    without, with_web = [], []
    for _ in range(rounds):   # alternate, so drift in the machine's load hits both alike
        without.append(run_graph(cards, fps))
        with_web.append(run_graph(cards, fps, web=True))

    def p95(runs: list[dict[str, Any]]) -> float:
        return float(sum(r["frame_to_decision_new_card"]["p95_ms"] for r in runs) / len(runs))

    base, web = p95(without), p95(with_web)
    return {"machine": machine(), "cards": cards, "fps": fps, "rounds": rounds,
            "frame_to_decision_new_card_p95_ms": {"without_web": round(base, 2), "with_web": round(web, 2),
                                                   "added_pct": round(100.0 * (web - base) / base, 1) if base else None},
            "page_loads_while_sorting": [r["web_page_loads"] for r in with_web],
            "peak_rss_mb": {"without_web": [r["peak_rss_mb"] for r in without],
                            "with_web": [r["peak_rss_mb"] for r in with_web]}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.web", description=__doc__)
    p.add_argument("--cards", type=int, default=20)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2, help="graph runs with and without the web node, alternated")
    p.add_argument("--json", type=pathlib.Path)
    args = p.parse_args(argv)
    text = json.dumps(run(args.cards, args.fps, args.rounds), indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
