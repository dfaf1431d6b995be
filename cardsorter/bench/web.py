"""Web view benchmark: page loads while the graph sorts, and what the web node costs the graph's latency."""

from __future__ import annotations

import argparse
import http.client
import json
import os
import pathlib
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Sequence
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
PAGE_EVERY_S = 2.0        # an operator opening one of the three pages every 2 s (clicking around, not a load test)
LIVE_REFRESH_S = 1.0      # app.js: the live page refreshes its tables every second
FRAME_RETRY_S = 1.0       # app.js: after a failed frame request it waits a second
BOOTSTRAP_RESAMPLES = 2000  # resamples of the rounds for the added p95's confidence interval


class PageLoader:
    """A browser-like client in its own process (a browser is one: it never holds the graph's GIL). It does what
    an operator's browser does while the machine sorts: one tab shows the live page for the whole run (the
    camera view asked for frame after frame, the tables refreshed every second, as app.js does), and every
    ``page_every_s`` another tab loads the next of the three pages with its assets and first answers, timed."""

    def __init__(self, live_url: str, page_every_s: float = PAGE_EVERY_S) -> None:
        self._url = live_url
        self._page_every_s = page_every_s
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self._proc = subprocess.Popen([sys.executable, "-m", "cardsorter.bench.web", "--client", self._url,
                                       "--page-every", str(self._page_every_s)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> dict[str, Any]:
        assert self._proc is not None, "start() first"
        out, _ = self._proc.communicate("", timeout=30)   # closing its stdin stops it
        if self._proc.returncode != 0:
            raise RuntimeError(f"the page-load client failed (status {self._proc.returncode})")
        result: dict[str, Any] = json.loads(out)
        return result


def _connection(live_url: str) -> http.client.HTTPConnection:
    url = urllib.parse.urlsplit(live_url)
    return http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=10)


def watch_live(live_url: str, stop: threading.Event) -> dict[str, int]:
    """The live tab: the next frame as soon as the last one came (``?after=seq``), the tables every second."""
    frame_conn, live_conn = _connection(live_url), _connection(live_url)   # kept alive, as a browser keeps them
    seq, shown, refreshed, errors = 0, 0, 0, 0
    next_refresh = time.monotonic()
    while not stop.is_set():
        try:
            if time.monotonic() >= next_refresh:
                live_conn.request("GET", "/api/live")
                live_conn.getresponse().read()
                refreshed += 1
                next_refresh = time.monotonic() + LIVE_REFRESH_S
            frame_conn.request("GET", f"/api/frame.jpg?after={seq}")
            response = frame_conn.getresponse()
            response.read()
            if response.status != 200:
                stop.wait(FRAME_RETRY_S)
                continue
            seq = int(response.getheader("X-Frame-Seq") or seq)
            shown += 1
        except (OSError, http.client.HTTPException):
            errors += 1
            for conn in (frame_conn, live_conn):
                conn.close()
            stop.wait(FRAME_RETRY_S)
    frame_conn.close()
    live_conn.close()
    return {"frames_shown": shown, "live_refreshes": refreshed, "errors": errors}


def load_pages(live_url: str, stop: threading.Event, page_every_s: float = PAGE_EVERY_S) -> dict[str, Any]:
    """The client's loop: the live tab in a thread, and every ``page_every_s`` the next page, timed."""
    conn = _connection(live_url)
    live: dict[str, int] = {}
    live_tab = threading.Thread(target=lambda: live.update(watch_live(live_url, stop)), daemon=True)
    live_tab.start()
    times: dict[str, list[float]] = {name: [] for name in PAGES}
    errors: list[str] = []
    n = 0
    while not stop.is_set() and n < LOADS_MAX:
        for name, paths in PAGES.items():
            t0 = time.perf_counter()
            try:
                for path in paths:
                    conn.request("GET", path)
                    response = conn.getresponse()
                    response.read()
                    if response.status >= 400 and path != "/api/frame.jpg":   # no frame yet: 404, fine
                        raise OSError(f"{path}: HTTP {response.status}")
            except (OSError, http.client.HTTPException) as err:
                errors.append(f"{name}: {err}")
                conn.close()
                continue
            times[name].append(time.perf_counter() - t0)
            n += 1
            if stop.wait(page_every_s):
                break
    conn.close()
    live_tab.join(15.0)
    out: dict[str, Any] = {}
    for name, values in times.items():
        ms = [t * 1000.0 for t in values]
        out[name] = {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p95_ms": round(percentile(ms, 95), 1),
                     "max_ms": round(max(ms), 1) if ms else float("nan")}
    out["errors"] = errors[:10]
    out["live_tab"] = live
    return out


def added_p95_interval(without: Sequence[Sequence[float]], with_web: Sequence[Sequence[float]],
                       resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> dict[str, Any]:
    """95 % interval of the web node's added pooled p95 (in %), by a bootstrap over rounds: each resample draws
    as many rounds of each side as were run, with replacement, and pools their latencies (a round is the unit
    the machine's drift moves together). An interval that straddles the goal says the run cannot decide it."""
    import numpy as np

    if not without or not with_web or not any(without) or not any(with_web):
        return {"low_pct": None, "high_pct": None, "resamples": 0}
    rng = np.random.default_rng(seed)
    a = [np.asarray(r, float) for r in without]
    b = [np.asarray(r, float) for r in with_web]
    added = []
    for _ in range(resamples):
        pa = np.concatenate([a[i] for i in rng.integers(0, len(a), len(a))])
        pb = np.concatenate([b[i] for i in rng.integers(0, len(b), len(b))])
        if len(pa) and len(pb):
            base = float(np.percentile(pa, 95))
            if base > 0:
                added.append(100.0 * (float(np.percentile(pb, 95)) - base) / base)
    if not added:
        return {"low_pct": None, "high_pct": None, "resamples": 0}
    low, high = np.percentile(added, [2.5, 97.5])
    return {"low_pct": round(float(low), 1), "high_pct": round(float(high), 1), "resamples": len(added)}


def _client(live_url: str, page_every_s: float) -> int:
    stop = threading.Event()

    def stop_at_end_of_input() -> None:   # the parent closes our stdin when its graph run ends
        sys.stdin.read()
        stop.set()

    threading.Thread(target=stop_at_end_of_input, daemon=True).start()
    print(json.dumps(load_pages(live_url, stop, page_every_s)))
    return 0


def run(cards: int, fps: float, rounds: int, page_every_s: float = PAGE_EVERY_S) -> dict[str, Any]:
    """``rounds`` graph runs without and with the web node, alternated so the machine's drift hits both alike.

    Frame → decision p95 of a new card: the median over rounds of each run's p95 with its spread, and the p95
    of all rounds' latencies pooled. A shared machine is noisy: the load average is recorded with each run."""
    from cardsorter.bench.pipeline import run as run_graph

    runs: dict[str, list[dict[str, Any]]] = {"without_web": [], "with_web": []}
    loads: dict[str, list[float]] = {"without_web": [], "with_web": []}
    for _ in range(rounds):
        for key, with_web in (("without_web", False), ("with_web", True)):
            runs[key].append(run_graph(cards, fps, web=with_web, samples=True, page_every_s=page_every_s))
            loads[key].append(round(os.getloadavg()[0], 2))

    def summary(key: str) -> dict[str, Any]:
        p95s = [r["frame_to_decision_new_card"]["p95_ms"] for r in runs[key]]
        pooled = [v for r in runs[key] for v in r["frame_to_decision_new_card"]["samples_ms"]]
        cpu = [r["process_cpu_s"] / max(1, r["frames_published"]) * 1000.0 for r in runs[key]]
        return {"p95_ms_per_round": p95s, "p95_ms_median": round(statistics.median(p95s), 1),
                "p95_ms_min": round(min(p95s), 1), "p95_ms_max": round(max(p95s), 1),
                "pooled_p95_ms": round(percentile(pooled, 95), 1), "pooled_n": len(pooled),
                "process_cpu_ms_per_frame_median": round(statistics.median(cpu), 2),
                "load_average_1min": loads[key]}

    base, web = summary("without_web"), summary("with_web")

    def added(field: str) -> float | None:
        return round(100.0 * (web[field] - base[field]) / base[field], 1) if base[field] else None

    return {"machine": {**machine(), "load_average_1min_at_start": loads["without_web"][0]},
            "cards": cards, "fps": fps, "rounds": rounds, "page_every_s": page_every_s,
            "frame_to_decision_new_card": {"without_web": base, "with_web": web,
                                           "added_pct_median_p95": added("p95_ms_median"),
                                           "added_pct_pooled_p95": added("pooled_p95_ms"),
                                           "added_pct_cpu_per_frame": added("process_cpu_ms_per_frame_median"),
                                           "added_pct_pooled_p95_interval_95": added_p95_interval(
                                               [r["frame_to_decision_new_card"]["samples_ms"] for r in runs["without_web"]],
                                               [r["frame_to_decision_new_card"]["samples_ms"] for r in runs["with_web"]])},
            "page_loads_while_sorting": [r["web_page_loads"] for r in runs["with_web"]],
            "peak_rss_mb": {k: [r["peak_rss_mb"] for r in v] for k, v in runs.items()}}


def summary_line(result: dict[str, Any]) -> str:
    m, f = result["machine"], result["frame_to_decision_new_card"]
    base, web = f["without_web"], f["with_web"]
    pages = [p[name]["p50_ms"] for p in result["page_loads_while_sorting"] for name in PAGES]
    return (f"{m['cores']}-core {m['cpu']}, Python {m['python']}, load average {base['load_average_1min']} / "
            f"{web['load_average_1min']}; {result['rounds']} rounds of {result['cards']} cards: frame → decision p95 "
            f"median {base['p95_ms_median']} ms [{base['p95_ms_min']}..{base['p95_ms_max']}] without the web node, "
            f"{web['p95_ms_median']} ms [{web['p95_ms_min']}..{web['p95_ms_max']}] with it "
            f"({f['added_pct_median_p95']:+} %; pooled p95 {base['pooled_p95_ms']} → {web['pooled_p95_ms']} ms, "
            f"{f['added_pct_pooled_p95']:+} %, 95 % interval {_interval(f['added_pct_pooled_p95_interval_95'])}; "
            f"CPU per frame {f['added_pct_cpu_per_frame']:+} %); "
            f"page loads p50 {min(pages)}–{max(pages)} ms")


def _interval(ci: dict[str, Any]) -> str:
    return "n/a" if ci.get("low_pct") is None else f"[{ci['low_pct']:+} .. {ci['high_pct']:+}] %"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.web", description=__doc__)
    p.add_argument("--cards", type=int, default=20)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=2, help="graph runs with and without the web node, alternated")
    p.add_argument("--json", type=pathlib.Path)
    p.add_argument("--page-every", type=float, default=PAGE_EVERY_S, metavar="S",
                   help="seconds between page loads while the live tab stays open (0.2: the old stress load)")
    p.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)   # the page-load client's own process
    args = p.parse_args(argv)
    if args.page_every <= 0:
        p.error(f"--page-every must be > 0 seconds, got {args.page_every}")
    if args.client:
        return _client(args.client, args.page_every)
    result = run(args.cards, args.fps, args.rounds, args.page_every)
    text = json.dumps(result, indent=2)
    print(text)
    print(summary_line(result), file=sys.stderr)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
