"""When a decided card is due at its gate: the belt model (flow mode) and each queued actuation's due time."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from cardsorter.core.bin_rules import BinSpec
from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.types import SortDecision, TrackEnd

NS_PER_S = 1_000_000_000
TRAVEL_AXES = ("+x", "-x", "+y", "-y")
SPEED_SOURCES = ("config", "track", "encoder")


@dataclass(frozen=True)
class BeltConfig:
    """Geometry and speed of the belt; positions are millimetres along the direction of travel."""

    travel_axis: str = doc("image direction the belt moves cards in: +x, -x, +y or -y")
    px_per_mm: float = doc("image pixels per millimetre of belt at the belt plane (from calibration)")
    image_origin_mm: float = doc("belt position, along travel, of image pixel coordinate 0 on the travel axis")
    speed_source: str = doc(
        "config: belt_speed_mm_per_s; track: each card's measured velocity (falls back to config when "
        "slower than min_track_speed_mm_per_s); encoder: encoder ticks (ticks_per_mm)")
    belt_speed_mm_per_s: float = doc("belt speed used by speed_source=config and as the fallback")
    min_track_speed_mm_per_s: float = doc("a measured track speed below this is not trusted", lo=0.0)
    ticks_per_mm: float = doc("encoder ticks per millimetre of belt travel (speed_source=encoder)")
    default_gate_mm: float = doc("gate position for bins whose bins-file entry has no gate_mm")
    actuation_lead_ms: float = doc("start moving the diverter this long before the card's leading edge reaches "
                                    "the gate", lo=0.0)

    def __post_init__(self) -> None:
        if self.travel_axis not in TRAVEL_AXES:
            raise ValueError(f"travel_axis must be one of {TRAVEL_AXES}, got {self.travel_axis!r}")
        if self.speed_source not in SPEED_SOURCES:
            raise ValueError(f"speed_source must be one of {SPEED_SOURCES}, got {self.speed_source!r}")
        for name in ("px_per_mm", "belt_speed_mm_per_s", "ticks_per_mm"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        check_ranges(self)


@dataclass(frozen=True)
class GateArrival:
    """When (stamp or encoder tick) to actuate for one card, and how it was computed."""

    due_ns: int | None          # clock-based schedules
    due_ticks: int | None       # encoder-based schedules
    leading_edge_mm: float      # card's leading edge at its last stamp
    distance_mm: float          # from the leading edge to the gate
    speed_mm_per_s: float | None


class BeltModel:
    """Pure: positions and speeds in, due times out; time and encoder ticks are inputs."""

    def __init__(self, config: BeltConfig) -> None:
        self._c = config
        self._sign = -1.0 if config.travel_axis.startswith("-") else 1.0
        self._axis = 0 if config.travel_axis.endswith("x") else 1

    @property
    def config(self) -> BeltConfig:
        return self._c

    def leading_edge_mm(self, end: TrackEnd) -> float:
        """Belt position of the card's leading edge (the edge nearest the gates) at its last stamp."""
        box = end.last_bbox_px
        lo, size = (box.x, box.w) if self._axis == 0 else (box.y, box.h)
        edge_px = lo + size if self._sign > 0 else lo
        return self._c.image_origin_mm + self._sign * edge_px / self._c.px_per_mm

    def track_speed_mm_per_s(self, end: TrackEnd) -> float:
        """The track's velocity along the travel direction, in mm/s (negative when it moved backwards)."""
        return self._sign * end.velocity_px_per_s[self._axis] / self._c.px_per_mm

    def speed_mm_per_s(self, end: TrackEnd) -> float:
        if self._c.speed_source == "track":
            measured = self.track_speed_mm_per_s(end)
            if math.isfinite(measured) and measured >= self._c.min_track_speed_mm_per_s and measured > 0:
                return measured
        return self._c.belt_speed_mm_per_s

    def arrival(self, end: TrackEnd, gate_mm: float | None, encoder_ticks_at_end: int | None = None) -> GateArrival:
        """When to actuate the gate at ``gate_mm`` (default gate when None) for the card of ``end``.

        A card already past its gate is due immediately (the due time is its last stamp): the
        sorter then still actuates and the drop sensor, if any, reports whether it arrived.
        """
        gate = self._c.default_gate_mm if gate_mm is None else gate_mm
        edge = self.leading_edge_mm(end)
        distance = max(0.0, gate - edge)
        if self._c.speed_source == "encoder":
            if encoder_ticks_at_end is None:
                raise ValueError("speed_source=encoder needs the encoder count at the track's last stamp")
            due_ticks = encoder_ticks_at_end + math.floor(distance * self._c.ticks_per_mm)
            lead_ticks = round(self._c.actuation_lead_ms / 1000.0 * self._c.belt_speed_mm_per_s
                               * self._c.ticks_per_mm)
            return GateArrival(None, max(encoder_ticks_at_end, due_ticks - lead_ticks), edge, distance, None)
        speed = self.speed_mm_per_s(end)
        travel_ns = round(distance / speed * NS_PER_S)
        lead_ns = round(self._c.actuation_lead_ms * 1_000_000)
        due = max(end.last_stamp_ns, end.last_stamp_ns + travel_ns - lead_ns)
        return GateArrival(due, None, edge, distance, speed)


@dataclass(frozen=True)
class ScheduledActuation:
    """A decision waiting for its card to reach the gate (flow) or for the actuator (station)."""

    decision: SortDecision
    due_ns: int | None
    due_ticks: int | None
    seq: int

    @property
    def order(self) -> tuple[int, int]:
        """Queue order: gate time (encoder tick or stamp), then the order decided."""
        return (self.due_ticks if self.due_ticks is not None else self.due_ns or 0, self.seq)


class GateSchedule:
    """When each decided card is due: station cards at once; flow cards when the belt brings them to
    their bin's gate (``belt``), and missed when the actuation would be ``missed_gate_ms`` late."""

    def __init__(self, station: bool, missed_gate_ms: float, bins: Mapping[str, BinSpec],
                 belt: BeltConfig | None = None) -> None:
        if not station and belt is None:
            raise ValueError("flow mode needs a BeltConfig")
        self._station = station
        self._missed_gate_ms = missed_gate_ms
        self._bins = bins
        self._belt = BeltModel(belt) if belt is not None else None

    def schedule(self, decision: SortDecision, end: TrackEnd | None, encoder_ticks: int | None,
                 seq: int) -> ScheduledActuation:
        """``decision``'s actuation: due at its last stamp, or (flow, with the track's end) at its gate."""
        due_ns: int | None = decision.last_stamp_ns
        due_ticks: int | None = None
        if not self._station and end is not None and self._belt is not None:
            arrival = self._belt.arrival(end, self._bins[decision.bin_name].gate_mm, encoder_ticks)
            due_ns, due_ticks = arrival.due_ns, arrival.due_ticks
        return ScheduledActuation(decision, due_ns, due_ticks, seq)

    def is_due(self, act: ScheduledActuation, now_ns: int, encoder_ticks: int | None = None) -> bool:
        if self._station:
            return True
        if act.due_ticks is not None:
            return encoder_ticks is not None and encoder_ticks >= act.due_ticks
        return act.due_ns is not None and now_ns >= act.due_ns

    def is_missed(self, act: ScheduledActuation, now_ns: int, encoder_ticks: int | None = None) -> bool:
        """Flow: the card passed its gate before the actuator could be set (it goes to passthrough_bin)."""
        if self._station or self._belt is None:
            return False
        late_ms = self._missed_gate_ms
        belt = self._belt.config
        if act.due_ticks is not None:
            if encoder_ticks is None:
                return False
            late_ticks = late_ms / 1000.0 * belt.belt_speed_mm_per_s * belt.ticks_per_mm
            return encoder_ticks - act.due_ticks > late_ticks
        return act.due_ns is not None and now_ns - act.due_ns > late_ms * 1e6
