"""Build → check → load round trip, reporting of bad images, templates and art groups."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from db_support import (
    PixelEmbedder,
    card_image,
    configs,
    standard_images,
    write_cards,
    write_metadata,
)

from cardsorter.core.errors import DatabaseError
from cardsorter.db.build import build_database
from cardsorter.db.database import ReferenceDatabase
from cardsorter.db.delta import check_database
from cardsorter.db.names import parse_reference_name
from cardsorter.db.store import DATA_FILES, MANIFEST_FILE, sha256_file


def build(tmp_path: pathlib.Path, images: pathlib.Path, metadata: pathlib.Path | None = None,
          embedder: PixelEmbedder | None = None) -> tuple[pathlib.Path, object]:
    build_config, search_config, _ = configs()
    out = tmp_path / "db"
    report = build_database(images, out, embedder or PixelEmbedder(), build_config=build_config,
                            search_config=search_config, metadata_path=metadata, model_sha256="abc")
    return out, report


def test_parse_reference_name_with_high_suffix() -> None:
    parsed = parse_reference_name("sv10-38_Team Rocket's Mewtwo ex_high.png")
    assert (parsed.card_id, parsed.set_id, parsed.number, parsed.name, parsed.high) == (
        "sv10-38", "sv10", "38", "Team Rocket's Mewtwo ex", True)


def test_parse_reference_name_rejects_names_without_number() -> None:
    with pytest.raises(DatabaseError, match="not '"):
        parse_reference_name("pikachu.png")


def test_build_check_load_round_trip(tmp_path: pathlib.Path) -> None:
    ids = standard_images(tmp_path / "images")
    db_path, report = build(tmp_path, tmp_path / "images")
    manifest = json.loads((db_path / MANIFEST_FILE).read_text())
    assert manifest["counts"] == {"rows": 6, "cards": 6, "templates_max": 1}
    assert manifest["model"] == {"id": "pixels-6x8-v1", "sha256": "abc"}
    assert manifest["dimension"] == 144 and manifest["metric"] == "cos"
    assert all(manifest["files"][name] == sha256_file(db_path / name) for name in DATA_FILES)
    build_config, search_config, _ = configs()
    checked = check_database(db_path, expected_model_id="pixels-6x8-v1", build_config=build_config,
                             search_config=search_config)
    assert checked.self_retrieval.not_self == [] and checked.cards == 6
    db = ReferenceDatabase.load(db_path, "pixels-6x8-v1", search_config)
    assert db.database_id == report.database_id == manifest["database_id"]
    assert isinstance(db.snapshot.vectors, np.memmap)
    assert db.card_ids() == sorted(ids)
    found = db.search(np.asarray(db.snapshot.vectors), k=3)
    assert [hits[0].card.card_id for hits in found] == [r.card_id for r in db.rows()]
    assert all(hits[0].distance_cos < 1e-4 and len(hits) == 3 for hits in found)
    assert db.record("sv1-3").name == "Card 3" and db.record("sv1-3").number == "3"


def test_build_refuses_to_overwrite_an_existing_database(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "images")
    build(tmp_path, tmp_path / "images")
    with pytest.raises(DatabaseError, match="immutable"):
        build(tmp_path, tmp_path / "images")


def test_corrupt_image_is_skipped_and_reported(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "images", n=4)
    (tmp_path / "images" / "sv1-99_Broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (tmp_path / "images" / "cover.png").write_bytes((tmp_path / "images" / "sv1-1_Card 1.png").read_bytes())
    db_path, report = build(tmp_path, tmp_path / "images")
    skipped = {pathlib.Path(s.path).name: s.reason for s in report.skipped}
    assert set(skipped) == {"sv1-99_Broken.png", "cover.png"}
    assert "cannot decode" in skipped["sv1-99_Broken.png"] and "not '" in skipped["cover.png"]
    assert report.cards == 4
    manifest = json.loads((db_path / MANIFEST_FILE).read_text())
    assert len(manifest["report"]["skipped_images"]) == 2


def test_non_finite_embedding_is_skipped_and_reported(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "images", n=3)

    class HalfBroken(PixelEmbedder):
        def embed(self, crops_bgr: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            out, ok = super().embed(crops_bgr)
            ok[0] = False
            out[0] = np.nan
            return out, ok

    _, report = build(tmp_path, tmp_path / "images", embedder=HalfBroken())
    assert report.cards == 2
    assert [pathlib.Path(s.path).name for s in report.skipped] == ["sv1-1_Card 1.png"]


def test_metadata_gives_ids_and_records(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "images", n=3)
    write_metadata(tmp_path / "meta.json", [
        {"id": "sv1-1", "name": "Sprigatito", "number": "1", "rarity": "Common", "supertype": "Pokémon",
         "set": {"id": "sv1", "name": "Scarlet & Violet"}, "art_id": "a1", "finish": "holo"},
        {"id": "sv1-2", "name": "Floragato", "number": "2", "set": {"id": "sv1", "name": "Scarlet & Violet"}},
        {"id": "sv1-50", "name": "Not Photographed", "number": "50", "set": {"id": "sv1", "name": "SV"}},
    ])
    db_path, report = build(tmp_path, tmp_path / "images", tmp_path / "meta.json")
    assert report.without_metadata == ["sv1-3"] and report.metadata_without_image == 1
    db = ReferenceDatabase.load(db_path, None, configs()[1])
    rec = db.record("sv1-1")
    assert (rec.name, rec.set_name, rec.rarity, rec.art_id, rec.finish) == (
        "Sprigatito", "Scarlet & Violet", "Common", "a1", "holo")
    assert db.record("sv1-3").name == "Card 3"


def test_high_suffix_is_a_second_template_of_the_same_card(tmp_path: pathlib.Path) -> None:
    images = tmp_path / "images"
    standard_images(images, n=3)
    write_cards(images, [("sv1-2_Card 2_high.png", 777)])
    db_path, report = build(tmp_path, images)
    assert (report.rows, report.cards) == (4, 3)
    db = ReferenceDatabase.load(db_path, None, configs()[1])
    high_row = [i for i, r in enumerate(db.rows()) if r.high]
    assert len(high_row) == 1 and db.rows()[high_row[0]].card_id == "sv1-2"
    hits = db.search(np.asarray(db.snapshot.vectors[high_row]), k=3)[0]
    assert [h.card.card_id for h in hits].count("sv1-2") == 1  # templates grouped: the card once
    assert hits[0].card.card_id == "sv1-2"


def test_identical_art_of_two_cards_becomes_an_art_group(tmp_path: pathlib.Path) -> None:
    images = tmp_path / "images"
    standard_images(images, n=3)
    write_cards(images, [("sv2-7_Reprint.png", 1000 * sum(map(ord, "sv1")) + 1)])  # same picture as sv1-2
    db_path, report = build(tmp_path, images)
    assert [(d.card_a, d.card_b) for d in report.self_retrieval.near_duplicates] == [("sv1-2", "sv2-7")]
    db = ReferenceDatabase.load(db_path, None, configs()[1])
    assert db.art_group("sv1-2") == db.art_group("sv2-7") != db.art_group("sv1-1")


def test_metadata_art_id_groups_printings(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "images", n=3)
    write_metadata(tmp_path / "meta.json", [
        {"id": "sv1-1", "name": "A", "number": "1", "set": {"id": "sv1"}, "art_id": "art-x"},
        {"id": "sv1-3", "name": "A", "number": "3", "set": {"id": "sv1"}, "art_id": "art-x"},
    ])
    db_path, _ = build(tmp_path, tmp_path / "images", tmp_path / "meta.json")
    db = ReferenceDatabase.load(db_path, None, configs()[1])
    assert db.art_group("sv1-1") == db.art_group("sv1-3") == "art-x"
    assert db.art_group("sv1-2") == "sv1-2"


def test_empty_folder_is_an_error(tmp_path: pathlib.Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(DatabaseError, match="no reference images"):
        build(tmp_path, tmp_path / "images")


def test_card_image_helper_is_deterministic() -> None:
    assert np.array_equal(card_image(5), card_image(5)) and not np.array_equal(card_image(5), card_image(6))
