"""Camera sources behind one Protocol: IMX500 (picamera2 + on-sensor detector), OpenCV video, synthetic scene.

``open_camera(settings)`` builds one from the camera's typed settings (``load_settings().camera``). picamera2 is
imported lazily inside the IMX500 source (it exists only on a Raspberry Pi).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import cv2
import numpy as np

from cardsorter.backends.detectors import CardFinder, open_detector
from cardsorter.config import resolve_path
from cardsorter.core import card_detector_decode as carddet
from cardsorter.core.detection import CARD_ASPECT_SHORT_OVER_LONG, box_quad
from cardsorter.core.errors import CameraError, ConfigError, ImageError
from cardsorter.core.fields import doc, inline, section
from cardsorter.core.types import BoxPx, Detection, Orientation, Quad, as_quad
from cardsorter.core.warp import quad_height_px, warp_card_closeup
from cardsorter.sim.scene import (
    GroundTruthCard,
    NuisanceConfig,
    SceneConfig,
    SyntheticScene,
    read_catalog_dir,
)

if TYPE_CHECKING:
    from cardsorter.settings import CameraSettings

__all__ = [
    "SOURCES",
    "CameraConfig",
    "CameraFrame",
    "CameraSource",
    "CarddetTensorConfig",
    "Closeup",
    "CloseupConfig",
    "GroundTruthCard",
    "Imx500Config",
    "Imx500Settings",
    "Imx500Source",
    "MainStreamSource",
    "SyntheticSettings",
    "SyntheticSource",
    "SyntheticSourceConfig",
    "VideoConfig",
    "VideoSource",
    "cut_closeup",
    "open_camera",
    "tensor_to_stream",
]

LOG = logging.getLogger(__name__)
SOURCES = ("imx500", "video", "synthetic")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
STATUS_OK = "ok"
STATUS_LOADING = "network loading"
STATUS_NO_INFERENCE = "inference missing"
STATUS_ENDED = "end of stream"
STATUS_CLOSED = "closed"
_NS_PER_S = 1_000_000_000
IMX500_POSTPROCESS = ("auto", "pp", "nanodet", "carddet")
IMX500_FULL_SENSOR = (0, 0, 4056, 3040)
"""The IMX500's full-resolution pixel array; ROI and ScalerCrop are in these pixels (picamera2 0.3.38)."""


@dataclass(frozen=True)
class CameraFrame:
    """One frame and, when the source has its own detector, that frame's detections."""

    image_bgr: np.ndarray
    stamp_ns: int
    frame_index: int
    detections: list[Detection] | None     # None: no detector in this source (run the CPU detector)
    ground_truth: list[GroundTruthCard] | None


class CameraSource(Protocol):
    def read(self) -> CameraFrame | None:
        """The next frame; None at the end of the stream. Blocks at most about one frame period."""
        ...

    @property
    def status(self) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class MainStreamSource(Protocol):
    """A source whose main stream has more pixels than the frames it publishes: it cuts a closeup of a recent
    frame itself (the others' closeups are cut from the published frames the camera node keeps)."""

    def closeup(self, frame_index: int, quad_px: Quad, card_height_px: int) -> Closeup: ...


@dataclass(frozen=True)
class CameraConfig:
    fps: float = doc("frames per second (synthetic stamps, image folders, camera frame rate)")
    width: int = doc("frame width in pixels")
    height: int = doc("frame height in pixels")

    def __post_init__(self) -> None:
        if self.fps <= 0 or self.width < 64 or self.height < 64:
            raise ValueError(f"need fps > 0 and a frame of at least 64x64, got {self.fps} fps {self.width}x{self.height}")


@dataclass(frozen=True)
class Imx500Config:
    network_path: str = doc("IMX500 network firmware (.rpk)")
    postprocess: str = doc("auto (from the network's intrinsics) | pp (on-chip NMS outputs) | nanodet | carddet "
                           "(our CardDet heatmaps + geometry, docs/IMX500.md)")
    bbox_order: str = doc("auto | yx | xy: order of the box coordinates the network outputs")
    bbox_normalization: str = doc("auto | on | off: boxes are in input-tensor pixels (on) or 0-1 (off)")
    class_filter: str = doc("comma-separated labels to keep; empty keeps every class")
    score_min: float = doc("detections below this score are dropped")
    iou_max: float = doc("NMS IoU threshold for nanodet post-processing")
    max_detections: int = doc("keep at most this many detections per frame (highest scores)")
    buffer_count: int = doc("picamera2 buffers (the demo uses 12 so requests can be held)")
    refine: bool = doc("carddet: refine each card's corners on the CPU inside its box (the CPU detector)")
    main_width: int = doc("picamera2 main stream width: the printing reader's closeups are cut from it, frames "
                          "are published at the camera's width x height (0: the published size)", lo=0)
    main_height: int = doc("picamera2 main stream height (0: the published size)", lo=0)
    main_buffer_frames: int = doc("full-resolution main-stream frames kept for closeups (2028x1520 RGB: 9 MB "
                                  "each)", lo=1)

    def __post_init__(self) -> None:
        if (self.main_width == 0) != (self.main_height == 0):
            raise ValueError(f"main_width and main_height are both 0 (the published size) or both set, got "
                             f"{self.main_width}x{self.main_height}")
        if self.postprocess not in IMX500_POSTPROCESS:
            raise ValueError(f"postprocess must be one of {', '.join(IMX500_POSTPROCESS)}, got {self.postprocess!r}")
        if self.bbox_order not in ("auto", "yx", "xy"):
            raise ValueError(f"bbox_order must be auto, yx or xy, got {self.bbox_order!r}")
        if self.bbox_normalization not in ("auto", "on", "off"):
            raise ValueError(f"bbox_normalization must be auto, on or off, got {self.bbox_normalization!r}")
        if self.max_detections < 1:
            raise ValueError("max_detections must be >= 1")

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(c.strip() for c in self.class_filter.split(",") if c.strip())


@dataclass(frozen=True)
class CarddetTensorConfig:
    """Decoding of CardDet's tensors on the camera (score, count and NMS IoU come from Imx500Config)."""

    snap_radius_cells: int = doc("corner snap: search this many heatmap cells around a regressed corner (0: off)")
    snap_score_min: float = doc("corner snap: minimum corner-heatmap peak to move a regressed corner onto it")
    orientation_min: float = doc("up-vector length (0-1) needed to report the orientation; below: unknown")
    double_feed_overlap: float = doc("two cards whose quads overlap by this share of the smaller: one double feed")
    edge_margin_px: float = doc("main-stream pixels: a card with a corner closer than this to the image edge is "
                                "dropped (negative: allowed beyond it)")


@dataclass(frozen=True)
class VideoConfig:
    uri: str = doc("camera index (digits), video file, or folder of images (sorted by name)")
    realtime: bool = doc("files and folders: sleep to the frame rate (true) or read as fast as possible")
    start_stamp_ns: int = doc("files and folders: stamp of frame 0 (live cameras stamp with the clock)")


@dataclass(frozen=True)
class SyntheticSourceConfig:
    catalog_dir: str = doc("catalogue folder: images/*.png (in the database) and unknown/*.png")
    realtime: bool = doc("sleep to the frame rate (true) or render as fast as possible (false)")
    start_stamp_ns: int = doc("stamp of frame 0; frame i is stamped start + i / fps")
    main_scale: float = doc(
        "resolution of the simulated main stream closeups are cut from, relative to the published frame (an "
        "AI Camera's 2028x1520 main stream is 3.2x a 640x480 frame)", lo=1.0, hi=8.0)


@dataclass(frozen=True)
class CloseupConfig:
    """High-resolution views of tracked cards for the printing reader (camera/closeup_requests)."""

    buffer_frames: int = doc("recent frames a closeup can be cut from (a request names its frame's stamp)",
                             lo=1, hi=300)


@dataclass(frozen=True)
class Closeup:
    """A rectified view of one card and how many source pixels its height covered."""

    image_bgr: np.ndarray
    source_card_height_px: float


def cut_closeup(image_bgr: np.ndarray, quad_px: Quad, card_height_px: int,
                aspect: float = CARD_ASPECT_SHORT_OVER_LONG) -> Closeup:
    """The card inside ``quad_px`` (clockwise from its top-left) of a buffered frame, rectified to
    ``card_height_px`` (area-averaged when the source has more pixels, bilinear when fewer)."""
    size = (max(1, round(card_height_px * aspect)), int(card_height_px))
    return Closeup(warp_card_closeup(image_bgr, quad_px, size), quad_height_px(quad_px))


@dataclass(frozen=True)
class Imx500Settings:
    """The camera's ``imx500.*`` parameters."""

    config: Imx500Config = inline("the IMX500 network and its outputs")
    carddet: CarddetTensorConfig = section("CardDet tensor decoding (postprocess carddet)")


@dataclass(frozen=True)
class SyntheticSettings:
    """The camera's ``synthetic.*`` parameters: where the cards come from, the scene, its nuisances."""

    source: SyntheticSourceConfig = inline("catalogue folder and stamping")
    scene: SceneConfig = inline("the rendered scene")
    nuisance: NuisanceConfig = section("probability of each nuisance per card")


def open_camera(settings: CameraSettings) -> CameraSource:
    """The camera source ``settings.source`` names, built from the camera's typed settings."""
    source, camera = settings.source, settings.frame
    if source == "imx500":
        return Imx500Source(settings.imx500.config, camera, open_detector(settings.detector),
                            settings.imx500.carddet)
    if source == "video":
        return VideoSource(settings.video, camera)
    if source == "synthetic":
        synthetic = settings.synthetic
        scene = SyntheticScene(synthetic.scene, synthetic.nuisance,
                               read_catalog_dir(resolve_path(synthetic.source.catalog_dir)), camera.fps,
                               (camera.width, camera.height))
        return SyntheticSource(scene, camera.fps, synthetic.source.start_stamp_ns, synthetic.source.realtime,
                               synthetic.source.main_scale)
    raise ConfigError(f"camera source must be one of {SOURCES}, got {source!r}")


class _Pacer:
    """Sleeps so frame i is handed out no earlier than i / fps after the first (realtime playback)."""

    def __init__(self, fps: float) -> None:
        self._period_ns = _NS_PER_S / fps
        self._t0: int | None = None

    def wait(self, index: int) -> None:
        now = time.monotonic_ns()
        if self._t0 is None:
            self._t0 = now - int(index * self._period_ns)
            return
        delay = self._t0 + index * self._period_ns - now
        if delay > 0:
            time.sleep(delay / _NS_PER_S)


# --- synthetic -------------------------------------------------------------------------------


class SyntheticSource:
    """Frames of a SyntheticScene with its ground truth; stamps are start + index / fps."""

    def __init__(self, scene: SyntheticScene, fps: float, start_stamp_ns: int, realtime: bool,
                 main_scale: float = 1.0) -> None:
        self._scene = scene
        self._main_scale = main_scale
        self._fps = fps
        self._start = start_stamp_ns
        self._pacer = _Pacer(fps) if realtime else None
        self._index = 0
        self._status = STATUS_OK

    @property
    def scene(self) -> SyntheticScene:
        return self._scene

    @property
    def status(self) -> str:
        return self._status

    def read(self) -> CameraFrame | None:
        if self._status == STATUS_CLOSED:
            raise CameraError("synthetic source is closed")
        if self._index >= self._scene.frame_count:
            self._status = STATUS_ENDED
            return None
        i = self._index
        image, truth = self._scene.render(i)
        if self._pacer is not None:
            self._pacer.wait(i)
        self._index += 1
        return CameraFrame(image, self._start + round(i * _NS_PER_S / self._fps), i, None, truth)

    def closeup(self, frame_index: int, quad_px: Quad, card_height_px: int) -> Closeup:
        """Frame ``frame_index`` rendered again as the main stream sees it, cut along ``quad_px``."""
        image, covered = self._scene.render_closeup(frame_index, quad_px, card_height_px, self._main_scale)
        return Closeup(image, covered)

    def close(self) -> None:
        self._status = STATUS_CLOSED


# --- video (OpenCV) --------------------------------------------------------------------------


class VideoSource:
    """A USB camera (index), a video file or a folder of images through OpenCV; no detector."""

    def __init__(self, config: VideoConfig, camera: CameraConfig) -> None:
        self._cfg = config
        self._fps = camera.fps
        self._index = 0
        self._status = STATUS_OK
        self._capture: Any = None
        self._files: list[Path] | None = None
        self._live = config.uri.strip().isdigit()
        path = Path(config.uri)
        if self._live:
            self._capture = cv2.VideoCapture(int(config.uri))
            if not self._capture.isOpened():
                raise CameraError(f"cannot open camera index {config.uri}")
            self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, camera.width)
            self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, camera.height)
            self._capture.set(cv2.CAP_PROP_FPS, camera.fps)
        elif path.is_dir():
            self._files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            if not self._files:
                raise CameraError(f"image folder {path} has no images ({', '.join(IMAGE_SUFFIXES)})")
        elif path.is_file():
            self._capture = cv2.VideoCapture(str(path))
            if not self._capture.isOpened():
                raise CameraError(f"cannot open video file {path}")
            file_fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
            if file_fps > 0:
                self._fps = file_fps
        else:
            raise CameraError(f"video source '{config.uri}' is not a camera index, a file or a folder")
        self._pacer = _Pacer(self._fps) if config.realtime and not self._live else None

    @property
    def status(self) -> str:
        return self._status

    def read(self) -> CameraFrame | None:
        if self._status == STATUS_CLOSED:
            raise CameraError("video source is closed")
        if self._status == STATUS_ENDED:
            return None
        image = self._next_image()
        if image is None:
            self._status = STATUS_ENDED
            return None
        i = self._index
        self._index += 1
        if self._pacer is not None:
            self._pacer.wait(i)
        stamp = time.time_ns() if self._live else self._cfg.start_stamp_ns + round(i * _NS_PER_S / self._fps)
        return CameraFrame(image, stamp, i, None, None)

    def _next_image(self) -> np.ndarray | None:
        if self._files is not None:
            if self._index >= len(self._files):
                return None
            path = self._files[self._index]
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise ImageError(f"cannot read image {path}")
            return _to_bgr(image, str(path))
        ok, image = self._capture.read()
        if not ok:
            if self._live:
                raise CameraError(f"camera {self._cfg.uri} stopped delivering frames")
            return None
        return _to_bgr(image, self._cfg.uri)

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
        self._status = STATUS_CLOSED


def _to_bgr(image: np.ndarray, what: str) -> np.ndarray:
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ImageError(f"{what}: unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 3:
        return image
    raise ImageError(f"{what}: unsupported image shape {image.shape}")


# --- IMX500 (picamera2) ----------------------------------------------------------------------


def _rect(value: Any) -> tuple[float, float, float, float]:
    """(x, y, w, h) of a libcamera Rectangle (picamera2's ``config['roi']``) or a 4-sequence (ScalerCrop)."""
    if hasattr(value, "width"):
        return (float(value.x), float(value.y), float(value.width), float(value.height))
    x, y, w, h = (float(v) for v in value)
    return (x, y, w, h)


def tensor_to_stream(points_px: np.ndarray, tensor_wh: tuple[int, int], roi: tuple[float, float, float, float],
                     scaler_crop: tuple[float, float, float, float], stream_wh: tuple[int, int]) -> np.ndarray:
    """Input-tensor pixels → stream pixels (both pixel-centre coordinates), without rounding.

    The sensor fills the input tensor from the inference ROI (full-sensor pixels, picamera2
    ``set_inference_roi_abs``); the ISP fills the stream from ``ScalerCrop`` (full-sensor pixels).
    This is ``IMX500.convert_inference_coords``'s geometry (which goes through the raw size, where
    the scale cancels) for points, without its integer truncation and without its clipping to the
    visible crop; with the default full-sensor ROI its normalised input is the same.
    """
    p = np.asarray(points_px, dtype=np.float64)
    tw, th = tensor_wh
    rx, ry, rw, rh = roi
    cx, cy, cw, ch = scaler_crop
    sw, sh = stream_wh
    out = np.empty_like(p)
    out[..., 0] = (rx + (p[..., 0] + 0.5) / tw * rw - cx) * sw / cw - 0.5
    out[..., 1] = (ry + (p[..., 1] + 0.5) / th * rh - cy) * sh / ch - 0.5
    return out


MAIN_ASPECT_TOLERANCE = 0.01   # main stream and published frame: the same aspect ratio within 1 %


def scale_points(points_px: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """Pixel-centre coordinates of an image scaled by (sx, sy): x' = (x + 0.5) sx - 0.5."""
    p = np.asarray(points_px, dtype=np.float64)
    return np.stack([(p[..., 0] + 0.5) * sx - 0.5, (p[..., 1] + 0.5) * sy - 0.5], axis=-1)


def _aligned_to(quad: Quad, reference: Quad) -> Quad:
    """``quad``'s corners, clockwise, cyclically shifted so corner 0 lies nearest ``reference``'s corner 0."""
    q = carddet.clockwise(np.asarray(quad, dtype=np.float64))
    ref = np.asarray(reference, dtype=np.float64)
    best = min(range(4), key=lambda r: float(np.linalg.norm(np.roll(q, -r, axis=0) - ref, axis=1).sum()))
    p = [(float(x), float(y)) for x, y in np.roll(q, -best, axis=0)]
    return (p[0], p[1], p[2], p[3])


class Imx500Source:
    """Raspberry Pi AI Camera: frames paired with the on-sensor network's detections of the same request.

    Construction follows PLATFORM_NOTES.md §1: IMX500 before Picamera2, intrinsics (task object
    detection, defaults), a preview configuration with a raw stream (convert_inference_coords needs
    it), the firmware progress bar, start, then the auto aspect ratio when the network asks for it.
    Each read is one ``capture_request``: metadata and image come from that request, the request is
    released at once. Box networks (pp, nanodet) are refined to four corners on the CPU
    (``detector.refine``); CardDet (carddet) gives four ordered corners and the orientation itself,
    decoded by ``core.card_detector_decode`` and mapped from the input tensor to the main stream
    (``tensor_to_stream``), optionally refined on the CPU inside each card's box.

    The main stream runs at ``imx500.main_width`` x ``main_height`` (2028x1520 by default, the sensor's
    30 fps mode); frames are published resized to the camera's width x height with the detections in
    their pixels, and the last ``main_buffer_frames`` full-resolution frames are kept: ``closeup`` cuts the
    printing reader's views from them (a card ~640 px high instead of ~200).
    """

    def __init__(self, config: Imx500Config, camera: CameraConfig, detector: CardFinder,
                 carddet_config: CarddetTensorConfig | None = None) -> None:
        self._cfg = config
        self._detector = detector
        self._carddet_cfg = carddet_config
        self._index = 0
        self._status = "starting"
        self._inference_seen = False
        self.missing_inference_frames = 0
        try:
            from picamera2 import Picamera2  # type: ignore[import-not-found]
            from picamera2.devices import IMX500  # type: ignore[import-not-found]
            from picamera2.devices.imx500 import NetworkIntrinsics  # type: ignore[import-not-found]
        except ImportError as err:
            raise CameraError("the imx500 source needs picamera2 (Raspberry Pi OS: apt install python3-picamera2; "
                              "a venv needs --system-site-packages)") from err
        network = resolve_path(config.network_path)
        if not network.is_file():
            raise CameraError(f"IMX500 network file not found: {config.network_path} (for CardDet: imx500-package "
                              "the converter's packerOut.zip on the Pi, docs/IMX500.md)")
        try:
            self._imx500 = IMX500(str(network))                 # must come before Picamera2
        except RuntimeError as err:
            raise CameraError(f"cannot open the IMX500 with {network}: {err}") from err
        intrinsics = self._imx500.network_intrinsics or NetworkIntrinsics()
        if intrinsics.task is None:
            intrinsics.task = "object detection"
        if intrinsics.task != "object detection":
            raise CameraError(f"network {network} is a '{intrinsics.task}' network, not object detection")
        intrinsics.update_with_defaults()
        self._intrinsics = intrinsics
        self._postprocess = config.postprocess if config.postprocess != "auto" else (
            str(intrinsics.postprocess) if intrinsics.postprocess in ("nanodet", "carddet") else "pp")
        if self._postprocess == "carddet":
            if carddet_config is None:
                raise ConfigError("imx500.postprocess carddet needs the imx500.carddet.* parameters")
            try:
                self._decode_cfg = carddet.DecodeConfig(
                    score_min=config.score_min, max_cards=config.max_detections, nms_iou=config.iou_max,
                    snap_radius_cells=carddet_config.snap_radius_cells, snap_score_min=carddet_config.snap_score_min,
                    orientation_min=carddet_config.orientation_min,
                    double_feed_overlap=carddet_config.double_feed_overlap,
                    edge_margin_px=-math.inf)               # the edge is checked in the main stream instead
            except ValueError as err:
                raise ConfigError(f"invalid imx500 CardDet decoding parameters: {err}") from err
        self._bbox_order = config.bbox_order if config.bbox_order != "auto" else str(intrinsics.bbox_order or "yx")
        self._bbox_normalization = (config.bbox_normalization == "on") if config.bbox_normalization != "auto" else (
            bool(intrinsics.bbox_normalization))
        self._publish_wh = (camera.width, camera.height)
        self._main_wh = (config.main_width or camera.width, config.main_height or camera.height)
        mw, mh = self._main_wh
        if mw < camera.width or mh < camera.height or abs((mw / mh) / (camera.width / camera.height) - 1.0) \
                > MAIN_ASPECT_TOLERANCE:
            raise ConfigError(f"imx500.main_width x main_height {mw}x{mh} must be at least the published "
                              f"{camera.width}x{camera.height} and of its aspect ratio (within 1 %)")
        self._main_frames: deque[tuple[int, np.ndarray]] = deque(maxlen=config.main_buffer_frames)
        self._main_lock = threading.Lock()
        labels = ([carddet.CLASS_CARD, carddet.CLASS_DOUBLE_FEED] if self._postprocess == "carddet"
                  else list(intrinsics.labels or []))
        self._labels = labels
        self._keep_classes = set(config.classes)
        unknown = self._keep_classes - set(labels)
        if labels and unknown:
            raise ConfigError(f"imx500.class_filter names labels the network does not have: {sorted(unknown)}")
        try:
            self._picam2 = Picamera2(self._imx500.camera_num)
            cfg = self._picam2.create_preview_configuration(
                main={"format": "RGB888", "size": self._main_wh},
                # the camera's fps, but never faster than the network infers (the demo uses inference_rate)
                controls={"FrameRate": min(camera.fps, float(intrinsics.inference_rate or camera.fps))},
                buffer_count=config.buffer_count)
            self._imx500.show_network_fw_progress_bar()
            self._picam2.start(cfg)
            if intrinsics.preserve_aspect_ratio:
                self._imx500.set_auto_aspect_ratio()
        except (RuntimeError, IndexError, OSError) as err:
            raise CameraError(f"cannot start the AI camera: {err}") from err
        self._input_w, self._input_h = (int(v) for v in self._imx500.get_input_size())
        if self._postprocess == "carddet":
            grid = (self._input_h // carddet.STRIDE, self._input_w // carddet.STRIDE)
            self._carddet_shapes = {"chw": ((carddet.HEATMAP_CHANNELS, *grid), (carddet.GEOMETRY_CHANNELS, *grid)),
                                    "hwc": ((*grid, carddet.HEATMAP_CHANNELS), (*grid, carddet.GEOMETRY_CHANNELS))}
            roi = self._imx500.config.get("roi")
            self._roi = _rect(roi if roi is not None else IMX500_FULL_SENSOR)
            self._stream_wh = tuple(int(v) for v in self._picam2.camera_configuration()["main"]["size"])
        self._clock_offset_ns = time.time_ns() - time.monotonic_ns()   # SensorTimestamp is CLOCK_MONOTONIC
        self._status = STATUS_LOADING

    @property
    def status(self) -> str:
        return self._status

    def read(self) -> CameraFrame | None:
        if self._status == STATUS_CLOSED:
            raise CameraError("imx500 source is closed")
        try:
            request = self._picam2.capture_request()
        except RuntimeError as err:
            raise CameraError(f"AI camera capture failed: {err}") from err
        try:
            metadata = request.get_metadata()
            main = request.make_array("main")
        finally:
            request.release()                                  # release promptly or capture stalls
        if main.ndim == 3 and main.shape[2] == 4:
            main = np.ascontiguousarray(main[:, :, :3])
        image = main if main.shape[1::-1] == self._publish_wh else np.asarray(
            cv2.resize(main, self._publish_wh, interpolation=cv2.INTER_AREA))
        stamp = int(metadata.get("SensorTimestamp", time.monotonic_ns())) + self._clock_offset_ns
        detections = self._detections(image, metadata, main.shape[1::-1])
        index = self._index
        self._index += 1
        with self._main_lock:
            self._main_frames.append((index, main))
        return CameraFrame(image, stamp, index, detections, None)

    def closeup(self, frame_index: int, quad_px: Quad, card_height_px: int) -> Closeup:
        """The card at ``quad_px`` (published-frame pixels) of frame ``frame_index``, cut from its
        full-resolution main-stream frame."""
        with self._main_lock:
            main = next((m for i, m in self._main_frames if i == frame_index), None)
            kept = len(self._main_frames)
        if main is None:
            raise CameraError(f"frame {frame_index} is no longer in the main-stream buffer (the last {kept} are: "
                              "imx500.main_buffer_frames)")
        sx, sy = main.shape[1] / self._publish_wh[0], main.shape[0] / self._publish_wh[1]
        return cut_closeup(main, as_quad(scale_points(np.asarray(quad_px, np.float64), sx, sy)), card_height_px)

    def _detections(self, image: np.ndarray, metadata: Mapping[str, Any], main_wh: tuple[int, int]) -> list[Detection]:
        """The network's cards in ``image``'s (the published frame's) pixels; boxes come in main-stream pixels."""
        outputs = self._imx500.get_outputs(metadata, add_batch=True)
        if outputs is None:
            if self._inference_seen:
                self.missing_inference_frames += 1
                self._status = STATUS_NO_INFERENCE
            return []                                          # warm-up: no detections until outputs arrive
        self._inference_seen = True
        self._status = STATUS_OK
        to_published = (image.shape[1] / main_wh[0], image.shape[0] / main_wh[1])
        if self._postprocess == "carddet":
            return self._carddet_detections(image, metadata, outputs, to_published)
        boxes, scores, classes = self._parse(outputs)
        order = np.argsort(-scores, kind="stable")
        found: list[Detection] = []
        for i in order:
            score = float(scores[i])
            if score < self._cfg.score_min:
                continue
            if self._keep_classes and self._label(int(classes[i])) not in self._keep_classes:
                continue
            x, y, w, h = self._imx500.convert_inference_coords(tuple(float(v) for v in boxes[i]), metadata,
                                                               self._picam2)
            if w <= 0 or h <= 0:
                continue
            sx, sy = to_published
            found.append(self._detector.refine(image, BoxPx(float(x) * sx, float(y) * sy, float(w) * sx,
                                                            float(h) * sy), float(np.clip(score, 0.0, 1.0))))
            if len(found) >= self._cfg.max_detections:
                break
        return found

    # --- CardDet ---------------------------------------------------------------------------

    def carddet_tensors(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(heatmaps (2, H, W), geometry (12, H, W)) from ``get_outputs(..., add_batch=True)``.

        The converted network outputs (C, H, W) per tensor (dnnParams ordinals; docs/IMX500.md);
        (H, W, C) is accepted too, in case the sensor's serialisation turns out channel-last on
        hardware. Anything else is a CameraError naming the shapes.
        """
        shapes = [[int(v) for v in np.shape(t)[1:]] for t in outputs]
        for layout, (hm_shape, geo_shape) in self._carddet_shapes.items():
            if len(outputs) == 2 and shapes == [list(hm_shape), list(geo_shape)]:
                heat, geo = np.asarray(outputs[0][0], np.float32), np.asarray(outputs[1][0], np.float32)
                if layout == "hwc":
                    heat, geo = heat.transpose(2, 0, 1), geo.transpose(2, 0, 1)
                return heat, geo
        want = self._carddet_shapes["chw"]
        raise CameraError(f"IMX500 network gave output tensors {shapes}; CardDet with a {self._input_w}x"
                          f"{self._input_h} input gives heatmaps {list(want[0])} and geometry {list(want[1])} "
                          "(or channel-last): is imx500.network_path a CardDet network?")

    def _carddet_detections(self, image: np.ndarray, metadata: Mapping[str, Any], outputs: list[np.ndarray],
                            to_published: tuple[float, float]) -> list[Detection]:
        assert self._carddet_cfg is not None
        heat, geo = self.carddet_tensors(outputs)
        tensor_wh = (self._input_w, self._input_h)
        in_tensor = carddet.decode(heat, geo, carddet.letterbox_for(tensor_wh, tensor_wh), self._decode_cfg)
        crop = _rect(metadata.get("ScalerCrop", IMX500_FULL_SENSOR))
        sw, sh = self._stream_wh
        m = self._carddet_cfg.edge_margin_px
        found: list[Detection] = []
        for det in in_tensor:
            if self._keep_classes and det.class_name not in self._keep_classes:
                continue
            q = tensor_to_stream(np.asarray(det.quad_px), tensor_wh, self._roi, crop, (sw, sh))
            if not bool(np.all((q[:, 0] >= m) & (q[:, 0] <= sw - 1 - m) & (q[:, 1] >= m) & (q[:, 1] <= sh - 1 - m))):
                continue
            quad = as_quad(scale_points(q, *to_published))
            mapped = Detection(BoxPx.from_quad(quad), quad, det.score, det.class_name, det.orientation)
            found.append(self._refined(image, mapped) if self._cfg.refine and det.class_name == carddet.CLASS_CARD
                         else mapped)
        return found

    def _refined(self, image: np.ndarray, det: Detection) -> Detection:
        """The CPU detector's corners inside the card's box; the network's when it finds none.

        A refiner that cannot tell the orientation keeps the network's: its corners are re-ordered
        to start at the corner nearest the network's top-left.
        """
        assert det.quad_px is not None
        box = det.bbox_px
        refined = self._detector.refine(image, box, det.score)
        if refined.quad_px is None or refined.quad_px == box_quad(box):
            return det
        if refined.orientation == Orientation.UNKNOWN and det.orientation != Orientation.UNKNOWN:
            quad = _aligned_to(refined.quad_px, det.quad_px)
            return Detection(BoxPx.from_quad(quad), quad, det.score, refined.class_name, det.orientation)
        return Detection(refined.bbox_px, refined.quad_px, det.score, refined.class_name, refined.orientation)

    # --- box networks ----------------------------------------------------------------------

    def _parse(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Boxes as normalised (y0, x0, y1, x1), scores, classes (PLATFORM_NOTES.md §1.4)."""
        if self._postprocess == "nanodet":
            from picamera2.devices.imx500 import postprocess_nanodet_detection  # type: ignore[import-not-found,unused-ignore]
            from picamera2.devices.imx500.postprocess import scale_boxes  # type: ignore[import-not-found]

            boxes, scores, classes = postprocess_nanodet_detection(
                outputs=outputs[0], conf=self._cfg.score_min, iou_thres=self._cfg.iou_max,
                max_out_dets=self._cfg.max_detections)[0]
            boxes = scale_boxes(boxes, 1, 1, self._input_h, self._input_w, False, False)
        else:
            if len(outputs) < 3:
                raise CameraError(f"network gave {len(outputs)} output tensors; on-chip post-processing needs "
                                  "boxes, scores and classes (set imx500.postprocess)")
            boxes, scores, classes = outputs[0][0], outputs[1][0], outputs[2][0]
            if self._bbox_order == "xy":
                boxes = boxes[:, [1, 0, 3, 2]]
            if self._bbox_normalization:   # input-tensor pixels → 0..1, per axis (the demo assumes square)
                boxes = boxes / np.array([self._input_h, self._input_w, self._input_h, self._input_w], np.float32)
        return (np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1),
                np.asarray(classes).reshape(-1))

    def _label(self, class_index: int) -> str:
        labels = self._labels
        if self._intrinsics.ignore_dash_labels:
            labels = [label for label in labels if label and label != "-"]
        return labels[class_index] if 0 <= class_index < len(labels) else str(class_index)

    def close(self) -> None:
        if self._status == STATUS_CLOSED:
            return
        try:
            self._picam2.stop()
            self._picam2.close()
        finally:
            self._status = STATUS_CLOSED
