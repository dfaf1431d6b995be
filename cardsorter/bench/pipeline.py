"""Whole-graph benchmark: frame-to-decision latency (new card / cached), per-stage latency, embedding runs
saved by gating, peak memory and the throughput the software sustains, on this machine."""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import resource
import tempfile
import time
from typing import Any

from cardsorter.bench.perception import machine
from cardsorter.core.stats import percentile


def _pct(values_s: list[float], samples: bool = False) -> dict[str, Any]:
    ms = [v * 1000.0 for v in values_s]
    out: dict[str, Any] = {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2)}
    if samples:
        out["samples_ms"] = [round(v, 2) for v in ms]
    return out


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(cards: int = 20, fps: float = 10.0, seed: int = 7, catalog_cards: int = 400,
        web: bool = False, samples: bool = False, page_every_s: float | None = None) -> dict[str, Any]:
    """One belt run of the whole graph; ``web`` adds the web node with a browser-like client loading its pages;
    ``samples`` keeps every frame → decision latency of a new card (bench.web pools them over rounds)."""
    from cardsorter.bench.web import PAGE_EVERY_S, PageLoader
    from cardsorter.config import resolve_path
    from cardsorter.console import progress_bar
    from cardsorter.demo_world import ensure_catalog, ensure_database
    from cardsorter.ros.graph import Graph
    from cardsorter.ros.monitor_node import GraphMonitor
    from cardsorter.ros.node_specs import NODE_NAMES
    from cardsorter.run_report import stage_latencies
    from cardsorter.settings import load_settings
    from cardsorter.sim.catalog import load_catalog
    from cardsorter.sim.scoring import score_run

    manifest = resolve_path(load_settings().embedder.model_manifest)
    catalog = ensure_catalog(catalog_cards, catalog_cards // 10, seed)
    database = ensure_database(catalog, manifest, progress=progress_bar())
    work = pathlib.Path(tempfile.mkdtemp(prefix="cardsorter-bench-"))
    overrides: dict[str, dict[str, Any]] = {
        "camera": {"source": "synthetic", "synthetic.catalog_dir": str(catalog), "synthetic.cards": cards,
                   "synthetic.seed": seed, "synthetic.realtime": True, "fps": fps},
        "matcher": {"database": str(database)},
        "sorter": {"inventory_path": str(work / "inventory.sqlite"), "sort_log": ""},
    }
    nodes = list(NODE_NAMES)
    if web:
        nodes.append("web")
        overrides["web"] = {"port": 0, "inventory_path": str(work / "inventory.sqlite"),
                            "reference_images": str(catalog / "images"), "review_dir": str(work / "review")}
    rss_before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    cpu_before_s = _cpu_s()
    with Graph(None, nodes, overrides=overrides, extra_nodes=[GraphMonitor]) as graph:
        m = graph.node_of(GraphMonitor)
        loader = PageLoader(graph.nodes["web"].url,  # type: ignore[attr-defined]
                            PAGE_EVERY_S if page_every_s is None else page_every_s) if web else None
        if loader:
            loader.start()
        graph.spin_until(m.all_sorted, max(120.0, cards * 10.0))
        pages = loader.stop() if loader else None
        wall_s = (m.last_decision_wall or time.monotonic()) - (m.first_frame_wall or started)
        new_card, cached = [], []
        for stamp, t_det in m.detections_wall.items():
            requested = m.crops_requested.get(stamp)
            if requested is None or not m.tracks_by_stamp.get(stamp):
                continue
            if requested > 0 and stamp in m.identities_wall:
                new_card.append(m.identities_wall[stamp] - t_det)
            elif requested == 0 and stamp in m.tracks_wall:
                cached.append(m.tracks_wall[stamp] - t_det)
        frames_published = len(m.detections_wall)
        frames_tracked = len(m.tracks_wall)
        diagnostics = dict(m.diagnostics)
        art_of = {rec.card_id: rec.art_id for rec, _ in load_catalog(catalog)}
        score = score_run(m.truth_by_stamp, m.tracks_by_stamp, m.sorted_cards(), art_of)
        cpu_s = _cpu_s() - cpu_before_s
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stages = {node: {"p50_ms": p50, "p95_ms": p95, "calls": int(calls) if math.isfinite(calls) else 0}
              for node, p50, p95, calls in stage_latencies(diagnostics)}
    camera_frames = stages.get("camera", {}).get("calls", frames_published)
    gate = diagnostics.get("cardsorter/frame_selector", {})
    busy_ms_per_frame = sum(s["p50_ms"] * s["calls"] for s in stages.values()) / max(1, frames_tracked)
    return {
        "machine": machine(), "cards": cards, "fps": fps, "wall_s": round(wall_s, 1),
        "frame_to_decision_new_card": _pct(new_card, samples), "frame_to_decision_cached": _pct(cached),
        "frames_published": camera_frames,
        "frames_tracked": frames_tracked,
        "frames_dropped": max(0, camera_frames - frames_tracked),
        "stages": stages,
        "gating": {k: gate.get(k) for k in ("detections", "crops_requested", "embedding_runs_saved", "reduction_factor")},
        "peak_rss_mb": round(peak_rss_mb, 1), "rss_before_graph_mb": round(rss_before_mb, 1),
        "cards_per_hour_at_belt_pace": round(score.physical_cards / wall_s * 3600) if wall_s > 0 else 0,
        "busy_ms_per_frame": round(busy_ms_per_frame, 2),
        "process_cpu_s": round(cpu_s, 2),   # every thread of this process while the graph ran
        "accuracy": score.summary(),
        **({"web_page_loads": pages} if pages is not None else {}),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.pipeline", description=__doc__)
    p.add_argument("--cards", type=int, default=20)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--json", type=pathlib.Path)
    args = p.parse_args(argv)
    result = run(args.cards, args.fps)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
