"""Delta (db add, enrol) served with the frozen snapshot; merge freezes a new version."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from db_support import PixelEmbedder, card_image, configs, standard_images, write_cards

from cardsorter.core.errors import DatabaseError
from cardsorter.core.types import CardRecord
from cardsorter.db.build import build_database, fit_to_model
from cardsorter.db.database import ReferenceDatabase
from cardsorter.db.delta import add_to_database, check_database, merge_database
from cardsorter.db.errors import DimensionMismatchError, DuplicateIdError, NormError
from cardsorter.db.store import sha256_file


@pytest.fixture()
def db_path(tmp_path: pathlib.Path) -> pathlib.Path:
    standard_images(tmp_path / "images", n=4)
    build_config, search_config, _ = configs()
    out = tmp_path / "db"
    build_database(tmp_path / "images", out, PixelEmbedder(), build_config=build_config,
                   search_config=search_config)
    return out


def load(path: pathlib.Path) -> ReferenceDatabase:
    return ReferenceDatabase.load(path, "pixels-6x8-v1", configs()[1])


def embed_image(seed: int) -> np.ndarray:
    emb = PixelEmbedder()
    vectors, _ = emb.embed([fit_to_model(card_image(seed), emb.input_size_wh)])
    return vectors[0]


def add(db_path: pathlib.Path, images: pathlib.Path) -> object:
    build_config, search_config, _ = configs()
    return add_to_database(db_path, images, PixelEmbedder(), build_config=build_config,
                           search_config=search_config)


def test_add_writes_a_delta_and_leaves_the_snapshot_untouched(tmp_path: pathlib.Path, db_path: pathlib.Path) -> None:
    before = {p.name: sha256_file(p) for p in db_path.iterdir() if p.is_file()}
    standard_images(tmp_path / "new", n=3, set_id="sv2")
    add(db_path, tmp_path / "new")
    assert {p.name: sha256_file(p) for p in db_path.iterdir() if p.is_file()} == before
    db = load(db_path)
    assert db.card_count == 7 and db.delta is not None and len(db.delta.rows) == 3
    query = np.asarray(db.delta.vectors[1])
    assert db.search(query, k=2)[0][0].card.card_id == "sv2-2"
    assert db.search(np.asarray(db.snapshot.vectors[0]), k=2)[0][0].card.card_id == "sv1-1"


def test_adding_the_same_images_twice_is_refused(tmp_path: pathlib.Path, db_path: pathlib.Path) -> None:
    standard_images(tmp_path / "new", n=2, set_id="sv2")
    add(db_path, tmp_path / "new")
    with pytest.raises(DuplicateIdError, match="already in database"):
        add(db_path, tmp_path / "new")


def test_merge_freezes_snapshot_plus_delta_into_a_new_directory(tmp_path: pathlib.Path, db_path: pathlib.Path) -> None:
    standard_images(tmp_path / "new", n=2, set_id="sv2")
    add(db_path, tmp_path / "new")
    build_config, search_config, _ = configs()
    report = merge_database(db_path, tmp_path / "v2", build_config=build_config, search_config=search_config)
    merged = load(tmp_path / "v2")
    assert merged.delta is None and merged.card_count == 6 and report.database_id == merged.database_id
    assert load(db_path).card_count == 6  # the old version still serves snapshot + delta
    checked = check_database(tmp_path / "v2", expected_model_id="pixels-6x8-v1", build_config=build_config,
                             search_config=search_config)
    assert checked.self_retrieval.not_self == [] and checked.delta_rows == 0


def test_merge_without_delta_is_an_error(db_path: pathlib.Path) -> None:
    build_config, search_config, _ = configs()
    with pytest.raises(DatabaseError, match="no delta"):
        merge_database(db_path, None, build_config=build_config, search_config=search_config)


def test_enrol_is_searchable_at_once_and_persists(db_path: pathlib.Path) -> None:
    db = load(db_path)
    vector = embed_image(4242)
    assert db.search(vector, k=2)[0][0].distance_cos > 0.2  # not in the database yet
    db.enrol(CardRecord("promo-7", "Promo Pikachu", "promo", number="7"), vector)
    hit = db.search(vector, k=2)[0][0]
    assert (hit.card.card_id, hit.card.name) == ("promo-7", "Promo Pikachu") and hit.distance_cos < 1e-4
    reloaded = load(db_path)
    assert reloaded.search(vector, k=2)[0][0].card.card_id == "promo-7"
    assert reloaded.database_id != reloaded.snapshot.database_id  # snapshot+delta id


def test_enrol_of_a_known_card_adds_a_template_and_keeps_its_record(db_path: pathlib.Path) -> None:
    db = load(db_path)
    vector = embed_image(999)
    db.enrol(CardRecord("sv1-2", "typed by hand", "sv1"), vector)
    db.enrol(CardRecord("sv1-2", "typed by hand", "sv1"), embed_image(998))
    assert db.card_count == 4 and db.row_count == 6
    hits = db.search(vector, k=3)[0]
    assert hits[0].card.card_id == "sv1-2" and hits[0].card.name == "Card 2"
    assert [h.card.card_id for h in hits].count("sv1-2") == 1


def test_enrol_rejects_bad_vectors(db_path: pathlib.Path) -> None:
    db = load(db_path)
    with pytest.raises(NormError):
        db.enrol(CardRecord("x-1", "X", "x"), embed_image(1) * 2.0)
    with pytest.raises(DimensionMismatchError):
        db.enrol(CardRecord("x-1", "X", "x"), np.ones(3, np.float32))
    assert db.delta is None and not (db_path / "delta").exists()


def test_delta_art_group_found_against_the_snapshot(tmp_path: pathlib.Path, db_path: pathlib.Path) -> None:
    write_cards(tmp_path / "new", [("sv3-1_Reprint.png", 1000 * sum(map(ord, "sv1")) + 2)])  # = sv1-3's art
    add(db_path, tmp_path / "new")
    db = load(db_path)
    assert db.art_group("sv3-1") == db.art_group("sv1-3")



def test_enrol_that_cannot_write_is_a_database_error(db_path: pathlib.Path) -> None:
    import os

    db = load(db_path)
    (db_path / f".delta.tmp-{os.getpid()}").write_text("a file where the temporary directory goes")
    with pytest.raises(DatabaseError, match="cannot create database directory"):
        db.enrol(CardRecord("x-1", "X", "x"), embed_image(5))
    assert db.delta is None
