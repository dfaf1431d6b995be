"""The settings tree: config/sorter.yaml parsed, typed and validated once, one frozen section per node.

``load_settings(path, overrides).camera.detector`` is what the camera node declares under
``detector.*``; every node declares its slice with ``cardsorter.ros.params.declare_settings`` from
the same field definitions (types, descriptions, ranges). A YAML leaf is a field of a node's
settings: ``section`` fields nest under their name (``tracker.iou_min``), ``inline`` ones put a
core config's fields at their parent's level (the smoother's ``confirm_views``). ``/**`` values
reach every node that has a field of that name, as rcl hands them out.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import pathlib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from cardsorter.backends.actuators import ACTUATOR_CONFIGS, ActuatorSettings
from cardsorter.backends.cameras import CameraConfig, CloseupConfig, Imx500Settings, SyntheticSettings, VideoConfig
from cardsorter.backends.card_index import SearchConfig
from cardsorter.backends.detectors import DetectorSettings
from cardsorter.config import default_params_file, params_file_blocks
from cardsorter.core.errors import ConfigError
from cardsorter.core.fields import check_ranges, describe, doc, inline, section, section_kind
from cardsorter.core.frame_selection import FrameSelectorConfig
from cardsorter.core.gate_schedule import BeltConfig
from cardsorter.core.matching import MatchBandsConfig, MatcherConfig
from cardsorter.core.printing import PrintingConfig
from cardsorter.core.smoothing import SmootherConfig
from cardsorter.core.sorting import SorterConfig
from cardsorter.core.tracking import TrackerConfig
from cardsorter.core.validation import InputChecksConfig
from cardsorter.db.build import BuildConfig
from cardsorter.inventory.cards import SessionConfig

T = TypeVar("T")

CAMERA_SOURCES = ("imx500", "video", "synthetic", "none")
EMBEDDER_BACKENDS = ("onnx", "hailo")


# --- the tree ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CameraSettings:
    """``/**/camera``: the source, its frame, the CPU detector and each source's own block."""

    source: str = doc("imx500 (AI Camera), video (USB camera, file or image folder), synthetic, none (bag replay)")
    frame_id: str = doc("frame id of the camera")
    frame: CameraConfig = inline("frame rate and size")
    detector: DetectorSettings = section("the card detector run on the CPU (sources without their own)")
    imx500: Imx500Settings = section("picamera2 + the on-sensor detection network")
    video: VideoConfig = section("OpenCV camera, video file or image folder")
    synthetic: SyntheticSettings = section("the rendered belt or station")
    closeup: CloseupConfig = section("high-resolution card views for the printing reader")
    input: InputChecksConfig = section("checks of received messages (closeup requests)")

    def __post_init__(self) -> None:
        if self.source not in CAMERA_SOURCES:
            raise ValueError(f"source must be one of {', '.join(CAMERA_SOURCES)}, got '{self.source}'")


@dataclass(frozen=True)
class FrameSelectorSettings:
    """``/**/frame_selector``: tracking and the gate choosing which views are embedded."""

    frame_id: str = doc("frame id of the camera")
    model_manifest: str = doc("model manifest (yaml) whose input size the crops are warped to")
    tracker: TrackerConfig = section("the card tracker")
    gate: FrameSelectorConfig = section("which views of a track are embedded")
    input: InputChecksConfig = section("checks of received messages")


@dataclass(frozen=True)
class EmbedderSettings:
    """``/**/embedder``."""

    backend: str = doc("embedding backend: onnx (ONNX Runtime, CPU) or hailo (HailoRT, Hailo-8)")
    model_manifest: str = doc("model manifest (yaml) next to the model file")
    threads: int = doc("CPU threads for the onnx backend", lo=1)
    input: InputChecksConfig = section("checks of received messages")

    def __post_init__(self) -> None:
        if self.backend not in EMBEDDER_BACKENDS:
            raise ValueError(f"backend must be onnx or hailo, got '{self.backend}'")
        check_ranges(self)


@dataclass(frozen=True)
class MatcherSettings:
    """``/**/matcher``: the database, the search and the bands (``build.*``: the database builder's)."""

    database: str = doc("reference database directory (snapshot; DB/delta is served with it)")
    verify_checksums: bool = doc("verify every file's sha256 against the manifest when loading")
    model_manifest: str = doc("model manifest: its model id must match the database's")
    matching: MatcherConfig = inline("matches per embedding")
    bands: MatchBandsConfig = section("cosine-distance decision bands")
    search: SearchConfig = section("exact / HNSW search")
    build: BuildConfig = section("db build / add / merge (read by the database builder, not the node)")
    input: InputChecksConfig = section("checks of received messages")

    def __post_init__(self) -> None:
        if not self.database:
            raise ValueError("database must not be empty")


@dataclass(frozen=True)
class SmootherSettings:
    """``/**/smoother``."""

    frame_id: str = doc("frame id of the camera")
    smoothing: SmootherConfig = inline("views needed per decision")
    printing: PrintingConfig = section("the printing reader's closeups and their vote (shared with printing_reader)")
    input: InputChecksConfig = section("checks of received messages")


@dataclass(frozen=True)
class PrintingReaderSettings:
    """``/**/printing_reader``: reads the collector number on closeups of cards whose art has several printings."""

    frame_id: str = doc("frame id of the camera")
    printing: PrintingConfig = section("the printing reader's closeups and their vote (shared with the smoother)")
    fixed_boxes: str = doc("recognise the layouts' fixed number boxes: fallback (when detection reads no number) "
                           "| always (every view)")
    input: InputChecksConfig = section("checks of received messages")

    def __post_init__(self) -> None:
        if self.fixed_boxes not in ("fallback", "always"):
            raise ValueError(f"fixed_boxes must be fallback or always, got '{self.fixed_boxes}'")


@dataclass(frozen=True)
class SorterSettings:
    """``/**/sorter``: the core's decisions, the belt, the actuators, the inventory and the session."""

    frame_id: str = doc("frame id of the camera")
    model_manifest: str = doc("model manifest: its id is recorded in inventory rows")
    actuator_kind: str = doc("actuator driver: simulated | pca9685 | gpio | serial (settings under actuator.<kind>)")
    inventory_path: str = doc("inventory: SQLite file, or postgresql:// URL shared by several stations (append-only; "
                              "one row per physical card)")
    sort_log: str = doc("sort log CSV written as cards are sorted (empty: none)")
    clock_tick_ms: float = doc(
        "0: time is only the newest frame stamp (replay: identical decisions on any machine); > 0: every "
        "tick extrapolates that stamp by the wall time since the frame arrived, so gates fire on time "
        "between frames and after a dropped frame (the robot)", lo=0.0)
    core: SorterConfig = inline("how decisions are made and when they are executed")
    flow: BeltConfig = section("the belt model (flow mode)")
    actuator: ActuatorSettings = section("one block per actuator kind")
    session: SessionConfig = section("what this session records for every card")
    input: InputChecksConfig = section("checks of received messages")

    def __post_init__(self) -> None:
        check_ranges(self)
        if self.actuator_kind not in ACTUATOR_CONFIGS:
            raise ValueError(f"actuator_kind must be one of {sorted(ACTUATOR_CONFIGS)}, got '{self.actuator_kind}'")
        if self.flow.speed_source == "encoder":
            # BeltModel.arrival needs encoder ticks with every track end; no node reads an encoder, so
            # the first card would raise inside the sorter's callback.
            raise ValueError("flow.speed_source 'encoder' needs a belt encoder tick source, and no node provides "
                             "one yet: use 'track' (speed measured from the card's track) or 'config' "
                             "(flow.belt_speed_mm_per_s)")


@dataclass(frozen=True)
class OverlayConfig:
    """The overlay node's drawing (changeable at runtime)."""

    frame_id: str = doc("frame id of the camera image plane for markers")
    publish_markers: bool = doc("publish visualization_msgs/MarkerArray on debug/markers")
    publish_image: bool = doc("publish the annotated image on debug/image")
    image_scale: float = doc("scale of the annotated image relative to the camera frame", lo=0.05, hi=2.0)
    compressed_fps: float = doc("JPEG images per second at most on debug/image/compressed (sensor_msgs/"
                                "CompressedImage, what the web view shows)", lo=0.1, hi=30.0)
    jpeg_quality: int = doc("JPEG quality of debug/image/compressed", lo=10, hi=100)

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass(frozen=True)
class OverlaySettings:
    """``/**/overlay``."""

    view: OverlayConfig = inline("what is drawn and published")
    input: InputChecksConfig = section("checks of received messages")


@dataclass(frozen=True)
class WebSettings:
    """``/**/web``: the operator's browser view."""

    host: str = doc("address to listen on: loopback by default; anything else requires the access token")
    port: int = doc("TCP port (0: any free port, printed at start)")
    frame_fps: float = doc("most camera images per second sent to each browser")
    max_body_bytes: int = doc("largest request body accepted")
    token_file: str = doc("access token file (created 0600 on first start) used when host is not loopback")
    inventory_path: str = doc("the sorter's inventory SQLite file (read, and corrected from the review queue)")
    reference_images: str = doc("folder of the database's reference images, shown next to candidates (empty: none)")
    review_dir: str = doc("folder where each review item (crop, candidates, outcome) is kept: the queue survives a restart")
    input: InputChecksConfig = section("checks of received messages")

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, got {self.port}")


@dataclass(frozen=True)
class Settings:
    """Every node's settings: one field per ``/**/<node>`` block of config/sorter.yaml."""

    camera: CameraSettings
    frame_selector: FrameSelectorSettings
    embedder: EmbedderSettings
    matcher: MatcherSettings
    printing_reader: PrintingReaderSettings
    smoother: SmootherSettings
    sorter: SorterSettings
    overlay: OverlaySettings
    web: WebSettings


NODE_SETTINGS: dict[str, type] = dict(typing.get_type_hints(Settings))
"""Node name → its settings dataclass, in the order of config/sorter.yaml."""


# --- walking the tree ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Leaf:
    """One parameter: its dotted name within the node, the attribute path to it, its type and field."""

    name: str
    path: tuple[str, ...]
    annotation: Any
    field: dataclasses.Field[Any]

    @property
    def description(self) -> str:
        return describe(self.field)


def leaves(cls: type) -> tuple[Leaf, ...]:
    """Every parameter of settings dataclass ``cls``, sections walked recursively, in declaration order."""
    return _leaves(cls)


@functools.cache
def _leaves(cls: Any) -> tuple[Leaf, ...]:
    out: list[Leaf] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = section_kind(f)
        if kind is None:
            out.append(Leaf(f.name, (f.name,), hints[f.name], f))
            continue
        prefix = "" if kind == "inline" else f"{f.name}."
        out += [Leaf(prefix + leaf.name, (f.name, *leaf.path), leaf.annotation, leaf.field)
                for leaf in leaves(hints[f.name])]
    names = [leaf.name for leaf in out]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        raise TypeError(f"{cls.__name__}: parameters declared twice: {doubled}")
    return tuple(out)


def parameter_names(cls: type) -> list[str]:
    return [leaf.name for leaf in leaves(cls)]


@functools.cache
def every_parameter_name() -> frozenset[str]:
    """Every parameter some node has (what a ``/**`` key may name)."""
    return frozenset(leaf.name for cls in NODE_SETTINGS.values() for leaf in leaves(cls))


def flat_values(settings: Any) -> dict[str, Any]:
    """The settings dataclass as {dotted parameter: value} (lists for list fields)."""
    values: dict[str, Any] = {}
    for leaf in leaves(type(settings)):
        value: Any = settings
        for attr in leaf.path:
            value = getattr(value, attr)
        values[leaf.name] = list(value) if isinstance(value, tuple) else value
    return values


# --- typing and building -------------------------------------------------------------------------

def coerce(value: Any, annotation: Any, name: str) -> Any:
    """``value`` as the field type ``annotation`` (an int is a float); ConfigError naming ``name``."""
    origin = typing.get_origin(annotation)
    if origin in (list, tuple):
        (item_type, *_) = typing.get_args(annotation) or (str,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"parameter '{name}' must be a list of {item_type.__name__}, got {value!r}")
        items = [coerce(v, item_type, f"{name}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin in (typing.Union, types.UnionType):
        raise ConfigError(f"parameter '{name}': optional types are not allowed in settings")
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"parameter '{name}' must be a float, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"parameter '{name}' must be an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"parameter '{name}' must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"parameter '{name}' must be a string, got {value!r}")
        return value
    raise ConfigError(f"parameter '{name}': unsupported settings type {annotation!r}")


def build(cls: type[T], values: Mapping[str, Any], prefix: str = "") -> T:
    """Settings dataclass ``cls`` from flat {dotted: value}: every parameter present, typed (the one
    place values are coerced) and checked by each dataclass's own rules; ConfigError naming it."""
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = section_kind(f)
        if kind is not None:
            kwargs[f.name] = build(hints[f.name], values, prefix if kind == "inline" else f"{prefix}{f.name}.")
            continue
        name = prefix + f.name
        if name not in values:
            raise ConfigError(f"missing parameter '{name}' ({describe(f)})")
        kwargs[f.name] = coerce(values[name], hints[f.name], name)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"invalid parameters under '{prefix or cls.__name__}': {err}") from err


# --- the parameters file -------------------------------------------------------------------------

def unknown_message(what: str, name: str, valid: set[str] | frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(valid), n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown {what} '{name}'{hint}; valid: {', '.join(sorted(valid))}"


def check_keys(table: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """Every node and parameter of ``table`` ({node: {dotted: value}}; ``**``: every node) must be a
    settings field; one ConfigError naming each unknown one and the valid keys otherwise."""
    problems = []
    for node, params in table.items():
        if node in ("**", "*"):
            problems += [f"{where}: /**: {unknown_message('parameter', k, every_parameter_name())}"
                         for k in params if k not in every_parameter_name()]
        elif node not in NODE_SETTINGS:
            problems.append(f"{where}: {unknown_message('node section', node, set(NODE_SETTINGS))}")
        else:
            valid = set(parameter_names(NODE_SETTINGS[node]))
            problems += [f"{where}: node '{node}': {unknown_message('parameter', k, valid)}"
                         for k in params if k not in valid]
    if problems:
        raise ConfigError("\n".join(problems))


def node_values(path: str | pathlib.Path | None = None) -> dict[str, dict[str, Any]]:
    """{node: {dotted: value}} of a parameters file as each node receives it (``/**`` merged into each
    block, keeping the keys that node has), every key checked; the default file when ``path`` is None."""
    path = pathlib.Path(path) if path is not None else default_params_file()
    blocks = params_file_blocks(path)
    check_keys(blocks, str(path))
    missing = [node for node in NODE_SETTINGS if node not in blocks]
    if missing:
        raise ConfigError(f"{path}: no section for node(s) {', '.join(missing)}")
    table = {}
    for node, cls in NODE_SETTINGS.items():
        names = set(parameter_names(cls))
        table[node] = {k: v for k, v in {**blocks["**"], **blocks[node]}.items() if k in names}
    return table


def load_settings(path: str | pathlib.Path | None = None,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """The settings tree of a parameters file (the default one when ``path`` is None) with
    ``overrides`` ({node: {dotted: value}}, as ``--set node.param=value``) on top. A misspelt node or
    key, a missing one, a wrong type or a value its field refuses: ConfigError naming it."""
    table = node_values(path)
    check_keys(overrides or {}, "overrides")
    sections: dict[str, Any] = {}
    for node, cls in NODE_SETTINGS.items():
        values = {**table[node], **(overrides or {}).get(node, {})}
        try:
            sections[node] = build(cls, values)
        except ConfigError as err:
            raise ConfigError(f"node '{node}': {err}") from err
    return Settings(**sections)


def typed_overrides(settings: Settings, overrides: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``overrides`` with each value as its field's type (``--set camera.fps=30`` → 30.0), read back
    from ``settings`` (built with them), so rclpy declares them with the parameter's type."""
    out: dict[str, dict[str, Any]] = {}
    for node, params in overrides.items():
        flat = flat_values(getattr(settings, node))
        out[node] = {name: flat[name] for name in params}
    return out
