"""The procedural catalogue: determinism, layout, hard cases, metadata, loader, CLI."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from cardsorter.cli.__main__ import main as cli_main
from cardsorter.core.errors import ImageError
from cardsorter.sim.catalog import (
    CARD_H_PX,
    CARD_W_PX,
    CATALOG_IMAGE_HEIGHT_PX,
    NAME_BAND_Y_PX,
    generate_catalog,
    image_filename,
    load_catalog,
    render_catalog,
)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    generate_catalog(tmp_path / "a", 25, seed=7, unknown=3)
    generate_catalog(tmp_path / "b", 25, seed=7, unknown=3)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_other_seed_gives_other_cards(tmp_path: Path) -> None:
    a = generate_catalog(tmp_path / "a", 25, seed=7)
    b = generate_catalog(tmp_path / "b", 25, seed=8)
    assert [r.name for r in a] != [r.name for r in b]


def test_writes_named_images_and_metadata(tmp_path: Path) -> None:
    records = generate_catalog(tmp_path, 30, seed=1)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert len(meta) == len(records) == 30
    assert len({m["id"] for m in meta}) == 30
    for m, r in zip(meta, records, strict=True):
        assert m["id"] == f"{m['set']['id']}-{m['number']}" == r.card_id
        assert set(m) >= {"id", "name", "number", "rarity", "supertype", "types", "set", "art_id", "finish"}
        assert m["finish"] in ("normal", "holo", "reverse_holo")
        img = cv2.imread(str(tmp_path / "images" / image_filename(r)))
        assert img.shape == (CATALOG_IMAGE_HEIGHT_PX, round(CARD_W_PX * CATALOG_IMAGE_HEIGHT_PX / CARD_H_PX), 3)
        assert image_filename(r).startswith(f"{r.set_id}-{r.number}_")


def test_hard_cases_are_present() -> None:
    records = [r for r, _ in render_catalog(200, seed=3)]
    by_art: dict[str, list] = defaultdict(list)
    for r in records:
        by_art[r.art_id].append(r)
    groups = [g for g in by_art.values() if len(g) > 1]
    assert any(len({r.set_id for r in g}) > 1 and g[0].supertype == "Pokemon" for g in groups), "reprints"
    assert any(len({r.set_id for r in g}) == 1 and {"reverse_holo"} <= {r.finish for r in g} for g in groups)
    assert any(len(g) > 1 and g[0].supertype == "Energy" for g in groups), "basic energies"
    assert any(r.rarity == "Rare Ultra" for r in records), "full-art cards"


def test_reprints_share_artwork_pixels() -> None:
    cards = render_catalog(200, seed=3)
    by_art: dict[str, list] = defaultdict(list)
    for r, img in cards:
        by_art[r.art_id].append((r, img))
    reprint = next(g for g in by_art.values() if len({r.set_id for r, _ in g}) > 1 and g[0][0].supertype == "Pokemon")
    (_, a), (_, b) = reprint[:2]
    art = (slice(60, 180), slice(30, 220))
    assert np.mean(np.abs(a[art].astype(int) - b[art].astype(int))) < 20  # same art (holo may tint it)
    assert not np.array_equal(a, b)  # but another printing


def test_name_band_is_at_the_top() -> None:
    _, img = render_catalog(5, seed=2)[0]
    band = img[NAME_BAND_Y_PX[0]:NAME_BAND_Y_PX[1], 20:230]
    flipped = img[::-1, ::-1][NAME_BAND_Y_PX[0]:NAME_BAND_Y_PX[1], 20:230]
    assert band.mean() > 180  # light band with dark text
    assert abs(band.mean() - flipped.mean()) > 10  # so an upside-down card looks different


def test_unknown_cards_are_not_in_the_catalogue(tmp_path: Path) -> None:
    known = generate_catalog(tmp_path, 40, seed=5, unknown=10)
    unknown = [r for r, _ in load_catalog(tmp_path / "unknown")]
    assert len(unknown) == 10
    assert not {r.card_id for r in unknown} & {r.card_id for r in known}
    assert not {r.art_id for r in unknown} & {r.art_id for r in known}


def test_load_catalog_round_trips(tmp_path: Path) -> None:
    records = generate_catalog(tmp_path, 12, seed=4)
    loaded = load_catalog(tmp_path)
    assert [r for r, _ in loaded] == records
    assert all(p.is_file() for _, p in loaded)


def test_load_catalog_names_a_missing_image(tmp_path: Path) -> None:
    records = generate_catalog(tmp_path, 5, seed=4)
    (tmp_path / "images" / image_filename(records[2])).unlink()
    with pytest.raises(ImageError, match=records[2].card_id):
        load_catalog(tmp_path)


def test_load_catalog_names_a_bad_entry(tmp_path: Path) -> None:
    generate_catalog(tmp_path, 3, seed=4)
    meta = json.loads((tmp_path / "metadata.json").read_text())
    del meta[1]["set"]
    (tmp_path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ImageError, match=r"metadata.json\[1\]"):
        load_catalog(tmp_path)


def test_cli_generate_writes_a_catalogue(tmp_path: Path) -> None:
    rc = cli_main(["catalog", "generate", "--out", str(tmp_path / "c"), "--cards", "6", "--seed", "9",
                   "--unknown", "2"])
    assert rc == 0
    assert len(load_catalog(tmp_path / "c")) == 6
    assert len(load_catalog(tmp_path / "c" / "unknown")) == 2
