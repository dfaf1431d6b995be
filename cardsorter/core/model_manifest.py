"""The model manifest (models/<name>.yaml): everything the code needs to know about an embedding model."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cardsorter.core.errors import ModelError

COLOUR_ORDERS = ("rgb", "bgr")
LAYOUTS = ("nchw", "nhwc")
METRICS = ("cos",)
NORMALISATIONS = ("mean_std", "in_model")
FORMATS = {".onnx": "onnx", ".hef": "hef"}
REQUIRED_KEYS = ("model_id", "file", "sha256", "input_name", "input_width", "input_height", "colour_order",
                 "layout", "normalisation", "output_name", "dimension", "metric")
OPTIONAL_KEYS = ("mean", "std", "batch_size", "preprocessing", "description", "training")
PREPROCESSING_KEYS = ("clahe", "clahe_clip_limit", "clahe_tile_grid", "gamma")


@dataclass(frozen=True)
class Preprocessing:
    """Optional photometric preprocessing before normalisation (the original design's CLAHE + gamma)."""

    clahe: bool = False
    clahe_clip_limit: float = 2.0
    clahe_tile_grid: int = 8
    gamma: float = 1.0


@dataclass(frozen=True)
class ModelManifest:
    """One embedding model: file, input contract, output contract. Built by load_manifest."""

    path: Path                    # the manifest file itself
    model_id: str
    file: Path                    # absolute path of the model file (resolved next to the manifest)
    sha256: str
    input_name: str
    input_width: int
    input_height: int
    colour_order: str             # rgb | bgr: the channel order the model expects
    layout: str                   # nchw | nhwc
    normalisation: str            # mean_std (host normalises) | in_model (HEF takes raw uint8)
    mean: tuple[float, float, float]   # in 0..255 pixel units, in the model's colour order
    std: tuple[float, float, float]
    output_name: str
    dimension: int
    metric: str
    preprocessing: Preprocessing
    batch_size: int               # frames per inference the model was compiled for (0: any, dynamic axis)
    # The catalogue cards the model was trained on (``training.trained_cards``: a file next to the manifest,
    # one card id per line), None when it was not trained on a catalogue's own cards (the procedural default).
    # `db build` then calibrates the open-set bands on cards the model never saw.
    trained_cards: frozenset[str] | None = None

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return (self.input_width, self.input_height)

    @property
    def format(self) -> str:
        return FORMATS[self.file.suffix.lower()]


TRAINED_CARDS_SUFFIX = ".trained_cards.txt"


def _trained_cards(training: Any, where: Path) -> frozenset[str] | None:
    """The card ids of ``training.trained_cards`` (a file next to the manifest), None without one."""
    name = training.get("trained_cards") if isinstance(training, Mapping) else None
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise ModelError(f"manifest {where}: training.trained_cards must name a file, got {name!r}")
    file = where.parent / name
    try:
        cards = frozenset(line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(f"manifest {where}: cannot read training.trained_cards {file}: {err}") from err
    if not cards:
        raise ModelError(f"manifest {where}: training.trained_cards {file} lists no card")
    return cards


def _get(raw: Mapping[str, Any], key: str, kind: type, where: Path) -> Any:
    if key not in raw:
        raise ModelError(f"manifest {where}: missing key '{key}'")
    value = raw[key]
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ModelError(f"manifest {where}: key '{key}' must be a finite number, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ModelError(f"manifest {where}: key '{key}' must be an integer, got {value!r}")
        return value
    if not isinstance(value, kind) or (kind is str and not value):
        raise ModelError(f"manifest {where}: key '{key}' must be a non-empty {kind.__name__}, got {value!r}")
    return value


def _choice(raw: Mapping[str, Any], key: str, choices: tuple[str, ...], where: Path) -> str:
    value = str(_get(raw, key, str, where)).lower()
    if value not in choices:
        raise ModelError(f"manifest {where}: key '{key}' must be one of {list(choices)}, got {raw[key]!r}")
    return value


def _triple(raw: Mapping[str, Any], key: str, where: Path, positive: bool) -> tuple[float, float, float]:
    value = raw.get(key)
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ModelError(f"manifest {where}: key '{key}' must be a list of 3 numbers, got {value!r}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ModelError(f"manifest {where}: key '{key}[{i}]' must be a finite number, got {v!r}")
        if positive and v <= 0:
            raise ModelError(f"manifest {where}: key '{key}[{i}]' must be > 0, got {v!r}")
        out.append(float(v))
    return (out[0], out[1], out[2])


def _preprocessing(raw: Any, where: Path) -> Preprocessing:
    if raw is None:
        return Preprocessing()
    if not isinstance(raw, Mapping):
        raise ModelError(f"manifest {where}: key 'preprocessing' must be a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(PREPROCESSING_KEYS))
    if unknown:
        raise ModelError(f"manifest {where}: unknown key 'preprocessing.{unknown[0]}' "
                         f"(known: {', '.join(PREPROCESSING_KEYS)})")
    p = Preprocessing()
    clahe = raw.get("clahe", p.clahe)
    if not isinstance(clahe, bool):
        raise ModelError(f"manifest {where}: key 'preprocessing.clahe' must be true or false, got {clahe!r}")
    clip = raw.get("clahe_clip_limit", p.clahe_clip_limit)
    if isinstance(clip, bool) or not isinstance(clip, (int, float)) or not clip > 0:
        raise ModelError(f"manifest {where}: key 'preprocessing.clahe_clip_limit' must be > 0, got {clip!r}")
    tiles = raw.get("clahe_tile_grid", p.clahe_tile_grid)
    if isinstance(tiles, bool) or not isinstance(tiles, int) or tiles < 1:
        raise ModelError(f"manifest {where}: key 'preprocessing.clahe_tile_grid' must be an integer >= 1, "
                         f"got {tiles!r}")
    gamma = raw.get("gamma", p.gamma)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 < gamma < 10:
        raise ModelError(f"manifest {where}: key 'preprocessing.gamma' must be in (0, 10), got {gamma!r}")
    return Preprocessing(clahe, float(clip), tiles, float(gamma))


def parse_manifest(raw: Any, path: Path) -> ModelManifest:
    """Validate a manifest mapping; ModelError names the first bad key."""
    if not isinstance(raw, Mapping):
        raise ModelError(f"manifest {path}: expected a mapping of keys, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ModelError(f"manifest {path}: unknown key '{unknown[0]}'")
    file_name = str(_get(raw, "file", str, path))
    file = (path.parent / file_name).resolve()
    if file.suffix.lower() not in FORMATS:
        raise ModelError(f"manifest {path}: key 'file' must end in one of {list(FORMATS)}, got {file_name!r}")
    sha = str(_get(raw, "sha256", str, path)).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ModelError(f"manifest {path}: key 'sha256' must be 64 hex digits, got {raw['sha256']!r}")
    width = _get(raw, "input_width", int, path)
    height = _get(raw, "input_height", int, path)
    for key, v in (("input_width", width), ("input_height", height)):
        if not 8 <= v <= 4096:
            raise ModelError(f"manifest {path}: key '{key}' must be in [8, 4096], got {v}")
    dimension = _get(raw, "dimension", int, path)
    if dimension < 1:
        raise ModelError(f"manifest {path}: key 'dimension' must be >= 1, got {dimension}")
    batch_size = raw.get("batch_size", 0)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 0:
        raise ModelError(f"manifest {path}: key 'batch_size' must be an integer >= 0, got {batch_size!r}")
    normalisation = _choice(raw, "normalisation", NORMALISATIONS, path)
    if normalisation == "mean_std":
        mean = _triple(raw, "mean", path, positive=False)
        std = _triple(raw, "std", path, positive=True)
    else:
        for key in ("mean", "std"):
            if key in raw:
                raise ModelError(f"manifest {path}: key '{key}' conflicts with 'normalisation: in_model'")
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    manifest = ModelManifest(
        path=path, model_id=str(_get(raw, "model_id", str, path)), file=file, sha256=sha,
        input_name=str(_get(raw, "input_name", str, path)), input_width=width, input_height=height,
        colour_order=_choice(raw, "colour_order", COLOUR_ORDERS, path),
        layout=_choice(raw, "layout", LAYOUTS, path), normalisation=normalisation, mean=mean, std=std,
        output_name=str(_get(raw, "output_name", str, path)), dimension=dimension,
        metric=_choice(raw, "metric", METRICS, path), preprocessing=_preprocessing(raw.get("preprocessing"), path),
        batch_size=batch_size, trained_cards=_trained_cards(raw.get("training"), path),
    )
    if manifest.format == "hef" and manifest.layout != "nhwc":
        raise ModelError(f"manifest {path}: key 'layout' must be 'nhwc' for a HEF (HailoRT takes HWC frames)")
    if manifest.format == "hef" and manifest.normalisation != "in_model":
        raise ModelError(f"manifest {path}: key 'normalisation' must be 'in_model' for a HEF "
                         "(its uint8 input takes raw pixels; compile the normalisation into the HEF)")
    return manifest


def load_manifest(path: str | Path) -> ModelManifest:
    """Read and validate models/<name>.yaml; raises ModelError naming the file and the bad key."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ModelError(f"cannot read model manifest {p}: {err}") from err
    except yaml.YAMLError as err:
        raise ModelError(f"model manifest {p} is not valid YAML: {err}") from err
    return parse_manifest(raw, p.resolve())


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_model_bytes(manifest: ModelManifest) -> bytes:
    """The model file's bytes after checking its sha256 against the manifest (ModelError otherwise)."""
    try:
        data = manifest.file.read_bytes()
    except OSError as err:
        raise ModelError(f"model file {manifest.file} (from {manifest.path}) cannot be read: {err}") from err
    actual = hashlib.sha256(data).hexdigest()
    if actual != manifest.sha256:
        raise ModelError(f"model file {manifest.file}: sha256 {actual} does not match the manifest "
                         f"{manifest.path} ({manifest.sha256}); the file was changed or the manifest is stale")
    return data


def manifest_dict(**fields: Any) -> dict[str, Any]:
    """A manifest mapping in the canonical key order (for writers such as the training export)."""
    order = [*REQUIRED_KEYS[:2], "sha256", *REQUIRED_KEYS[3:], *OPTIONAL_KEYS]
    unknown = sorted(set(fields) - set(order))
    if unknown:
        raise ModelError(f"manifest: unknown key '{unknown[0]}'")
    return {k: fields[k] for k in order if k in fields}


def write_manifest(path: str | Path, fields: Mapping[str, Any]) -> ModelManifest:
    """Write a manifest YAML and validate it by loading it back."""
    p = Path(path)
    p.write_text(yaml.safe_dump(manifest_dict(**fields), sort_keys=False, default_flow_style=None),
                 encoding="utf-8")
    return load_manifest(p)
