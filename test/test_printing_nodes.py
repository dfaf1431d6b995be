"""The printing reader node and the camera's closeups, each node alone over real DDS."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
from cardsorter.msg import (
    CardCloseup,
    CardDetection,
    CardDetectionArray,
    CardMatchArray,
    CloseupRequest,
    PrintingReading,
    TrackEnd,
)
from rosutil import Collector, overrides, ros_context, spin_until, started

from cardsorter.core.printing import ViewReading, read_lines
from cardsorter.core.types import Candidate, CardMatch, CardRecord, MatchBand
from cardsorter.ros import conversions as cv
from cardsorter.ros import qos
from cardsorter.ros.camera_node import CameraNode
from cardsorter.ros.printing_reader_node import PrintingReaderNode
from cardsorter.sim.catalog import generate_catalog

QUAD = [100.0, 50.0, 226.0, 50.0, 226.0, 226.0, 100.0, 226.0]


class ScriptedReader:
    """A PrintingReader answering every view with one line; remembers the image sizes it was given."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sizes: list[tuple[int, int]] = []

    def read(self, card_bgr: np.ndarray) -> ViewReading:
        self.sizes.append(card_bgr.shape[:2])
        return read_lines([(self.text, 0.93)], method="detect")

    def close(self) -> None:
        pass


def _printings() -> tuple[CardRecord, ...]:
    return tuple(CardRecord(card_id=c, name="X", set_id=c.split("-")[0], number=c.split("-")[1], art_id="art")
                 for c in ("s1-4", "s2-9"))


def _tracks(stamp: int, frame: int, *track_ids: int) -> CardDetectionArray:
    dets = [CardDetection(track_id=t, bbox_px=[100.0, 50.0, 126.0, 176.0], has_quad=True, quad_px=QUAD, score=0.9)
            for t in track_ids]
    return CardDetectionArray(header=cv.header(stamp, "f"), frame_index=frame, detections=dets)


def test_the_reader_asks_for_spaced_closeups_of_reprinted_cards_and_reads_them() -> None:
    reader = ScriptedReader("S2 EN 009/102")
    with ros_context() as (context, executor):
        col = Collector(context, {"camera/closeup_requests": (CloseupRequest, qos.DECISIONS),
                                  "printing_readings": (PrintingReading, qos.DECISIONS)})
        node = PrintingReaderNode(reader=reader, context=context, parameter_overrides=overrides(
            "printing_reader", **{"printing.views_max": 2, "printing.view_interval_frames": 3}))
        for n in (col, node):
            executor.add_node(n)
        matches = col.publisher(CardMatchArray, "matches", qos.PIPELINE)
        tracks = col.publisher(CardDetectionArray, "tracks", qos.PIPELINE)
        closeups = col.publisher(CardCloseup, "camera/closeups", qos.DECISIONS)
        ends = col.publisher(TrackEnd, "track_ends", qos.DECISIONS)
        spin_until(executor, lambda: matches.get_subscription_count() > 0 and tracks.get_subscription_count() > 0
                   and closeups.get_subscription_count() > 0, 10.0)
        printings = _printings()
        alone = CardMatch(8, MatchBand.CONFIRMED, (Candidate(printings[0], 0.1),), 0.3)   # no printings: not read
        reprint = CardMatch(7, MatchBand.AMBIGUOUS, (Candidate(printings[0], 0.1),), 0.01, art_printings=printings)
        finishes = CardRecord(card_id="s3-1", name="Y", set_id="s3", number="1", finishes=("normal", "reverse_holo"))
        several = CardMatch(9, MatchBand.CONFIRMED, (Candidate(finishes, 0.1),), 0.3)      # its finish: read
        matches.publish(cv.matches_to_msg([reprint, alone, several], cv.header(1_000, "f"), "db"))
        assert spin_until(executor, lambda: sorted(node._wanted) == [7, 9], 10.0)
        # one frame at a time, as a camera sends them, each waited for (published again if it did not
        # arrive): the tracks QoS keeps 10, and a DDS stall that delivers a burst late would drop frames,
        # which is the camera's loss to ride out, not what this test is about
        for frame in range(10, 20):
            for _attempt in range(5):
                tracks.publish(_tracks(1_000 + frame, frame, 7, 8, 9))
                if spin_until(executor, lambda s=1_000 + frame: node._inputs.last_good_stamp_ns == s, 1.0):
                    break
        assert spin_until(executor, lambda: len(col.received["camera/closeup_requests"]) >= 4, 10.0)
        spin_until(executor, lambda: False, 0.3)
        requests = [r for r in col.received["camera/closeup_requests"] if r.track_id == 7]
        assert [(r.track_id, cv.stamp_to_ns(r.header.stamp)) for r in requests] == [(7, 1_010), (7, 1_013)]
        assert sorted({r.track_id for r in col.received["camera/closeup_requests"]}) == [7, 9]
        assert list(requests[0].quad_px) == QUAD and requests[0].card_height_px == 700
        image = np.full((700, 501, 3), 200, np.uint8)
        closeups.publish(CardCloseup(header=requests[0].header, track_id=7,
                                     image=cv.image_to_msg(image, requests[0].header), source_card_height_px=560.0))
        closeups.publish(CardCloseup(header=requests[1].header, track_id=7, error="frame 1013 is no longer buffered"))
        assert spin_until(executor, lambda: len(col.received["printing_readings"]) >= 2, 10.0)
        read, missed = col.received["printing_readings"]
        assert (read.track_id, list(read.lines), read.method, read.skipped) == (7, ["S2 EN 009/102"], "detect", "")
        assert (read.finish, read.finish_views) == ("unknown", 1)      # one closeup: nothing to compare yet
        assert missed.skipped == "frame 1013 is no longer buffered" and list(missed.lines) == []
        assert reader.sizes == [(700, 501)]
        # a track that ended is forgotten: no more requests for it
        ends.publish(TrackEnd(header=cv.header(1_030, "f"), track_id=7))
        matches.publish(cv.matches_to_msg([reprint], cv.header(1_031, "f"), "db"))
        spin_until(executor, lambda: False, 0.3)


def test_a_reader_that_is_off_asks_for_nothing() -> None:
    with ros_context() as (context, executor):
        col = Collector(context, {"camera/closeup_requests": (CloseupRequest, qos.DECISIONS)})
        node = PrintingReaderNode(context=context, parameter_overrides=overrides(
            "printing_reader", **{"printing.views_max": 0}))
        for n in (col, node):
            executor.add_node(n)
        matches = col.publisher(CardMatchArray, "matches", qos.PIPELINE)
        tracks = col.publisher(CardDetectionArray, "tracks", qos.PIPELINE)
        spin_until(executor, lambda: matches.get_subscription_count() > 0, 10.0)
        reprint = CardMatch(7, MatchBand.AMBIGUOUS, (Candidate(_printings()[0], 0.1),), 0.01, art_printings=_printings())
        matches.publish(cv.matches_to_msg([reprint], cv.header(1_000, "f"), "db"))
        for frame in range(10, 16):
            tracks.publish(_tracks(1_000 + frame, frame, 7))
            spin_until(executor, lambda: False, 0.05)
        spin_until(executor, lambda: False, 1.0)
        assert col.received["camera/closeup_requests"] == []


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("cat") / "catalog"
    generate_catalog(path, cards=4, seed=2)
    return path


def test_the_camera_cuts_closeups_of_buffered_frames_and_says_why_not_otherwise(catalog: pathlib.Path) -> None:
    with ros_context() as (context, executor):
        col = Collector(context, {"camera/detections": (CardDetectionArray, qos.PIPELINE),
                                  "camera/closeups": (CardCloseup, qos.DECISIONS)})
        executor.add_node(col)
        node = started(CameraNode(context=context, parameter_overrides=overrides(
            "camera", **{"synthetic.catalog_dir": str(catalog), "synthetic.cards": 2, "fps": 20.0,
                         "synthetic.mode": "station", "synthetic.realtime": True})))
        executor.add_node(node)
        requests = col.publisher(CloseupRequest, "camera/closeup_requests", qos.DECISIONS)
        assert spin_until(executor, lambda: any(m.detections for m in col.received["camera/detections"]), 60.0)
        frame = next(m for m in col.received["camera/detections"] if m.detections)
        det = frame.detections[0]
        requests.publish(CloseupRequest(header=frame.header, track_id=3, quad_px=list(det.quad_px), card_height_px=700))
        requests.publish(CloseupRequest(header=cv.header(5, "f"), track_id=4, quad_px=list(det.quad_px),
                                        card_height_px=700))
        requests.publish(CloseupRequest(header=frame.header, track_id=5, quad_px=[0.0] * 7 + [float("nan")],
                                        card_height_px=700))
        assert spin_until(executor, lambda: len(col.received["camera/closeups"]) >= 2, 20.0)
        spin_until(executor, lambda: False, 0.3)
        by_track = {c.track_id: c for c in col.received["camera/closeups"]}
        assert set(by_track) == {3, 4}, "the malformed request is dropped, not answered"
        good = by_track[3]
        assert good.error == "" and (good.image.height, good.image.width) == (700, 501)
        assert good.source_card_height_px == pytest.approx(200 * 3.2, rel=0.05)
        assert "no longer buffered" in by_track[4].error and by_track[4].image.height == 0
        assert node._inputs.dropped.get("camera/closeup_requests") == 1
