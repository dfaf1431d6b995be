"""Catalogue importers: pokemontcg.io dump and Scryfall bulk in, images matched as published, bad input named."""

from __future__ import annotations

import io
import json
import pathlib

import pytest
from db_support import PixelEmbedder, card_image, configs, write_cards

from cardsorter.bench.catalogues import write_pokemontcg_dump, write_scryfall_bulk
from cardsorter.core.errors import DatabaseError
from cardsorter.db.build import build_database
from cardsorter.db.database import ReferenceDatabase
from cardsorter.db.delta import add_to_database
from cardsorter.db.errors import DuplicateIdError, FormatError
from cardsorter.db.importers import detect_format, import_catalogue
from cardsorter.db.jsonstream import StreamFormatError, iter_json_array
from cardsorter.db.records import load_source_metadata


def build(tmp_path: pathlib.Path, images: pathlib.Path, metadata: pathlib.Path | None, fmt: str = "auto",
          out: str = "db"):
    build_config, search_config, _ = configs()
    return build_database(images, tmp_path / out, PixelEmbedder(), build_config=build_config,
                          search_config=search_config, metadata_path=metadata, model_sha256="abc",
                          metadata_format=fmt)


def load(path: pathlib.Path) -> ReferenceDatabase:
    return ReferenceDatabase.load(path, None, configs()[1])


# --- the streaming reader ------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_stream_reads_every_element_across_chunk_boundaries(chunk: int) -> None:
    data = [{"a": "é" * 5, "n": 12345}, [1, 2], 67890, "x", None, {"nested": {"k": [True, False]}}]
    text = " \n[" + ",\n ".join(json.dumps(d, ensure_ascii=False) for d in data) + "]\n"
    got = list(iter_json_array(io.BytesIO(text.encode()), "t", chunk_bytes=chunk))
    assert got == data


@pytest.mark.parametrize(("text", "message"), [
    ('[{"a": 1},]', "trailing comma"),
    ('[{"a": 1}, {"b": 2', "malformed JSON"),
    ('[{"a": 1} {"b": 2}]', "expected ',' or ']'"),
    ('{"data": []}', "expected '\\['"),
    ('[1] 2', "text after"),
    ('', "empty file"),
    ('[{"a": 1}', "truncated"),
])
def test_stream_names_what_is_malformed(text: str, message: str) -> None:
    with pytest.raises(StreamFormatError, match=message) as err:
        list(iter_json_array(io.BytesIO(text.encode()), "bulk.json", chunk_bytes=4))
    assert "bulk.json" in str(err.value)


def test_stream_counts_elements_before_the_error() -> None:
    with pytest.raises(StreamFormatError) as err:
        list(iter_json_array(io.BytesIO(b'[1, 2, 3, {"x": ]'), "f"))
    assert err.value.elements == 3


# --- pokemontcg.io ------------------------------------------------------------------------------

def dump_with_images(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    dump = tmp_path / "dump"
    ids = write_pokemontcg_dump(dump, 6, cards_per_set=3, seed=4)
    assert ids == ["syn1-1", "syn1-2", "syn1-3", "syn2-1", "syn2-2", "syn2-3"]
    images = tmp_path / "images"
    # the three layouts a collector has: the site's SET/NUMBER, flat ids, _hires for the large scan
    write_cards(images / "syn1", [("1.png", 11), ("1_hires.png", 11), ("2_hires.png", 12)])
    write_cards(images, [("syn2-1.png", 21), ("syn2-2_hires.png", 22), ("syn1-3.png", 13)])
    return dump, images


def test_pokemontcg_dump_folder_builds_with_set_facts_finishes_and_prices(tmp_path: pathlib.Path) -> None:
    dump, images = dump_with_images(tmp_path)
    assert detect_format(dump) == "pokemontcg"
    report = build(tmp_path, images, dump)
    assert (report.metadata_format, report.catalogue_records, report.cards, report.rows) == ("pokemontcg", 6, 5, 6)
    assert report.import_problems == [] and report.skipped == []
    assert report.records_without_image == ["syn2-3"] and report.metadata_without_image == 1
    db = load(tmp_path / "db")
    sets = {s["id"]: s for s in json.loads((dump / "sets" / "en.json").read_text())}
    cards = {c["id"]: c for c in json.loads((dump / "cards" / "en" / "syn2.json").read_text())}
    rec = db.record("syn2-1")
    assert (rec.set_name, rec.set_code, rec.series, rec.printed_total) == (
        sets["syn2"]["name"], sets["syn2"]["ptcgoCode"], sets["syn2"]["series"], sets["syn2"]["printedTotal"])
    assert rec.release_date == sets["syn2"]["releaseDate"].replace("/", "-") and rec.language == "en"
    assert (rec.name, rec.number, rec.rarity, rec.types) == (
        cards["syn2-1"]["name"], "1", cards["syn2-1"]["rarity"], tuple(cards["syn2-1"]["types"]))
    variants = cards["syn2-1"]["tcgplayer"]["prices"]
    names = {"normal": "normal", "holofoil": "holo", "reverseHolofoil": "reverse_holo",
             "1stEditionHolofoil": "first_edition_holo", "unlimitedHolofoil": "unlimited_holo"}
    assert rec.finishes == tuple(names[v] for v in variants)      # one id, every printing
    assert dict(rec.prices_usd) == {names[v]: q["market"] for v, q in variants.items()}
    assert rec.finish == rec.finishes[0] and rec.price_usd == dict(rec.prices_usd)[rec.finish]
    high = {r.source: r.high for r in db.rows() if r.card_id == "syn1-1"}
    assert high == {"syn1/1.png": False, "syn1/1_hires.png": True}


def test_a_real_layout_card_without_prices_keeps_its_facts(tmp_path: pathlib.Path) -> None:
    """The layout of pokemontcg-data's cards/en/bp.json (Best of Game, first entry, abridged) and its set."""
    dump = tmp_path / "dump"
    (dump / "cards" / "en").mkdir(parents=True)
    (dump / "sets").mkdir()
    (dump / "cards" / "en" / "bp.json").write_text(json.dumps([{
        "id": "bp-1", "name": "Electabuzz", "supertype": "Pokémon", "subtypes": ["Basic"], "level": "35",
        "hp": "70", "types": ["Lightning"], "evolvesTo": ["Electivire"], "number": "1", "artist": "Ken Sugimori",
        "rarity": "Promo", "nationalPokedexNumbers": [125], "legalities": {"unlimited": "Legal"},
        "images": {"small": "https://images.pokemontcg.io/bp/1.png",
                   "large": "https://images.pokemontcg.io/bp/1_hires.png"}}]))
    (dump / "sets" / "en.json").write_text(json.dumps([{
        "id": "bp", "name": "Best of Game", "series": "Other", "printedTotal": 9, "total": 9,
        "legalities": {"unlimited": "Legal"}, "ptcgoCode": "BP", "releaseDate": "2002/12/01",
        "updatedAt": "2021/10/16 09:52:00", "images": {"symbol": "https://images.pokemontcg.io/bp/symbol.png",
                                                        "logo": "https://images.pokemontcg.io/bp/logo.png"}}]))
    result = import_catalogue(dump)
    rec = result.records["bp-1"]
    assert (rec.set_name, rec.set_code, rec.series, rec.printed_total, rec.release_date) == (
        "Best of Game", "BP", "Other", 9, "2002-12-01")
    assert (rec.finishes, rec.prices_usd, rec.price_usd, rec.finish) == ((), (), None, "normal")
    assert result.problems == []


def test_single_set_file_finds_its_sets_file_and_db_add_adds_only_that_set(tmp_path: pathlib.Path) -> None:
    dump, images = dump_with_images(tmp_path)
    (dump / "cards" / "en" / "syn2.json").rename(tmp_path / "syn2.json")   # syn2 is released later
    report = build(tmp_path, images / "syn1", dump)
    assert report.cards == 2 and report.catalogue_records == 3
    (dump / "cards" / "en" / "syn2.json").write_text((tmp_path / "syn2.json").read_text())
    new_images = tmp_path / "new"
    write_cards(new_images, [("syn2-1.png", 21), ("syn2-3_hires.png", 23)])
    build_config, search_config, _ = configs()
    added = add_to_database(tmp_path / "db", new_images, PixelEmbedder(), build_config=build_config,
                            search_config=search_config, metadata_path=dump / "cards" / "en" / "syn2.json")
    assert (added.rows, added.cards, added.catalogue_records) == (2, 2, 3)
    assert added.records_without_image == ["syn2-2"]
    db = load(tmp_path / "db")
    assert db.record("syn2-3").set_code == "SY2" and db.record("syn2-3").set_name == "Synthetic Set 2"
    assert db.record("syn1-1").set_code == "SY1"


def test_missing_set_malformed_file_and_bad_fields_are_named_and_counted(tmp_path: pathlib.Path) -> None:
    dump = tmp_path / "dump"
    write_pokemontcg_dump(dump, 6, cards_per_set=3, seed=1)
    sets = json.loads((dump / "sets" / "en.json").read_text())
    (dump / "sets" / "en.json").write_text(json.dumps([s for s in sets if s["id"] != "syn2"]))
    (dump / "cards" / "en" / "syn3.json").write_text('[{"id": "syn3-1", "name": "Broken",}]')
    cards = json.loads((dump / "cards" / "en" / "syn1.json").read_text())
    cards[0]["types"] = "Fire"
    cards[1]["tcgplayer"] = {"prices": {"normal": {"market": "1.25"}}}
    cards[2]["tcgplayer"] = {"prices": {"shinyHolofoil": {"market": 1.0}}}
    (dump / "cards" / "en" / "syn1.json").write_text(json.dumps(cards))
    result = import_catalogue(dump)
    kinds = result.counts()
    assert kinds == {"missing_set": 1, "malformed_json": 1, "bad_field": 2, "unknown_variant": 1}
    lines = {p.kind: p.line() for p in result.problems}
    assert "syn2" in lines["missing_set"] and "3 cards" in lines["missing_set"]
    assert "syn3.json" in lines["malformed_json"] and "line 1" in lines["malformed_json"]
    bad = [p.detail for p in result.problems if p.kind == "bad_field"]
    assert "record syn1-1" in bad[0] and "'types'" in bad[0] and "'Fire'" in bad[0]
    assert "record syn1-2" in bad[1] and "tcgplayer.prices.normal.market" in bad[1]
    assert "shinyHolofoil" in lines["unknown_variant"] and "syn1-3" in lines["unknown_variant"]
    assert sorted(result.records) == ["syn1-3", "syn2-1", "syn2-2", "syn2-3"]
    assert result.records["syn2-1"].set_name == ""       # imported, without its set's facts
    assert result.records["syn1-3"].finishes == ()       # the unknown variant is not invented


def test_metadata_that_is_not_a_card_list_is_named(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text('{"data": 5}')
    with pytest.raises(FormatError, match=r"meta.json: 'data' must be a list of card objects, got int"):
        load_source_metadata(path)
    path.write_text('[{"id": "sv1-1", "types": "Fire"}]')
    with pytest.raises(FormatError, match=r"record sv1-1: field 'types' must be a list of strings"):
        load_source_metadata(path)
    path.write_text('[{"id": "sv1-1", "price_usd": "cheap"}]')
    with pytest.raises(FormatError, match=r"record sv1-1: field 'price_usd' must be a non-negative number"):
        load_source_metadata(path)


def test_duplicate_ids_across_set_files_stop_the_build_naming_both_files(tmp_path: pathlib.Path) -> None:
    dump, images = dump_with_images(tmp_path)
    cards = json.loads((dump / "cards" / "en" / "syn2.json").read_text())
    cards[0]["id"] = "syn1-2"
    (dump / "cards" / "en" / "syn2.json").write_text(json.dumps(cards))
    with pytest.raises(DuplicateIdError, match=r"syn1-2 already read from .*syn1.json"):
        build(tmp_path, images, dump)


def test_image_without_record_is_skipped_and_reported(tmp_path: pathlib.Path) -> None:
    dump, images = dump_with_images(tmp_path)
    write_cards(images / "syn9", [("4_hires.png", 94)])
    write_cards(images, [("cover.png", 5)])
    report = build(tmp_path, images, dump)
    reasons = {pathlib.Path(s.path).name: s.reason for s in report.skipped}
    assert set(reasons) == {"4_hires.png", "cover.png"}
    assert "no catalogue record" in reasons["4_hires.png"] and "syn9/4" in reasons["4_hires.png"]
    manifest = json.loads((tmp_path / "db" / "manifest.json").read_text())
    assert len(manifest["report"]["skipped_images"]) == 2
    assert manifest["report"]["import"]["records_without_image"] == ["syn2-3"]


def test_two_images_naming_one_card_differently_is_an_error_naming_both(tmp_path: pathlib.Path) -> None:
    images = tmp_path / "images"
    write_cards(images, [("sv1-1_Pikachu.png", 1), ("sv1-1_Raichu_high.png", 2), ("sv1-2_Eevee.png", 3)])
    with pytest.raises(DatabaseError, match=r"'Pikachu' in .*sv1-1_Pikachu.png and 'Raichu' in .*sv1-1_Raichu_high"):
        build(tmp_path, images, None)


# --- Scryfall -----------------------------------------------------------------------------------

def test_scryfall_bulk_builds_with_languages_finishes_prices_and_art_groups(tmp_path: pathlib.Path) -> None:
    bulk = tmp_path / "all_cards.json"
    ids = write_scryfall_bulk(bulk, 6, seed=3, cards_per_set=3, languages=2)
    raw = json.loads(bulk.read_text())
    # a reprint: same illustration in another set (Scryfall's illustration_id says so)
    raw[4]["illustration_id"] = raw[0]["illustration_id"]
    bulk.write_text("[\n" + ",\n".join(json.dumps(r) for r in raw) + "\n]\n")
    assert detect_format(bulk) == "scryfall"
    images = tmp_path / "images"
    write_cards(images, [(f"{ids[0]}.jpg", 1), (f"{ids[4]}.jpg", 2)])
    write_cards(images / "s01", [("2.jpg", 3)])          # set/collector_number → the English printing
    report = build(tmp_path, images, bulk)
    assert (report.metadata_format, report.catalogue_records, report.cards) == ("scryfall", 6, 3)
    assert report.import_problems == [] and report.skipped == []
    db = load(tmp_path / "db")
    by_number = {(raw[i]["set"], raw[i]["collector_number"], raw[i]["lang"]): raw[i]["id"] for i in range(6)}
    assert db.card_ids() == sorted([ids[0], ids[4], by_number[("s01", "2", "en")]])
    rec = db.record(ids[0])
    src = raw[0]
    assert (rec.name, rec.set_id, rec.set_code, rec.set_name, rec.number, rec.language, rec.rarity) == (
        src["name"], src["set"], src["set"], src["set_name"], src["collector_number"], "en", src["rarity"])
    fin = {"nonfoil": "normal", "foil": "foil", "etched": "etched"}
    assert rec.finishes == tuple(fin[f] for f in src["finishes"])
    keys = {"normal": "usd", "foil": "usd_foil", "etched": "usd_etched"}
    assert dict(rec.prices_usd) == {f: float(src["prices"][keys[f]]) for f in rec.finishes
                                    if src["prices"][keys[f]] is not None}
    assert rec.tcgplayer_product_id == src["tcgplayer_id"] and rec.game == "magic"
    assert rec.art_id == src["illustration_id"]
    assert db.art_group(ids[0]) == db.art_group(ids[4]) == src["illustration_id"]


def test_truncated_scryfall_bulk_keeps_what_was_read_and_says_where_it_stopped(tmp_path: pathlib.Path) -> None:
    bulk = tmp_path / "default_cards.json"
    write_scryfall_bulk(bulk, 5, seed=2)
    data = bulk.read_bytes()
    bulk.write_bytes(data[: int(len(data) * 0.7)])
    result = import_catalogue(bulk, "scryfall")
    assert [p.kind for p in result.problems] == ["malformed_json"]
    assert f"the {len(result.records)} records before it are imported" in result.problems[0].detail
    assert 1 <= len(result.records) < 5


def test_scryfall_bad_price_string_is_named(tmp_path: pathlib.Path) -> None:
    bulk = tmp_path / "default_cards.json"
    ids = write_scryfall_bulk(bulk, 2, seed=5)
    raw = json.loads(bulk.read_text())
    raw[1]["finishes"] = ["nonfoil"]
    raw[1]["prices"]["usd"] = "n/a"
    bulk.write_text(json.dumps(raw))
    result = import_catalogue(bulk)
    assert list(result.records) == [ids[0]]
    assert [p.kind for p in result.problems] == ["bad_field"]
    assert f"record {ids[1]}" in result.problems[0].detail and "prices.usd" in result.problems[0].detail


def test_scryfall_folder_is_refused_and_unknown_format_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(FormatError, match="one JSON file"):
        import_catalogue(tmp_path, "scryfall")
    with pytest.raises(FormatError, match="must be one of"):
        import_catalogue(tmp_path, "mtgjson")


def test_cardsorter_metadata_round_trips_into_a_new_build(tmp_path: pathlib.Path) -> None:
    dump, images = dump_with_images(tmp_path)
    build(tmp_path, images, dump)
    meta = tmp_path / "db" / "metadata.json"
    assert detect_format(meta) == "cardsorter"
    report = build(tmp_path, images, meta, out="db2")
    assert report.metadata_format == "cardsorter" and report.cards == 5
    assert load(tmp_path / "db2").record("syn2-1") == load(tmp_path / "db").record("syn2-1")


def test_card_image_helper_matches_written_images(tmp_path: pathlib.Path) -> None:
    write_cards(tmp_path, [("a.png", 9)])
    import cv2

    assert (cv2.imread(str(tmp_path / "a.png")) == card_image(9)).all()


def test_a_dump_per_language_gives_each_record_its_language(tmp_path: pathlib.Path) -> None:
    dump = tmp_path / "dump"
    write_pokemontcg_dump(dump, 2, cards_per_set=2, seed=8)
    (dump / "cards" / "ja").mkdir()
    ja = json.loads((dump / "cards" / "en" / "syn1.json").read_text())
    for c in ja:
        c["id"] += "-ja"
    (dump / "cards" / "ja" / "syn1.json").write_text(json.dumps(ja))
    (dump / "sets" / "ja.json").write_text((dump / "sets" / "en.json").read_text())
    result = import_catalogue(dump)
    assert {cid: r.language for cid, r in result.records.items()} == {
        "syn1-1": "en", "syn1-2": "en", "syn1-1-ja": "ja", "syn1-2-ja": "ja"}
    assert result.records["syn1-1-ja"].set_code == "SY1" and result.problems == []


@pytest.fixture()
def cli_model(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    from cardsorter.backends import embedders
    from cardsorter.core.model_manifest import write_manifest

    monkeypatch.setattr(embedders, "open_embedder", lambda backend, path, threads: PixelEmbedder(), raising=False)
    return write_manifest(tmp_path / "pix.yaml", {
        "model_id": "pixels-6x8-v1", "file": "pix.onnx", "sha256": "ab" * 32, "input_name": "x",
        "input_width": 24, "input_height": 32, "colour_order": "bgr", "layout": "nchw",
        "normalisation": "mean_std", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "output_name": "y",
        "dimension": 144, "metric": "cos"}).path


def test_cli_build_prints_the_catalogue_and_its_problems(tmp_path: pathlib.Path, cli_model: pathlib.Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    from cardsorter.cli.__main__ import main

    dump, images = dump_with_images(tmp_path)
    cards = json.loads((dump / "cards" / "en" / "syn2.json").read_text())
    cards[2]["types"] = "Fire"
    (dump / "cards" / "en" / "syn2.json").write_text(json.dumps(cards))
    write_cards(images, [("stray.png", 77)])
    args = ["db", "build", "--images", str(images), "--metadata", str(dump), "--out", str(tmp_path / "db"),
            "--model", str(cli_model), "--metadata-format", "pokemontcg"]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "catalogue (pokemontcg): 5 records" in out
    assert "1 catalogue problems (1 bad_field):" in out and "record syn2-3: field 'types'" in out
    assert "skipped 1 images:" in out and "stray.png: no catalogue record" in out
    assert "import [" in err
    bulk = tmp_path / "bulk.json"
    write_scryfall_bulk(bulk, 3, seed=1)
    args = ["db", "build", "--images", str(images), "--metadata", str(bulk), "--out", str(tmp_path / "db2"),
            "--model", str(cli_model), "--metadata-format", "scryfall"]
    assert main(args) == 2          # no image matches a Magic record: named, nothing built
    assert "images matched no record" in capsys.readouterr().err


def test_hires_is_a_size_not_a_name() -> None:
    from cardsorter.db.names import parse_reference_name

    parsed = parse_reference_name("sv1-1_hires.png")
    assert (parsed.card_id, parsed.name, parsed.high) == ("sv1-1", "", True)
