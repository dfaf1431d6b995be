"""Temporal smoother: per-track state machine that confirms an identity over independent views."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.finish import FOIL_CLASSES, narrow_by_finish
from cardsorter.core.printing import (
    PrintingConfig,
    PrintingResolution,
    PrintingVerdict,
    ViewReading,
    resolve_printing,
    views_naming,
)
from cardsorter.core.types import (
    UNKNOWN_FINISH,
    CardMatch,
    CardRecord,
    Identity,
    MatchBand,
    TrackEnd,
    TrackState,
)

# How many ended track ids are remembered so late matches for them are dropped, not revived.
ENDED_TRACKS_REMEMBERED = 4096
# The smoother never leaves these states (AMBIGUOUS is permanent): more views cannot change the decision.
SETTLED_STATES = frozenset({TrackState.CONFIRMED, TrackState.AMBIGUOUS})


def is_settled(state: TrackState, final: bool) -> bool:
    """A track needs no more views: its state cannot change any more, or its final identity is out."""
    return final or state in SETTLED_STATES


@dataclass(frozen=True)
class SmootherConfig:
    """How many views of which quality decide a track's identity."""

    confirm_views: int = doc("agreeing CONFIRMED-band views of one card, from distinct frames, that confirm it", lo=1)
    unknown_views: int = doc("UNKNOWN-band views, with no confirmation, after which the track is UNKNOWN", lo=1)
    ambiguous_views: int = doc(
        "views that land on different printings of one art (or AMBIGUOUS-band views), with no "
        "confirmation, after which the track is AMBIGUOUS", lo=1)
    flip_views: int = doc(
        "after confirmation, consecutive CONFIRMED-band views of ONE other card that replace the "
        "confirmed identity (hysteresis); 0 = a confirmed identity never changes", lo=0)
    finalize_on_confirm: bool = doc(
        "publish the final identity as soon as it cannot change any more, CONFIRMED or AMBIGUOUS (station "
        "mode), instead of when the track ends")

    def __post_init__(self) -> None:
        check_ranges(self)


@dataclass
class _View:
    card: CardRecord
    distance_cos: float
    margin: float


@dataclass
class _Track:
    track_id: int
    state: TrackState = TrackState.DETECTING
    views: int = 0
    last_view_ns: int | None = None
    streak_card: CardRecord | None = None      # the card the current run of agreeing views names
    streak: list[_View] = field(default_factory=list)
    candidate_views: list[_View] = field(default_factory=list)   # every view naming streak_card, any band
    best_streak: int = 0
    unknown_views: int = 0
    ambiguous_views: int = 0
    confirmed: CardRecord | None = None
    agreeing: list[_View] = field(default_factory=list)   # views that agree with the confirmed card
    flip_card: CardRecord | None = None
    flip_streak: list[_View] = field(default_factory=list)
    final_sent: bool = False
    last_stamp_ns: int = 0
    # the printing reader (core/printing.py): the art's printings the matcher named, the closeups read
    printings: tuple[CardRecord, ...] = ()
    art_views: list[_View] = field(default_factory=list)     # views naming one of those printings
    readings: list[ViewReading] = field(default_factory=list)
    resolution: PrintingResolution | None = None
    printing_card: CardRecord | None = None    # the printing the readings named (and confirmed)
    printing_conflict: str = ""                # why the readings contradict the embedder's confirmed card
    finish: str = ""                           # the finish the reader's closeups showed (core/finish.py)
    finish_views: int = 0


def _names(printings: Sequence[CardRecord], card: CardRecord) -> bool:
    """``card`` is one of ``printings``."""
    return any(r.card_id == card.card_id for r in printings)


def with_finish(card: CardRecord | None, seen: str) -> CardRecord | None:
    """``card`` as sorted: a record whose catalogue lists several finishes gets the one the closeups showed
    (core/finish.py) or ``unknown``, never its default; a record of one finish stays as it is."""
    if card is None or len(card.finishes) <= 1:
        return card
    shown = [card.finishes[i] for i in narrow_by_finish(card.finishes, seen)] if seen in FOIL_CLASSES else []
    return dataclasses.replace(card, finish=shown[0] if len(shown) == 1 else UNKNOWN_FINISH)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("inf")


class TemporalSmoother:
    """NO_CARD → DETECTING → STABILIZING → CONFIRMED, or UNKNOWN, or AMBIGUOUS, per track.

    Confirmation needs ``confirm_views`` CONFIRMED-band views of the same card from distinct frames
    with no view naming another card in between (that resets the run; a view naming no card, UNKNOWN,
    does not). ``ambiguous_views`` views on different printings of one art make the track AMBIGUOUS
    for good; ``unknown_views`` UNKNOWN views make an unconfirmed track UNKNOWN.
    Once confirmed, later views are counted (``views`` vs ``agreeing_views``) but the identity
    changes only after ``flip_views`` consecutive confirmed views of one other card, and never
    after its final identity went out.
    """

    def __init__(self, config: SmootherConfig, printing: PrintingConfig | None = None) -> None:
        self._config = config
        self._printing = printing if printing is not None else PrintingConfig(
            views_max=0, min_agreeing_views=2, view_interval_frames=1, card_height_px=700)
        self._tracks: dict[int, _Track] = {}
        self._ended: OrderedDict[int, None] = OrderedDict()
        self.late_matches_ignored = 0
        self.duplicate_views_ignored = 0
        self.late_readings_ignored = 0

    # --- the API the smoother node calls ------------------------------------------------------

    def reconfigure(self, config: SmootherConfig) -> None:
        """New view counts from now on (a runtime parameter change); tracks keep their views."""
        self._config = config

    def reconfigure_printing(self, printing: PrintingConfig) -> None:
        """New printing-reader settings from now on; tracks keep their readings."""
        self._printing = printing

    def track_seen(self, track_id: int, stamp_ns: int) -> Identity | None:
        """A new track: DETECTING (returns its identity once; None for a known or ended track)."""
        if track_id in self._tracks or track_id in self._ended:
            return None
        track = _Track(track_id, last_stamp_ns=stamp_ns)
        self._tracks[track_id] = track
        return self._identity(track, stamp_ns, final=False, reason="new track")

    def observe(self, matches: Sequence[CardMatch], stamp_ns: int) -> list[Identity]:
        """One frame's matches; the identities whose state or card changed (and finals, see config)."""
        changed: list[Identity] = []
        for match in matches:
            if match.track_id in self._ended:
                self.late_matches_ignored += 1
                continue
            track = self._tracks.get(match.track_id)
            new = track is None
            if track is None:
                track = _Track(match.track_id, last_stamp_ns=stamp_ns)
                self._tracks[match.track_id] = track
            if track.last_view_ns is not None and stamp_ns <= track.last_view_ns:
                self.duplicate_views_ignored += 1   # one frame is one view, however often it is embedded
                continue
            before = (track.state, self._card_id(track))
            self._add_view(track, match, stamp_ns)
            self._apply_printing(track)
            identity = self._changed(track, before, stamp_ns, new)
            if identity is not None:
                changed.append(identity)
        return changed

    def observe_reading(self, track_id: int, reading: ViewReading, stamp_ns: int) -> list[Identity]:
        """One closeup's reading by the printing reader; the identity when its state or card changed."""
        if track_id in self._ended:
            self.late_readings_ignored += 1
            return []
        track = self._tracks.get(track_id)
        new = track is None
        if track is None:
            track = _Track(track_id, last_stamp_ns=stamp_ns)
            self._tracks[track_id] = track
        before = (track.state, self._card_id(track))
        track.readings.append(reading)
        if reading.finish_views > 0:            # the reader's verdict over every closeup so far
            track.finish, track.finish_views = reading.finish, reading.finish_views
        track.last_stamp_ns = max(track.last_stamp_ns, stamp_ns)
        self._apply_printing(track)
        identity = self._changed(track, before, stamp_ns, new, always=True)
        return [identity] if identity is not None else []

    def _changed(self, track: _Track, before: tuple[TrackState, str], stamp_ns: int, new: bool,
                 always: bool = False) -> Identity | None:
        """The identity to publish after a view or reading: the final (station mode), a change, or None."""
        if track.final_sent:
            return None
        if self._config.finalize_on_confirm and track.state in SETTLED_STATES and not self._awaiting_printing(track):
            track.final_sent = True
            return self._identity(track, stamp_ns, final=True, reason=self._final_reason(track))
        if new or always or before != (track.state, self._card_id(track)):
            return self._identity(track, stamp_ns, final=False, reason=self._progress_reason(track))
        return None

    def _awaiting_printing(self, track: _Track) -> bool:
        """An AMBIGUOUS track whose art has several printings, while the reader may still read closeups."""
        return (track.state == TrackState.AMBIGUOUS and not track.printing_conflict and len(track.printings) > 1
                and len(track.readings) < self._printing.views_max)

    def _apply_printing(self, track: _Track) -> None:
        """The readings' vote (core/printing.py) over the art's printings: an AMBIGUOUS track whose readings name
        one printing over enough views is CONFIRMED as it; a confirmed card they contradict is AMBIGUOUS."""
        if track.printing_conflict:
            track.state, track.confirmed = TrackState.AMBIGUOUS, None
            return
        if not track.readings or len(track.printings) < 2:
            return
        res = resolve_printing(track.readings, track.printings, self._printing.resolver, finish=track.finish)
        track.resolution = res
        if res.verdict != PrintingVerdict.EXACT or res.card is None:
            return
        if track.confirmed is not None:
            if track.confirmed.card_id != res.card.card_id and track.printing_card is None:
                track.printing_conflict = (f"the views confirmed {track.confirmed.card_id}, its printing reads "
                                           f"{res.card.card_id}")
                track.state, track.confirmed = TrackState.AMBIGUOUS, None
            return
        if track.state == TrackState.AMBIGUOUS:
            track.printing_card = res.card
            track.confirmed = res.card
            track.agreeing = list(track.art_views)
            track.streak_card, track.streak = res.card, list(track.art_views)
            track.state = TrackState.CONFIRMED

    def end_track(self, end: TrackEnd) -> Identity | None:
        """The track's final identity, exactly once (None if it already got its final)."""
        if end.track_id in self._ended:
            return None
        track = self._tracks.pop(end.track_id, None)
        self._ended[end.track_id] = None
        while len(self._ended) > ENDED_TRACKS_REMEMBERED:
            self._ended.popitem(last=False)
        if track is None:
            track = _Track(end.track_id, last_stamp_ns=end.last_stamp_ns)
        if track.final_sent:
            return None
        track.final_sent = True
        reason = self._final_reason(track)
        if end.double_feed:
            reason = f"double feed; {reason}"
        return self._identity(track, max(end.last_stamp_ns, track.last_stamp_ns), final=True, reason=reason)

    def is_settled(self, track_id: int) -> bool:
        """True when the track needs no more views (confirmed, ambiguous for good, or finalised)."""
        if track_id in self._ended:
            return True
        track = self._tracks.get(track_id)
        return track is not None and is_settled(track.state, track.final_sent)

    def state_of(self, track_id: int) -> TrackState:
        track = self._tracks.get(track_id)
        return track.state if track is not None else TrackState.NO_CARD

    @property
    def active_tracks(self) -> int:
        return len(self._tracks)

    # --- the state machine --------------------------------------------------------------------

    def _add_view(self, track: _Track, match: CardMatch, stamp_ns: int) -> None:
        track.views += 1
        track.last_view_ns = stamp_ns
        track.last_stamp_ns = max(track.last_stamp_ns, stamp_ns)
        best = match.best
        view = _View(best.card, best.distance_cos, match.margin_to_runner_up) if best is not None else None
        if match.art_printings and (view is None or _names(match.art_printings, view.card)):
            track.printings = match.art_printings
        if view is not None and _names(track.printings, view.card):
            track.art_views.append(view)
        if track.confirmed is not None:
            self._late_view(track, match, view)
            return
        if track.printing_conflict:
            return
        cfg = self._config
        if match.band == MatchBand.UNKNOWN or view is None:
            track.unknown_views += 1             # names no card: not a disagreement (blur, glare, a hand)
        elif match.band == MatchBand.AMBIGUOUS:
            track.ambiguous_views += 1           # the art is known, the printing is not
            if track.streak_card is None or track.streak_card.card_id != view.card.card_id:
                self._reset_streak(track, view.card)
        else:
            same_card = track.streak_card is not None and track.streak_card.card_id == view.card.card_id
            if not same_card and track.streak_card is not None and view.card.art_id \
                    and track.streak_card.art_id == view.card.art_id:
                track.ambiguous_views += 1       # another printing of the same art: the printing is in doubt
            if not same_card:                    # another card: disagreement resets the run
                self._reset_streak(track, view.card)
            track.candidate_views.append(view)
            if match.band == MatchBand.CONFIRMED:
                track.streak.append(view)
            track.best_streak = max(track.best_streak, len(track.streak))
        # AMBIGUOUS first and for good: guessing between printings of one art is the error users hate most
        if track.ambiguous_views >= cfg.ambiguous_views:
            track.state = TrackState.AMBIGUOUS
        elif len(track.streak) >= cfg.confirm_views and track.streak_card is not None:
            track.confirmed = track.streak_card
            track.agreeing = list(track.streak)
            track.state = TrackState.CONFIRMED
        elif track.unknown_views >= cfg.unknown_views:
            track.state = TrackState.UNKNOWN
        elif track.streak_card is not None:
            track.state = TrackState.STABILIZING
        else:
            track.state = TrackState.DETECTING

    def _late_view(self, track: _Track, match: CardMatch, view: _View | None) -> None:
        assert track.confirmed is not None
        if view is not None and view.card.card_id == track.confirmed.card_id:
            if match.band in (MatchBand.CONFIRMED, MatchBand.UNCERTAIN):
                track.agreeing.append(view)
            track.flip_card, track.flip_streak = None, []
            return
        if view is None or match.band != MatchBand.CONFIRMED:
            return                               # a weak disagreeing view is counted in views only
        if track.printing_card is not None and _names(track.printings, view.card):
            return                               # another printing of the art: the printed number decided
        if track.flip_card is None or track.flip_card.card_id != view.card.card_id:
            track.flip_card, track.flip_streak = view.card, []
        track.flip_streak.append(view)
        flip = self._config.flip_views
        if flip > 0 and len(track.flip_streak) >= flip and not track.final_sent:
            track.confirmed = view.card
            track.agreeing = list(track.flip_streak)
            track.streak_card, track.streak = view.card, list(track.flip_streak)
            track.candidate_views = list(track.flip_streak)
            track.flip_card, track.flip_streak = None, []

    @staticmethod
    def _reset_streak(track: _Track, card: CardRecord | None) -> None:
        track.streak_card = card
        track.streak = []
        track.candidate_views = []

    # --- identities ---------------------------------------------------------------------------

    @staticmethod
    def _card_id(track: _Track) -> str:
        card = track.confirmed or track.streak_card
        return card.card_id if card is not None else ""

    def _identity(self, track: _Track, stamp_ns: int, *, final: bool, reason: str) -> Identity:
        if track.confirmed is not None:
            card: CardRecord | None = track.confirmed
            support = track.agreeing
        else:
            card = track.streak_card
            support = track.streak
        agreeing = len(support)
        confidence = min(1.0, agreeing / max(track.views, self._config.confirm_views)) if agreeing else 0.0
        # distance / margin: of the agreeing views; before any, of every view naming the candidate card
        measured = support or (track.candidate_views if track.confirmed is None else [])
        res = track.resolution
        return Identity(
            track_id=track.track_id, state=track.state, card=with_finish(card, track.finish), confidence=confidence,
            distance_cos=_mean([v.distance_cos for v in measured]),
            margin_to_runner_up=_mean([v.margin for v in measured]),
            agreeing_views=agreeing, views=track.views, final=final, reason=reason, stamp_ns=stamp_ns,
            printing_read=res.read if res is not None else (), printing_views=len(track.readings),
            printing_agreeing_views=views_naming(track.readings, card) if card is not None and track.readings else 0,
            finish_seen=track.finish, finish_views=track.finish_views)

    def _printing_note(self, track: _Track) -> str:
        res = track.resolution
        if track.printing_conflict:
            return f"; printing: {track.printing_conflict}"
        if res is None:
            return "; printing: no closeup read" if self._awaiting_printing(track) or (
                track.state == TrackState.AMBIGUOUS and len(track.printings) > 1 and self._printing.views_max) else ""
        return f"; printing: {res.reason}"

    def _progress_reason(self, track: _Track) -> str:
        n = self._config.confirm_views
        if track.state == TrackState.CONFIRMED and track.printing_card is not None:
            return f"confirmed by its printed number{self._printing_note(track)}"
        if track.state == TrackState.CONFIRMED:
            return f"confirmed by {len(track.agreeing)} agreeing views"
        if track.state == TrackState.UNKNOWN:
            return f"{track.unknown_views} views not in the database"
        if track.state == TrackState.AMBIGUOUS:
            return f"{track.ambiguous_views} views on different printings of one art{self._printing_note(track)}"
        if track.state == TrackState.STABILIZING:
            return f"{len(track.streak)} of {n} agreeing views"
        return "waiting for a confident view"

    def _final_reason(self, track: _Track) -> str:
        if track.state == TrackState.CONFIRMED and track.printing_card is not None:
            return (f"confirmed by its printed number, the art by {len(track.agreeing)} of {track.views} views"
                    f"{self._printing_note(track)}")
        if track.state == TrackState.CONFIRMED:
            return (f"confirmed by {len(track.agreeing)} of {track.views} views{self._printing_note(track)}")
        if track.printing_conflict:
            return f"ambiguous{self._printing_note(track)}"
        if track.state == TrackState.UNKNOWN:
            return f"unknown: {track.unknown_views} of {track.views} views not in the database"
        if track.state == TrackState.AMBIGUOUS:
            return (f"ambiguous: {track.ambiguous_views} of {track.views} views on different printings of one art"
                    f"{self._printing_note(track)}")
        return (f"never confirmed: best run {track.best_streak} of {self._config.confirm_views} "
                f"agreeing views in {track.views} views")
