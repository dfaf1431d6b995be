"""IMX500 + CardDet: the converted network's output tensors, through the fake picamera2, into CardDetections."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from perception_support import DARK_BELT_BGR, as_quad, card_image, paste_card, pose_quad

from cardsorter.backends.cameras import STATUS_OK, open_camera, tensor_to_stream
from cardsorter.core.card_detector_decode import CLASS_CARD, CLASS_DOUBLE_FEED, CORNER_UNIT_PX, STRIDE
from cardsorter.core.detection import quad_corner_error_px
from cardsorter.core.errors import CameraError, ConfigError
from cardsorter.core.types import Orientation
from cardsorter.settings import CameraSettings, load_settings

FAKES = Path(__file__).resolve().parent / "fakes"
INPUT_WH = (256, 192)
STREAM_WH = (640, 480)
CONVERTED_OUTPUT_SHAPES = [(2, 48, 64), (12, 48, 64)]
"""dnnParams.xml of imxconv-pt 3.19.2 for CardDet (models/carddet.yaml ``imx500.output_tensors``): ordinals C, H, W."""
HEAT_SCALE = 1 / 256
"""Heatmaps: 8-bit unsigned, scale 2^-8 (dnnParams.xml)."""
GEOMETRY_SCALE = 1 / 16
"""Geometry: 8-bit signed, a power-of-two scale that covers the corner vectors (±8 units: 2^-4)."""


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    monkeypatch.syspath_prepend(str(FAKES))
    for name in [m for m in sys.modules if m == "picamera2" or m.startswith("picamera2.")]:
        monkeypatch.delitem(sys.modules, name)
    from picamera2 import RIG

    RIG.reset()
    network = tmp_path / "network.rpk"
    network.write_bytes(b"fake rpk")
    RIG.input_size_wh = INPUT_WH
    RIG.network_path = str(network)
    return RIG


def params(rig: Any, **overrides: Any) -> CameraSettings:
    p: dict[str, Any] = {"source": "imx500", "imx500.network_path": rig.network_path, "imx500.postprocess": "carddet",
                         "imx500.refine": False, "imx500.class_filter": "", "width": STREAM_WH[0],
                         "height": STREAM_WH[1], "imx500.main_width": 0, "imx500.main_height": 0}
    p.update({f"imx500.{k}": v for k, v in overrides.items()})
    return load_settings(overrides={"camera": p}).camera


def stream_to_tensor(points: np.ndarray, scale: float = 2.5) -> np.ndarray:
    """Main-stream pixels → input-tensor pixels when ROI and ScalerCrop are the full sensor (640 / 256 = 2.5)."""
    return (np.asarray(points, np.float64) + 0.5) / scale - 0.5


def _cell_centres(grid_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.mgrid[0:grid_hw[0], 0:grid_hw[1]]
    return (cols + 0.5) * STRIDE - 0.5, (rows + 0.5) * STRIDE - 0.5


def encode(quads_tensor: list[np.ndarray], scores: list[float], start_corner: int = 1) -> list[np.ndarray]:
    """What CardDet outputs for these cards (tensor pixels, clockwise from the card's top-left), quantised
    to the converter's 8-bit grids, in the shapes the sensor delivers them (no batch axis)."""
    grid = (INPUT_WH[1] // STRIDE, INPUT_WH[0] // STRIDE)
    heat = np.zeros((2, *grid), np.float64)
    geo = np.zeros((12, *grid), np.float64)
    cx, cy = _cell_centres(grid)
    for quad, score in zip(quads_tensor, scores, strict=True):
        centre = quad.mean(axis=0)
        d2 = ((cx - centre[0]) ** 2 + (cy - centre[1]) ** 2) / STRIDE ** 2
        heat[0] = np.maximum(heat[0], score * np.exp(-d2 / (2 * 1.5 ** 2)))
        near = d2 <= 3.0 ** 2
        rolled = np.roll(quad, -start_corner, axis=0)          # the network may start at any corner
        for k in range(4):
            geo[2 * k][near] = (rolled[k, 0] - cx[near]) / CORNER_UNIT_PX
            geo[2 * k + 1][near] = (rolled[k, 1] - cy[near]) / CORNER_UNIT_PX
        up = (quad[0] + quad[1]) / 2 - centre
        geo[10][near], geo[11][near] = up / np.linalg.norm(up)
        for corner in quad:
            c2 = ((cx - corner[0]) ** 2 + (cy - corner[1]) ** 2) / STRIDE ** 2
            heat[1] = np.maximum(heat[1], 0.9 * np.exp(-c2 / (2 * 0.8 ** 2)))
            around = c2 <= 1.5 ** 2
            geo[8][around] = (corner[0] - cx[around]) / STRIDE
            geo[9][around] = (corner[1] - cy[around]) / STRIDE
    heat_q = np.clip(np.round(heat / HEAT_SCALE), 0, 255) * HEAT_SCALE
    geo_q = np.clip(np.round(geo / GEOMETRY_SCALE), -128, 127) * GEOMETRY_SCALE
    return [heat_q.astype(np.float32), geo_q.astype(np.float32)]


def belt(quads: list[np.ndarray] = (), seeds: list[int] = ()) -> np.ndarray:  # type: ignore[assignment]
    frame = np.empty((STREAM_WH[1], STREAM_WH[0], 3), np.uint8)
    frame[:] = DARK_BELT_BGR
    for quad, seed in zip(quads, seeds, strict=True):
        paste_card(frame, card_image(seed), quad)
    return frame


def test_fake_delivers_the_converted_models_tensors_as_picamera2_does(rig: Any) -> None:
    from picamera2._rig import RigFrame
    from picamera2.devices import IMX500

    tensors = encode([stream_to_tensor(pose_quad((320, 240), 200, 10))], [0.9])
    assert [t.shape for t in tensors] == CONVERTED_OUTPUT_SHAPES
    rig.frames = [RigFrame(belt(), 0, tensors)]
    source = open_camera(params(rig))
    metadata = source._picam2.capture_request().get_metadata()
    imx500 = IMX500(rig.network_path)
    assert imx500.get_output_shapes(metadata) == [list(s) for s in CONVERTED_OUTPUT_SHAPES]
    outputs = imx500.get_outputs(metadata, add_batch=True)
    assert [o.shape for o in outputs] == [(1, *s) for s in CONVERTED_OUTPUT_SHAPES]
    assert all(np.array_equal(o[0], t) for o, t in zip(outputs, tensors, strict=True))


def test_carddet_tensors_decode_into_ordered_corners_in_main_stream_pixels(rig: Any) -> None:
    from picamera2._rig import RigFrame

    upright = pose_quad((200, 220), 220, 8, tilt=0.05)
    upside_down = pose_quad((470, 250), 180, 180 - 15)       # corner 0 (its top-left) is at the bottom right
    rig.frames = [RigFrame(belt(), 0, None),                  # firmware still loading
                  RigFrame(belt(), 1, encode([stream_to_tensor(upright), stream_to_tensor(upside_down)],
                                             [0.9, 0.7]))]
    source = open_camera(params(rig))
    first = source.read()
    assert first is not None and first.detections == []
    frame = source.read()
    assert frame is not None and frame.detections is not None and source.status == STATUS_OK
    a, b = frame.detections
    assert (a.class_name, b.class_name) == (CLASS_CARD, CLASS_CARD)
    # the score is the centre heatmap's peak cell (the card's centre lies between cell centres)
    assert 0.9 >= a.score > b.score > 0.55
    assert (a.orientation, b.orientation) == (Orientation.UPRIGHT, Orientation.ROTATED_180)
    # 8-bit geometry: corner vectors on a 1-input-pixel grid, snapped corners on a quarter-pixel grid (x2.5)
    assert quad_corner_error_px(a.quad_px, as_quad(upright)) < 1.5
    assert quad_corner_error_px(b.quad_px, as_quad(upside_down)) < 1.5
    assert a.bbox_px.iou(b.bbox_px) == 0.0 and a.bbox_px.w > 100


def test_carddet_maps_through_the_scaler_crop_like_convert_inference_coords(rig: Any) -> None:
    from picamera2._rig import RigFrame

    zoom = (1014, 760, 2028, 1520)                         # 2x digital zoom on the centre
    card = pose_quad((128, 96), 60, 0)                      # tensor pixels: a card in the middle of the sensor
    rig.frames = [RigFrame(belt(), 0, encode([card], [0.9]), zoom)]
    source = open_camera(params(rig))
    frame = source.read()
    assert frame is not None and frame.detections is not None
    (det,) = frame.detections
    lo, hi = card.min(axis=0) + 0.5, card.max(axis=0) + 0.5    # the card's extent as a normalised box
    box_yx = (lo[1] / INPUT_WH[1], lo[0] / INPUT_WH[0], hi[1] / INPUT_WH[1], hi[0] / INPUT_WH[0])
    x, y, w, h = source._imx500.convert_inference_coords(box_yx, {"ScalerCrop": zoom}, source._picam2)
    assert abs(det.bbox_px.x + 0.5 - x) <= 2 and abs(det.bbox_px.y + 0.5 - y) <= 2
    assert abs(det.bbox_px.w - w) <= 2 and abs(det.bbox_px.h - h) <= 2
    assert det.bbox_px.h == pytest.approx(2 * 2.5 * 60, abs=3)   # twice as tall as without the zoom


@pytest.mark.parametrize("crop", [(0, 0, 4056, 3040), (1014, 760, 2028, 1520), (500, 300, 3000, 2250)])
def test_tensor_to_stream_agrees_with_picamera2s_integer_conversion(rig: Any, crop: tuple[int, int, int, int]
                                                                    ) -> None:
    from picamera2._rig import RigFrame

    rig.frames = [RigFrame(belt(), 0, None)]
    source = open_camera(params(rig))
    rng = np.random.default_rng(3)
    for _ in range(20):
        lo = rng.uniform([60, 50], [120, 90])
        hi = lo + rng.uniform([20, 20], [80, 60])
        corners = np.array([lo, hi]) - 0.5                  # pixel-centre coordinates of the box's edges
        mapped = tensor_to_stream(corners, INPUT_WH, (0, 0, 4056, 3040), crop, STREAM_WH) + 0.5
        box_yx = (lo[1] / INPUT_WH[1], lo[0] / INPUT_WH[0], hi[1] / INPUT_WH[1], hi[0] / INPUT_WH[0])
        x, y, w, h = source._imx500.convert_inference_coords(box_yx, {"ScalerCrop": crop}, source._picam2)
        if w == 0 or h == 0:
            continue                                        # outside the visible crop: picamera2 clips it away
        if 0 < x and 0 < y and x + w < STREAM_WH[0] and y + h < STREAM_WH[1]:
            # picamera2 truncates at each of its three scalings (full sensor, raw, stream): its corner lies at
            # most ~1.5 stream px before ours, its far corner (x + w: w truncated separately) at most ~3 px
            near, far = mapped[0] - (x, y), mapped[1] - (x + w, y + h)
            assert np.all((near > -0.01) & (near < 2.0)), near
            assert np.all((far > -0.01) & (far < 3.5)), far


def test_carddet_uses_the_inference_roi_the_camera_set(rig: Any) -> None:
    from picamera2._rig import RigFrame

    rig.intrinsics = {"task": "object detection", "input_aspect_ratio": {"width": 1, "height": 1}}
    rig.input_size_wh = (192, 192)                         # a square tensor: the ROI is the centre 3040x3040
    card = np.array([[-0.5, -0.5], [191.5, -0.5], [191.5, 191.5], [-0.5, 191.5]])  # the whole tensor
    grid_heat = np.zeros((2, 48, 48), np.float32)
    grid_heat[0, 24, 24] = 0.9
    geo = np.zeros((12, 48, 48), np.float32)
    cx, cy = (24 + 0.5) * STRIDE - 0.5, (24 + 0.5) * STRIDE - 0.5
    geo[0:8, 24, 24] = ((card - [cx, cy]) / CORNER_UNIT_PX).reshape(-1)
    rig.frames = [RigFrame(belt(), 0, [grid_heat, geo])]
    source = open_camera(params(rig, **{"carddet.edge_margin_px": -1000.0}))
    assert "set_auto_aspect_ratio" in rig.events
    frame = source.read()
    assert frame is not None and frame.detections is not None
    (det,) = frame.detections
    # the ROI (508, 0, 3040, 3040) of the 4056-wide sensor is the main stream's x 80.2..559.8, the full height
    assert det.bbox_px.x + 0.5 == pytest.approx(508 / 4056 * 640, abs=0.5)
    assert det.bbox_px.w == pytest.approx(3040 / 4056 * 640, abs=0.5)
    assert det.bbox_px.h == pytest.approx(480, abs=0.5)


def test_carddet_accepts_channel_last_tensors_with_the_same_result(rig: Any) -> None:
    from picamera2._rig import RigFrame

    card = pose_quad((300, 240), 200, -20)
    chw = encode([stream_to_tensor(card)], [0.8])
    rig.frames = [RigFrame(belt(), 0, chw), RigFrame(belt(), 1, [t.transpose(1, 2, 0) for t in chw])]
    source = open_camera(params(rig))
    first, second = source.read(), source.read()
    assert first is not None and second is not None
    assert first.detections == second.detections and len(first.detections or []) == 1


def test_carddet_names_the_shapes_of_another_networks_tensors(rig: Any) -> None:
    from picamera2._rig import RigFrame

    boxes = [np.zeros((10, 4), np.float32), np.zeros(10, np.float32), np.zeros(10, np.float32)]
    rig.frames = [RigFrame(belt(), 0, boxes)]
    source = open_camera(params(rig))
    with pytest.raises(CameraError, match=r"\[\[10, 4\], \[10\], \[10\]\].*heatmaps \[2, 48, 64\]"):
        source.read()


def test_carddet_overlapping_cards_are_one_double_feed_and_the_class_filter_applies(rig: Any) -> None:
    from picamera2._rig import RigFrame

    single = pose_quad((150, 240), 200, 0)
    pair = [pose_quad((440, 230), 200, 0), pose_quad((480, 260), 200, 12)]
    tensors = encode([stream_to_tensor(q) for q in (single, *pair)], [0.9, 0.8, 0.75])
    rig.frames = [RigFrame(belt(), 0, tensors), RigFrame(belt(), 1, tensors)]
    every = open_camera(params(rig)).read()
    assert every is not None and every.detections is not None
    assert sorted(d.class_name for d in every.detections) == [CLASS_CARD, CLASS_DOUBLE_FEED]
    rig._next = 1
    cards_only = open_camera(params(rig, class_filter="card")).read()
    assert cards_only is not None and [d.class_name for d in cards_only.detections or []] == [CLASS_CARD]


def test_carddet_drops_cards_cut_by_the_image_edge(rig: Any) -> None:
    from picamera2._rig import RigFrame

    inside, cut = pose_quad((200, 240), 200, 0), pose_quad((620, 240), 200, 0)
    rig.frames = [RigFrame(belt(), 0, encode([stream_to_tensor(inside), stream_to_tensor(cut)], [0.9, 0.9]))]
    frame = open_camera(params(rig)).read()
    assert frame is not None and frame.detections is not None
    assert [round(d.bbox_px.x + d.bbox_px.w / 2) // 10 for d in frame.detections] == [20]


def test_carddet_refine_moves_the_corners_onto_the_card_and_keeps_the_networks_orientation(rig: Any) -> None:
    from picamera2._rig import RigFrame

    truth = pose_quad((320, 240), 260, 180 + 6)              # upside down, on a dark belt the CPU detector reads
    image = belt([truth], [4])
    off = truth + np.array([[4.0, -3.0], [-3.0, 4.0], [3.0, 3.0], [-4.0, -4.0]])   # the network is a few px off
    rig.frames = [RigFrame(image, 0, encode([stream_to_tensor(off)], [0.9])),
                  RigFrame(image, 1, encode([stream_to_tensor(off)], [0.9]))]
    raw = open_camera(params(rig)).read()
    rig._next = 1
    refined = open_camera(params(rig, refine=True)).read()
    assert raw is not None and refined is not None and raw.detections and refined.detections
    (r,), (f,) = raw.detections, refined.detections
    assert quad_corner_error_px(r.quad_px, as_quad(truth)) > 3.0
    assert quad_corner_error_px(f.quad_px, as_quad(truth)) < 1.0
    assert f.orientation == Orientation.ROTATED_180 and f.score == r.score


def test_carddets_own_onnx_outputs_pass_through_the_sensor_path_unchanged(rig: Any) -> None:
    """The real network's tensors (CPU ONNX on the frame as the sensor would scale it), through the fake
    camera, give the same cards as decoding them directly with the CPU backend's letterbox."""
    import cv2

    from cardsorter.core.card_detector_decode import DEFAULT_DECODE, decode, letterbox_for

    model = Path(__file__).resolve().parents[1] / "models" / "carddet.onnx"
    if not model.is_file():
        pytest.skip(f"{model} is not in this checkout (the trained detector ships with it)")
    import onnxruntime as ort
    from picamera2._rig import RigFrame

    rng = np.random.default_rng(5)
    texture = cv2.resize(rng.integers(40, 200, (12, 16, 3)).astype(np.uint8), STREAM_WH,
                         interpolation=cv2.INTER_CUBIC)                     # a mottled mat, not a plain belt
    frame = np.ascontiguousarray(texture)
    quads = [pose_quad((210, 240), 260, 6), pose_quad((470, 230), 240, 180 - 10)]
    for quad, seed in zip(quads, (2, 3), strict=True):
        paste_card(frame, card_image(seed), quad)
    tensor_img = cv2.resize(frame, INPUT_WH, interpolation=cv2.INTER_AREA)        # the sensor's 4:3 scaling
    x = np.ascontiguousarray(tensor_img[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    heat, geo = session.run(None, {session.get_inputs()[0].name: x})
    assert [heat.shape[1:], geo.shape[1:]] == CONVERTED_OUTPUT_SHAPES
    rig.frames = [RigFrame(frame, 0, [heat[0], geo[0]])]
    d = DEFAULT_DECODE
    source = open_camera(params(rig, score_min=d.score_min, iou_max=d.nms_iou, max_detections=d.max_cards,
                                **{"carddet.edge_margin_px": -1000.0,
                                             "carddet.snap_radius_cells": d.snap_radius_cells,
                                             "carddet.snap_score_min": d.snap_score_min,
                                             "carddet.orientation_min": d.orientation_min,
                                             "carddet.double_feed_overlap": d.double_feed_overlap}))
    got = source.read()
    assert got is not None and got.detections is not None
    want = decode(heat, geo, letterbox_for(STREAM_WH, INPUT_WH), DEFAULT_DECODE)
    assert want, "the shipped detector finds neither of two large cards on a mat"
    assert len(got.detections) == len(want)
    for g, w in zip(got.detections, want, strict=True):
        assert (g.class_name, g.orientation) == (w.class_name, w.orientation)
        assert quad_corner_error_px(g.quad_px, w.quad_px) < 0.01


# --- the high-resolution main stream (imx500.main_width/main_height) ----------------------------------------

MAIN_WH = (1280, 960)      # 2x the published frame (the default is the sensor's 2028x1520)


def test_a_larger_main_stream_is_published_resized_with_the_same_corners_and_gives_full_resolution_closeups(
        rig: Any) -> None:
    from picamera2._rig import RigFrame

    card = pose_quad((300, 240), 220, 6)
    tensors = encode([stream_to_tensor(card)], [0.9])
    main_image = cv2.resize(belt([card], [3]), MAIN_WH, interpolation=cv2.INTER_LINEAR)
    rig.frames = [RigFrame(main_image, 0, tensors), RigFrame(main_image, 1, tensors)]
    source = open_camera(params(rig, main_width=MAIN_WH[0], main_height=MAIN_WH[1], main_buffer_frames=1))
    assert source._picam2.camera_configuration()["main"]["size"] == MAIN_WH
    first = source.read()
    assert first is not None and first.image_bgr.shape == (STREAM_WH[1], STREAM_WH[0], 3)
    (det,) = first.detections or []
    assert quad_corner_error_px(det.quad_px, as_quad(card)) < 1.5      # in the published frame's pixels
    # the closeup is cut from the 2x frame: the card's height covers twice the published pixels
    closeup = source.closeup(first.frame_index, det.quad_px, 700)
    assert closeup.image_bgr.shape[:2] == (700, 501)
    published_h = float(np.linalg.norm(np.asarray(det.quad_px[3]) - np.asarray(det.quad_px[0])))
    assert closeup.source_card_height_px == pytest.approx(2 * published_h, rel=0.02)
    second = source.read()                       # the buffer holds one main frame: the first is gone
    assert second is not None
    with pytest.raises(CameraError, match="main_buffer_frames"):
        source.closeup(first.frame_index, det.quad_px, 700)
    assert source.closeup(second.frame_index, det.quad_px, 700).image_bgr.shape[:2] == (700, 501)


@pytest.mark.parametrize(("main", "named"), [((320, 240), "at least the published"),
                                             ((1280, 720), "aspect ratio")])
def test_a_main_stream_smaller_than_the_frames_or_of_another_shape_is_refused(
        rig: Any, main: tuple[int, int], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        open_camera(params(rig, main_width=main[0], main_height=main[1]))


def test_main_width_and_height_are_set_together() -> None:
    with pytest.raises(ConfigError, match="both 0"):
        load_settings(overrides={"camera": {"imx500.main_width": 0, "imx500.main_height": 1520}})
