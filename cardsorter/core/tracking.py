"""Multi-card tracker: stable track ids across frames by IoU with a constant-velocity prediction."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cardsorter.core.detection import CLASS_DOUBLE_FEED
from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.types import BoxPx, Detection, TrackEnd

END_LOST = "lost"
END_SHUTDOWN = "shutdown"
_NS_PER_S = 1e9


@dataclass(frozen=True)
class TrackerConfig:
    iou_min: float = doc("min IoU between a track's predicted box and a detection to associate them (0, 1]",
                         lo=0.0, hi=1.0)
    center_gate_frac: float = doc("else associate when the centre distance is below this fraction of the box diagonal",
                                  lo=0.0)
    max_missed_frames: int = doc("frames a track survives without a detection before it ends", lo=0)
    velocity_smoothing: float = doc("weight of the newest velocity measurement (exponential smoothing, 0-1]",
                                    lo=0.0, hi=1.0)
    double_feed_frac: float = doc("a track is a double feed when at least this fraction of its detections were (0, 1]",
                                  lo=0.0, hi=1.0)

    def __post_init__(self) -> None:
        check_ranges(self)
        if not 0.0 < self.iou_min:
            raise ValueError("iou_min must be in (0, 1]")
        if not 0.0 < self.velocity_smoothing:
            raise ValueError("velocity_smoothing must be in (0, 1]")
        if not 0.0 < self.double_feed_frac:
            raise ValueError("double_feed_frac must be in (0, 1]")


@dataclass
class _Track:
    track_id: int
    box: BoxPx
    first_stamp_ns: int
    last_stamp_ns: int
    frames_seen: int = 1
    missed: int = 0
    double_feeds: int = 0
    velocity: tuple[float, float] | None = None   # px/s of the box centre; None until measured

    def predicted(self, stamp_ns: int) -> BoxPx:
        if self.velocity is None:
            return self.box
        dt = (stamp_ns - self.last_stamp_ns) / _NS_PER_S
        return BoxPx(self.box.x + self.velocity[0] * dt, self.box.y + self.velocity[1] * dt, self.box.w, self.box.h)


class CardTracker:
    """Gives each physical card a track id that is never reused; reports tracks that end."""

    def __init__(self, config: TrackerConfig) -> None:
        self._cfg = config
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_stamp_ns: int | None = None

    @property
    def last_stamp_ns(self) -> int | None:
        """The newest stamp seen (update or flush); an older frame can no longer be tracked."""
        return self._last_stamp_ns

    def update(self, detections: list[Detection], stamp_ns: int) -> tuple[list[Detection], list[TrackEnd]]:
        """Associate this frame's detections; returns them with track ids, and the tracks that ended."""
        self._check_stamp(stamp_ns)
        cfg = self._cfg
        predicted = [t.predicted(stamp_ns) for t in self._tracks]
        pairs: list[tuple[float, float, int, int]] = []
        for ti, pbox in enumerate(predicted):
            pcx, pcy = pbox.center
            gate = cfg.center_gate_frac * math.hypot(pbox.w, pbox.h)
            for di, det in enumerate(detections):
                iou = pbox.iou(det.bbox_px)
                dcx, dcy = det.bbox_px.center
                dist = math.hypot(dcx - pcx, dcy - pcy)
                if iou >= cfg.iou_min or dist <= gate:
                    pairs.append((-iou, dist, ti, di))
        pairs.sort()
        track_of: dict[int, int] = {}
        used_tracks: set[int] = set()
        for _, _, ti, di in pairs:
            if ti in used_tracks or di in track_of:
                continue
            used_tracks.add(ti)
            track_of[di] = ti
        out: list[Detection] = []
        for di, det in enumerate(detections):
            if di in track_of:
                track = self._tracks[track_of[di]]
                self._absorb(track, det, stamp_ns)
            else:
                track = _Track(self._next_id, det.bbox_px, stamp_ns, stamp_ns,
                               double_feeds=int(det.class_name == CLASS_DOUBLE_FEED))
                self._next_id += 1
                self._tracks.append(track)
            out.append(det.with_track(track.track_id))
        ended: list[TrackEnd] = []
        kept: list[_Track] = []
        matched_ids = {out_det.track_id for out_det in out}
        for track in self._tracks:
            if track.track_id not in matched_ids:
                track.missed += 1
                if track.missed > cfg.max_missed_frames:
                    ended.append(self._end(track, END_LOST))
                    continue
            kept.append(track)
        self._tracks = kept
        return out, ended

    def flush(self, stamp_ns: int) -> list[TrackEnd]:
        """End every open track (end of stream, shutdown)."""
        self._check_stamp(stamp_ns)
        ended = [self._end(t, END_SHUTDOWN) for t in self._tracks]
        self._tracks = []
        return ended

    def restart(self) -> list[TrackEnd]:
        """The stream's clock jumped: end every open track and accept stamps from any time on
        (track ids go on counting, so no id is reused)."""
        ended = [self._end(t, END_SHUTDOWN) for t in self._tracks]
        self._tracks = []
        self._last_stamp_ns = None
        return ended

    def _check_stamp(self, stamp_ns: int) -> None:
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            raise ValueError(f"tracker stamps must not go backwards: {stamp_ns} after {self._last_stamp_ns}")
        self._last_stamp_ns = stamp_ns

    def _absorb(self, track: _Track, det: Detection, stamp_ns: int) -> None:
        dt = (stamp_ns - track.last_stamp_ns) / _NS_PER_S
        if dt > 0:
            (ocx, ocy), (ncx, ncy) = track.box.center, det.bbox_px.center
            measured = ((ncx - ocx) / dt, (ncy - ocy) / dt)
            if track.velocity is None:
                track.velocity = measured
            else:
                a = self._cfg.velocity_smoothing
                track.velocity = (a * measured[0] + (1 - a) * track.velocity[0],
                                  a * measured[1] + (1 - a) * track.velocity[1])
        track.box = det.bbox_px
        track.last_stamp_ns = stamp_ns
        track.frames_seen += 1
        track.missed = 0
        track.double_feeds += int(det.class_name == CLASS_DOUBLE_FEED)

    def _end(self, track: _Track, reason: str) -> TrackEnd:
        double_feed = track.double_feeds >= self._cfg.double_feed_frac * track.frames_seen
        return TrackEnd(track.track_id, track.first_stamp_ns, track.last_stamp_ns, track.frames_seen,
                        track.box, track.velocity or (0.0, 0.0), double_feed, reason)
