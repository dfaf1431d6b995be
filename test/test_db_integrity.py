"""Each integrity failure of a database gives its own named DatabaseError naming the offender."""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest
from db_support import PixelEmbedder, configs, standard_images, write_metadata

from cardsorter.db.build import build_database
from cardsorter.db.database import ReferenceDatabase
from cardsorter.db.errors import (
    ChecksumMismatchError,
    DeltaMismatchError,
    DimensionMismatchError,
    DuplicateIdError,
    FormatError,
    MissingFileError,
    ModelMismatchError,
    NonFiniteError,
    NormError,
    RowCountMismatchError,
)
from cardsorter.db.store import (
    EMBEDDINGS_FILE,
    INDEX_FILE,
    MANIFEST_FILE,
    METADATA_FILE,
    sha256_file,
)


@pytest.fixture()
def db_path(tmp_path: pathlib.Path) -> pathlib.Path:
    standard_images(tmp_path / "images", n=5)
    build_config, search_config, _ = configs()
    out = tmp_path / "db"
    build_database(tmp_path / "images", out, PixelEmbedder(), build_config=build_config,
                   search_config=search_config)
    return out


def load(path: pathlib.Path, model: str | None = None) -> ReferenceDatabase:
    return ReferenceDatabase.load(path, model, configs()[1])


def resign(path: pathlib.Path, name: str) -> None:
    """Update the manifest checksum after tampering, so the check under test (not the checksum) fires."""
    manifest = json.loads((path / MANIFEST_FILE).read_text())
    manifest["files"][name] = sha256_file(path / name)
    (path / MANIFEST_FILE).write_text(json.dumps(manifest))


def tamper_vectors(path: pathlib.Path, change: object) -> None:
    vectors = np.load(path / EMBEDDINGS_FILE)
    vectors = change(vectors)  # type: ignore[operator]
    np.save(path / EMBEDDINGS_FILE, vectors)
    resign(path, EMBEDDINGS_FILE)


def test_untouched_database_loads(db_path: pathlib.Path) -> None:
    assert load(db_path, "pixels-6x8-v1").card_count == 5


def test_modified_file_fails_the_checksum(db_path: pathlib.Path) -> None:
    meta = json.loads((db_path / METADATA_FILE).read_text())
    meta["sv1-1"]["name"] = "Edited"
    (db_path / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ChecksumMismatchError, match="metadata.json"):
        load(db_path)


def test_fewer_embedding_rows_than_index_rows(db_path: pathlib.Path) -> None:
    tamper_vectors(db_path, lambda v: v[:-1])
    with pytest.raises(RowCountMismatchError, match="4 embedding rows but 5 index rows"):
        load(db_path)


def test_metadata_record_without_rows(db_path: pathlib.Path) -> None:
    meta = json.loads((db_path / METADATA_FILE).read_text())
    meta["sv9-9"] = {**meta["sv1-1"], "card_id": "sv9-9"}
    (db_path / METADATA_FILE).write_text(json.dumps(meta))
    resign(db_path, METADATA_FILE)
    with pytest.raises(RowCountMismatchError, match="sv9-9"):
        load(db_path)


def test_index_row_without_metadata_record(db_path: pathlib.Path) -> None:
    meta = json.loads((db_path / METADATA_FILE).read_text())
    del meta["sv1-2"]
    (db_path / METADATA_FILE).write_text(json.dumps(meta))
    resign(db_path, METADATA_FILE)
    with pytest.raises(RowCountMismatchError, match="missing from metadata: sv1-2"):
        load(db_path)


def test_duplicate_card_id_in_metadata_json(db_path: pathlib.Path) -> None:
    text = (db_path / METADATA_FILE).read_text()
    record = json.dumps(json.loads(text)["sv1-3"])
    (db_path / METADATA_FILE).write_text(text.rstrip().rstrip("}") + f', "sv1-3": {record}}}')
    resign(db_path, METADATA_FILE)
    with pytest.raises(DuplicateIdError, match="sv1-3"):
        load(db_path)


def test_duplicate_template_in_index(db_path: pathlib.Path) -> None:
    index = json.loads((db_path / INDEX_FILE).read_text())
    index["rows"].append(dict(index["rows"][0]))
    (db_path / INDEX_FILE).write_text(json.dumps(index))
    resign(db_path, INDEX_FILE)
    tamper_vectors(db_path, lambda v: np.concatenate([v, v[:1]]))
    with pytest.raises(DuplicateIdError, match="template is listed twice: sv1-1"):
        load(db_path)


def test_duplicate_id_in_source_metadata_fails_the_build(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "images", n=2)
    card = {"id": "sv1-1", "name": "A", "number": "1", "set": {"id": "sv1"}}
    write_metadata(tmp_path / "meta.json", [card, card])
    build_config, search_config, _ = configs()
    with pytest.raises(DuplicateIdError, match="sv1-1"):
        build_database(tmp_path / "images", tmp_path / "db", PixelEmbedder(), build_config=build_config,
                       search_config=search_config, metadata_path=tmp_path / "meta.json")


def test_row_norm_outside_window(db_path: pathlib.Path) -> None:
    def scale(v: np.ndarray) -> np.ndarray:
        v[2] *= 1.05
        return v
    tamper_vectors(db_path, scale)
    with pytest.raises(NormError, match=r"row 2 \(sv1-3\) norm 1.05"):
        load(db_path)


def test_nan_row(db_path: pathlib.Path) -> None:
    def poison(v: np.ndarray) -> np.ndarray:
        v[4, 7] = np.nan
        return v
    tamper_vectors(db_path, poison)
    with pytest.raises(NonFiniteError, match=r"row 4 \(sv1-5\)"):
        load(db_path)


def test_model_id_mismatch(db_path: pathlib.Path) -> None:
    with pytest.raises(ModelMismatchError, match="pixels-6x8-v1.*other-model"):
        load(db_path, "other-model")


def test_missing_file(db_path: pathlib.Path) -> None:
    (db_path / "usearch.index").unlink()
    with pytest.raises(MissingFileError, match="usearch.index"):
        load(db_path)


def test_unknown_format_version(db_path: pathlib.Path) -> None:
    manifest = json.loads((db_path / MANIFEST_FILE).read_text())
    manifest["format_version"] = 99
    (db_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(FormatError, match="format version 99"):
        load(db_path)


def test_dimension_differs_from_manifest(db_path: pathlib.Path) -> None:
    tamper_vectors(db_path, lambda v: np.ascontiguousarray(v[:, :100]))
    with pytest.raises(DimensionMismatchError, match="dimension 144"):
        load(db_path)


def test_query_of_wrong_dimension(db_path: pathlib.Path) -> None:
    with pytest.raises(DimensionMismatchError, match="144"):
        load(db_path).search(np.zeros((1, 10), np.float32), k=2)


def test_delta_of_another_snapshot(tmp_path: pathlib.Path, db_path: pathlib.Path) -> None:
    db = load(db_path)
    db.enrol(db.record("sv1-1"), np.asarray(db.snapshot.vectors[0]))
    standard_images(tmp_path / "images2", n=3, set_id="sv2")
    build_config, search_config, _ = configs()
    other = tmp_path / "other"
    build_database(tmp_path / "images2", other, PixelEmbedder(), build_config=build_config,
                   search_config=search_config)
    shutil.copytree(db_path / "delta", other / "delta")
    with pytest.raises(DeltaMismatchError, match="written for database"):
        load(other)
