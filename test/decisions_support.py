"""Shared builders for the decisions tests (cards, matches, identities, track ends, configs)."""

from __future__ import annotations

import dataclasses
import math
import pathlib
import textwrap
from typing import Any

from cardsorter.core.bin_rules import SortRules, load_rules
from cardsorter.core.gate_schedule import BeltConfig
from cardsorter.core.smoothing import SmootherConfig
from cardsorter.core.sorting import SorterConfig
from cardsorter.core.types import (
    BoxPx,
    Candidate,
    CardMatch,
    CardRecord,
    Identity,
    MatchBand,
    TrackEnd,
    TrackState,
)
from cardsorter.settings import load_settings

MS = 1_000_000


def card(card_id: str, name: str = "", set_id: str = "", number: str = "", rarity: str = "Common",
         art_id: str = "", finish: str = "normal", supertype: str = "Pokemon", types: tuple[str, ...] = (),
         price_usd: float | None = None) -> CardRecord:
    set_id = set_id or card_id.split("-")[0]
    number = number or (card_id.split("-")[1] if "-" in card_id else "1")
    return CardRecord(card_id=card_id, name=name or f"Card {card_id}", set_id=set_id, set_name=f"Set {set_id}",
                      number=number, rarity=rarity, art_id=art_id or f"art-{card_id}", finish=finish,
                      supertype=supertype, types=types, price_usd=price_usd)


def match(track_id: int, band: MatchBand, best: CardRecord | None, distance: float = 0.1,
          margin: float = 0.2) -> CardMatch:
    cands = (Candidate(best, distance),) if best is not None else ()
    return CardMatch(track_id, band, cands, margin if best is not None else math.inf)


def identity(track_id: int, state: TrackState, c: CardRecord | None, stamp_ns: int, final: bool = True,
             reason: str = "test") -> Identity:
    return Identity(track_id=track_id, state=state, card=c, confidence=1.0 if c else 0.0, distance_cos=0.1,
                    margin_to_runner_up=0.2, agreeing_views=3, views=3, final=final, reason=reason,
                    stamp_ns=stamp_ns)


def track_end(track_id: int, last_stamp_ns: int, first_stamp_ns: int = 0, double_feed: bool = False,
              box: BoxPx | None = None, velocity: tuple[float, float] = (240.0, 0.0)) -> TrackEnd:
    return TrackEnd(track_id=track_id, first_stamp_ns=first_stamp_ns, last_stamp_ns=last_stamp_ns, frames_seen=10,
                    last_bbox_px=box or BoxPx(500.0, 100.0, 126.0, 176.0), velocity_px_per_s=velocity,
                    double_feed=double_feed, reason="left_view")


def smoother_config(**overrides: Any) -> SmootherConfig:
    cfg = load_settings().smoother.smoothing
    return dataclasses.replace(cfg, **overrides)


def sorter_config(**overrides: Any) -> SorterConfig:
    cfg = load_settings().sorter.core
    return dataclasses.replace(cfg, **overrides)


def belt_config(**overrides: Any) -> BeltConfig:
    cfg = load_settings().sorter.flow
    return dataclasses.replace(cfg, **overrides)


BASIC_BINS = """\
reject_bin: reject
overflow_bin: overflow
bins:
  - {name: a, capacity: 100, position: 10.0, gate_mm: 400.0}
  - {name: b, capacity: 100, position: 20.0, gate_mm: 500.0}
  - {name: c, capacity: 100, position: 30.0, gate_mm: 600.0}
  - {name: overflow, capacity: 100, position: 40.0, gate_mm: 700.0}
  - {name: reject, capacity: 100, position: 50.0, gate_mm: 800.0}
"""


def write_rules(tmp_path: pathlib.Path, body: str, bins: str = BASIC_BINS, name: str = "bins.yaml") -> pathlib.Path:
    path = tmp_path / name
    path.write_text(bins + textwrap.dedent(body), encoding="utf-8")
    return path


def rules_from(tmp_path: pathlib.Path, body: str, bins: str = BASIC_BINS) -> SortRules:
    return load_rules(write_rules(tmp_path, body, bins))
