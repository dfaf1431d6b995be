"""Synthetic catalogue dumps in the published schemas (pokemontcg.io data dump, Scryfall bulk) and the import benchmark."""

from __future__ import annotations

import json
import os
import pathlib
import random
import resource
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

POKEMON_TYPES = ("Grass", "Fire", "Water", "Lightning", "Psychic", "Fighting", "Darkness", "Metal", "Dragon",
                 "Colorless")
POKEMON_RARITIES = ("Common", "Uncommon", "Rare", "Rare Holo", "Double Rare", "Ultra Rare", "Illustration Rare")
MAGIC_RARITIES = ("common", "uncommon", "rare", "mythic")
LANGS = ("en", "es", "fr", "de", "it", "pt", "ja", "ko", "ru", "zhs")
POKEMONTCG_CARDS_REAL = 17_592   # cards in the pokemontcg.io English dump this benchmark is sized after


def _quote(rng: random.Random) -> dict[str, float | None]:
    low = round(rng.uniform(0.02, 40.0), 2)
    return {"low": low, "mid": round(low * 1.6, 2), "high": round(low * 4.0, 2),
            "market": round(low * 1.3, 2), "directLow": None if rng.random() < 0.5 else round(low * 1.2, 2)}


def pokemon_card(rng: random.Random, set_id: str, number: int, *, prices: bool) -> dict[str, Any]:
    """A card object laid out as in pokemontcg.io's data dump (cards/en/<set>.json), optionally with the
    API's ``tcgplayer`` block (which the dump files lack)."""
    t = rng.choice(POKEMON_TYPES)
    card: dict[str, Any] = {
        "id": f"{set_id}-{number}", "name": f"Mon{rng.randrange(10**6):06d}", "supertype": "Pokémon",
        "subtypes": ["Basic"], "hp": str(rng.choice(range(30, 340, 10))), "types": [t],
        "attacks": [{"name": "Tackle", "cost": [t, "Colorless"], "convertedEnergyCost": 2, "damage": "30",
                     "text": "Flip a coin. If heads, this attack does 30 more damage." * rng.randint(0, 2)}],
        "weaknesses": [{"type": rng.choice(POKEMON_TYPES), "value": "×2"}],
        "retreatCost": ["Colorless"] * rng.randint(0, 3), "convertedRetreatCost": 1, "number": str(number),
        "artist": "Synthetic Artist", "rarity": rng.choice(POKEMON_RARITIES),
        "flavorText": "A synthetic card for the import benchmark.", "nationalPokedexNumbers": [rng.randint(1, 1025)],
        "legalities": {"unlimited": "Legal", "expanded": "Legal"}, "regulationMark": "G",
        "images": {"small": f"https://images.pokemontcg.io/{set_id}/{number}.png",
                   "large": f"https://images.pokemontcg.io/{set_id}/{number}_hires.png"},
    }
    if prices:
        variants = rng.choice((["normal", "reverseHolofoil"], ["holofoil", "reverseHolofoil"], ["holofoil"],
                               ["normal"], ["1stEditionHolofoil", "unlimitedHolofoil"]))
        card["tcgplayer"] = {"url": f"https://prices.pokemontcg.io/tcgplayer/{set_id}-{number}",
                             "updatedAt": "2026/11/30", "prices": {v: _quote(rng) for v in variants}}
    return card


def write_pokemontcg_dump(out: pathlib.Path, cards: int, *, cards_per_set: int = 104, seed: int = 0,
                          prices: bool = True) -> list[str]:
    """``out/cards/en/<set>.json`` + ``out/sets/en.json``; returns the card ids."""
    rng = random.Random(seed)
    (out / "cards" / "en").mkdir(parents=True, exist_ok=True)
    (out / "sets").mkdir(parents=True, exist_ok=True)
    sets: list[dict[str, Any]] = []
    ids: list[str] = []
    n_sets = -(-cards // cards_per_set)
    for s in range(n_sets):
        set_id = f"syn{s + 1}"
        count = min(cards_per_set, cards - s * cards_per_set)
        sets.append({"id": set_id, "name": f"Synthetic Set {s + 1}", "series": f"Series {s // 12 + 1}",
                     "printedTotal": max(count - 8, 1), "total": count, "legalities": {"unlimited": "Legal"},
                     "ptcgoCode": f"SY{s + 1}", "releaseDate": f"{1999 + s // 8}/0{s % 8 + 1}/15",
                     "updatedAt": "2026/11/30 10:00:00",
                     "images": {"symbol": f"https://images.pokemontcg.io/{set_id}/symbol.png",
                                "logo": f"https://images.pokemontcg.io/{set_id}/logo.png"}})
        batch = [pokemon_card(rng, set_id, n + 1, prices=prices) for n in range(count)]
        ids += [c["id"] for c in batch]
        (out / "cards" / "en" / f"{set_id}.json").write_text(json.dumps(batch, indent=2, ensure_ascii=False),
                                                             encoding="utf-8")
    (out / "sets" / "en.json").write_text(json.dumps(sets, indent=2), encoding="utf-8")
    return ids


def scryfall_card(rng: random.Random, set_code: str, number: int, lang: str) -> dict[str, Any]:
    """A card object with the fields and nesting of Scryfall's bulk data (``default_cards`` / ``all_cards``)."""
    cid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    ill = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    finishes = rng.choice((["nonfoil", "foil"], ["nonfoil"], ["foil"], ["nonfoil", "foil", "etched"]))

    def price(p: float) -> str | None:
        return None if rng.random() < 0.2 else f"{p:.2f}"

    base = rng.uniform(0.05, 30.0)
    img = f"https://cards.scryfall.io/{{}}/front/{cid[0]}/{cid[1]}/{cid}.jpg?1700000000"
    return {
        "object": "card", "id": cid, "oracle_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "multiverse_ids": [rng.randrange(10**6)], "mtgo_id": rng.randrange(10**5),
        "tcgplayer_id": rng.randrange(1, 600_000), "cardmarket_id": rng.randrange(1, 800_000),
        "name": f"Synthetic Spell {rng.randrange(10**6)}", "lang": lang, "released_at": "2024-02-09",
        "uri": f"https://api.scryfall.com/cards/{cid}", "scryfall_uri": f"https://scryfall.com/card/{set_code}/{number}",
        "layout": "normal", "highres_image": True, "image_status": "highres_scan",
        "image_uris": {k: img.format(k) for k in ("small", "normal", "large", "png", "art_crop", "border_crop")},
        "mana_cost": "{2}{U}", "cmc": 3.0, "type_line": "Creature — Wizard",
        "oracle_text": "When this creature enters, draw a card. " * rng.randint(1, 3), "power": "2", "toughness": "3",
        "colors": ["U"], "color_identity": ["U"], "keywords": [],
        "legalities": {f: rng.choice(("legal", "not_legal")) for f in
                       ("standard", "future", "historic", "pioneer", "modern", "legacy", "pauper", "vintage",
                        "commander", "oathbreaker", "brawl", "alchemy")},
        "games": ["paper", "mtgo"], "reserved": False, "foil": "foil" in finishes, "nonfoil": "nonfoil" in finishes,
        "finishes": finishes, "oversized": False, "promo": False, "reprint": rng.random() < 0.3, "variation": False,
        "set_id": str(uuid.UUID(int=zlib_seed(set_code), version=4)), "set": set_code,
        "set_name": f"Synthetic Edition {set_code.upper()}", "set_type": "expansion",
        "set_uri": f"https://api.scryfall.com/sets/{set_code}", "rulings_uri": f"https://api.scryfall.com/cards/{cid}/rulings",
        "collector_number": str(number), "digital": False, "rarity": rng.choice(MAGIC_RARITIES),
        "flavor_text": "Synthetic.", "card_back_id": "0aeebaf5-8c7d-4636-9e82-8c27447861f7", "artist": "Synthetic Artist",
        "artist_ids": [str(uuid.UUID(int=rng.getrandbits(128), version=4))], "illustration_id": ill,
        "border_color": "black", "frame": "2015", "full_art": False, "textless": False, "booster": True,
        "story_spotlight": False, "edhrec_rank": rng.randrange(1, 30_000),
        "prices": {"usd": price(base), "usd_foil": price(base * 2.5) if "foil" in finishes else None,
                   "usd_etched": price(base * 3) if "etched" in finishes else None, "eur": price(base * 0.9),
                   "eur_foil": None, "tix": price(0.02)},
        "related_uris": {"gatherer": "https://gatherer.wizards.com/", "edhrec": "https://edhrec.com/"},
        "purchase_uris": {"tcgplayer": "https://tcgplayer.com/", "cardmarket": "https://cardmarket.com/",
                          "cardhoarder": "https://cardhoarder.com/"},
    }


def zlib_seed(text: str) -> int:
    import zlib

    return zlib.crc32(text.encode()) << 64


def write_scryfall_bulk(path: pathlib.Path, records: int, *, seed: int = 0, cards_per_set: int = 280,
                        languages: int = 1) -> list[str]:
    """One JSON array as Scryfall publishes it (one record per line, like the real bulk file); returns ids."""
    rng = random.Random(seed)
    ids: list[str] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write("[\n")
        for i in range(records):
            printing = i // languages
            s, n = divmod(printing, cards_per_set)
            card = scryfall_card(rng, f"s{s + 1:02d}", n + 1, LANGS[i % languages])
            ids.append(card["id"])
            fh.write(json.dumps(card, ensure_ascii=False) + (",\n" if i + 1 < records else "\n"))
        fh.write("]\n")
    return ids


def _peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (getrusage's ru_maxrss keeps the parent's peak across fork + exec)."""
    try:
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_pokemontcg(work: pathlib.Path, cards: int,
                    progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    """Generate the dump (+ an image folder of empty files in the site's SET/NUMBER_hires layout) and time it."""
    from cardsorter.db.catalog_images import match_images
    from cardsorter.db.importers import import_catalogue

    dump = work / f"pokemontcg_{cards}"
    if not (dump / "sets" / "en.json").exists():
        write_pokemontcg_dump(dump, cards)
    images = work / f"pokemontcg_{cards}_images"
    if not images.exists():
        for f in sorted((dump / "cards" / "en").glob("*.json")):
            (images / f.stem).mkdir(parents=True, exist_ok=True)
            for card in json.loads(f.read_text(encoding="utf-8")):
                (images / f.stem / f"{card['number']}_hires.png").touch()   # names only: matching is timed
    rss0 = _peak_rss_mb()
    t0 = time.perf_counter()
    result = import_catalogue(dump, "auto", progress)
    t1 = time.perf_counter()
    match = match_images(images, result.records)
    t2 = time.perf_counter()
    size = sum(f.stat().st_size for f in dump.rglob("*.json"))
    return {"records": len(result.records), "files": result.files, "dump_mb": round(size / 1e6, 1),
            "problems": len(result.problems), "import_s": round(t1 - t0, 2), "match_images_s": round(t2 - t1, 2),
            "images_matched": len(match.images), "peak_rss_mb": round(_peak_rss_mb(), 1),
            "rss_before_import_mb": round(rss0, 1)}


def bench_scryfall(work: pathlib.Path, records: int,
                   progress: Callable[[str, int, int], None] | None = None) -> dict[str, Any]:
    from cardsorter.db.importers import import_catalogue

    bulk = work / f"scryfall_default_cards_{records}.json"
    if not bulk.exists():
        write_scryfall_bulk(bulk, records)
    rss0 = _peak_rss_mb()
    t0 = time.perf_counter()
    result = import_catalogue(bulk, "auto", progress)
    t1 = time.perf_counter()
    return {"records": len(result.records), "file_mb": round(bulk.stat().st_size / 1e6, 1),
            "problems": len(result.problems), "import_s": round(t1 - t0, 2),
            "records_per_s": round(len(result.records) / max(t1 - t0, 1e-9)),
            "peak_rss_mb": round(_peak_rss_mb(), 1), "rss_before_import_mb": round(rss0, 1)}


def measure(work: pathlib.Path, pokemon_cards: int, scryfall_records: int) -> dict[str, Any]:
    """Both importers, each in its own process (its peak RSS is its own), on dumps generated under ``work``."""
    import platform
    import subprocess

    out: dict[str, Any] = {"machine": f"{platform.machine()} {platform.processor()} ({os.cpu_count()} CPUs), "
                                      f"Python {platform.python_version()}", "data": "synthetic, published layouts"}
    for kind in ("pokemontcg", "scryfall"):
        cmd = [sys.executable, "-m", "cardsorter.bench.catalogues", "--work", str(work), "--only", kind,
               "--pokemon-cards", str(pokemon_cards), "--scryfall-records", str(scryfall_records)]
        subprocess.run([*cmd, "--generate"], check=True, stdout=subprocess.DEVNULL)   # not in the measured process
        out[kind] = json.loads(subprocess.run(cmd, check=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                              text=True).stdout)
    return out


def run(quick: bool = False) -> dict[str, Any]:
    """`cardsorter bench --only catalogues`: the real sizes (17,592 / 100,000) or, quick, a tenth; temp files."""
    import shutil
    import tempfile

    work = pathlib.Path(tempfile.mkdtemp(prefix="cardsorter-catalogues-"))
    try:
        return measure(work, POKEMONTCG_CARDS_REAL // (10 if quick else 1), 10_000 if quick else 100_000)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from cardsorter.console import progress_bar

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--work", type=pathlib.Path, required=True, help="folder for the generated dumps (kept)")
    ap.add_argument("--pokemon-cards", type=int, default=POKEMONTCG_CARDS_REAL)
    ap.add_argument("--scryfall-records", type=int, default=100_000)
    ap.add_argument("--only", choices=("pokemontcg", "scryfall"), help="one importer (its own peak RSS)")
    ap.add_argument("--generate", action="store_true", help="with --only: only write that dump")
    args = ap.parse_args(argv)
    if args.only is None:
        print(json.dumps(measure(args.work, args.pokemon_cards, args.scryfall_records), indent=2))
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    if args.generate:
        if args.only == "pokemontcg":
            dump = args.work / f"pokemontcg_{args.pokemon_cards}"
            if not (dump / "sets" / "en.json").exists():
                write_pokemontcg_dump(dump, args.pokemon_cards)
        elif not (args.work / f"scryfall_default_cards_{args.scryfall_records}.json").exists():
            write_scryfall_bulk(args.work / f"scryfall_default_cards_{args.scryfall_records}.json",
                                args.scryfall_records)
        return 0
    bar = progress_bar()
    res = (bench_pokemontcg(args.work, args.pokemon_cards, bar) if args.only == "pokemontcg"
           else bench_scryfall(args.work, args.scryfall_records, bar))
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
