"""On-disk layout of one database block (snapshot or delta): write once, verify on every read."""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import pathlib
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cardsorter.backends.card_index import (
    USEARCH_METRIC,
    SearchConfig,
    save_usearch_index,
)
from cardsorter.core.types import CardRecord
from cardsorter.db.errors import (
    ChecksumMismatchError,
    DimensionMismatchError,
    DuplicateIdError,
    FormatError,
    MissingFileError,
    ModelMismatchError,
    NonFiniteError,
    NormError,
    RowCountMismatchError,
    listed,
)
from cardsorter.db.records import record_from_json, record_to_json

FORMAT_NAME = "cardsorter-reference-db"
FORMAT_VERSION = 1
EMBEDDINGS_FILE = "embeddings.npy"
METADATA_FILE = "metadata.json"
INDEX_FILE = "index.json"
USEARCH_FILE = "usearch.index"
MANIFEST_FILE = "manifest.json"
DATA_FILES = (EMBEDDINGS_FILE, METADATA_FILE, INDEX_FILE, USEARCH_FILE)
CALIBRATION_VIEWS_FILE = "calibration_views.npz"   # optional: the augmented views the calibration used
DELTA_DIR = "delta"
NORM_MIN = 0.99  # unit-length sanity window from the scaling plan's integrity checks
NORM_MAX = 1.01
CHUNK_ROWS = 8192


@dataclass(frozen=True)
class TemplateRow:
    """One embedding row: which card it is a template of and which image it came from."""

    card_id: str
    source: str
    high: bool = False


@dataclass(frozen=True)
class NearDuplicate:
    """Two cards whose templates are (almost) the same vector: art-identical printings or duplicates."""

    card_a: str
    card_b: str
    distance_cos: float


@dataclass
class Block:
    """A verified snapshot or delta as loaded: vectors are memory-mapped (read-only)."""

    path: pathlib.Path
    manifest: dict[str, Any]
    vectors: np.ndarray
    rows: list[TemplateRow]
    records: dict[str, CardRecord]
    near_duplicates: list[NearDuplicate] = field(default_factory=list)

    @property
    def database_id(self) -> str:
        return str(self.manifest["database_id"])

    @property
    def model_id(self) -> str:
        return str(self.manifest["model"]["id"])

    @property
    def templates_max(self) -> int:
        return int(self.manifest["counts"]["templates_max"])


def sha256_file(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def check_vectors(vectors: np.ndarray, rows: Sequence[TemplateRow], where: str) -> None:
    """No NaN/Inf, every norm in [NORM_MIN, NORM_MAX]; errors name the offending rows' cards."""
    if vectors.ndim != 2 or vectors.dtype != np.float32:
        raise FormatError(f"{where}: embeddings must be a 2-D float32 array, got {vectors.shape} {vectors.dtype}")
    bad_finite: list[str] = []
    bad_norm: list[str] = []
    for start in range(0, len(vectors), CHUNK_ROWS):
        chunk = np.asarray(vectors[start:start + CHUNK_ROWS], dtype=np.float32)
        finite = np.isfinite(chunk).all(axis=1)
        norms = np.linalg.norm(np.where(np.isfinite(chunk), chunk, 0.0), axis=1)
        for i in np.flatnonzero(~finite):
            bad_finite.append(f"row {start + i} ({rows[int(start + i)].card_id})")
        for i in np.flatnonzero(finite & ((norms < NORM_MIN) | (norms > NORM_MAX))):
            bad_norm.append(f"row {start + i} ({rows[int(start + i)].card_id}) norm {norms[i]:.4f}")
    if bad_finite:
        raise NonFiniteError(f"{where}: {len(bad_finite)} embedding rows hold NaN/Inf: {listed(bad_finite)}")
    if bad_norm:
        raise NormError(f"{where}: {len(bad_norm)} embedding rows have a norm outside "
                        f"[{NORM_MIN}, {NORM_MAX}]: {listed(bad_norm)}")


def check_consistency(vectors: np.ndarray, rows: Sequence[TemplateRow], records: Mapping[str, CardRecord],
                      where: str) -> None:
    """Rows match metadata both ways; no template listed twice."""
    if len(rows) != len(vectors):
        raise RowCountMismatchError(f"{where}: {len(vectors)} embedding rows but {len(rows)} index rows")
    row_cards = {r.card_id for r in rows}
    no_record = sorted(row_cards - set(records))
    if no_record:
        raise RowCountMismatchError(f"{where}: index rows for cards missing from metadata: {listed(no_record)}")
    no_rows = sorted(set(records) - row_cards)
    if no_rows:
        raise RowCountMismatchError(f"{where}: metadata records without embedding rows: {listed(no_rows)}")
    seen: set[tuple[str, str]] = set()
    dup = []
    for r in rows:
        key = (r.card_id, r.source)
        if key in seen:
            dup.append(f"{r.card_id} ({r.source})")
        seen.add(key)
    if dup:
        raise DuplicateIdError(f"{where}: the same template is listed twice: {listed(dup)}")


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    dup = []
    for key, value in pairs:
        if key in out:
            dup.append(key)
        out[key] = value
    if dup:
        raise DuplicateIdError(f"duplicate keys in JSON object: {listed(dup)}")
    return out


def _read_json(path: pathlib.Path) -> Any:
    if not path.is_file():
        raise MissingFileError(f"missing database file {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_pairs_no_duplicates)
    except DuplicateIdError as err:
        raise DuplicateIdError(f"{path}: {err}") from err
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FormatError(f"cannot read {path}: {err}") from err


def _write_json(path: pathlib.Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")


def write_block(path: pathlib.Path, vectors: np.ndarray, rows: Sequence[TemplateRow],
                records: Mapping[str, CardRecord], near_duplicates: Sequence[NearDuplicate], *,
                model_id: str, model_sha256: str, kind: str, parent_database_id: str,
                search_config: SearchConfig, report: Mapping[str, Any], replace: bool = False,
                usearch_index: Any = None, calibration: Mapping[str, Any] | None = None,
                calibration_views: Any = None, search_measured: Mapping[str, Any] | None = None,
                ) -> dict[str, Any]:
    """Verify and write one block into a new directory ``path`` (atomically, via a temporary sibling).

    Snapshots are immutable: ``path`` must not exist unless ``replace`` (used for the delta only).
    ``calibration`` (open-set bands and curves, cardsorter.db.calibrate) and ``search_measured``
    (HNSW recall at build) go into the manifest; ``calibration_views`` (CalibrationViews) into
    calibration_views.npz. Returns the manifest.
    """
    where = f"database {path}"
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    check_consistency(vectors, rows, records, where)
    check_vectors(vectors, rows, where)
    if path.exists() and not replace:
        raise FormatError(f"{path} already exists: a database is immutable, write a new directory")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
    except OSError as err:
        raise FormatError(f"cannot create database directory next to {path}: {err}") from err
    try:
        np.save(tmp / EMBEDDINGS_FILE, vectors)
        used = sorted({r.card_id for r in rows})
        _write_json(tmp / METADATA_FILE, {cid: record_to_json(records[cid]) for cid in used})
        _write_json(tmp / INDEX_FILE, {
            "rows": [{"card_id": r.card_id, "source": r.source, "high": r.high} for r in rows],
            "near_duplicates": [[d.card_a, d.card_b, round(d.distance_cos, 6)] for d in near_duplicates],
        })
        save_usearch_index(vectors, tmp / USEARCH_FILE, search_config, usearch_index)
        names = list(DATA_FILES)
        if calibration_views is not None and len(calibration_views):
            from cardsorter.db.calibrate import save_views

            save_views(tmp / CALIBRATION_VIEWS_FILE, calibration_views)
            names.append(CALIBRATION_VIEWS_FILE)
        files = {name: sha256_file(tmp / name) for name in names}
        content = hashlib.sha256()
        for part in (model_id, files[EMBEDDINGS_FILE], files[METADATA_FILE], files[INDEX_FILE]):
            content.update(part.encode())
        counts: dict[str, int] = {}
        for r in rows:
            counts[r.card_id] = counts.get(r.card_id, 0) + 1
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "database_id": content.hexdigest()[:16],
            "parent_database_id": parent_database_id,
            "model": {"id": model_id, "sha256": model_sha256},
            "dimension": int(vectors.shape[1]),
            "metric": USEARCH_METRIC,
            "counts": {"rows": len(rows), "cards": len(counts), "templates_max": max(counts.values(), default=0)},
            "built_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "usearch": {"dtype": search_config.dtype, "connectivity": search_config.connectivity,
                        "expansion_add": search_config.expansion_add},
            "files": files,
            "report": dict(report),
        }
        if search_measured is not None:
            manifest["search"] = dict(search_measured)
        if calibration is not None:
            manifest["calibration"] = dict(calibration)
        _write_json(tmp / MANIFEST_FILE, manifest)
        if path.exists():  # replace (delta): swap directories, then drop the old one
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.rename(path)
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise FormatError(f"cannot write database {path}: {err}") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def read_block(path: pathlib.Path, expected_model_id: str | None = None, verify_checksums: bool = True,
               mmap: bool = True) -> Block:
    """Read one block and run every integrity check; raises the named DatabaseError of the first failure."""
    where = f"database {path}"
    if not path.is_dir():
        raise MissingFileError(f"database directory not found: {path}")
    manifest = _read_json(path / MANIFEST_FILE)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise FormatError(f"{path / MANIFEST_FILE} is not a {FORMAT_NAME} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FormatError(f"{where}: format version {manifest.get('format_version')} "
                          f"is not supported (this code reads {FORMAT_VERSION})")
    try:
        model_id = str(manifest["model"]["id"])
        dimension = int(manifest["dimension"])
        files = dict(manifest["files"])
        int(manifest["counts"]["templates_max"])
        str(manifest["database_id"])
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{path / MANIFEST_FILE} lacks a field: {err!r}") from err
    if expected_model_id is not None and model_id != expected_model_id:
        raise ModelMismatchError(f"{where} was built with model '{model_id}' but the embedder is "
                                 f"'{expected_model_id}': rebuild the database with this model")
    for name in DATA_FILES:
        if not (path / name).is_file():
            raise MissingFileError(f"{where}: missing file {name}")
        if name not in files:
            raise FormatError(f"{where}: manifest has no checksum for {name}")
    if verify_checksums:
        optional = [CALIBRATION_VIEWS_FILE] if CALIBRATION_VIEWS_FILE in files else []
        missing = [name for name in optional if not (path / name).is_file()]
        if missing:
            raise MissingFileError(f"{where}: missing file {', '.join(missing)}")
        bad = [name for name in (*DATA_FILES, *optional) if sha256_file(path / name) != files[name]]
        if bad:
            raise ChecksumMismatchError(f"{where}: sha256 differs from the manifest for {', '.join(bad)} "
                                        "(modified or truncated after the build)")
    try:
        vectors = np.load(path / EMBEDDINGS_FILE, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise FormatError(f"cannot read {path / EMBEDDINGS_FILE}: {err}") from err
    if vectors.ndim != 2 or vectors.shape[1] != dimension:
        raise DimensionMismatchError(f"{where}: embeddings are {vectors.shape}, manifest says dimension {dimension}")
    index = _read_json(path / INDEX_FILE)
    meta = _read_json(path / METADATA_FILE)
    if not isinstance(index, dict) or not isinstance(index.get("rows"), list) or not isinstance(meta, dict):
        raise FormatError(f"{where}: index.json needs 'rows' and metadata.json must be an object")
    try:
        rows = [TemplateRow(str(r["card_id"]), str(r["source"]), bool(r.get("high", False))) for r in index["rows"]]
        near = [NearDuplicate(str(a), str(b), float(d)) for a, b, d in index.get("near_duplicates", [])]
    except (KeyError, TypeError, ValueError) as err:
        raise FormatError(f"{path / INDEX_FILE} is malformed: {err!r}") from err
    records = {cid: record_from_json(cid, obj) for cid, obj in meta.items()}
    check_consistency(vectors, rows, records, where)
    check_vectors(vectors, rows, where)
    return Block(path=path, manifest=manifest, vectors=vectors, rows=rows, records=records, near_duplicates=near)
