"""Belt model for flow mode: when a card that left the camera's view reaches its bin's gate."""

from __future__ import annotations

import math
from dataclasses import dataclass

from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.types import TrackEnd

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
