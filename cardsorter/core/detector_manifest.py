"""The card detector's manifest (models/carddet.yaml): file, sha256, input contract and output decoding."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cardsorter.core.errors import ModelError

REQUIRED_KEYS = ("model_id", "file", "sha256", "input_name", "input_width", "input_height", "colour_order", "layout",
                 "normalisation", "mean", "std", "outputs", "stride", "corner_unit_px", "letterbox_pad_grey")
OPTIONAL_KEYS = ("decoding", "operators", "description", "training", "figures", "imx500")
OUTPUT_NAMES = ("heatmaps", "geometry")


@dataclass(frozen=True)
class DetectorManifest:
    path: Path
    model_id: str
    file: Path
    sha256: str
    input_name: str
    input_width: int
    input_height: int
    colour_order: str          # rgb | bgr
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    output_names: tuple[str, str]
    stride: int
    corner_unit_px: float
    pad_grey: int

    @property
    def input_size_wh(self) -> tuple[int, int]:
        return (self.input_width, self.input_height)


def _need(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: Path) -> Any:
    if key not in raw:
        raise ModelError(f"detector manifest {where}: missing key '{key}'")
    value = raw[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ModelError(f"detector manifest {where}: key '{key}' has the wrong type ({type(value).__name__})")
    return value


def _triple(raw: Mapping[str, Any], key: str, where: Path) -> tuple[float, float, float]:
    v = _need(raw, key, list, where)
    if len(v) != 3 or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
        raise ModelError(f"detector manifest {where}: key '{key}' must be three numbers, got {v!r}")
    return (float(v[0]), float(v[1]), float(v[2]))


def parse_detector_manifest(raw: Any, path: Path) -> DetectorManifest:
    """Validate a detector manifest mapping; ModelError names the first bad key."""
    if not isinstance(raw, Mapping):
        raise ModelError(f"detector manifest {path}: expected a mapping of keys, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise ModelError(f"detector manifest {path}: unknown key '{unknown[0]}'")
    file = (path.parent / str(_need(raw, "file", str, path))).resolve()
    if file.suffix.lower() != ".onnx":
        raise ModelError(f"detector manifest {path}: key 'file' must name an .onnx file, got {file.name!r}")
    sha = str(_need(raw, "sha256", str, path)).lower()
    if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
        raise ModelError(f"detector manifest {path}: key 'sha256' must be 64 hex digits")
    width, height = _need(raw, "input_width", int, path), _need(raw, "input_height", int, path)
    stride = _need(raw, "stride", int, path)
    if stride < 1 or width % stride or height % stride or not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ModelError(f"detector manifest {path}: input {width}x{height} must be 16-4096 and a multiple "
                         f"of 'stride' ({stride})")
    colour = _need(raw, "colour_order", str, path)
    if colour not in ("rgb", "bgr"):
        raise ModelError(f"detector manifest {path}: key 'colour_order' must be rgb or bgr, got {colour!r}")
    if _need(raw, "layout", str, path) != "nchw":
        raise ModelError(f"detector manifest {path}: key 'layout' must be nchw")
    if _need(raw, "normalisation", str, path) != "mean_std":
        raise ModelError(f"detector manifest {path}: key 'normalisation' must be mean_std")
    std = _triple(raw, "std", path)
    if min(std) <= 0:
        raise ModelError(f"detector manifest {path}: key 'std' must be positive")
    outputs = _need(raw, "outputs", dict, path)
    if set(outputs) != set(OUTPUT_NAMES):
        raise ModelError(f"detector manifest {path}: key 'outputs' must name exactly {list(OUTPUT_NAMES)}")
    pad = _need(raw, "letterbox_pad_grey", int, path)
    if not 0 <= pad <= 255:
        raise ModelError(f"detector manifest {path}: key 'letterbox_pad_grey' must be 0-255")
    unit = float(_need(raw, "corner_unit_px", (int, float), path))
    if unit <= 0:
        raise ModelError(f"detector manifest {path}: key 'corner_unit_px' must be > 0")
    return DetectorManifest(path=path, model_id=str(_need(raw, "model_id", str, path)), file=file, sha256=sha,
                            input_name=str(_need(raw, "input_name", str, path)), input_width=width,
                            input_height=height, colour_order=colour, mean=_triple(raw, "mean", path), std=std,
                            output_names=OUTPUT_NAMES, stride=stride, corner_unit_px=unit, pad_grey=pad)


def load_detector_manifest(path: str | Path) -> DetectorManifest:
    """Read and validate models/carddet.yaml; raises ModelError naming the file and the bad key."""
    p = Path(path)
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ModelError(f"cannot read detector manifest {p}: {err}") from err
    except yaml.YAMLError as err:
        raise ModelError(f"detector manifest {p} is not valid YAML: {err}") from err
    return parse_detector_manifest(raw, p.resolve())
