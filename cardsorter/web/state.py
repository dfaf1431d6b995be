"""What the operator's web view shows: live frame, tracks, bins, health and the review queue (thread-safe)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

V = TypeVar("V")

REVIEW_STATUSES = frozenset({"unknown", "ambiguous", "unconfirmed"})
"""Sort-event statuses a person should look at (everything that went to the reject bin)."""

FRAME_WATCHED_S = 3.0
"""The camera view is decoded and encoded only while a browser asked for a frame this recently."""

THROUGHPUT_WINDOW_S = 600.0
"""Cards per hour are counted over the last ten minutes of sort events (long enough to span a bin change)."""


@dataclass(frozen=True)
class Candidate:
    """One card the matcher proposed for a track (best first)."""

    card_id: str
    name: str
    set_id: str
    number: str
    distance_cos: float


@dataclass(frozen=True)
class TrackView:
    """The smoother's latest word on one track in view."""

    track_id: int
    state: str
    card_id: str
    name: str
    confidence: float
    agreeing_views: int
    views: int
    reason: str
    stamp_ns: int


@dataclass(frozen=True)
class ReviewItem:
    """A card that went to the reject bin, waiting for a person (or resolved by one)."""

    item_id: int
    track_id: int
    session_id: str
    status: str
    reason: str
    bin: str
    position_in_bin: int
    stamp_ns: int
    candidates: tuple[Candidate, ...]
    crop_jpeg: bytes | None
    resolution: str = ""          # "" while open; "card:<id>" or "unknown" once resolved
    message: str = ""             # what resolving it did (inventory row corrected, enrolled or why not)
    restored: bool = False        # read back after a restart: the matcher no longer has this track's embedding

    @property
    def open(self) -> bool:
        return not self.resolution


@dataclass
class _Frame:
    jpeg: bytes = b""
    stamp_ns: int = 0
    seq: int = 0


@dataclass
class LiveState:
    """Everything the pages read, fed by the web node's subscriptions. All methods are thread-safe."""

    review_max: int = 500
    crops_kept: int = 128
    tracks_kept: int = 32
    encode_crop: Callable[[Any], bytes] | None = None
    """Turns a kept crop into JPEG when its card becomes a review item (None: crops arrive as JPEG already).
    Only rejected cards are encoded: most tracks are confirmed, and their crops are dropped unseen."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _frame_ready: threading.Condition = field(init=False)
    _frame: _Frame = field(default_factory=_Frame)
    _frame_asked_s: float = float("-inf")
    _tracks: OrderedDict[int, TrackView] = field(default_factory=OrderedDict)
    _crops: OrderedDict[int, Any] = field(default_factory=OrderedDict)
    _candidates: OrderedDict[int, tuple[Candidate, ...]] = field(default_factory=OrderedDict)
    _review: OrderedDict[int, ReviewItem] = field(default_factory=OrderedDict)
    _next_item: int = 1
    _bins: dict[str, int] = field(default_factory=dict)
    _sorted_at: deque[float] = field(default_factory=deque)
    _sorted_total: int = 0
    _health: dict[str, tuple[int, str]] = field(default_factory=dict)
    _sorter_state: str = ""

    def __post_init__(self) -> None:
        self._frame_ready = threading.Condition(self._lock)

    # --- inputs (the node's callbacks) ---------------------------------------------------

    def set_frame(self, jpeg: bytes, stamp_ns: int) -> None:
        with self._frame_ready:
            self._frame = _Frame(jpeg, stamp_ns, self._frame.seq + 1)
            self._frame_ready.notify_all()

    def set_track(self, view: TrackView) -> None:
        with self._lock:
            self._tracks.pop(view.track_id, None)
            self._tracks[view.track_id] = view
            _trim(self._tracks, self.tracks_kept)

    def frame_watched(self, now_s: float | None = None) -> bool:
        """Whether a browser is showing the camera view (asked for a frame within FRAME_WATCHED_S)."""
        now = time.monotonic() if now_s is None else now_s
        with self._lock:
            return now - self._frame_asked_s <= FRAME_WATCHED_S

    def set_crop(self, track_id: int, crop: Any) -> None:
        with self._lock:
            self._crops.pop(track_id, None)
            self._crops[track_id] = crop
            _trim(self._crops, self.crops_kept)

    def set_candidates(self, track_id: int, candidates: Iterable[Candidate]) -> None:
        with self._lock:
            self._candidates.pop(track_id, None)
            self._candidates[track_id] = tuple(candidates)
            _trim(self._candidates, self.crops_kept)

    def add_sort_event(self, *, track_id: int, session_id: str, status: str, reason: str, bin_name: str,
                       position_in_bin: int, stamp_ns: int, now_s: float | None = None) -> ReviewItem | None:
        """Count the card in its bin; a rejected card becomes a review item with its last crop and candidates."""
        now = time.monotonic() if now_s is None else now_s
        with self._lock:
            self._bins[bin_name] = self._bins.get(bin_name, 0) + 1
            self._sorted_total += 1
            self._sorted_at.append(now)
            while self._sorted_at and now - self._sorted_at[0] > THROUGHPUT_WINDOW_S:
                self._sorted_at.popleft()
            self._tracks.pop(track_id, None)
            crop = self._crops.pop(track_id, None)
            if status not in REVIEW_STATUSES:
                return None
            if crop is not None and self.encode_crop is not None:
                crop = self.encode_crop(crop)
            item = ReviewItem(item_id=self._next_item, track_id=track_id, session_id=session_id, status=status,
                              reason=reason, bin=bin_name, position_in_bin=position_in_bin, stamp_ns=stamp_ns,
                              candidates=self._candidates.get(track_id, ()), crop_jpeg=crop)
            self._next_item += 1
            self._review[item.item_id] = item
            _trim(self._review, self.review_max)
            return item

    def restore(self, items: Iterable[ReviewItem]) -> list[ReviewItem]:
        """Open items of an earlier run (ReviewStore), queued under new item ids before anything new."""
        with self._lock:
            out = []
            for item in items:
                item = replace(item, item_id=self._next_item)
                self._next_item += 1
                self._review[item.item_id] = item
                out.append(item)
            _trim(self._review, self.review_max)
            return out

    def set_health(self, name: str, level: int, message: str) -> None:
        with self._lock:
            self._health[name] = (level, message)

    def set_sorter_state(self, state: str) -> None:
        with self._lock:
            self._sorter_state = state

    def resolve(self, item_id: int, resolution: str, message: str) -> ReviewItem:
        with self._lock:
            item = self._review.get(item_id)
            if item is None:
                raise KeyError(item_id)
            item = replace(item, resolution=resolution, message=message)
            self._review[item_id] = item
            return item

    # --- outputs (the pages) --------------------------------------------------------------

    def frame(self) -> tuple[bytes, int, int]:
        with self._lock:
            return self._frame.jpeg, self._frame.stamp_ns, self._frame.seq

    def wait_frame(self, after_seq: int, timeout_s: float) -> tuple[bytes, int]:
        """The next frame newer than ``after_seq`` (or the current one after the timeout)."""
        with self._frame_ready:
            self._frame_asked_s = time.monotonic()
            self._frame_ready.wait_for(lambda: self._frame.seq > after_seq, timeout=timeout_s)
            return self._frame.jpeg, self._frame.seq

    def review_item(self, item_id: int) -> ReviewItem | None:
        with self._lock:
            return self._review.get(item_id)

    def review_items(self, include_resolved: bool = False) -> list[ReviewItem]:
        with self._lock:
            return [i for i in reversed(self._review.values()) if include_resolved or i.open]

    def live(self, now_s: float | None = None) -> dict[str, object]:
        now = time.monotonic() if now_s is None else now_s
        with self._lock:
            recent = [t for t in self._sorted_at if now - t <= THROUGHPUT_WINDOW_S]
            span = (now - recent[0]) if len(recent) > 1 else 0.0
            per_hour = (len(recent) - 1) * 3600.0 / span if span > 0 else 0.0
            return {
                "frame_stamp_ns": self._frame.stamp_ns,
                "tracks": [vars(t) for t in reversed(self._tracks.values())],
                "bins": dict(sorted(self._bins.items())),
                "sorted": self._sorted_total,
                "cards_per_hour": round(per_hour, 1),
                "review_open": sum(1 for i in self._review.values() if i.open),
                "sorter_state": self._sorter_state,
                "health": [{"name": n, "level": lvl, "message": m} for n, (lvl, m) in sorted(self._health.items())],
            }


def _trim(d: OrderedDict[int, V], keep: int) -> None:
    while len(d) > keep:
        d.popitem(last=False)
