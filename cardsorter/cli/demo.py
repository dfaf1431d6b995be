"""`cardsorter demo`: the whole graph on a generated catalogue, scored against the simulator's truth."""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import platform
import time
from typing import Any

from cardsorter.bench.host import cpu_model

log = logging.getLogger("cardsorter.demo")


def run_demo(args: argparse.Namespace) -> dict[str, Any]:
    from cardsorter.config import resolve_path
    from cardsorter.console import progress_bar
    from cardsorter.demo_world import ensure_catalog, ensure_database
    from cardsorter.inventory.sqlite_store import read_rows
    from cardsorter.ros.graph import Graph, announce_web
    from cardsorter.ros.monitor_node import GraphMonitor
    from cardsorter.ros.node_specs import NODE_NAMES
    from cardsorter.settings import load_settings
    from cardsorter.sim.catalog import load_catalog
    from cardsorter.sim.scoring import score_run

    settings = load_settings(args.params_file)
    out = pathlib.Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    manifest = resolve_path(settings.embedder.model_manifest)
    catalog = ensure_catalog(args.catalog_cards, args.unknown_cards, args.seed)
    database = ensure_database(catalog, manifest, progress=progress_bar())
    art_of = {rec.card_id: rec.art_id for rec, _ in load_catalog(catalog)}
    overrides: dict[str, dict[str, Any]] = {
        "camera": {"source": "synthetic", "synthetic.catalog_dir": str(catalog), "synthetic.cards": args.cards,
                   "synthetic.seed": args.seed, "synthetic.realtime": True, "fps": args.fps},
        "matcher": {"database": str(database)},
        "sorter": {"inventory_path": str(out / "inventory.sqlite"), "sort_log": str(out / "sort_log.csv")},
    }
    nodes = list(NODE_NAMES)
    if args.web:
        nodes.append("web")
        overrides["web"] = {"inventory_path": overrides["sorter"]["inventory_path"],
                            "reference_images": str(catalog / "images"), "review_dir": str(out / "review")}
    started = time.monotonic()
    with Graph(args.params_file, nodes, overrides=overrides, extra_nodes=[GraphMonitor]) as graph:
        monitor = graph.node_of(GraphMonitor)
        announce_web(graph)
        log.info("sorting %d cards (synthetic %s, %g fps); this takes about %.0f s", args.cards,
                 settings.camera.synthetic.scene.mode, args.fps, args.cards * 1.2)
        last_report = time.monotonic()
        timeout = args.timeout or max(120.0, args.cards * 8.0)
        while not monitor.all_sorted():
            graph.executor.spin_once(timeout_sec=0.1)
            if time.monotonic() - last_report > 10:
                last_report = time.monotonic()
                log.info("%d frames, %d tracks ended, %d cards sorted", monitor.frames, len(monitor.track_ends),
                         len(monitor.sort_events))
            if time.monotonic() - started > timeout:
                log.error("timed out after %.0f s with %d of %d tracks sorted", timeout, len(monitor.sort_events),
                          len(monitor.track_ends))
                break
        wall_s = (monitor.last_decision_wall or time.monotonic()) - (monitor.first_frame_wall or started)
        diagnostics = dict(monitor.diagnostics)
        score = score_run(monitor.truth_by_stamp, monitor.tracks_by_stamp, monitor.sorted_cards(), art_of)
        distances = {k: list(v) for k, v in monitor.match_distances.items()}
        duplicates = list(monitor.duplicate_sort_events)
        tracks_ended = len(monitor.track_ends)
        sort_events = len(monitor.sort_events)
        if args.web:
            print(f"sorted; the operator view stays up at {graph.nodes['web'].url} until Ctrl-C", flush=True)  # type: ignore[attr-defined]
            try:
                while graph.context.ok():
                    graph.executor.spin_once(timeout_sec=0.1)
            except KeyboardInterrupt:
                pass
    rows = read_rows(out / "inventory.sqlite")
    by_bin: dict[str, list[str]] = {}
    for r in rows:
        by_bin.setdefault(r.bin, []).append(f"{r.name} {r.set_id}/{r.number}" if r.card_id else f"({r.status})")
    summary: dict[str, Any] = dict(score.summary())
    summary.update({"wall_s": round(wall_s, 1), "tracks": tracks_ended, "sort_events": sort_events,
                    "inventory_rows": len(rows), "duplicate_sort_events": len(duplicates),
                    "cards_per_hour": round(score.physical_cards / wall_s * 3600) if wall_s > 0 else 0})
    write_report(out, summary, score, diagnostics, distances, [r.bin for r in rows], args, catalog, database)
    summary["report"] = str(out / "report.md")
    summary["bins"] = by_bin
    return summary


def write_report(out: pathlib.Path, summary: dict[str, Any], score: Any, diagnostics: dict[str, dict[str, str]],
                 distances: dict[str, list[float]], bins: list[str], args: argparse.Namespace,
                 catalog: pathlib.Path, database: pathlib.Path) -> None:
    from cardsorter.db.database import ReferenceDatabase
    from cardsorter.run_report import (
        bin_counts,
        markdown_table,
        plot_bands,
        plot_bins,
        plot_latency,
        stage_latencies,
    )
    from cardsorter.settings import load_settings

    matcher = load_settings(args.params_file).matcher
    db = ReferenceDatabase.load(database, None, matcher.search, verify_checksums=False)
    bands, _ = db.bands(matcher.bands)   # as the matcher resolved them
    latency = stage_latencies(diagnostics)
    plot_latency(latency, out / "latency.png")
    plot_bands(distances, {"confirm": bands.confirm_distance_max,
                           "unknown": bands.uncertain_distance_max}, out / "bands.png")
    counts = bin_counts(bins)
    plot_bins(counts, out / "bins.png")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    outcomes = [(o.physical_id, o.truth_card_id or "-", "yes" if o.in_database else "no",
                 ",".join(o.nuisances) or "-", o.outcome, o.sorted_as or "-", o.bin_name or "-") for o in score.outcomes]
    text = f"""# cardsorter demo report

Machine: {cpu_model()} ({os.cpu_count()} cores), {platform.system()} {platform.release()},
Python {platform.python_version()}. Catalogue `{catalog}`, database `{database}`.
{args.cards} physical cards on a synthetic belt at {args.fps:g} fps, seed {args.seed}.

## Result

{markdown_table(["figure", "value"], [(k, f"{v:.3f}" if isinstance(v, float) else v) for k, v in summary.items()])}

Accuracy counts only cards that are in the database; unknown cards are right when rejected.
Cards per hour is what the software sustained on this run (the simulated belt sets the pace).

![bins](bins.png)

## Per-stage latency (from /diagnostics)

{markdown_table(["node", "p50 ms", "p95 ms", "calls"], [(n, f"{a:.2f}", f"{b:.2f}", f"{c:.0f}") for n, a, b, c in latency])}

![latency](latency.png)

## Decision bands

![bands](bands.png)

## Every physical card

{markdown_table(["#", "truth", "in db", "nuisances", "outcome", "sorted as", "bin"], outcomes)}
"""
    (out / "report.md").write_text(text)


def _demo(args: argparse.Namespace) -> int:
    summary = run_demo(args)
    print()
    print(f"Sorted {summary['physical_cards']} physical cards ({summary['known_cards']} in the database, "
          f"{summary['unknown_cards']} unknown, {summary['double_feeds']} double feeds) in {summary['wall_s']} s → {summary['cards_per_hour']} cards/hour")
    print(f"  known cards:   {summary['correct']} correct, {summary['wrong_printing']} wrong printing, "
          f"{summary['wrong_card']} wrong card, {summary['ambiguous_printing']} rejected as ambiguous printings "
          f"(right art), {summary['rejected_known']} rejected otherwise, {summary['missed']} missed "
          f"(accuracy {summary['accuracy_known']:.1%}, errors {summary['error_rate_known']:.1%})")
    if summary["missed_gate"]:
        print(f"  {summary['missed_gate']} identified card(s) reached their gate after the decision was due and went "
              "on to the passthrough bin (logged: 'missed the gate')")
    print(f"  unknown cards: {summary['correct_reject_unknown']} rejected correctly, "
          f"{summary['false_accept_unknown']} accepted wrongly")
    print(f"  double feeds:  {summary['double_feeds_rejected']} of {summary['double_feeds']} sent to reject")
    print(f"  {summary['sort_events']} sort events for {summary['tracks']} tracks, {summary['inventory_rows']} "
          f"inventory rows, {summary['duplicate_sort_events']} duplicate events")
    print("Where they went:")
    for name, cards in sorted(summary["bins"].items()):
        shown = ", ".join(cards[:6]) + (f", … ({len(cards) - 6} more)" if len(cards) > 6 else "")
        print(f"  {name:<9} {len(cards):>3}  {shown}")
    print(f"Report: {summary['report']}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from cardsorter.cli.extras import guarded, ros_parser

    p = ros_parser(sub, "demo", "sort a simulated stack of cards with the whole graph and report")
    if p is None:
        return
    p.add_argument("--cards", type=int, default=100, help="physical cards in the stack")
    p.add_argument("--catalog-cards", type=int, default=400, help="cards in the generated catalogue (the database)")
    p.add_argument("--unknown-cards", type=int, default=40, help="generated cards that are not in the database")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--fps", type=float, default=10.0, help="camera frame rate")
    p.add_argument("--timeout", type=float, default=0.0, help="give up after this many seconds (0: from --cards)")
    p.add_argument("--out", default="out/demo", help="report folder (a timestamped subfolder is made)")
    p.add_argument("--params-file", type=pathlib.Path, default=None, help="parameters YAML")
    p.add_argument("--web", action="store_true",
                   help="also serve the operator's web view (URL printed; stays up after sorting until Ctrl-C)")
    p.set_defaults(func=guarded("demo", _demo))
