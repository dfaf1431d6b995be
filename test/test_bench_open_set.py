"""The open-set bench tells held-out reprints of a database card's art from cards of unknown art."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np

from cardsorter.bench.open_set import art_window_thumbs, reprints_of_references, same_art_pairs
from cardsorter.sim.catalog import render_card, reprint_designs


def _printings(arts: int, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(first printing, second printing) of each artwork: two sets' cards that share their art."""
    designs = reprint_designs(arts, seed, min_printings=2, max_printings=2)
    by_art: dict[str, list[np.ndarray]] = {}
    for d in designs:
        by_art.setdefault(d.record.art_id, []).append(render_card(d))
    return [p[0] for p in by_art.values()], [p[1] for p in by_art.values()]


def test_a_reprint_is_paired_with_the_database_card_of_its_art_and_new_art_with_none() -> None:
    firsts, seconds = _printings(6, seed=3)
    others, _ = _printings(6, seed=4)          # artworks of their own: no database card shares them
    pairs = same_art_pairs(firsts + others, seconds)
    assert [p[0] if p else None for p in pairs[:6]] == list(range(6))
    assert all(p is not None and p[1] >= 0.9 for p in pairs[:6])
    assert pairs[6:] == [None] * 6


def test_art_thumbs_ignore_brightness_and_contrast_and_a_blank_card_matches_nothing() -> None:
    card = _printings(1, seed=5)[0][0]
    brighter = cv2.convertScaleAbs(card, alpha=0.7, beta=60)
    a, b = art_window_thumbs([card, brighter])
    assert float(a @ b) > 0.95
    blank = np.full_like(card, 200)
    assert not art_window_thumbs([blank]).any()
    assert same_art_pairs([blank], [card]) == [None]
    assert same_art_pairs([], [card]) == [] and same_art_pairs([card], []) == [None]


def test_reprints_are_found_by_file_and_named_by_card_id(tmp_path: pathlib.Path) -> None:
    firsts, seconds = _printings(3, seed=6)
    others, _ = _printings(2, seed=7)
    unknown, refs = [], []
    for i, img in enumerate(firsts + others):
        unknown.append(tmp_path / f"held-{i}_card {i}.png")
        cv2.imwrite(str(unknown[-1]), img)
    for i, img in enumerate(seconds):
        refs.append(tmp_path / f"db-{i}_card {i}.png")
        cv2.imwrite(str(refs[-1]), img)
    assert reprints_of_references(unknown, refs) == {"held-0": "db-0", "held-1": "db-1", "held-2": "db-2"}
