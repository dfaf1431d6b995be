"""Card tracker: stable ids, missed frames, track ends."""

from __future__ import annotations

import pytest
from perception_support import box_detection, tracker_config

from cardsorter.core.tracking import END_LOST, END_SHUTDOWN, CardTracker
from cardsorter.core.types import Detection

FRAME_NS = 33_333_333


def run(tracker: CardTracker, frames: list[list[Detection]]) -> tuple[list[list[int]], list]:
    ids, ends = [], []
    for i, dets in enumerate(frames):
        out, ended = tracker.update(dets, i * FRAME_NS)
        ids.append([d.track_id for d in out])
        ends.extend(ended)
    return ids, ends


def test_a_moving_card_keeps_its_id() -> None:
    frames = [[box_detection(20 + 12 * i, 100)] for i in range(30)]
    ids, ends = run(CardTracker(tracker_config()), frames)
    assert {i[0] for i in ids} == {1}
    assert ends == []


def test_crossing_cards_keep_their_ids() -> None:
    # A moves right, B moves left on an overlapping lane; their boxes overlap while they pass.
    frames = [[box_detection(40 + 14 * i, 100), box_detection(460 - 14 * i, 130)] for i in range(30)]
    ids, _ = run(CardTracker(tracker_config()), frames)
    assert all(frame_ids == [1, 2] for frame_ids in ids)


def test_missed_detections_within_the_limit_keep_the_track() -> None:
    cfg = tracker_config()
    frames = [[box_detection(20 + 10 * i, 100)] if not 10 <= i < 10 + cfg.max_missed_frames else []
              for i in range(25)]
    ids, ends = run(CardTracker(cfg), frames)
    assert {t for frame_ids in ids for t in frame_ids} == {1}
    assert ends == []


def test_card_leaving_and_a_new_one_at_the_same_place_get_different_ids() -> None:
    cfg = tracker_config()
    gap = cfg.max_missed_frames + 1
    frames = [[box_detection(200, 150)]] * 10 + [[]] * gap + [[box_detection(202, 151)]] * 10
    ids, ends = run(CardTracker(cfg), frames)
    assert ids[0] == [1] and ids[-1] == [2]
    assert len(ends) == 1 and ends[0].track_id == 1 and ends[0].reason == END_LOST
    assert ends[0].frames_seen == 10


def test_ids_are_never_shared_in_one_frame() -> None:
    # Three cards whose boxes all overlap the same predicted box.
    dets = [box_detection(100, 100), box_detection(104, 102), box_detection(108, 100)]
    tracker = CardTracker(tracker_config())
    tracker.update([box_detection(104, 101)], 0)
    out, _ = tracker.update(dets, FRAME_NS)
    assert len({d.track_id for d in out}) == 3


def test_track_end_reports_velocity_and_double_feed() -> None:
    tracker = CardTracker(tracker_config())
    for i in range(6):
        tracker.update([box_detection(30 * i, 50, class_name="double_feed")], i * 100_000_000)
    (end,) = tracker.flush(600_000_000)
    assert end.reason == END_SHUTDOWN and end.double_feed
    assert end.velocity_px_per_s[0] == pytest.approx(300.0)
    assert end.first_stamp_ns == 0 and end.last_stamp_ns == 500_000_000


def test_single_card_is_not_a_double_feed() -> None:
    tracker = CardTracker(tracker_config())
    tracker.update([box_detection(10, 10)], 0)
    tracker.update([box_detection(10, 10, class_name="double_feed")], FRAME_NS)
    tracker.update([box_detection(10, 10)], 2 * FRAME_NS)
    (end,) = tracker.flush(3 * FRAME_NS)
    assert not end.double_feed


def test_stamps_going_backwards_are_rejected() -> None:
    tracker = CardTracker(tracker_config())
    tracker.update([], 10)
    with pytest.raises(ValueError, match="backwards"):
        tracker.update([], 5)
