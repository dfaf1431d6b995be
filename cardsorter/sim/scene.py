"""Synthetic belt / station scene: cards of a catalogue moving through a camera's view, with ground truth.

Everything random is drawn once from the seed when the scene is built (the plan), and a frame is a
pure function of its index: the stream is identical on every run and any frame can be rendered
alone. Rendering touches only the regions cards cover, so a 640x480 frame takes a few ms.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from cardsorter.core.errors import ConfigError, ImageError
from cardsorter.core.fields import doc
from cardsorter.core.finish import ART_WINDOW, HOLO, REVERSE_HOLO, foil_class
from cardsorter.core.types import Quad, as_quad
from cardsorter.core.warp import quad_height_px, warp_card_closeup
from cardsorter.sim.catalog import rainbow_overlay

MODES = ("belt", "station")
NUISANCES = ("tilt", "motion_blur", "focus_blur", "glare", "haze", "hand_shadow", "finger", "exposure", "noise",
             "rotated_180", "double_feed", "close", "empty")

# Strength of each nuisance when it happens (ranges drawn uniformly); chosen to look like the
# worst of what a Pi camera over a belt shows, not to be impossible.
TILT_FRAC = (0.04, 0.12)            # one side shorter than its opposite by this fraction
MOTION_BLUR_PX = (6.0, 16.0)        # streak length along the motion
FOCUS_BLUR_SIGMA_PX = (1.5, 3.0)
GLARE_PEAK = (90.0, 160.0)          # added to the card at the highlight's centre
HAZE_ALPHA = (0.2, 0.4)             # blend towards light grey (matte sleeve)
HAZE_GREY = 205.0
SHADOW_GAIN = (0.45, 0.7)           # brightness multiplier inside a hand's shadow
EXPOSURE_GAIN = (0.55, 1.5)
NOISE_SIGMA = 7.0                   # sensor noise std in grey levels
NOISE_BANK_FRAMES = 4
CLOSE_GAP_PX = (4.0, 12.0)          # the next card almost touching
EMPTY_STRETCH_FRAMES = (1.5, 3.0)   # an empty belt stretch, in frame widths (station: seconds)
DOUBLE_FEED_OFFSET = (0.18, 0.35)   # second card shifted by this fraction of the card size
SKIN_BGR = (120, 150, 215)
RAW_IMAGES_CACHED = 16              # card images kept at native resolution for closeups
BELT_TEXTURE_AMPLITUDE = 4.0
# A foil reflects a rainbow that sweeps across it as the card moves under the light: the bands' phase
# advances this many periods per card width travelled (on the belt about 0.2 period per 3 frames); the
# catalogue image already holds the foil as scanned, the sheen is what the light adds on top of it.
SHEEN_PERIODS_PER_CARD_WIDTH = 1.0
SHEEN_ALPHA = (0.12, 0.3)           # how strongly a card's foil shows the light (a card's own, from its id)
SHEEN_BAND_FRAC = 0.12              # one rainbow period, as a fraction of the card's height


@dataclass(frozen=True)
class SceneCard:
    """One card image the scene may show, and what it is."""

    image_path: Path
    card_id: str
    in_database: bool
    finish: str = "normal"     # the catalogue's finish: a holo / reverse holo shows a sheen that moves with it


@dataclass(frozen=True)
class GroundTruthCard:
    """One physical card in view: which card it is and where its corners are (card top-left first)."""

    physical_id: int
    card_id: str
    in_database: bool
    quad_px: Quad
    nuisances: tuple[str, ...]

    def inside(self, size_wh: tuple[int, int], margin_px: float = 0.0) -> bool:
        """All four corners inside a frame of ``size_wh`` (the card can be seen whole)."""
        return quad_inside(self.quad_px, size_wh, margin_px)


def quad_inside(quad: Quad, size_wh: tuple[int, int], margin_px: float = 0.0) -> bool:
    w, h = size_wh
    return all(margin_px <= x <= w - 1 - margin_px and margin_px <= y <= h - 1 - margin_px for x, y in quad)


@dataclass(frozen=True)
class SceneConfig:
    mode: str = doc("belt (cards flow through the view) or station (one card dropped, stays, leaves)")
    cards: int = doc("physical cards in the stack")
    unknown_frac: float = doc("share of the stack drawn from cards not in the database")
    seed: int = doc("seed of everything random in the scene")
    card_height_px: int = doc("long side of a card in the frame, pixels")
    max_angle_deg: float = doc("in-plane rotation jitter of a card, degrees")
    belt_speed_px_per_s: float = doc("belt speed in the image, pixels per second")
    belt_gap_px: float = doc("gap between consecutive cards on the belt, pixels")
    station_dwell_s: float = doc("time a dropped card stays under the camera")
    station_move_s: float = doc("time a card takes to drop in and to slide out")
    station_gap_s: float = doc("empty time between two cards at the station")
    background_bgr: list[int] = doc("belt colour, BGR")  # noqa: RUF009 - doc() is a field() with no default

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.cards < 0:
            raise ValueError("cards must be >= 0")
        if not 0.0 <= self.unknown_frac <= 1.0:
            raise ValueError("unknown_frac must be in [0, 1]")
        if self.card_height_px < 16:
            raise ValueError("card_height_px must be >= 16")
        if self.belt_speed_px_per_s <= 0 or self.station_move_s <= 0:
            raise ValueError("belt_speed_px_per_s and station_move_s must be > 0")
        if len(self.background_bgr) != 3 or not all(0 <= c <= 255 for c in self.background_bgr):
            raise ValueError(f"background_bgr must be three values 0-255, got {self.background_bgr}")


@dataclass(frozen=True)
class NuisanceConfig:
    tilt: float = doc("probability a card is seen with a perspective tilt")
    motion_blur: float = doc("probability a card is streaked by motion blur")
    focus_blur: float = doc("probability a card is out of focus")
    glare: float = doc("probability of a glossy sleeve highlight on a card")
    haze: float = doc("probability of a matte sleeve haze on a card")
    hand_shadow: float = doc("probability a hand's shadow falls on a card")
    finger: float = doc("probability a finger covers one corner of a card")
    exposure: float = doc("probability the exposure changes while a card is in view")
    noise: float = doc("probability of strong sensor noise while a card is in view")
    rotated_180: float = doc("probability a card lies upside down")
    double_feed: float = doc("probability a card comes with a second one overlapping it")
    close: float = doc("probability the next card follows almost touching")
    empty: float = doc("probability of an empty stretch before the next card")

    def __post_init__(self) -> None:
        for name in NUISANCES:
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"nuisance probability '{name}' must be in [0, 1], got {p}")

    @staticmethod
    def none() -> NuisanceConfig:
        return NuisanceConfig(**dict.fromkeys(NUISANCES, 0.0))


def card_id_from_filename(path: Path) -> str:
    """``sv10-38_Pikachu.png`` → ``sv10-38`` (the stem before the first underscore)."""
    return path.stem.split("_", 1)[0]


def read_catalog_dir(directory: str | Path) -> list[SceneCard]:
    """Cards of a catalogue folder: images/*.png (in the database) and unknown/images/*.png (not), as
    `catalog generate --unknown M` writes them (a flat unknown/*.png folder is read too)."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"catalogue folder not found: {root}")
    finishes = {**_finishes(root / "metadata.json"), **_finishes(root / "unknown" / "metadata.json")}

    def card(path: Path, known: bool) -> SceneCard:
        card_id = card_id_from_filename(path)
        return SceneCard(path, card_id, known, finishes.get(card_id, "normal"))

    cards = [card(p, True) for p in sorted((root / "images").glob("*.png"))]
    unknown = sorted((root / "unknown" / "images").glob("*.png")) + sorted((root / "unknown").glob("*.png"))
    cards += [card(p, False) for p in unknown]
    if not cards:
        raise ConfigError(f"catalogue folder {root} has no images/*.png or unknown/*.png")
    return cards


def _finishes(metadata: Path) -> dict[str, str]:
    """card id -> finish of a catalogue's metadata.json (empty when there is none)."""
    if not metadata.is_file():
        return {}
    try:
        entries = json.loads(metadata.read_text(encoding="utf-8"))
        return {str(e["id"]): str(e.get("finish", "normal")) for e in entries}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{metadata}: cannot read the cards' finishes ({err})") from err


@dataclass
class _Physical:
    physical_id: int
    card: SceneCard
    angle_deg: float
    nuisances: tuple[str, ...]
    start_s: float                                 # belt: the time it enters; station: the drop time
    tilt: tuple[int, float] = (0, 0.0)             # (which side is shorter, by how much)
    blur_px: float = 0.0
    blur_angle_deg: float = 0.0
    focus_sigma: float = 0.0
    glare: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # x, y (card fraction), radius frac, peak
    haze_alpha: float = 0.0
    shadow: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # dx, dy (card fraction), radius frac, gain
    finger_corner: int = -1
    second: SceneCard | None = None                # double feed: the card under this one
    second_offset: tuple[float, float, float] = (0.0, 0.0, 0.0)  # dx, dy (card fraction), angle
    exposure_gain: float = 1.0
    noisy: bool = False
    belt_offset_px: float = 0.0                    # belt: x of the centre at t = start_s
    extent_px: float = 0.0                         # belt: half width of the card's footprint along the belt
    images: dict[str, np.ndarray] = field(default_factory=dict)


class SyntheticScene:
    """Renders frame ``i`` of a belt or station run and the ground truth of the cards in view."""

    def __init__(self, config: SceneConfig, nuisances: NuisanceConfig, cards: Sequence[SceneCard],
                 fps: float, size_wh: tuple[int, int]) -> None:
        if fps <= 0:
            raise ConfigError(f"fps must be > 0, got {fps}")
        if size_wh[0] < 64 or size_wh[1] < 64:
            raise ConfigError(f"frame size must be at least 64x64, got {size_wh}")
        known = [c for c in cards if c.in_database]
        unknown = [c for c in cards if not c.in_database]
        if config.cards > 0 and not cards:
            raise ConfigError("synthetic scene needs at least one card image")
        self._cfg = config
        self._nz = nuisances
        self._fps = float(fps)
        self._w, self._h = int(size_wh[0]), int(size_wh[1])
        rng = np.random.default_rng(config.seed)
        self._background = self._make_background(rng)
        noise = rng.normal(0.0, NOISE_SIGMA, (NOISE_BANK_FRAMES, self._h, self._w, 3))
        self._noise_pos = np.clip(noise, 0, 255).astype(np.uint8)
        self._noise_neg = np.clip(-noise, 0, 255).astype(np.uint8)
        self._image_cache: dict[Path, np.ndarray] = {}
        self._raw_cache: OrderedDict[Path, np.ndarray] = OrderedDict()   # native-resolution images (closeups)
        self._solids: dict[tuple[int, int], np.ndarray] = {}
        self._physicals = self._plan(rng, known, unknown)
        self._duration_s = self._end_time_s()
        self._frame_count = math.ceil(self._duration_s * self._fps) + 1 if self._physicals else 0

    @property
    def frame_count(self) -> int:
        return self._frame_count

    @property
    def size_wh(self) -> tuple[int, int]:
        return (self._w, self._h)

    def stack(self) -> list[tuple[int, str, bool, tuple[str, ...]]]:
        """(physical_id, card_id, in_database, nuisances) of every physical card, in order."""
        return [(p.physical_id, p.card.card_id, p.card.in_database, p.nuisances) for p in self._physicals]

    def render(self, frame_index: int) -> tuple[np.ndarray, list[GroundTruthCard]]:
        if not 0 <= frame_index < self._frame_count:
            raise IndexError(f"frame {frame_index} outside the scene's {self._frame_count} frames")
        t = frame_index / self._fps
        frame = self._background.copy()
        truth: list[GroundTruthCard] = []
        gain, noisy = 1.0, False
        frame_nuisances: list[str] = []
        for p in self._physicals:
            pose = self._pose(p, t)
            if pose is None:
                continue
            centre, moving_angle = pose
            quad = self._quad(p, centre, p.angle_deg)
            quads = [quad]
            if p.second is not None:
                dx, dy, da = p.second_offset
                c2 = (centre[0] + dx * self._card_w(), centre[1] + dy * self._cfg.card_height_px)
                quads.insert(0, self._quad(p, c2, p.angle_deg + da))
            x0, y0, x1, y1 = _bounds(np.vstack(quads), self._w, self._h, margin=int(MOTION_BLUR_PX[1]) + 4)
            if x1 <= x0 or y1 <= y0:
                continue
            self._draw(frame, p, quads, (x0, y0, x1, y1), moving_angle, sheen_phase=self._sheen_phase(p, centre))
            if p.exposure_gain != 1.0:
                gain = p.exposure_gain
            noisy = noisy or p.noisy
            truth.append(GroundTruthCard(p.physical_id, p.card.card_id, p.card.in_database,
                                         as_quad(quad), p.nuisances))
        if gain != 1.0:
            cv2.convertScaleAbs(frame, frame, alpha=gain)
            frame_nuisances.append("exposure")
        if noisy:
            k = frame_index % NOISE_BANK_FRAMES
            cv2.add(frame, self._noise_pos[k], frame)
            cv2.subtract(frame, self._noise_neg[k], frame)
            frame_nuisances.append("noise")
        if frame_nuisances:
            truth = [GroundTruthCard(g.physical_id, g.card_id, g.in_database, g.quad_px,
                                     tuple(dict.fromkeys(g.nuisances + tuple(frame_nuisances))))
                     for g in truth]
        return frame, truth

    def render_closeup(self, frame_index: int, quad_px: Quad, card_height_px: int,
                       main_scale: float) -> tuple[np.ndarray, float]:
        """Frame ``frame_index`` as a camera's main stream ``main_scale`` times the frame's resolution sees it,
        cut along ``quad_px`` (frame pixels, clockwise from the card's top-left, as detected) and rectified to
        a card ``card_height_px`` high; and how many main-stream pixels the card's height covered.

        Only the quad's region is rendered, at the main stream's resolution: every card in it from its image
        at native resolution, with the nuisances of the frame (blur, a finger, a shadow, exposure, noise)
        at that scale. The rectification uses the quad given, so a detector's corner error shows."""
        if not 0 <= frame_index < self._frame_count:
            raise IndexError(f"frame {frame_index} outside the scene's {self._frame_count} frames")
        if main_scale < 1.0:
            raise ValueError(f"main_scale must be >= 1, got {main_scale}")
        k = float(main_scale)
        q = np.asarray(quad_px, np.float64).reshape(4, 2)
        x0, y0, x1, y1 = _bounds(q, self._w, self._h, margin=4)
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"quad {quad_px} is outside the frame")
        cw, ch = round((x1 - x0) * k), round((y1 - y0) * k)
        canvas = np.asarray(cv2.resize(self._background[y0:y1, x0:x1], (cw, ch), interpolation=cv2.INTER_LINEAR))

        def to_canvas(points: np.ndarray) -> np.ndarray:   # pixel centres: frame x -> (x - x0 + 0.5) k - 0.5
            return np.asarray((points - [x0, y0] + 0.5) * k - 0.5)

        t = frame_index / self._fps
        gain, noisy = 1.0, False
        for p in self._physicals:
            pose = self._pose(p, t)
            if pose is None:
                continue
            centre, moving_angle = pose
            quads = [self._quad(p, centre, p.angle_deg)]
            if p.second is not None:
                dx, dy, da = p.second_offset
                c2 = (centre[0] + dx * self._card_w(), centre[1] + dy * self._cfg.card_height_px)
                quads.insert(0, self._quad(p, c2, p.angle_deg + da))
            scaled = [to_canvas(qq) for qq in quads]
            roi = _bounds(np.vstack(scaled), cw, ch, margin=int((MOTION_BLUR_PX[1] + 4) * k))
            if roi[2] <= roi[0] or roi[3] <= roi[1]:
                continue
            self._draw(canvas, p, scaled, roi, moving_angle, scale=k, sheen_phase=self._sheen_phase(p, centre))
            if p.exposure_gain != 1.0:
                gain = p.exposure_gain
            noisy = noisy or p.noisy
        if gain != 1.0:
            cv2.convertScaleAbs(canvas, canvas, alpha=gain)
        if noisy:
            noise = np.random.default_rng([self._cfg.seed, frame_index]).normal(0.0, NOISE_SIGMA, canvas.shape)
            canvas = np.clip(canvas + noise, 0, 255).astype(np.uint8)
        cq = as_quad(to_canvas(q))
        height = max(1, int(card_height_px))
        width = max(1, round(height * self._card_w() / self._cfg.card_height_px))
        return warp_card_closeup(canvas, cq, (width, height)), quad_height_px(cq)

    # --- plan -------------------------------------------------------------------------------

    def _make_background(self, rng: np.random.Generator) -> np.ndarray:
        noise = rng.normal(0.0, 1.0, (self._h // 4 + 1, self._w // 4 + 1)).astype(np.float32)
        texture = np.asarray(cv2.resize(cv2.GaussianBlur(noise, (0, 0), 1.0), (self._w, self._h)))
        base = np.array(self._cfg.background_bgr, np.float32)[None, None, :]
        bg = base + BELT_TEXTURE_AMPLITUDE * texture[:, :, None]
        return np.clip(bg, 0, 255).astype(np.uint8)

    def _card_w(self) -> float:
        return self._cfg.card_height_px * 63.0 / 88.0

    def _plan(self, rng: np.random.Generator, known: list[SceneCard], unknown: list[SceneCard]) -> list[_Physical]:
        cfg, nz = self._cfg, self._nz
        physicals: list[_Physical] = []
        centre_x = 0.0        # belt: centre x of the card at t = 0 (cards further back start further left)
        clock_s = 0.0         # station: drop time of the next card
        previous_extent = 0.0
        close_next = False
        for i in range(cfg.cards):
            pool = unknown if (unknown and (not known or rng.random() < cfg.unknown_frac)) else known
            card = pool[int(rng.integers(len(pool)))]
            tags: list[str] = []

            def happens(name: str, tags: list[str] = tags) -> bool:
                hit = bool(rng.random() < getattr(nz, name))
                if hit:
                    tags.append(name)
                return hit

            empty_before = happens("empty") and i > 0
            if close_next:
                tags.append("close")
            angle = float(rng.uniform(-cfg.max_angle_deg, cfg.max_angle_deg))
            if happens("rotated_180"):
                angle += 180.0
            p = _Physical(i + 1, card, angle, (), 0.0)
            if happens("tilt"):
                p.tilt = (int(rng.integers(4)), float(rng.uniform(*TILT_FRAC)))
            if happens("motion_blur"):
                p.blur_px = float(rng.uniform(*MOTION_BLUR_PX))
            if happens("focus_blur"):
                p.focus_sigma = float(rng.uniform(*FOCUS_BLUR_SIGMA_PX))
            if happens("glare"):
                p.glare = (float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.15, 0.85)), float(rng.uniform(0.15, 0.35)),
                           float(rng.uniform(*GLARE_PEAK)))
            if happens("haze"):
                p.haze_alpha = float(rng.uniform(*HAZE_ALPHA))
            if happens("hand_shadow"):
                p.shadow = (float(rng.uniform(-0.5, 0.5)), float(rng.uniform(-0.5, 0.5)), float(rng.uniform(0.35, 0.6)),
                            float(rng.uniform(*SHADOW_GAIN)))
            if happens("finger"):
                p.finger_corner = int(rng.integers(4))
            if happens("exposure"):
                p.exposure_gain = float(rng.uniform(*EXPOSURE_GAIN))
            p.noisy = happens("noise")
            if happens("double_feed"):
                p.second = pool[int(rng.integers(len(pool)))]
                sx = float(rng.uniform(*DOUBLE_FEED_OFFSET)) * float(rng.choice([-1.0, 1.0]))
                sy = float(rng.uniform(*DOUBLE_FEED_OFFSET)) * float(rng.choice([-1.0, 1.0]))
                p.second_offset = (sx, sy, float(rng.uniform(-25.0, 25.0)))
            close_next = happens("close")
            if close_next:
                tags.remove("close")  # the tag belongs to the card that follows closely
            p.nuisances = tuple(tags)
            if cfg.mode == "belt":
                quads = [self._quad(p, (0.0, 0.0), p.angle_deg)]
                if p.second is not None:
                    dx, dy, da = p.second_offset
                    quads.append(self._quad(p, (dx * self._card_w(), dy * cfg.card_height_px), p.angle_deg + da))
                xs = np.vstack(quads)[:, 0]
                p.extent_px = float(max(-xs.min(), xs.max()))
                gap = cfg.belt_gap_px
                if "close" in tags:
                    gap = float(rng.uniform(*CLOSE_GAP_PX))
                if empty_before:
                    gap += float(rng.uniform(*EMPTY_STRETCH_FRAMES)) * self._w
                # the first card starts just left of the view; each next one a gap behind the previous
                centre_x = -p.extent_px if i == 0 else centre_x - (previous_extent + gap + p.extent_px)
                p.belt_offset_px = centre_x
                previous_extent = p.extent_px
            else:
                if i > 0:
                    clock_s += float(rng.uniform(*EMPTY_STRETCH_FRAMES)) if empty_before else 0.0
                p.start_s = clock_s
                clock_s += 2 * cfg.station_move_s + cfg.station_dwell_s + cfg.station_gap_s
            physicals.append(p)
        return physicals

    def _end_time_s(self) -> float:
        if not self._physicals:
            return 0.0
        last = self._physicals[-1]
        cfg = self._cfg
        if cfg.mode == "belt":
            return (self._w + last.extent_px + 1.0 - last.belt_offset_px) / cfg.belt_speed_px_per_s
        return last.start_s + 2 * cfg.station_move_s + cfg.station_dwell_s

    # --- kinematics ------------------------------------------------------------------------

    def _pose(self, p: _Physical, t: float) -> tuple[tuple[float, float], float] | None:
        """Centre of the card at time t and the direction it moves in (degrees); None when away."""
        cfg = self._cfg
        cy = self._h / 2.0
        if cfg.mode == "belt":
            x = p.belt_offset_px + cfg.belt_speed_px_per_s * t
            if x + p.extent_px < 0 or x - p.extent_px > self._w:
                return None
            return (x, cy + 0.08 * self._h * math.sin(p.physical_id * 1.7)), 0.0
        local = t - p.start_s
        move, dwell = cfg.station_move_s, cfg.station_dwell_s
        diag = math.hypot(self._card_w(), cfg.card_height_px)
        cx = self._w / 2.0
        if local < 0 or local > 2 * move + dwell:
            return None
        if local < move:                   # dropping in from the top
            f = local / move
            return (cx, -diag / 2 + f * (cy + diag / 2)), 90.0
        if local <= move + dwell:
            return (cx, cy), 0.0
        f = (local - move - dwell) / move  # sliding out to the right
        return (cx + f * (self._w / 2.0 + diag / 2), cy), 0.0

    def _quad(self, p: _Physical, centre: tuple[float, float], angle_deg: float) -> np.ndarray:
        w, h = self._card_w(), float(self._cfg.card_height_px)
        corners = np.array([[-w / 2, -h / 2], [w / 2, -h / 2], [w / 2, h / 2], [-w / 2, h / 2]])
        side, frac = p.tilt
        if frac > 0:
            a, b = side, (side + 1) % 4
            mid = (corners[a] + corners[b]) / 2
            corners[a] = mid + (corners[a] - mid) * (1 - frac)
            corners[b] = mid + (corners[b] - mid) * (1 - frac)
        r = math.radians(angle_deg)
        rot = np.array([[math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)]])
        return np.asarray(corners @ rot.T + np.asarray(centre))

    # --- drawing ---------------------------------------------------------------------------

    def _raw_image(self, path: Path) -> np.ndarray:
        raw = self._raw_cache.get(path)
        if raw is None:
            raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if raw is None:
                raise ImageError(f"cannot read card image {path}")
            self._raw_cache[path] = raw
            while len(self._raw_cache) > RAW_IMAGES_CACHED:
                self._raw_cache.popitem(last=False)
        return raw

    def _card_image(self, p: _Physical, which: str, scale: float = 1.0) -> np.ndarray:
        """The card as it looks on the belt (sleeve glare / haze baked in), at its frame size (times
        ``scale`` for a main-stream closeup: drawn from the image's native pixels, not kept)."""
        if scale == 1.0 and which in p.images:
            return p.images[which]
        card = p.card if which == "top" else p.second
        assert card is not None
        if scale != 1.0:
            raw = self._raw_image(card.image_path)
            size = (round(self._card_w() * scale), round(self._cfg.card_height_px * scale))
            up = size[1] > raw.shape[0]
            img = np.asarray(cv2.resize(raw, size, interpolation=cv2.INTER_CUBIC if up else cv2.INTER_AREA))
        else:
            if card.image_path not in self._image_cache:
                raw = self._raw_image(card.image_path)
                size = (round(self._card_w()), self._cfg.card_height_px)
                self._image_cache[card.image_path] = cv2.resize(raw, size, interpolation=cv2.INTER_AREA)
            img = self._image_cache[card.image_path]
        if which == "top" and (p.glare[3] > 0 or p.haze_alpha > 0):
            f = img.astype(np.float32)
            hh, ww = img.shape[:2]
            if p.glare[3] > 0:
                gx, gy, gr, peak = p.glare
                yy, xx = np.mgrid[0:hh, 0:ww].astype(np.float32)
                d2 = ((xx - gx * ww) ** 2 + ((yy - gy * hh) * 0.6) ** 2) / (gr * ww) ** 2
                f += peak * np.exp(-d2)[:, :, None]
            if p.haze_alpha > 0:
                f = f * (1 - p.haze_alpha) + HAZE_GREY * p.haze_alpha
            img = np.clip(f, 0, 255).astype(np.uint8)
        if scale == 1.0:
            p.images[which] = img
        return img

    def _solid(self, shape: tuple[int, ...]) -> np.ndarray:
        key = (int(shape[0]), int(shape[1]))
        if key not in self._solids:
            self._solids[key] = np.full(key, 255, np.uint8)
        return self._solids[key]

    def _sheen_phase(self, p: _Physical, centre: tuple[float, float]) -> float:
        """Where the foil's reflected rainbow stands for a card centred at ``centre`` (frame pixels)."""
        return (p.physical_id * 0.37 + SHEEN_PERIODS_PER_CARD_WIDTH * (centre[0] + 0.5 * centre[1])
                / self._card_w()) % 1.0

    @staticmethod
    def _with_sheen(card: np.ndarray, finish: str, phase: float, physical_id: int) -> np.ndarray:
        """``card`` with the light's rainbow over its foil: the artwork window (holo) or around it (reverse)."""
        kind = foil_class(finish)
        if kind not in (HOLO, REVERSE_HOLO):
            return card
        h, w = card.shape[:2]
        x0, y0, x1, y1 = (round(ART_WINDOW[0] * w), round(ART_WINDOW[1] * h), round(ART_WINDOW[2] * w),
                          round(ART_WINDOW[3] * h))
        lo, hi = SHEEN_ALPHA
        alpha = lo + (hi - lo) * ((physical_id * 0.618034) % 1.0)   # the card's own, not drawn from the plan
        mask = np.zeros((h, w), np.float32)
        if kind == HOLO:
            mask[y0:y1, x0:x1] = alpha
        else:
            inset = round(0.03 * h)
            mask[inset:h - inset, inset:w - inset] = alpha
            mask[y0:y1, x0:x1] = 0.0
        rainbow = rainbow_overlay(h, w, phase, scale=SHEEN_BAND_FRAC * h / 40.0)
        return cv2.blendLinear(rainbow, card, mask, 1.0 - mask)

    def _draw(self, frame: np.ndarray, p: _Physical, quads: list[np.ndarray], roi: tuple[int, int, int, int],
              moving_angle_deg: float, scale: float = 1.0, sheen_phase: float = 0.0) -> None:
        """Draws the card(s) of ``p`` at ``quads`` into ``frame[roi]``; ``scale``: the frame is a main stream
        that many times the scene's resolution (every length in pixels scales with it); ``sheen_phase``: where
        the light's rainbow stands on a foil card (the same in a frame and in its closeup)."""
        x0, y0, x1, y1 = roi
        view = frame[y0:y1, x0:x1]
        card_h = self._cfg.card_height_px * scale
        names = ["second", "top"] if len(quads) == 2 else ["top"]
        for name, quad in zip(names, quads, strict=True):
            shown = p.card if name == "top" else p.second
            assert shown is not None
            card = self._with_sheen(self._card_image(p, name, scale), shown.finish, sheen_phase, p.physical_id)
            ch, cw = card.shape[:2]
            src = np.array([[-0.5, -0.5], [cw - 0.5, -0.5], [cw - 0.5, ch - 0.5], [-0.5, ch - 0.5]], np.float32)
            dst = (quad - [x0, y0]).astype(np.float32)
            matrix = cv2.getPerspectiveTransform(src, dst)
            size = (x1 - x0, y1 - y0)
            warped = cv2.warpPerspective(card, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            # bilinear warp of a solid mask with a zero border: 50 % coverage exactly on the card's edge
            coverage = cv2.warpPerspective(self._solid(card.shape[:2]), matrix, size, flags=cv2.INTER_LINEAR,
                                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)
            alpha = coverage.astype(np.float32) * (1.0 / 255.0)
            view[:] = cv2.blendLinear(warped, view, alpha, 1.0 - alpha)
        if p.finger_corner >= 0:
            corner = quads[-1][p.finger_corner] - [x0, y0]
            outward = corner - (quads[-1].mean(axis=0) - [x0, y0])
            outward /= max(1e-6, float(np.linalg.norm(outward)))
            tip = corner - outward * 0.06 * card_h
            base = corner + outward * 0.25 * card_h
            width = max(3, round(0.07 * card_h))
            cv2.line(view, (round(tip[0]), round(tip[1])), (round(base[0]), round(base[1])), SKIN_BGR, width * 2,
                     cv2.LINE_AA)
        if p.shadow[3] > 0:
            dx, dy, radius, gain = p.shadow
            centre = quads[-1].mean(axis=0) - [x0, y0] + [dx * self._card_w() * scale, dy * card_h]
            disc = np.zeros(view.shape[:2], np.float32)
            r = radius * card_h
            cv2.ellipse(disc, (round(centre[0]), round(centre[1])), (round(r * 1.4), round(r)), 30.0, 0, 360, 1.0, -1)
            shade = 1.0 - (1.0 - gain) * np.asarray(cv2.GaussianBlur(disc, (0, 0), 0.15 * r))
            view[:] = np.clip(view * shade[:, :, None], 0, 255).astype(np.uint8)
        if p.blur_px > 0:
            view[:] = cv2.filter2D(view, -1, _line_kernel(p.blur_px * scale, moving_angle_deg))
        if p.focus_sigma > 0:
            view[:] = cv2.GaussianBlur(view, (0, 0), p.focus_sigma * scale)


def _line_kernel(length_px: float, angle_deg: float) -> np.ndarray:
    size = math.ceil(length_px) | 1
    kernel = np.zeros((size, size), np.float32)
    c = size // 2
    r = math.radians(angle_deg)
    dx, dy = math.cos(r) * length_px / 2, math.sin(r) * length_px / 2
    cv2.line(kernel, (round(c - dx), round(c - dy)), (round(c + dx), round(c + dy)), 1.0, 1, cv2.LINE_AA)
    return kernel / max(1e-6, float(kernel.sum()))


def _bounds(points: np.ndarray, w: int, h: int, margin: int) -> tuple[int, int, int, int]:
    x0 = max(0, math.floor(points[:, 0].min()) - margin)
    y0 = max(0, math.floor(points[:, 1].min()) - margin)
    x1 = min(w, math.ceil(points[:, 0].max()) + margin + 1)
    y1 = min(h, math.ceil(points[:, 1].max()) + margin + 1)
    return x0, y0, x1, y1


