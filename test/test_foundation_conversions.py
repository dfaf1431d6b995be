"""Message ↔ domain conversions round-trip and refuse malformed input by name."""

from __future__ import annotations

import numpy as np
import pytest

from cardsorter.core.errors import ImageError
from cardsorter.core.types import (
    BoxPx,
    Candidate,
    CardCrop,
    CardEmbedding,
    CardMatch,
    CardRecord,
    Detection,
    Identity,
    MatchBand,
    Orientation,
    SortDecision,
    SortStatus,
    TrackEnd,
    TrackState,
)
from cardsorter.ros import conversions as cv


def test_stamp_round_trip() -> None:
    assert cv.stamp_to_ns(cv.ns_to_stamp(1_700_000_000_123_456_789)) == 1_700_000_000_123_456_789


@pytest.mark.parametrize("encoding", ["bgr8", "rgb8"])
def test_image_round_trip_keeps_bgr_pixels(encoding: str) -> None:
    img = np.random.default_rng(0).integers(0, 255, (7, 5, 3), dtype=np.uint8)
    msg = cv.image_to_msg(img, cv.header(5, "cam"))
    if encoding == "rgb8":
        msg.encoding = "rgb8"
        msg.data = np.ascontiguousarray(img[:, :, ::-1]).tobytes()
    assert np.array_equal(cv.image_from_msg(msg), img)


def test_image_with_padded_rows_is_read() -> None:
    img = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    msg = cv.image_to_msg(img, cv.header(0, "cam"))
    padded = np.zeros((2, 12), np.uint8)
    padded[:, :9] = img.reshape(2, 9)
    msg.step, msg.data = 12, padded.tobytes()
    assert np.array_equal(cv.image_from_msg(msg), img)


def test_truncated_image_is_refused() -> None:
    msg = cv.image_to_msg(np.zeros((4, 4, 3), np.uint8), cv.header(0, "cam"))
    msg.data = bytes(10)
    with pytest.raises(ImageError, match="does not fit"):
        cv.image_from_msg(msg)


def test_unknown_encoding_is_named() -> None:
    msg = cv.image_to_msg(np.zeros((4, 4, 3), np.uint8), cv.header(0, "cam"))
    msg.encoding = "yuv422"
    with pytest.raises(ImageError, match="yuv422"):
        cv.image_from_msg(msg)


def test_detection_round_trip() -> None:
    quad = ((1.0, 2.0), (11.0, 2.5), (10.5, 20.0), (0.5, 19.0))
    det = Detection(BoxPx.from_quad(quad), quad, 0.75, "card", Orientation.ROTATED_180, 4)
    back = cv.detections_from_msg(cv.detections_to_msg([det], cv.header(9, "cam"), 3))
    assert back == [det]


def test_crop_round_trip() -> None:
    img = np.full((16, 12, 3), 7, np.uint8)
    crop = CardCrop(2, img, 123.5, BoxPx(1, 2, 3, 4), ((0, 0), (1, 0), (1, 1), (0, 1)))
    (back,) = cv.crops_from_msg(cv.crops_to_msg([crop], cv.header(1, "cam"), 1))
    assert back.track_id == 2 and back.sharpness == 123.5 and np.array_equal(back.image_bgr, img)


def test_embeddings_round_trip_and_dimension_check() -> None:
    vec = np.linspace(-1, 1, 8, dtype=np.float32)
    msg = cv.embeddings_to_msg([CardEmbedding(3, vec)], cv.header(1, "cam"), "m", 8)
    ids, mat = cv.embeddings_from_msg(msg)
    assert ids == [3] and np.array_equal(mat[0], vec)
    msg.dimension = 9
    with pytest.raises(ValueError, match="dimension 9"):
        cv.embeddings_from_msg(msg)


def test_match_round_trip() -> None:
    rec = CardRecord("sv1-1", "Sprout", "sv1", "Set One", "1", "Common", "art7", "holo", "Pokemon", ("Grass",), 1.5)
    m = CardMatch(5, MatchBand.AMBIGUOUS, (Candidate(rec, 0.125),), 0.0625)
    (back,) = cv.matches_from_msg(cv.matches_to_msg([m], cv.header(1, "cam"), "db"))
    assert back == m


def test_identity_round_trip() -> None:
    rec = CardRecord("sv1-1", "Sprout", "sv1")
    ident = Identity(5, TrackState.CONFIRMED, rec, 0.875, 0.125, 0.25, 3, 4, True, "agreed", 123)
    back = cv.identity_from_msg(cv.identity_to_msg(ident, "cam"))
    assert back == ident


def test_track_end_and_sort_event_round_trip() -> None:
    end = TrackEnd(7, 10, 20, 5, BoxPx(1, 2, 3, 4), (100.0, -2.0), True, "left_view")
    assert cv.track_end_from_msg(cv.track_end_to_msg(end, "cam")) == end
    dec = SortDecision(7, SortStatus.UNCONFIRMED, None, "reject", "identity never arrived", 2.0, 0.0, 10, 20)
    assert cv.sort_event_from_msg(cv.sort_event_to_msg(dec, 1, 30, "cam", "s")) == dec
