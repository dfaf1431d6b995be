"""The overlay node annotates frames over real DDS, and a broken parameter stops it at start by name."""

from __future__ import annotations

import numpy as np
import pytest
from cardsorter.msg import CardIdentityArray
from rosutil import Collector, overrides, ros_context, spin_until
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from cardsorter.core.errors import ConfigError
from cardsorter.core.types import BoxPx, CardRecord, Detection, Identity, TrackState
from cardsorter.ros import conversions as cv
from cardsorter.ros import qos
from cardsorter.ros.overlay_node import OverlayNode

QUAD = ((20.0, 10.0), (80.0, 12.0), (78.0, 100.0), (18.0, 98.0))


def test_overlay_draws_the_tracked_card_and_publishes_markers() -> None:
    with ros_context() as (context, executor):
        node = OverlayNode(context=context, parameter_overrides=overrides("overlay"))
        col = Collector(context, {"debug/image": (Image, qos.DEBUG), "debug/markers": (MarkerArray, qos.DEBUG)})
        executor.add_node(node)
        executor.add_node(col)
        img_pub = col.publisher(Image, "camera/image_raw", qos.CAMERA_FRAMES)
        from cardsorter.msg import CardDetectionArray
        trk_pub = col.publisher(CardDetectionArray, "tracks", qos.PIPELINE)
        id_pub = col.publisher(CardIdentityArray, "identities", qos.DECISIONS)
        frame = np.zeros((120, 100, 3), np.uint8)
        det = Detection(BoxPx.from_quad(QUAD), QUAD, 0.9, track_id=1)
        ident = Identity(1, TrackState.CONFIRMED, CardRecord("sv1-1", "Sprout", "sv1", number="1"), 0.9, 0.1, 0.3,
                         3, 3, False, "agreed", 1000)

        def send() -> bool:
            hdr = cv.header(1000, "cam")
            id_pub.publish(CardIdentityArray(header=hdr, identities=[cv.identity_to_msg(ident, "cam")]))
            img_pub.publish(cv.image_to_msg(frame, hdr))
            trk_pub.publish(cv.detections_to_msg([det], hdr, 1))
            return False

        def confirmed_card_drawn_green() -> bool:
            if not col.received["debug/image"]:
                return False
            annotated = cv.image_from_msg(col.received["debug/image"][-1])
            green = (annotated[:, :, 1] > 150) & (annotated[:, :, 2] < 60) & (annotated[:, :, 0] < 60)
            return int(green[8:103, 15:84].sum()) > 100

        assert spin_until(executor, lambda: send() or confirmed_card_drawn_green(), 20.0)
        def labelled() -> bool:
            return any("Sprout" in m.text for arr in col.received["debug/markers"] for m in arr.markers)

        assert spin_until(executor, lambda: send() or labelled(), 20.0)
        markers = next(arr.markers for arr in col.received["debug/markers"]
                       if any("Sprout" in m.text for m in arr.markers))
        assert markers[0].action == Marker.DELETEALL
        outline = next(m for m in markers if m.ns == "cards")
        assert outline.color.a == 1.0 and len(outline.points) == 5
        assert any("Sprout" in m.text for m in markers if m.ns == "labels")


@pytest.mark.parametrize("param, value", [("image_scale", "big"), ("image_scale", 9.0), ("publish_markers", 1)])
def test_a_broken_parameter_fails_at_start_naming_it(param: str, value: object) -> None:
    with ros_context() as (context, _executor), pytest.raises(ConfigError, match=param):
        OverlayNode(context=context, parameter_overrides=overrides("overlay", **{param: value}))


def test_a_missing_parameter_fails_at_start_naming_it() -> None:
    from rclpy.parameter import Parameter

    params = [p for p in overrides("overlay") if p.name != "publish_image"]
    with ros_context() as (context, _executor), pytest.raises(ConfigError, match="missing parameter 'publish_image'"):
        OverlayNode(context=context, parameter_overrides=params)
    assert Parameter  # imported for the list type above


def test_overlay_publishes_the_annotated_jpeg_at_most_compressed_fps_to_who_subscribes() -> None:
    from cardsorter.msg import CardDetectionArray
    from sensor_msgs.msg import CompressedImage
    with ros_context() as (context, executor):
        # one JPEG per 10 s at most: a couple of seconds of frames give exactly one
        node = OverlayNode(context=context, parameter_overrides=overrides("overlay", compressed_fps=0.1))
        col = Collector(context, {"debug/image/compressed": (CompressedImage, qos.DEBUG)})
        executor.add_node(node)
        executor.add_node(col)
        img_pub = col.publisher(Image, "camera/image_raw", qos.CAMERA_FRAMES)
        trk_pub = col.publisher(CardDetectionArray, "tracks", qos.PIPELINE)
        assert spin_until(executor, lambda: trk_pub.get_subscription_count() > 0 and img_pub.get_subscription_count() > 0)
        frame = np.zeros((120, 100, 3), np.uint8)
        det = Detection(BoxPx.from_quad(QUAD), QUAD, 0.9, track_id=1)
        for i in range(20):
            hdr = cv.header(1000 + i, "cam")
            img_pub.publish(cv.image_to_msg(frame, hdr))
            trk_pub.publish(cv.detections_to_msg([det], hdr, 1))
            spin_until(executor, lambda: False, 0.1)
        assert spin_until(executor, lambda: len(col.received["debug/image/compressed"]) >= 1, 10.0)
        spin_until(executor, lambda: False, 0.5)
        jpegs = col.received["debug/image/compressed"]
        assert len(jpegs) == 1 and jpegs[0].format == "jpeg"
        import cv2
        annotated = cv2.imdecode(np.frombuffer(bytes(jpegs[0].data), np.uint8), cv2.IMREAD_COLOR)
        assert annotated.shape == frame.shape and int(annotated.max()) > 100   # the card's outline is drawn
