"""Procedural trading-card catalogue: card images, pokemontcg.io-style metadata, hard cases."""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cardsorter.core.errors import ImageError
from cardsorter.core.types import CardRecord

CARD_W_PX = 250
CARD_H_PX = 350                 # the design's pixels: render_card draws at any height from them
# Written catalogues' image height: what a scan of the card shows (real catalogue scans are 600–1024 px),
# enough for the printing reader's closeups (docs/PRINTINGS.md: 700 px at least).
CATALOG_IMAGE_HEIGHT_PX = 700
# What generate_catalog draws changes with this number (a cached catalogue is made again when it differs):
# 2: the era footers (collector number, set code, illustrator) and images CATALOG_IMAGE_HEIGHT_PX high.
RENDER_VERSION = 2
BORDER_PX = 10
NAME_BAND_Y_PX = (16, 44)       # the name band is at the TOP: an upside-down card is detectable
ART_BOX_PX = (20, 50, 230, 190)  # x0, y0, x1, y1 of the artwork window

# Type name -> BGR colour of the card body (a made-up palette, not any publisher's).
TYPE_COLOURS: dict[str, tuple[int, int, int]] = {
    "Fire": (60, 90, 220),
    "Water": (210, 140, 60),
    "Grass": (70, 170, 80),
    "Lightning": (40, 210, 235),
    "Psychic": (170, 80, 160),
    "Fighting": (50, 100, 170),
    "Darkness": (70, 60, 50),
    "Metal": (165, 165, 160),
    "Dragon": (40, 150, 170),
    "Colorless": (205, 205, 200),
}
TYPES = tuple(TYPE_COLOURS)
RARITIES = ("Common", "Uncommon", "Rare", "Rare Holo")
# Where an era prints the collector number (as real cards do, docs/PRINTINGS.md): "classic" (1999–2010s)
# bottom right after the copyright line, without leading zeros ("4/102"); "modern" bottom left after the
# regulation mark, set code and language ("G SV3 EN 025/165"), the illustrator and copyright right.
FOOTER_LAYOUTS = {"base": "classic", "ex": "classic", "dp": "classic", "bw": "classic",
                  "xy": "modern", "sm": "modern", "swsh": "modern", "sv": "modern"}
REGULATION_MARKS = {"swsh": "D", "sv": "G"}
FOOTER_FONT_SCALE = 0.22         # Hershey simplex at CARD_H_PX: letters ~1.5 % of the card height, as printed
ERA_BORDERS: dict[str, tuple[int, int, int]] = {  # set-id prefix -> border colour (BGR)
    "base": (40, 200, 235), "ex": (45, 190, 225), "dp": (60, 205, 230), "bw": (55, 195, 220),
    "xy": (50, 185, 215), "sm": (70, 200, 230), "swsh": (165, 170, 175), "sv": (190, 195, 200),
}
_SYLLABLES = ("ka", "zu", "mo", "ri", "pel", "dor", "vex", "lu", "tan", "gro", "shi", "bel", "nox",
              "fra", "quil", "mi", "ro", "sa", "tor", "fen", "gle", "puf", "zar", "chu", "lo", "ven")
_SET_WORDS = ("Ember", "Tidal", "Crystal", "Shadow", "Ancient", "Silver", "Storm", "Hidden", "Astral",
              "Verdant", "Iron", "Lunar", "Solar", "Obsidian", "Twilight", "Paradox", "Radiant", "Wild")
_SET_NOUNS = ("Tides", "Forge", "Echoes", "Crown", "Horizons", "Legends", "Ruins", "Skies", "Depths",
              "Sparks", "Realm", "Frontier", "Masters", "Dawn", "Rift", "Origins")
_ATTACK_WORDS = ("Tackle", "Flare", "Splash", "Vine Whip", "Jolt", "Psy Beam", "Crush", "Bite",
                 "Slam", "Gust", "Drain", "Blast", "Scratch", "Roar", "Pulse", "Strike")

# Composition of a generated catalogue (fractions of the card count), chosen to resemble a real
# collection's hard cases: reprints, finish variants, near-identical energies, full arts.
FRACTION_ENERGY = 0.05
FRACTION_REPRINT = 0.10
FRACTION_VARIANT = 0.10
FRACTION_FULL_ART = 0.04
CARDS_PER_SET = 60


@dataclass(frozen=True)
class _SetInfo:
    set_id: str
    name: str
    total: int
    symbol: int          # index of the drawn set-symbol shape
    border_bgr: tuple[int, int, int]
    era: str = "sv"      # a key of ERA_BORDERS: which footer layout the set's cards print (FOOTER_LAYOUTS)


@dataclass(frozen=True)
class CardDesign:
    """What the renderer needs to draw one card."""

    record: CardRecord
    set_info: _SetInfo
    hp: int
    layout: str          # normal | full_art | energy
    art_seed: int
    attacks: tuple[tuple[str, int], ...]


def _name(rng: np.random.Generator) -> str:
    n = int(rng.integers(2, 4))
    word = "".join(str(rng.choice(_SYLLABLES)) for _ in range(n))
    return word.capitalize()


def _sets(rng: np.random.Generator, count: int, prefix_tag: str = "") -> list[_SetInfo]:
    eras = list(ERA_BORDERS)
    sets: list[_SetInfo] = []
    used: set[str] = set()
    for i in range(count):
        era = eras[i % len(eras)]
        k = i // len(eras) + 1
        set_id = f"{prefix_tag}{era}{k}"
        while set_id in used:
            k += 1
            set_id = f"{prefix_tag}{era}{k}"
        used.add(set_id)
        name = f"{rng.choice(_SET_WORDS)} {rng.choice(_SET_NOUNS)}"
        sets.append(_SetInfo(set_id, name, int(rng.integers(CARDS_PER_SET + 20, 230)),
                             int(rng.integers(0, 6)), ERA_BORDERS[era], era))
    return sets


def _art_seed(seed: int, art_id: str) -> int:
    return (seed * 1_000_003 + zlib.crc32(art_id.encode())) % (2**31)


def _designs(cards: int, seed: int, namespace: str) -> list[CardDesign]:
    """Plan a catalogue of `cards` printings (metadata only, no pixels)."""
    rng = np.random.default_rng([seed, zlib.crc32(namespace.encode())])
    tag = "x" if namespace == "unknown" else ""
    sets = _sets(rng, max(2, math.ceil(cards / CARDS_PER_SET)), tag)
    next_number = {s.set_id: 1 for s in sets}
    used_names: set[str] = set()
    designs: list[CardDesign] = []
    ids: set[str] = set()

    def add(name: str, s: _SetInfo, number: str, rarity: str, art_id: str, finish: str, layout: str,
            types: tuple[str, ...], supertype: str, hp: int, attacks: tuple[tuple[str, int], ...]) -> None:
        card_id = f"{s.set_id}-{number}"
        if card_id in ids or len(designs) >= cards:
            return
        ids.add(card_id)
        price = round(float(rng.lognormal(0.0, 1.2)) * (5.0 if layout == "full_art" else 1.0), 2)
        record = CardRecord(card_id=card_id, name=name, set_id=s.set_id, set_name=s.name, number=number,
                            rarity=rarity, art_id=art_id, finish=finish, supertype=supertype, types=types,
                            price_usd=price, set_code=s.set_id.upper(), printed_total=s.total)
        designs.append(CardDesign(record, s, hp, layout, _art_seed(seed, art_id), attacks))

    def take_number(s: _SetInfo) -> str:
        n = next_number[s.set_id]
        next_number[s.set_id] = n + 1
        return str(n)

    def new_name() -> str:
        for _ in range(1000):
            name = _name(rng)
            if name not in used_names:
                used_names.add(name)
                return name
        raise RuntimeError("name space exhausted")  # cannot happen below ~10^4 cards

    n_energy = round(cards * FRACTION_ENERGY)
    n_reprint = round(cards * FRACTION_REPRINT)
    n_variant = round(cards * FRACTION_VARIANT)
    n_full = round(cards * FRACTION_FULL_ART)
    n_base = max(1, cards - n_energy - n_reprint - n_variant - n_full)
    base: list[CardDesign] = []
    for i in range(n_base):
        s = sets[i % len(sets)]
        t = str(rng.choice(TYPES))
        rarity = str(rng.choice(RARITIES, p=[0.45, 0.3, 0.15, 0.10]))
        finish = "holo" if rarity == "Rare Holo" else "normal"
        attacks = tuple((str(rng.choice(_ATTACK_WORDS)), int(rng.integers(1, 13)) * 10)
                        for _ in range(int(rng.integers(1, 3))))
        art_id = f"{namespace}-art-{i:05d}"
        add(new_name(), s, take_number(s), rarity, art_id, finish, "normal", (t,), "Pokemon",
            int(rng.integers(3, 25)) * 10, attacks)
        base.append(designs[-1])
    for _ in range(n_full):   # full-art printings of an existing character, new art
        src = base[int(rng.integers(len(base)))]
        s = sets[int(rng.integers(len(sets)))]
        art_id = f"{namespace}-fullart-{len(designs):05d}"
        add(src.record.name, s, take_number(s), "Rare Ultra", art_id, "holo", "full_art", src.record.types,
            "Pokemon", src.hp + 60, src.attacks)
    for _ in range(n_reprint):  # same art, another set, number and maybe rarity
        src = base[int(rng.integers(len(base)))]
        others = [s for s in sets if s.set_id != src.set_info.set_id]
        s = others[int(rng.integers(len(others)))]
        rarity = str(rng.choice(RARITIES))
        add(src.record.name, s, take_number(s), rarity, src.record.art_id,
            "holo" if rarity == "Rare Holo" else "normal", "normal", src.record.types, "Pokemon", src.hp,
            src.attacks)
    for _ in range(n_variant):  # holo / reverse-holo printing of the same card in the same set
        src = base[int(rng.integers(len(base)))]
        finish = "reverse_holo" if src.record.finish == "holo" or rng.random() < 0.6 else "holo"
        suffix = "rh" if finish == "reverse_holo" else "h"
        add(src.record.name, src.set_info, f"{src.record.number}{suffix}", src.record.rarity,
            src.record.art_id, finish, "normal", src.record.types, "Pokemon", src.hp, src.attacks)
    e = 0
    while len(designs) < cards:  # basic energies: one art per type, reprinted in every set
        t = TYPES[e % (len(TYPES) - 1)]
        s = sets[(e // (len(TYPES) - 1)) % len(sets)]
        before = len(designs)
        add(f"{t} Energy", s, take_number(s), "Common", f"energy-{t.lower()}", "normal", "energy", (t,),
            "Energy", 0, ())
        e += 1
        if len(designs) == before and e > 10 * cards:
            break
    return designs


def _procedural_art(seed: int, w: int, h: int, palette_bgr: tuple[int, int, int]) -> np.ndarray:
    """Abstract artwork: gradient sky, ground, blobs and strokes; identical for one seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    c0 = np.array(palette_bgr, np.float32) * rng.uniform(0.5, 1.1) + rng.uniform(-40, 40, 3)
    c1 = rng.uniform(30, 240, 3).astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    t = ((xx / w - 0.5) * math.cos(angle) + (yy / h - 0.5) * math.sin(angle)) + 0.5
    img = (c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None])
    freq = rng.uniform(2, 7)
    img += 25 * np.sin(xx[..., None] / w * freq * math.pi + rng.uniform(0, 6, 3))
    art: np.ndarray = np.clip(img, 0, 255).astype(np.uint8)
    horizon = int(h * rng.uniform(0.55, 0.8))
    ground = tuple(int(v) for v in rng.integers(20, 200, 3))
    pts = [(0, horizon)] + [(int(x), int(horizon + rng.integers(-12, 12))) for x in np.linspace(0, w, 6)]
    pts += [(w, h), (0, h)]
    cv2.fillPoly(art, [np.array(pts, np.int32)], ground, lineType=cv2.LINE_AA)
    for _ in range(int(rng.integers(4, 9))):
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 4))
        cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
        if kind == 0:
            cv2.circle(art, (cx, cy), int(rng.integers(6, w // 3)), colour, -1, cv2.LINE_AA)
        elif kind == 1:
            axes = (int(rng.integers(8, w // 2)), int(rng.integers(6, h // 3)))
            cv2.ellipse(art, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, colour, -1, cv2.LINE_AA)
        elif kind == 2:
            poly = rng.integers([0, 0], [w, h], size=(int(rng.integers(3, 6)), 2)).astype(np.int32)
            cv2.fillPoly(art, [poly], colour, cv2.LINE_AA)
        else:
            for _ in range(int(rng.integers(2, 6))):
                p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
                cv2.line(art, p1, p2, colour, int(rng.integers(1, 5)), cv2.LINE_AA)
    # A "creature": body + eyes, placed by the seed, gives every art a distinct focal object.
    body = tuple(int(v) for v in rng.integers(0, 256, 3))
    bx, by = int(w * rng.uniform(0.3, 0.7)), int(h * rng.uniform(0.4, 0.7))
    br = int(min(w, h) * rng.uniform(0.15, 0.3))
    cv2.ellipse(art, (bx, by), (br, int(br * rng.uniform(0.7, 1.3))), 0, 0, 360, body, -1, cv2.LINE_AA)
    for dx in (-1, 1):
        ex, ey = bx + dx * br // 3, by - br // 3
        cv2.circle(art, (ex, ey), max(2, br // 6), (255, 255, 255), -1, cv2.LINE_AA)
        cv2.circle(art, (ex, ey), max(1, br // 12), (20, 20, 20), -1, cv2.LINE_AA)
    return art


def rainbow_overlay(h: int, w: int, phase: float, scale: float = 1.0) -> np.ndarray:
    """A diagonal rainbow (BGR uint8, HxW) like a holofoil under light; phase shifts the bands."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    hue = ((xx + yy * 0.6) / (40.0 * scale) + phase) % 1.0
    hsv = np.stack([hue * 180.0, np.full_like(hue, 200.0), np.full_like(hue, 255.0)], axis=-1)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


def _draw_set_symbol(img: np.ndarray, kind: int, centre: tuple[int, int], r: int, line: int = 2) -> None:
    cx, cy = centre
    black = (20, 20, 20)
    if kind == 0:
        cv2.circle(img, centre, r, black, -1, cv2.LINE_AA)
    elif kind == 1:
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), black, -1)
    elif kind == 2:
        cv2.fillPoly(img, [np.array([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], np.int32)], black)
    elif kind == 3:
        cv2.fillPoly(img, [np.array([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], np.int32)], black)
    elif kind == 4:
        cv2.circle(img, centre, r, black, line, cv2.LINE_AA)
        cv2.line(img, (cx - r, cy), (cx + r, cy), black, line)
    else:
        pts = [(cx + int(r * math.cos(a)), cy + int(r * math.sin(a)))
               for a in np.linspace(-math.pi / 2, 1.5 * math.pi, 6)[:5]]
        cv2.polylines(img, [np.array(pts, np.int32)[[0, 2, 4, 1, 3]]], True, black, line, cv2.LINE_AA)


def _draw_rarity(img: np.ndarray, rarity: str, centre: tuple[int, int], scale: float = 1.0) -> None:
    cx, cy = centre
    black = (20, 20, 20)
    r5 = round(5 * scale)
    if rarity == "Common":
        cv2.circle(img, centre, round(4 * scale), black, -1, cv2.LINE_AA)
    elif rarity == "Uncommon":
        cv2.fillPoly(img, [np.array([(cx, cy - r5), (cx + r5, cy), (cx, cy + r5), (cx - r5, cy)], np.int32)],
                     black)
    else:
        n = {"Rare": 1, "Rare Holo": 1, "Rare Ultra": 2}.get(rarity, 1)
        for i in range(n):
            x = cx + i * round(11 * scale)
            pts = [(x + int(r5 * math.cos(a)), cy + int(r5 * math.sin(a)))
                   for a in np.linspace(-math.pi / 2, 1.5 * math.pi, 6)[:5]]
            cv2.fillPoly(img, [np.array(pts, np.int32)[[0, 2, 4, 1, 3]]], black)


def _blend(dst: np.ndarray, src: np.ndarray, alpha: float) -> np.ndarray:
    return cv2.addWeighted(dst, 1.0 - alpha, src, alpha, 0.0)


def collector_text(d: CardDesign) -> str:
    """The collector number as printed in the footer: ``025/165`` (modern), ``4/102`` (classic); variants
    print their base's number."""
    number = int("".join(ch for ch in d.record.number if ch.isdigit()) or "0")
    if FOOTER_LAYOUTS.get(d.set_info.era, "modern") == "classic":
        return f"{number}/{d.set_info.total}"
    return f"{number:03d}/{d.set_info.total:03d}"


def illustrator(d: CardDesign) -> str:
    """A made-up illustrator's name, one per artwork (reprints share it)."""
    return f"Illus. {_name(np.random.default_rng(d.art_seed))}"


def render_card(d: CardDesign, card_height_px: int = CARD_H_PX) -> np.ndarray:
    """Draw one card (BGR uint8) ``card_height_px`` high (the catalogue's CARD_H_PX x CARD_W_PX by default).

    A larger height is the same card as a camera's high-resolution stream sees it: every line, mark and
    letter drawn at that resolution (the collector number stays sharp for the printing reader), the
    artwork's pixels upscaled from the catalogue's."""
    if card_height_px < 64:
        raise ValueError(f"card_height_px must be >= 64, got {card_height_px}")
    k = card_height_px / CARD_H_PX

    def px(v: float) -> int:
        return round(v * k)

    def line(t: int) -> int:
        return max(1, round(t * k))

    rec = d.record
    body_colour = TYPE_COLOURS[rec.types[0]] if rec.types else TYPE_COLOURS["Colorless"]
    width = px(CARD_W_PX)
    img = np.empty((card_height_px, width, 3), np.uint8)
    img[:] = d.set_info.border_bgr
    inner_1 = (BORDER_PX, BORDER_PX, CARD_W_PX - BORDER_PX, CARD_H_PX - BORDER_PX)
    inner = tuple(px(v) for v in inner_1)
    x0, y0, x1, y1 = (px(v) for v in ART_BOX_PX)
    font = cv2.FONT_HERSHEY_SIMPLEX

    def art_at(w1: int, h1: int, w: int, h: int) -> np.ndarray:
        art = _procedural_art(d.art_seed, w1, h1, body_colour)   # the catalogue's pixels, then upscaled
        return art if (w, h) == (w1, h1) else cv2.resize(art, (w, h), interpolation=cv2.INTER_CUBIC)

    if d.layout == "full_art":
        img[inner[1]:inner[3], inner[0]:inner[2]] = art_at(inner_1[2] - inner_1[0], inner_1[3] - inner_1[1],
                                                           inner[2] - inner[0], inner[3] - inner[1])
    else:
        light = tuple(int(min(255, c * 0.55 + 115)) for c in body_colour)
        cv2.rectangle(img, inner[:2], (inner[2] - 1, inner[3] - 1), light, -1)
        if rec.finish == "reverse_holo":
            region = img[inner[1]:inner[3], inner[0]:inner[2]]
            region[:] = _blend(region, rainbow_overlay(region.shape[0], region.shape[1], 0.0, k), 0.35)
        if d.layout == "energy":
            cv2.rectangle(img, (x0, y0), (x1, y1), (235, 235, 235), -1)
            centre = ((x0 + x1) // 2, (y0 + y1) // 2)
            cv2.circle(img, centre, px(55), body_colour, -1, cv2.LINE_AA)
            cv2.circle(img, centre, px(55), (30, 30, 30), line(3), cv2.LINE_AA)
            cv2.circle(img, centre, px(22), (250, 250, 250), -1, cv2.LINE_AA)
        else:
            art = art_at(ART_BOX_PX[2] - ART_BOX_PX[0], ART_BOX_PX[3] - ART_BOX_PX[1], x1 - x0, y1 - y0)
            if rec.finish == "holo":
                art = _blend(art, rainbow_overlay(y1 - y0, x1 - x0, 0.0, k), 0.30)
            img[y0:y1, x0:x1] = art
        cv2.rectangle(img, (x0 - px(2), y0 - px(2)), (x1 + px(1), y1 + px(1)), (40, 40, 40), line(2))
    # Name band at the top: name left, HP and type symbol right.
    by0, by1 = (px(v) for v in NAME_BAND_Y_PX)
    band = img[by0:by1, inner[0] + px(4):inner[2] - px(4)]
    band[:] = _blend(band, np.full_like(band, 245), 0.75)
    cv2.putText(img, rec.name, (inner[0] + px(10), by1 - px(9)), font, 0.62 * k, (20, 20, 20), line(2), cv2.LINE_AA)
    if d.layout != "energy":
        cv2.putText(img, f"HP{d.hp}", (inner[2] - px(78), by1 - px(9)), font, 0.5 * k, (30, 30, 200), line(2),
                    cv2.LINE_AA)
    cv2.circle(img, (inner[2] - px(18), (by0 + by1) // 2), px(9), body_colour, -1, cv2.LINE_AA)
    cv2.circle(img, (inner[2] - px(18), (by0 + by1) // 2), px(9), (30, 30, 30), line(1), cv2.LINE_AA)
    # Attack text block (energies carry a plain rules box instead).
    ty = 215
    text_bg = img[px(200):px(300), inner[0] + px(6):inner[2] - px(6)]
    text_bg[:] = _blend(text_bg, np.full_like(text_bg, 250), 0.55)
    for name, dmg in d.attacks:
        cv2.circle(img, (inner[0] + px(18), px(ty - 4)), px(6), body_colour, -1, cv2.LINE_AA)
        cv2.putText(img, name, (inner[0] + px(30), px(ty)), font, 0.5 * k, (20, 20, 20), line(1), cv2.LINE_AA)
        cv2.putText(img, str(dmg), (inner[2] - px(45), px(ty)), font, 0.55 * k, (20, 20, 20), line(2), cv2.LINE_AA)
        ty += 38
    if d.layout == "energy":
        cv2.putText(img, "Basic Energy", (inner[0] + px(60), px(255)), font, 0.5 * k, (20, 20, 20), line(1),
                    cv2.LINE_AA)
    _draw_set_symbol(img, d.set_info.symbol, (inner[2] - px(22), px(ART_BOX_PX[3] + 12)), px(6), line(1))
    _draw_footer(img, d, k)
    return img


def _draw_footer(img: np.ndarray, d: CardDesign, k: float) -> None:
    """The era's footer (FOOTER_LAYOUTS): collector number, rarity mark, set code, illustrator, copyright."""
    font, ink = cv2.FONT_HERSHEY_SIMPLEX, (20, 20, 20)
    thick = max(1, round(0.7 * k))      # strokes ~0.2 % of the card height: the print's, not a marker's
    small = FOOTER_FONT_SCALE * 0.9         # the illustrator and copyright lines, smaller than the number

    def text(x: float, y: float, words: str, size: float = FOOTER_FONT_SCALE) -> float:
        """Draws ``words`` with its baseline at y (catalogue pixels); returns x after it."""
        cv2.putText(img, words, (round(x * k), round(y * k)), font, size * k, ink, thick, cv2.LINE_AA)
        return x + cv2.getTextSize(words, font, size, 1)[0][0]

    def width(words: str, size: float = FOOTER_FONT_SCALE) -> int:
        return int(cv2.getTextSize(words, font, size, 1)[0][0])

    year = {"base": 1999, "ex": 2004, "dp": 2008, "bw": 2011, "xy": 2014, "sm": 2017, "swsh": 2020}.get(
        d.set_info.era, 2023)
    code = d.set_info.set_id.upper()
    if FOOTER_LAYOUTS.get(d.set_info.era, "modern") == "classic":
        text(BORDER_PX + 4, CARD_H_PX - 4, illustrator(d), small)
        right = f"(c){year} Wizards {collector_text(d)}"
        x = text(CARD_W_PX - BORDER_PX - 14 - width(right), CARD_H_PX - 4, right)
        _draw_rarity(img, d.record.rarity, (round((x + 6) * k), round((CARD_H_PX - 7) * k)), 0.6 * k)
        return
    x = BORDER_PX + 4
    if mark := REGULATION_MARKS.get(d.set_info.era, ""):
        cv2.rectangle(img, (round(x * k), round((CARD_H_PX - 12) * k)), (round((x + 8) * k), round((CARD_H_PX - 3) * k)),
                      ink, thick)
        text(x + 1.5, CARD_H_PX - 5, mark)
        x += 11
    x = text(x, CARD_H_PX - 4, f"{code} EN {collector_text(d)}")
    _draw_rarity(img, d.record.rarity, (round((x + 6) * k), round((CARD_H_PX - 7) * k)), 0.6 * k)
    for y, words in ((CARD_H_PX - 11, illustrator(d)), (CARD_H_PX - 3, f"(c){year} Pokemon")):
        text(CARD_W_PX - BORDER_PX - 2 - width(words, small), y, words, small)


def reprint_designs(arts: int, seed: int, min_printings: int = 2, max_printings: int = 8) -> list[CardDesign]:
    """A catalogue in which every artwork has ``min_printings``..``max_printings`` printings, each in another
    set (another collector number, printed total and set code; maybe another rarity): the printing reader's
    benchmark (cardsorter.bench.printing). Same seed, same designs."""
    if arts < 1:
        raise ValueError(f"arts must be >= 1, got {arts}")
    if not 1 <= min_printings <= max_printings:
        raise ValueError(f"printings: 1 <= min ({min_printings}) <= max ({max_printings}) expected")
    rng = np.random.default_rng([seed, zlib.crc32(b"reprints")])
    sets = _sets(rng, max(max_printings, math.ceil(arts * (min_printings + max_printings) / 2 / CARDS_PER_SET)))
    next_number = {s.set_id: int(rng.integers(1, 20)) for s in sets}
    designs: list[CardDesign] = []
    names: set[str] = set()
    for a in range(arts):
        name = _name(rng)
        while name in names:
            name = _name(rng)
        names.add(name)
        t = str(rng.choice(TYPES))
        hp = int(rng.integers(3, 25)) * 10
        attacks = tuple((str(rng.choice(_ATTACK_WORDS)), int(rng.integers(1, 13)) * 10)
                        for _ in range(int(rng.integers(1, 3))))
        art_id = f"reprint-art-{a:05d}"
        count = int(rng.integers(min_printings, max_printings + 1))
        for i in rng.choice(len(sets), size=count, replace=False):
            s = sets[int(i)]
            number = next_number[s.set_id]
            if number > s.total:
                continue    # the set is full (never at the benchmark's sizes: sets hold >= 80)
            next_number[s.set_id] = number + 1
            rarity = str(rng.choice(RARITIES))
            record = CardRecord(card_id=f"{s.set_id}-{number}", name=name, set_id=s.set_id, set_name=s.name,
                                number=str(number), rarity=rarity, art_id=art_id,
                                finish="holo" if rarity == "Rare Holo" else "normal", supertype="Pokemon",
                                types=(t,), set_code=s.set_id.upper(), printed_total=s.total)
            designs.append(CardDesign(record, s, hp, "normal", _art_seed(seed, art_id), attacks))
    return designs


def _safe_name(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name)


def image_filename(record: CardRecord) -> str:
    """The first user's naming: ``{set_id}-{number}_{name}.png``."""
    return f"{record.card_id}_{_safe_name(record.name)}.png"


def record_to_json(record: CardRecord) -> dict[str, Any]:
    """A pokemontcg.io-style card object plus our extras (art_id, finish, price_usd)."""
    obj: dict[str, Any] = {
        "id": record.card_id, "name": record.name, "number": record.number, "rarity": record.rarity,
        "supertype": record.supertype, "types": list(record.types),
        "set": {"id": record.set_id, "name": record.set_name,
                **({"printedTotal": record.printed_total} if record.printed_total > 0 else {}),
                **({"ptcgoCode": record.set_code} if record.set_code else {})},
        "art_id": record.art_id, "finish": record.finish,
    }
    if record.price_usd is not None:
        obj["price_usd"] = record.price_usd
    return obj


def record_from_json(obj: Any, where: str) -> CardRecord:
    """Parse one metadata.json entry; raises ImageError naming the entry and the missing key."""
    try:
        set_obj = obj["set"]
        price = obj.get("price_usd")
        return CardRecord(card_id=str(obj["id"]), name=str(obj["name"]), set_id=str(set_obj["id"]),
                          set_name=str(set_obj.get("name", "")), number=str(obj.get("number", "")),
                          rarity=str(obj.get("rarity", "")), art_id=str(obj.get("art_id", "")),
                          finish=str(obj.get("finish", "normal")), supertype=str(obj.get("supertype", "")),
                          types=tuple(str(t) for t in obj.get("types", ())),
                          price_usd=None if price is None else float(price),
                          set_code=str(set_obj.get("ptcgoCode", "")),
                          printed_total=int(set_obj.get("printedTotal", 0)))
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise ImageError(f"{where}: bad card entry ({err!r})") from err


def _write(designs: Sequence[CardDesign], out_dir: Path, card_height_px: int) -> list[CardRecord]:
    images = out_dir / "images"
    images.mkdir(parents=True, exist_ok=True)
    for d in designs:
        path = images / image_filename(d.record)
        if not cv2.imwrite(str(path), render_card(d, card_height_px)):
            raise ImageError(f"cannot write {path}")
    records = [d.record for d in designs]
    (out_dir / "metadata.json").write_text(json.dumps([record_to_json(r) for r in records], indent=1) + "\n",
                                           encoding="utf-8")
    return records


def write_catalog(designs: Sequence[CardDesign], out_dir: str | Path,
                  card_height_px: int = CATALOG_IMAGE_HEIGHT_PX) -> list[CardRecord]:
    """Render ``designs`` (e.g. reprint_designs) to out_dir/images + metadata.json, as generate_catalog does."""
    return _write(designs, Path(out_dir), card_height_px)


def generate_catalog(out_dir: str | Path, cards: int, seed: int, unknown: int = 0,
                     card_height_px: int = CATALOG_IMAGE_HEIGHT_PX) -> list[CardRecord]:
    """Render `cards` printings to out_dir/images + metadata.json; `unknown` extra cards (new art,
    new sets, not in the catalogue) to out_dir/unknown/. Same seed -> same bytes. The images are
    ``card_height_px`` high: the synthetic camera's main stream cuts its closeups from them."""
    if cards < 1:
        raise ValueError(f"cards must be >= 1, got {cards}")
    if unknown < 0:
        raise ValueError(f"unknown must be >= 0, got {unknown}")
    out = Path(out_dir)
    records = _write(_designs(cards, seed, "card"), out, card_height_px)
    if unknown:
        _write(_designs(unknown, seed, "unknown"), out / "unknown", card_height_px)
    return records


def render_catalog(cards: int, seed: int, namespace: str = "card") -> list[tuple[CardRecord, np.ndarray]]:
    """The same cards generate_catalog would write, in memory (for training and benchmarks)."""
    return [(d.record, render_card(d)) for d in _designs(cards, seed, namespace)]


def load_catalog(directory: str | Path) -> list[tuple[CardRecord, Path]]:
    """Read a generated (or user) catalogue: metadata.json + images/{set_id}-{number}_{name}.png."""
    root = Path(directory)
    meta = root / "metadata.json"
    try:
        entries = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ImageError(f"cannot read catalogue metadata {meta}: {err}") from err
    if not isinstance(entries, list):
        raise ImageError(f"{meta}: expected a list of card objects")
    out: list[tuple[CardRecord, Path]] = []
    for i, obj in enumerate(entries):
        record = record_from_json(obj, f"{meta}[{i}]")
        path = root / "images" / image_filename(record)
        if not path.is_file():
            raise ImageError(f"{meta}[{i}] ({record.card_id}): image {path} is missing")
        out.append((record, path))
    return out
