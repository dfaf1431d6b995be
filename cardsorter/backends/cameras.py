"""Camera sources behind one Protocol: IMX500 (picamera2 + on-sensor detector), OpenCV video, synthetic scene.

``open_camera(source, params)`` builds one from the camera node's flat parameters. picamera2 is
imported lazily inside the IMX500 source (it exists only on a Raspberry Pi).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from cardsorter.backends.detectors import CardFinder, open_detector
from cardsorter.config import doc, from_params, resolve_path
from cardsorter.core.errors import CameraError, ConfigError, ImageError
from cardsorter.core.types import BoxPx, Detection
from cardsorter.sim.scene import (
    GroundTruthCard,
    NuisanceConfig,
    SceneConfig,
    SyntheticScene,
    read_catalog_dir,
)

__all__ = ["SOURCES", "CameraConfig", "CameraFrame", "CameraSource", "GroundTruthCard", "Imx500Config",
           "Imx500Source", "SyntheticSource", "SyntheticSourceConfig", "VideoConfig", "VideoSource", "open_camera"]

LOG = logging.getLogger(__name__)
SOURCES = ("imx500", "video", "synthetic")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
STATUS_OK = "ok"
STATUS_LOADING = "network loading"
STATUS_NO_INFERENCE = "inference missing"
STATUS_ENDED = "end of stream"
STATUS_CLOSED = "closed"
_NS_PER_S = 1_000_000_000


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
    postprocess: str = doc("auto (from the network's intrinsics) | pp (on-chip NMS outputs) | nanodet")
    bbox_order: str = doc("auto | yx | xy: order of the box coordinates the network outputs")
    bbox_normalization: str = doc("auto | on | off: boxes are in input-tensor pixels (on) or 0-1 (off)")
    class_filter: str = doc("comma-separated labels to keep; empty keeps every class")
    score_min: float = doc("detections below this score are dropped")
    iou_max: float = doc("NMS IoU threshold for nanodet post-processing")
    max_detections: int = doc("keep at most this many detections per frame (highest scores)")
    buffer_count: int = doc("picamera2 buffers (the demo uses 12 so requests can be held)")

    def __post_init__(self) -> None:
        if self.postprocess not in ("auto", "pp", "nanodet"):
            raise ValueError(f"postprocess must be auto, pp or nanodet, got {self.postprocess!r}")
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
class VideoConfig:
    uri: str = doc("camera index (digits), video file, or folder of images (sorted by name)")
    realtime: bool = doc("files and folders: sleep to the frame rate (true) or read as fast as possible")
    start_stamp_ns: int = doc("files and folders: stamp of frame 0 (live cameras stamp with the clock)")


@dataclass(frozen=True)
class SyntheticSourceConfig:
    catalog_dir: str = doc("catalogue folder: images/*.png (in the database) and unknown/*.png")
    realtime: bool = doc("sleep to the frame rate (true) or render as fast as possible (false)")
    start_stamp_ns: int = doc("stamp of frame 0; frame i is stamped start + i / fps")


def open_camera(source: str, params: Mapping[str, Any]) -> CameraSource:
    """The camera source named ``source`` built from the camera node's flat (dotted) parameters."""
    camera = from_params(CameraConfig, params)
    if source == "imx500":
        return Imx500Source(from_params(Imx500Config, params, "imx500."), camera, open_detector(params))
    if source == "video":
        return VideoSource(from_params(VideoConfig, params, "video."), camera)
    if source == "synthetic":
        cfg = from_params(SyntheticSourceConfig, params, "synthetic.")
        scene = SyntheticScene(from_params(SceneConfig, params, "synthetic."),
                               from_params(NuisanceConfig, params, "synthetic.nuisance."),
                               read_catalog_dir(resolve_path(cfg.catalog_dir)), camera.fps,
                               (camera.width, camera.height))
        return SyntheticSource(scene, camera.fps, cfg.start_stamp_ns, cfg.realtime)
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

    def __init__(self, scene: SyntheticScene, fps: float, start_stamp_ns: int, realtime: bool) -> None:
        self._scene = scene
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


class Imx500Source:
    """Raspberry Pi AI Camera: frames paired with the on-sensor network's boxes of the same request.

    Construction follows PLATFORM_NOTES.md §1: IMX500 before Picamera2, intrinsics (task object
    detection, defaults), a preview configuration with a raw stream (convert_inference_coords needs
    it), the firmware progress bar, start, then the auto aspect ratio when the network asks for it.
    Each read is one ``capture_request``: metadata and image come from that request, the request is
    released at once. Boxes are refined to four corners on the CPU (CardFinder.refine: the learned detector).
    """

    def __init__(self, config: Imx500Config, camera: CameraConfig, detector: CardFinder) -> None:
        self._cfg = config
        self._detector = detector
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
        if not Path(config.network_path).is_file():
            raise CameraError(f"IMX500 network file not found: {config.network_path}")
        try:
            self._imx500 = IMX500(config.network_path)          # must come before Picamera2
        except RuntimeError as err:
            raise CameraError(f"cannot open the IMX500 with {config.network_path}: {err}") from err
        intrinsics = self._imx500.network_intrinsics or NetworkIntrinsics()
        if intrinsics.task is None:
            intrinsics.task = "object detection"
        if intrinsics.task != "object detection":
            raise CameraError(f"network {config.network_path} is a '{intrinsics.task}' network, not object detection")
        intrinsics.update_with_defaults()
        self._intrinsics = intrinsics
        self._postprocess = config.postprocess if config.postprocess != "auto" else (
            "nanodet" if intrinsics.postprocess == "nanodet" else "pp")
        self._bbox_order = config.bbox_order if config.bbox_order != "auto" else str(intrinsics.bbox_order or "yx")
        self._bbox_normalization = (config.bbox_normalization == "on") if config.bbox_normalization != "auto" else (
            bool(intrinsics.bbox_normalization))
        labels = list(intrinsics.labels or [])
        self._labels = labels
        self._keep_classes = set(config.classes)
        unknown = self._keep_classes - set(labels)
        if labels and unknown:
            raise ConfigError(f"imx500.class_filter names labels the network does not have: {sorted(unknown)}")
        try:
            self._picam2 = Picamera2(self._imx500.camera_num)
            cfg = self._picam2.create_preview_configuration(
                main={"format": "RGB888", "size": (camera.width, camera.height)},
                # the camera's fps, but never faster than the network infers (the demo uses inference_rate)
                controls={"FrameRate": min(camera.fps, float(intrinsics.inference_rate or camera.fps))},
                buffer_count=config.buffer_count)
            self._imx500.show_network_fw_progress_bar()
            self._picam2.start(cfg)
            if intrinsics.preserve_aspect_ratio:
                self._imx500.set_auto_aspect_ratio()
        except (RuntimeError, IndexError, OSError) as err:
            raise CameraError(f"cannot start the AI camera: {err}") from err
        self._input_w, self._input_h = self._imx500.get_input_size()
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
            image = request.make_array("main")
        finally:
            request.release()                                  # release promptly or capture stalls
        if image.ndim == 3 and image.shape[2] == 4:
            image = np.ascontiguousarray(image[:, :, :3])
        stamp = int(metadata.get("SensorTimestamp", time.monotonic_ns())) + self._clock_offset_ns
        detections = self._detections(image, metadata)
        index = self._index
        self._index += 1
        return CameraFrame(image, stamp, index, detections, None)

    def _detections(self, image: np.ndarray, metadata: Mapping[str, Any]) -> list[Detection]:
        outputs = self._imx500.get_outputs(metadata, add_batch=True)
        if outputs is None:
            if self._inference_seen:
                self.missing_inference_frames += 1
                self._status = STATUS_NO_INFERENCE
            return []                                          # warm-up: no detections until outputs arrive
        self._inference_seen = True
        self._status = STATUS_OK
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
            found.append(self._detector.refine(image, BoxPx(float(x), float(y), float(w), float(h)),
                                               float(np.clip(score, 0.0, 1.0))))
            if len(found) >= self._cfg.max_detections:
                break
        return found

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
