"""Camera and frame selector nodes over real DDS."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from cardsorter.msg import CardCropArray, CardDetectionArray, GroundTruth
from rosutil import Collector, overrides, ros_context, spin_until, started
from sensor_msgs.msg import Image

from cardsorter.core.types import BoxPx, Detection
from cardsorter.ros import conversions as cv
from cardsorter.ros import qos
from cardsorter.ros.camera_node import CameraNode
from cardsorter.ros.frame_selector_node import FrameSelectorNode
from cardsorter.sim.catalog import generate_catalog


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("cat") / "catalog"
    generate_catalog(path, cards=8, seed=5, unknown=1)
    return path


def test_synthetic_camera_publishes_frames_detections_and_truth_with_one_stamp(catalog: pathlib.Path) -> None:
    with ros_context() as (context, executor):
        col = Collector(context, {"camera/image_raw": (Image, qos.CAMERA_FRAMES),
                                  "camera/detections": (CardDetectionArray, qos.PIPELINE),
                                  "camera/ground_truth": (GroundTruth, qos.DECISIONS)})
        executor.add_node(col)
        node = started(CameraNode(context=context, parameter_overrides=overrides(
            "camera", **{"synthetic.catalog_dir": str(catalog), "synthetic.cards": 2, "fps": 20.0,
                         "synthetic.realtime": True})))
        executor.add_node(node)
        assert spin_until(executor, lambda: len(col.received["camera/detections"]) >= 15
                          and any(m.detections for m in col.received["camera/detections"]), 60.0)
        stamps = {k: {cv.stamp_to_ns(m.header.stamp) for m in v} for k, v in col.received.items()}
        common = stamps["camera/image_raw"] & stamps["camera/detections"] & stamps["camera/ground_truth"]
        assert len(common) >= 10, "frames, detections and truth are paired by one stamp"
        frames_with_cards = [m for m in col.received["camera/detections"] if m.detections]
        assert frames_with_cards, "the synthetic belt shows cards"
        det = frames_with_cards[0].detections[0]
        assert det.has_quad and det.track_id == -1
        image = col.received["camera/image_raw"][0]
        assert (image.width, image.height, image.encoding) == (640, 480, "bgr8")


def test_unknown_camera_source_fails_at_start_naming_it() -> None:
    from cardsorter.core.errors import ConfigError

    with ros_context() as (context, _executor), pytest.raises(ConfigError, match="source"):
        CameraNode(context=context, parameter_overrides=overrides("camera", source="webcam9000"))


def card_frame(offset_px: float) -> tuple[np.ndarray, Detection]:
    """A bright textured card on a dark frame, and its exact detection."""
    rng = np.random.default_rng(1)
    frame = np.full((300, 640, 3), 40, np.uint8)
    x0, y0 = int(100 + offset_px), 60
    frame[y0:y0 + 160, x0:x0 + 115] = rng.integers(60, 255, (160, 115, 3), dtype=np.uint8)
    quad = ((x0, y0), (x0 + 115.0, y0), (x0 + 115.0, y0 + 160.0), (x0, y0 + 160.0))
    return frame, Detection(BoxPx.from_quad(quad), quad, 0.9)


def run_selector(offsets: list[float]) -> tuple[int, list[CardDetectionArray]]:
    with ros_context() as (context, executor):
        col = Collector(context, {"crops": (CardCropArray, qos.PIPELINE), "tracks": (CardDetectionArray, qos.PIPELINE)})
        executor.add_node(col)
        node = FrameSelectorNode(context=context, parameter_overrides=overrides("frame_selector"))
        executor.add_node(node)
        img_pub = col.publisher(Image, "camera/image_raw", qos.CAMERA_FRAMES)
        det_pub = col.publisher(CardDetectionArray, "camera/detections", qos.PIPELINE)
        assert spin_until(executor, lambda: img_pub.get_subscription_count() > 0 and det_pub.get_subscription_count() > 0)
        for i, off in enumerate(offsets):
            frame, det = card_frame(off)
            hdr = cv.header(1_000_000_000 + i * 100_000_000, "cam")
            det_pub.publish(cv.detections_to_msg([det], hdr, i))
            img_pub.publish(cv.image_to_msg(frame, hdr))
            assert spin_until(executor, lambda n=i: len(col.received["tracks"]) > n, 20.0)
        crops = sum(len(m.crops) for m in col.received["crops"])
        return crops, col.received["tracks"]


def test_frame_selector_crops_fewer_when_the_card_stands_still() -> None:
    still, tracks = run_selector([0.0] * 12)
    moving, _ = run_selector([i * 35.0 for i in range(12)])
    assert len({d.track_id for m in tracks for d in m.detections}) == 1, "one card, one track"
    assert still < moving, (still, moving)
    assert still >= 1
