"""Camera sources: IMX500 against the fake picamera2, video folders, the synthetic scene."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from perception_support import DARK_BELT_BGR, as_quad, card_image, paste_card

from cardsorter.backends.cameras import STATUS_LOADING, STATUS_OK, open_camera
from cardsorter.backends.detectors import open_detector
from cardsorter.core.detection import quad_corner_error_px
from cardsorter.core.errors import CameraError, ConfigError
from cardsorter.settings import CameraSettings, load_settings
from cardsorter.sim.scene import read_catalog_dir

FAKES = Path(__file__).resolve().parent / "fakes"
START_NS = 1_700_000_000_000_000_000


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        monkeypatch.delitem(sys.modules, name)
    from picamera2 import RIG

    RIG.reset()
    network = tmp_path / "cards_pp.rpk"
    network.write_bytes(b"fake rpk")
    RIG.intrinsics = {"task": "object detection", "labels": ["card", "hand"]}
    RIG.network_path = str(network)
    return RIG


def camera(**flat: Any) -> CameraSettings:
    """The camera settings of config/sorter.yaml with some parameters (dotted names) changed."""
    return load_settings(overrides={"camera": flat}).camera


def imx500_params(rig: Any, **overrides: Any) -> CameraSettings:
    params: dict[str, Any] = {
        "source": "imx500", "imx500.network_path": rig.network_path, "imx500.score_min": 0.5,
        "imx500.class_filter": "", "imx500.postprocess": "auto", "imx500.bbox_order": "auto",
        "imx500.bbox_normalization": "auto", "imx500.max_detections": 10, "width": 640, "height": 480,
        "imx500.main_width": 0, "imx500.main_height": 0}     # the rig's frames are the published 640x480
    params.update({f"imx500.{k}": v for k, v in overrides.items()})
    return camera(**params)


def pp_tensors(boxes_yx: list[tuple[float, float, float, float]], scores: list[float], classes: list[int]
               ) -> list[np.ndarray]:
    return [np.array(boxes_yx, np.float32).reshape(-1, 4), np.array(scores, np.float32),
            np.array(classes, np.float32)]


def frame_with_card_at(box_xywh: tuple[float, float, float, float], seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    x, y, w, h = box_xywh
    frame = np.empty((480, 640, 3), np.uint8)
    frame[:] = DARK_BELT_BGR
    quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64) - 0.5
    paste_card(frame, card_image(seed), quad)
    return frame, quad


def test_imx500_is_opened_before_picamera2_and_started_with_a_raw_stream(rig: Any) -> None:
    rig.intrinsics["input_aspect_ratio"] = {"width": 1, "height": 1}   # what preserve_aspect_ratio=True stores
    source = open_camera(imx500_params(rig))
    assert rig.events[:2] == [f"IMX500({rig.network_path})", "Picamera2(0)"]
    assert rig.events.index("show_network_fw_progress_bar") < rig.events.index("start")
    assert rig.events.index("start") < rig.events.index("set_auto_aspect_ratio")
    config = source._picam2.camera_configuration()  # type: ignore[attr-defined]
    assert config["main"] == {"format": "RGB888", "size": (640, 480)}
    assert config["controls"]["FrameRate"] == 30.0 and config["buffer_count"] == 12
    source.close()
    assert rig.events[-2:] == ["stop", "close"]


def test_imx500_warm_up_reports_loading_and_publishes_no_detections(rig: Any) -> None:
    image, _ = frame_with_card_at((160, 120, 160, 240))
    tensors = pp_tensors([(0.25, 0.25, 0.75, 0.5)], [0.9], [0])
    from picamera2._rig import RigFrame

    rig.frames = [RigFrame(image, 1_000, None), RigFrame(image, 34_000, None), RigFrame(image, 67_000, tensors)]
    source = open_camera(imx500_params(rig))
    first = source.read()
    assert first is not None and first.detections == [] and source.status == STATUS_LOADING
    source.read()
    third = source.read()
    assert third is not None and third.detections is not None and len(third.detections) == 1
    assert source.status == STATUS_OK
    assert third.stamp_ns - first.stamp_ns == 66_000   # SensorTimestamp of the same request
    assert rig.held_requests == 0


def test_imx500_pairs_each_frame_with_its_own_inference(rig: Any) -> None:
    from picamera2._rig import RigFrame

    frames = []
    for k, x in enumerate((96, 256, 416)):           # the card moves; each request carries its own box
        image, _ = frame_with_card_at((x, 120, 160, 240), seed=k)
        box = (120 / 480, x / 640, 360 / 480, (x + 160) / 640)
        frames.append(RigFrame(image, 1_000 * k, pp_tensors([box], [0.9], [0])))
    rig.frames = frames
    source = open_camera(imx500_params(rig))
    for x in (96, 256, 416):
        frame = source.read()
        assert frame is not None and frame.detections is not None
        (det,) = frame.detections
        assert abs(det.bbox_px.x - (x - 0.5)) < 3.0
        assert quad_corner_error_px(det.quad_px, as_quad(frame_with_card_at((x, 120, 160, 240))[1])) < 1.0


@pytest.mark.parametrize(("scaler_crop", "expected_xywh"), [((0, 0, 4056, 3040), (160, 120, 160, 240)),
                                                             ((1014, 760, 2028, 1520), (0, 0, 320, 480))])
def test_imx500_boxes_are_converted_with_the_cameras_own_conversion(
        rig: Any, scaler_crop: tuple[int, int, int, int], expected_xywh: tuple[int, int, int, int]) -> None:
    from picamera2._rig import RigFrame

    empty = np.full((480, 640, 3), DARK_BELT_BGR, np.uint8)   # nothing to refine: the box itself is kept
    rig.frames = [RigFrame(empty, 0, pp_tensors([(0.25, 0.25, 0.75, 0.5)], [0.8], [0]), scaler_crop)]
    frame = open_camera(imx500_params(rig)).read()
    assert frame is not None and frame.detections is not None
    assert frame.detections[0].bbox_px.as_tuple() == expected_xywh
    assert frame.detections[0].score == pytest.approx(0.8)


def test_imx500_xy_pixel_boxes_are_reordered_and_normalised(rig: Any) -> None:
    from picamera2._rig import RigFrame

    rig.intrinsics.update({"bbox_order": "xy", "bbox_normalization": True})
    empty = np.full((480, 640, 3), DARK_BELT_BGR, np.uint8)
    # (x0, y0, x1, y1) in the 320x320 input tensor = normalised (y0, x0, y1, x1) (0.25, 0.25, 0.75, 0.5)
    rig.frames = [RigFrame(empty, 0, pp_tensors([(80.0, 80.0, 160.0, 240.0)], [0.8], [0]))]
    frame = open_camera(imx500_params(rig)).read()
    assert frame is not None and frame.detections is not None
    assert frame.detections[0].bbox_px.as_tuple() == (160, 120, 160, 240)


def test_imx500_applies_class_filter_score_threshold_and_max_detections(rig: Any) -> None:
    from picamera2._rig import RigFrame

    empty = np.full((480, 640, 3), DARK_BELT_BGR, np.uint8)
    boxes = [(0.1, 0.1, 0.3, 0.2), (0.1, 0.4, 0.3, 0.5), (0.5, 0.1, 0.7, 0.2), (0.5, 0.5, 0.7, 0.6)]
    rig.frames = [RigFrame(empty, 0, pp_tensors(boxes, [0.9, 0.95, 0.3, 0.7], [0, 1, 0, 0]))]
    frame = open_camera(imx500_params(rig, class_filter="card", max_detections=1)).read()
    assert frame is not None and frame.detections is not None
    assert [round(d.score, 2) for d in frame.detections] == [0.9]


def test_imx500_rejects_a_label_the_network_does_not_have(rig: Any) -> None:
    with pytest.raises(ConfigError, match="dragon"):
        open_camera(imx500_params(rig, class_filter="card,dragon"))


def test_imx500_missing_network_file_or_camera_is_a_camera_error(rig: Any, tmp_path: Path) -> None:
    with pytest.raises(CameraError, match="network file not found"):
        open_camera(imx500_params(rig, network_path=str(tmp_path / "missing.rpk")))
    rig.camera_present = False
    with pytest.raises(CameraError, match="dev-node not found"):
        open_camera(imx500_params(rig))


def test_video_source_reads_a_folder_of_images_in_name_order(tmp_path: Path) -> None:
    for name, value in (("b.png", 20), ("a.png", 10), ("c.jpg", 30)):
        cv2.imwrite(str(tmp_path / name), np.full((48, 64), value, np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_camera(camera(**{"source": "video", "video.uri": str(tmp_path), "video.realtime": False,
                                   "video.start_stamp_ns": START_NS, "fps": 10.0}))
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    assert [int(f.image_bgr[0, 0, 0]) for f in frames] == [10, 20, 30]
    assert all(f.image_bgr.shape == (48, 64, 3) and f.detections is None for f in frames)
    assert [f.stamp_ns - START_NS for f in frames] == [0, 100_000_000, 200_000_000]
    assert source.read() is None


def test_video_source_names_a_missing_or_empty_input(tmp_path: Path) -> None:
    base = {"source": "video", "video.realtime": False, "video.start_stamp_ns": 0}
    with pytest.raises(CameraError, match="no images"):
        open_camera(camera(**base, **{"video.uri": str(tmp_path)}))
    with pytest.raises(CameraError, match="not a camera index"):
        open_camera(camera(**base, **{"video.uri": str(tmp_path / "nope.mp4")}))


def test_unknown_source_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="source must be one of"):
        camera(source="webcam")
    with pytest.raises(ConfigError, match="camera source"):
        open_camera(camera(source="none"))   # bag replay: the node opens no source


def make_catalog(root: Path, known: int = 4, unknown: int = 2) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "unknown").mkdir()
    for i in range(known):
        cv2.imwrite(str(root / "images" / f"sv1-{i}_Card_{i}.png"), card_image(i))
    for i in range(unknown):
        cv2.imwrite(str(root / "unknown" / f"zz9-{i}_Stranger.png"), card_image(50 + i))
    return root


def synthetic_params(catalog: Path, **overrides: Any) -> CameraSettings:
    params: dict[str, Any] = {"source": "synthetic", "synthetic.catalog_dir": str(catalog), "synthetic.realtime": False,
                              "synthetic.cards": 4, "synthetic.start_stamp_ns": START_NS, "fps": 30.0,
                              "width": 640, "height": 480}
    params.update({f"synthetic.{k}": v for k, v in overrides.items()})
    return camera(**params)


def test_catalog_dir_gives_card_ids_and_database_membership(tmp_path: Path) -> None:
    cards = read_catalog_dir(make_catalog(tmp_path / "cat"))
    assert [c.card_id for c in cards] == ["sv1-0", "sv1-1", "sv1-2", "sv1-3", "zz9-0", "zz9-1"]
    assert [c.in_database for c in cards] == [True] * 4 + [False] * 2


def read_all(source: Any) -> list[Any]:
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def test_synthetic_source_is_deterministic_and_ends(tmp_path: Path) -> None:
    params = synthetic_params(make_catalog(tmp_path / "cat"), cards=2)
    a, b = read_all(open_camera(params)), read_all(open_camera(params))
    assert len(a) == len(b) > 10
    assert all(np.array_equal(x.image_bgr, y.image_bgr) and x.ground_truth == y.ground_truth for x, y in zip(a, b))
    assert [f.stamp_ns - START_NS for f in a[:3]] == [0, 33_333_333, 66_666_667]
    assert {g.physical_id for f in a for g in f.ground_truth} == {1, 2}


@pytest.mark.parametrize("mode", ["belt", "station"])
def test_synthetic_ground_truth_matches_what_the_detector_finds(tmp_path: Path, mode: str) -> None:
    names = ("tilt", "motion_blur", "focus_blur", "glare", "haze", "hand_shadow", "finger", "exposure",
             "noise", "rotated_180", "double_feed", "close", "empty")
    params = synthetic_params(make_catalog(tmp_path / "cat"), cards=3, mode=mode,
                              **{f"nuisance.{name}": 0.0 for name in names})
    detector = open_detector(params.detector)
    frames = read_all(open_camera(params))
    checked = 0
    for frame in frames[::5]:
        dets = detector.detect(frame.image_bgr)
        for truth in frame.ground_truth:
            if truth.inside((640, 480), margin_px=3.0):
                errors = [quad_corner_error_px(d.quad_px, truth.quad_px) for d in dets if d.quad_px]
                assert errors and min(errors) < 0.5, f"frame {frame.frame_index} card {truth.physical_id}"
                checked += 1
    assert checked >= 5


def test_imx500_nanodet_boxes_are_scaled_from_input_pixels(rig: Any) -> None:
    from picamera2._rig import RigFrame

    rig.intrinsics.update({"postprocess": "nanodet"})
    empty = np.full((480, 640, 3), DARK_BELT_BGR, np.uint8)
    # decoded rows [y0, x0, y1, x1 (320x320 input pixels), score, class]; the low score is dropped
    rows = np.array([[[80.0, 80.0, 240.0, 160.0, 0.9, 0.0], [10.0, 10.0, 50.0, 50.0, 0.2, 0.0]]], np.float32)
    rig.frames = [RigFrame(empty, 0, [rows[0]])]
    frame = open_camera(imx500_params(rig)).read()
    assert frame is not None and frame.detections is not None
    assert [d.bbox_px.as_tuple() for d in frame.detections] == [(160, 120, 160, 240)]


def test_video_source_reads_a_video_file(tmp_path: Path) -> None:
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (64, 48))
    for value in (40, 120, 200):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    frames = read_all(open_camera(camera(**{"source": "video", "video.uri": str(path), "video.realtime": False,
                                            "video.start_stamp_ns": 0})))
    assert [round(float(f.image_bgr.mean()) / 40) for f in frames] == [1, 3, 5]
    assert [f.stamp_ns for f in frames] == [0, 50_000_000, 100_000_000]   # the file's own 20 fps
