"""`cardsorter bench`: every measurement in one run on this machine, printed and saved (JSON + markdown)."""

from __future__ import annotations

import argparse
import json
import logging
import math
import pathlib
import time
from typing import Any

from cardsorter.cli import extras

log = logging.getLogger("cardsorter.bench")

PARTS = ("graph", "memory", "perception", "embedding", "search", "decisions", "web", "catalogues")
ROS_PARTS = ("graph", "memory", "web")   # the whole graph over rclpy; the other parts are plain Python


def _run_part(name: str, quick: bool) -> dict[str, Any]:
    if name == "graph":
        from cardsorter.bench import pipeline as graph

        return graph.run(cards=8 if quick else 30)
    if name == "web":
        from cardsorter.bench import web

        return web.run(cards=8 if quick else 20, fps=10.0, rounds=1 if quick else 2)
    if name == "memory":
        from cardsorter.bench import memory

        return memory.run(cards=4 if quick else 8)
    if name == "perception":
        from cardsorter.bench import perception

        return perception.run(quick=quick)
    if name == "embedding":
        from cardsorter.bench import embedding

        return embedding.run(quick=quick)
    if name == "search":
        from cardsorter.bench import search

        if quick:
            return search.run(sizes=(17_592,), kinds=("random",), recall_queries=200, repeats=20,
                              ef_sweep=(128,), open_set_cards=60, open_set_unknown=20, log=log.info)
        return search.run(log=log.info)
    if name == "catalogues":
        from cardsorter.bench import catalogues

        return catalogues.run(quick=quick)
    from cardsorter.bench import decisions

    return decisions.run(quick=quick)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]], depth: int = 0) -> None:
    if isinstance(value, dict) and depth < 4:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out, depth + 1)
    elif isinstance(value, (list, tuple)) and len(value) > 8:
        out.append((prefix, f"[{len(value)} items]"))
    else:
        out.append((prefix, _fmt(value)))


def _bench(args: argparse.Namespace) -> int:
    parts = [p.strip() for p in args.only.split(",")] if args.only else list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown benchmark parts {sorted(unknown)} (known: {', '.join(PARTS)})")
    ros_reason = extras.ros_missing()
    if ros_reason is not None and any(p in ROS_PARTS for p in parts):
        if args.only:  # asked for by name: say why it cannot run
            return extras.explain("bench --only " + ",".join(p for p in parts if p in ROS_PARTS), extras.NEEDS_ROS,
                                  ros_reason)
        log.warning("benchmark parts %s skipped: %s (%s)", ", ".join(ROS_PARTS), extras.NEEDS_ROS, ros_reason)
        parts = [p for p in parts if p not in ROS_PARTS]
    out = pathlib.Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in parts:
        log.info("benchmark: %s%s", name, " (quick)" if args.quick else "")
        started = time.monotonic()
        results[name] = _run_part(name, args.quick)
        results[name]["bench_seconds"] = round(time.monotonic() - started, 1)
        (out / "bench.json").write_text(json.dumps(results, indent=2, default=str))
    rows: list[tuple[str, str]] = []
    for name, value in results.items():
        _flatten(name, value, rows)
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    print(text)
    (out / "bench.md").write_text("# cardsorter benchmark\n\n```\n" + text + "\n```\n")
    print(f"\nsaved {out / 'bench.json'} and {out / 'bench.md'}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("bench", help="measure latency, gating, search, recognition and decisions on this machine")
    p.add_argument("--only", help=f"comma-separated parts: {', '.join(PARTS)}")
    p.add_argument("--quick", action="store_true", help="small sizes (minutes instead of tens of minutes)")
    p.add_argument("--out", default="out/bench", help="results folder (a timestamped subfolder is made)")
    p.set_defaults(func=_bench)
