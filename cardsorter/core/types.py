"""Frozen domain values shared by every stage; units are in the field names."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field

import numpy as np

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]
"""Four corners in image pixels, clockwise from the card's top-left corner."""


def as_quad(points: np.ndarray) -> Quad:
    """Four (x, y) points (any array of 8 numbers, in corner order) as a Quad of floats."""
    p = [(float(x), float(y)) for x, y in np.asarray(points, dtype=np.float64).reshape(4, 2)]
    return (p[0], p[1], p[2], p[3])


@dataclass(frozen=True)
class BoxPx:
    """Axis-aligned box in pixels: top-left corner, width and height."""

    x: float
    y: float
    w: float
    h: float

    def __post_init__(self) -> None:
        if not (self.w >= 0 and self.h >= 0):
            raise ValueError(f"box width and height must be >= 0, got {self.w}x{self.h}")

    @property
    def area_px2(self) -> float:
        return self.w * self.h

    @property
    def center(self) -> Point:
        return (self.x + self.w / 2.0, self.y + self.h / 2.0)

    def iou(self, other: BoxPx) -> float:
        ix = max(0.0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0.0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area_px2 + other.area_px2 - inter
        return inter / union if union > 0 else 0.0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x, self.y, self.w, self.h)

    @staticmethod
    def from_quad(quad: Quad) -> BoxPx:
        xs = [p[0] for p in quad]
        ys = [p[1] for p in quad]
        return BoxPx(min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


class Orientation(enum.IntEnum):
    UNKNOWN = 0
    UPRIGHT = 1
    ROTATED_180 = 2


@dataclass(frozen=True)
class Detection:
    """One card in one frame, before tracking (track_id -1) or after."""

    bbox_px: BoxPx
    quad_px: Quad | None
    score: float
    class_name: str = "card"
    orientation: Orientation = Orientation.UNKNOWN
    track_id: int = -1

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"detection score must be in [0, 1], got {self.score}")

    def with_track(self, track_id: int) -> Detection:
        return Detection(self.bbox_px, self.quad_px, self.score, self.class_name, self.orientation, track_id)


@dataclass(frozen=True)
class CardCrop:
    """A rectified crop of one tracked card (BGR uint8, model input size)."""

    track_id: int
    image_bgr: np.ndarray = field(repr=False)
    sharpness: float
    bbox_px: BoxPx
    quad_px: Quad | None

    def __post_init__(self) -> None:
        if self.image_bgr.ndim != 3 or self.image_bgr.shape[2] != 3 or self.image_bgr.dtype != np.uint8:
            raise ValueError(f"crop must be HxWx3 uint8, got {self.image_bgr.shape} {self.image_bgr.dtype}")


@dataclass(frozen=True)
class CardEmbedding:
    """One L2-normalised float32 embedding of one track's crop."""

    track_id: int
    vector: np.ndarray = field(repr=False)


FINISHES = ("normal", "holo", "reverse_holo", "first_edition", "first_edition_holo", "unlimited_holo", "foil",
            "etched")
"""Printings a card record can name: the Pokémon TCG's price variants and Scryfall's finishes."""
UNKNOWN_FINISH = "unknown"
"""A sorted card's finish when its record lists several and the closeups did not show which (never assumed)."""


@dataclass(frozen=True)
class CardRecord:
    """Catalogue facts about one printing of a card."""

    card_id: str
    name: str
    set_id: str
    set_name: str = ""
    number: str = ""
    rarity: str = ""
    art_id: str = ""
    finish: str = "normal"          # the default printing: one of FINISHES (the bins-file rules check it: core/bin_rules.py)
    supertype: str = ""
    types: tuple[str, ...] = ()
    price_usd: float | None = None
    # Catalogue facts the importers fill (cardsorter/db/importers.py); empty when the source lacks them.
    set_code: str = ""              # the code printed on / used by marketplaces: ptcgo code (SVI), Scryfall set (neo)
    series: str = ""
    printed_total: int = 0          # the set's printed card count (0: unknown)
    release_date: str = ""          # YYYY-MM-DD
    language: str = ""              # ISO-ish code as the source writes it (en, ja, de, zhs...); "": unknown
    game: str = ""                  # pokemon | magic ("" unknown)
    finishes: tuple[str, ...] = ()  # every printing the catalogue knows of this card (from price variants / finishes)
    prices_usd: tuple[tuple[str, float], ...] = ()   # (finish, market price in USD) per printing
    tcgplayer_product_id: int = 0   # TCGplayer product id (0: unknown)
    tcgplayer_skus: tuple[tuple[str, str, int], ...] = ()  # (finish, condition, TCGplayer SKU id) when known

    def __post_init__(self) -> None:
        if not self.card_id:
            raise ValueError("card_id must not be empty")


class MatchBand(enum.IntEnum):
    """The matcher's decision band for one view (values equal CardMatch.BAND_*)."""

    CONFIRMED = 0
    UNCERTAIN = 1
    UNKNOWN = 2
    AMBIGUOUS = 3


@dataclass(frozen=True)
class Candidate:
    card: CardRecord
    distance_cos: float


@dataclass(frozen=True)
class CardMatch:
    """Top-k cards for one track's embedding from one frame."""

    track_id: int
    band: MatchBand
    candidates: tuple[Candidate, ...]
    margin_to_runner_up: float
    # every printing of the best card's art in the database when it holds several (the printing reader's
    # candidates, core/printing.py), else ()
    art_printings: tuple[CardRecord, ...] = ()

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def distance_cos(self) -> float:
        return self.candidates[0].distance_cos if self.candidates else math.inf


class TrackState(enum.IntEnum):
    """The smoother's per-track state (values equal CardIdentity.STATE_*)."""

    NO_CARD = 0
    DETECTING = 1
    STABILIZING = 2
    CONFIRMED = 3
    UNKNOWN = 4
    AMBIGUOUS = 5


@dataclass(frozen=True)
class Identity:
    """The smoother's view of one track at one stamp."""

    track_id: int
    state: TrackState
    card: CardRecord | None
    confidence: float
    distance_cos: float
    margin_to_runner_up: float
    agreeing_views: int
    views: int
    final: bool
    reason: str
    stamp_ns: int
    printing_read: tuple[str, ...] = ()   # collector numbers the printing reader read on the card
    printing_views: int = 0               # views it read
    printing_agreeing_views: int = 0      # of them, views naming the identity's printing
    finish_seen: str = ""                 # the finish its closeups showed (core/finish.py); "" none compared
    finish_views: int = 0


@dataclass(frozen=True)
class TrackEnd:
    """A track that left the view or was lost."""

    track_id: int
    first_stamp_ns: int
    last_stamp_ns: int
    frames_seen: int
    last_bbox_px: BoxPx
    velocity_px_per_s: tuple[float, float]
    double_feed: bool
    reason: str


class SortStatus(enum.Enum):
    CONFIRMED = "confirmed"
    UNKNOWN = "unknown"
    AMBIGUOUS = "ambiguous"
    UNCONFIRMED = "unconfirmed"


@dataclass(frozen=True)
class SortDecision:
    """Where one physical card goes, and why."""

    track_id: int
    status: SortStatus
    card: CardRecord | None
    bin_name: str
    reason: str
    distance_cos: float
    margin_to_runner_up: float
    first_stamp_ns: int
    last_stamp_ns: int
