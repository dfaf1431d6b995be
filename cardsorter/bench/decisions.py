"""Decisions benchmark: smoother, rule routing, SorterCore cycle, and the durable inventory commit per card.

`python -m cardsorter.bench.decisions` prints the numbers as JSON with the machine they ran on;
`run()` returns them as a dict. Nothing here is asserted in tests: a benchmark measures.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from cardsorter.bench.host import cpu_model
from cardsorter.config import REPO_ROOT, resolve_path
from cardsorter.core.bin_rules import load_rules
from cardsorter.core.smoothing import TemporalSmoother
from cardsorter.core.sort_execution import ActuationResult, SortEvent
from cardsorter.core.sort_routing import RoutingState, route_card
from cardsorter.core.sorting import SorterCore
from cardsorter.core.types import (
    BoxPx,
    Candidate,
    CardMatch,
    CardRecord,
    Identity,
    MatchBand,
    SortStatus,
    TrackEnd,
    TrackState,
)
from cardsorter.inventory.sqlite_store import Inventory
from cardsorter.settings import load_settings

FRAME_NS = 33_000_000


def machine() -> dict[str, Any]:
    cpu = cpu_model()
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(), "platform": platform.platform()}


def _percentiles_us(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6, 2)

    return {"p50_us": pick(0.50), "p95_us": pick(0.95), "p99_us": pick(0.99), "max_us": round(ordered[-1] * 1e6, 2)}


def _timed(fn: Callable[[int], object], n: int) -> list[float]:
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        samples.append(time.perf_counter() - t0)
    return samples


def _cards(n: int) -> list[CardRecord]:
    rarities = ("Common", "Uncommon", "Rare", "Rare Holo")
    return [CardRecord(card_id=f"set{i % 37}-{i}", name=f"Name {chr(65 + i % 26)}{i}", set_id=f"set{i % 37}",
                       number=str(i), rarity=rarities[i % 4], art_id=f"art{i}", price_usd=(i % 50) / 5.0)
            for i in range(n)]


def bench_smoother(tracks: int, frames: int) -> dict[str, Any]:
    """observe() for a frame holding ``tracks`` matches, over ``frames`` frames (tracks churn every 12 frames)."""
    smoother = TemporalSmoother(load_settings().smoother.smoothing)
    cards = _cards(64)
    band = (MatchBand.CONFIRMED, MatchBand.CONFIRMED, MatchBand.UNCERTAIN, MatchBand.UNKNOWN)

    def frame(f: int) -> None:
        base = (f // 12) * tracks
        matches = [CardMatch(base + t, band[(f + t) % 4], (Candidate(cards[(base + t) % 64], 0.1),), 0.2)
                   for t in range(tracks)]
        smoother.observe(matches, (f + 1) * FRAME_NS)
        if f % 12 == 11:
            for t in range(tracks):
                smoother.end_track(TrackEnd(base + t, 0, (f + 1) * FRAME_NS, 12, BoxPx(0, 0, 1, 1), (0.0, 0.0),
                                            False, "left_view"))

    samples = _timed(frame, frames)
    return {"tracks_per_frame": tracks, "frames": frames, "per_frame": _percentiles_us(samples),
            "per_match_us_mean": round(sum(samples) / (frames * tracks) * 1e6, 3)}


def bench_rules(cards: int, rules_path: pathlib.Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    rules = load_rules(rules_path)
    load_ms = (time.perf_counter() - t0) * 1e3
    state = RoutingState()
    deck = _cards(cards)

    def one(i: int) -> None:
        route = route_card(rules, deck[i], SortStatus.CONFIRMED, False, state)
        state.record(route, deck[i])

    samples = _timed(one, cards)
    return {"rules_file": str(rules_path.relative_to(REPO_ROOT) if rules_path.is_relative_to(REPO_ROOT) else rules_path),
            "rules": len(rules.rules), "load_ms": round(load_ms, 2), "per_card": _percentiles_us(samples)}


class _InstantRouter:
    def route(self, bin_name: str) -> ActuationResult:
        return ActuationResult(bin_name, 0.0, None)


def bench_sorter_and_inventory(cards: int, directory: pathlib.Path) -> dict[str, Any]:
    """Per card: identity + track end → decision → actuation (instant) → durable inventory row."""
    sorter = load_settings().sorter
    rules = load_rules(resolve_path("config/bins.yaml"))
    core = SorterCore(sorter.core, rules, sorter.flow)
    inventory = Inventory(directory / "bench_inventory.sqlite", session_id="bench", model_id="m", database_id="d",
                          reject_bin=rules.reject_bin, opened_ns=0)
    deck = _cards(cards)
    router = _InstantRouter()
    commit_s: list[float] = []

    def commit(event: SortEvent) -> None:
        t0 = time.perf_counter()
        inventory.append(event)
        commit_s.append(time.perf_counter() - t0)

    def one(i: int) -> None:
        stamp = (i + 1) * 10 * FRAME_NS
        state = TrackState.CONFIRMED if i % 7 else TrackState.UNKNOWN
        core.on_identity(Identity(i, state, deck[i], 1.0, 0.1, 0.2, 3, 3, True, "bench", stamp))
        core.on_track_end(TrackEnd(i, stamp - FRAME_NS * 8, stamp, 8, BoxPx(500.0, 100.0, 140.0, 200.0),
                                   (300.0, 0.0), False, "left_view"))
        core.execute_due(stamp, router, commit, drain=True)

    try:
        samples = _timed(one, cards)
    finally:
        inventory.close()
    return {"cards": cards, "per_card_total": _percentiles_us(samples), "inventory_commit": _percentiles_us(commit_s),
            "cards_per_s": round(cards / sum(samples), 1), "inventory_dir": str(directory)}


def run(quick: bool = False, directory: pathlib.Path | None = None) -> dict[str, Any]:
    n = 300 if quick else 3000
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        return {
            "machine": machine(),
            "smoother": bench_smoother(tracks=4, frames=n),
            "smoother_crowded": bench_smoother(tracks=32, frames=n // 3),
            "rules_default": bench_rules(n, resolve_path("config/bins.yaml")),
            "rules_alphabetical": bench_rules(n, resolve_path("config/presets/alphabetical.yaml")),
            "sorter_and_inventory": bench_sorter_and_inventory(n // 3, pathlib.Path(tmp)),
        }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cardsorter.bench.decisions", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer iterations")
    p.add_argument("--dir", type=pathlib.Path, help="where the inventory is written (its disk sets the commit time)")
    args = p.parse_args(argv)
    print(json.dumps(run(args.quick, args.dir), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
