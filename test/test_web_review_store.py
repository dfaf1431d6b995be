"""The review queue survives a restart: open items come back with their crop and candidates, resolved ones do not."""

from __future__ import annotations

import pathlib

import pytest

from cardsorter.core.errors import InventoryError
from cardsorter.web.review_store import ReviewStore
from cardsorter.web.state import Candidate, LiveState

CANDIDATES = [Candidate("sv1-2", "Bulbasaur", "sv1", "2", 0.21), Candidate("sv1-3", "Ivysaur", "sv1", "3", 0.25)]


def rejected(state: LiveState, store: pathlib.Path, track_id: int, status: str = "unknown") -> None:
    """A card sent to the reject bin, as the web node sees it: candidates, crop, sort event, kept on disk."""
    state.set_candidates(track_id, CANDIDATES)
    state.set_crop(track_id, b"\xff\xd8jpeg-of-%d" % track_id)
    item = state.add_sort_event(track_id=track_id, session_id="a1b2c3", status=status, reason="no close match",
                                bin_name="reject", position_in_bin=track_id, stamp_ns=1000 + track_id, now_s=0.0)
    assert item is not None
    ReviewStore(store).save(item)


@pytest.fixture()
def folder(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "review"


def test_open_items_come_back_after_a_restart_with_crop_and_candidates(folder: pathlib.Path) -> None:
    before = LiveState()
    rejected(before, folder, 3)
    rejected(before, folder, 5, status="ambiguous")

    after = LiveState()
    restored = after.restore(ReviewStore(folder).load_open()[0])
    assert [(i.track_id, i.status, i.session_id) for i in restored] == [(3, "unknown", "a1b2c3"), (5, "ambiguous", "a1b2c3")]
    assert restored[0].crop_jpeg == b"\xff\xd8jpeg-of-3"
    assert restored[0].candidates == tuple(CANDIDATES)
    assert all(i.restored and i.open for i in restored)
    assert [i.item_id for i in after.review_items()] == [2, 1]   # the page's newest-first order


def test_a_resolved_item_does_not_come_back(folder: pathlib.Path) -> None:
    state = LiveState()
    rejected(state, folder, 3)
    rejected(state, folder, 4)
    store = ReviewStore(folder)
    item = state.review_items()[-1]   # track 3
    store.resolved(item, "card:sv1-2", "inventory row 1 corrected")
    assert [i.track_id for i in ReviewStore(folder).load_open()[0]] == [4]


def test_new_items_after_a_restart_get_ids_after_the_restored_ones(folder: pathlib.Path) -> None:
    rejected(LiveState(), folder, 3)
    state = LiveState()
    state.restore(ReviewStore(folder).load_open()[0])
    state.set_crop(3, b"x")
    new = state.add_sort_event(track_id=3, session_id="d4e5f6", status="unknown", reason="", bin_name="reject",
                               position_in_bin=1, stamp_ns=5000, now_s=0.0)
    assert new is not None and new.item_id == 2 and not new.restored
    assert {(i.session_id, i.track_id) for i in state.review_items()} == {("a1b2c3", 3), ("d4e5f6", 3)}


def test_a_confirmed_card_is_not_queued_and_its_crop_is_dropped() -> None:
    encoded: list[object] = []
    state = LiveState(encode_crop=lambda c: encoded.append(c) or b"jpeg")
    state.set_crop(7, "pixels")
    assert state.add_sort_event(track_id=7, session_id="s", status="confirmed", reason="", bin_name="b1",
                                position_in_bin=1, stamp_ns=1, now_s=0.0) is None
    assert encoded == []   # never encoded: only review items are


def test_a_session_id_that_cannot_name_a_file_is_refused(folder: pathlib.Path) -> None:
    state = LiveState()
    state.set_crop(1, b"x")
    item = state.add_sort_event(track_id=1, session_id="../../etc", status="unknown", reason="", bin_name="reject",
                                position_in_bin=1, stamp_ns=1, now_s=0.0)
    assert item is not None
    with pytest.raises(InventoryError, match="cannot name a review file"):
        ReviewStore(folder).save(item)
    assert list(folder.iterdir()) == []


def test_an_unreadable_item_is_named_and_skipped_and_the_others_still_come_back(folder: pathlib.Path) -> None:
    state = LiveState()
    state.set_crop(4, b"jpeg")
    item = state.add_sort_event(track_id=4, session_id="s", status="unknown", reason="no close match",
                                bin_name="reject", position_in_bin=1, stamp_ns=5, now_s=0.0)
    assert item is not None
    ReviewStore(folder).save(item)
    (folder / "s-1.json").write_text("{not json")
    items, unreadable = ReviewStore(folder).load_open()
    assert [i.track_id for i in items] == [4]
    assert len(unreadable) == 1 and "s-1.json" in unreadable[0]
    assert (folder / "s-1.json").read_text() == "{not json"   # left where it was: nothing is lost
