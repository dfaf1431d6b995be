"""Marketplace exports: published headers byte for byte, quantities per printing/condition/language, gaps reported."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import pathlib
import sqlite3

import pytest

from cardsorter.cli.__main__ import main as cli_main
from cardsorter.core.errors import InventoryError
from cardsorter.core.smoothing import with_finish
from cardsorter.core.sort_execution import SortEvent
from cardsorter.core.types import CardRecord, SortDecision, SortStatus
from cardsorter.db.records import record_to_json
from cardsorter.inventory.cards import card_states, correct_cards, normalise_condition
from cardsorter.inventory.exports import aggregate, export_full, export_lines, load_catalogue, parse_tcgplayer_condition
from cardsorter.inventory.sqlite_store import Inventory, read_rows

# The headers as the marketplaces publish them (typed here from their documentation, not imported).
PUBLISHED = {
    "tcgplayer": "TCGplayer Id,Product Line,Set Name,Product Name,Title,Number,Rarity,Condition,TCG Market Price,"
                 "TCG Direct Low,TCG Low Price With Shipping,TCG Low Price,Total Quantity,Add to Quantity,"
                 "TCG Marketplace Price,Photo URL",
    "tcgplayer-app": "Quantity,Name,Simple Name,Set,Card Number,Set Code,External ID,Printing,Condition,Language,"
                     "Rarity,Product ID,SKU,Price,Price Each",
    "dragonshield": "Folder Name,Quantity,Card Name,Set Code,Set Name,Card Number,Condition,Printing,Language,"
                    "Price Bought,Date Bought,Low Price,Mid Price,High Price",
    "moxfield": "Count,Tradelist Count,Name,Edition,Condition,Language,Foil,Tags,Last Modified,Collector Number,"
                "Alter,Proxy,Purchase Price",
}

PIKA = CardRecord(card_id="sv1-25", name="Pikachu", set_id="sv1", set_name="Scarlet & Violet", number="25",
                  rarity="Common", finish="normal", set_code="SVI", language="en", game="pokemon",
                  finishes=("normal", "reverse_holo"), prices_usd=(("normal", 0.25), ("reverse_holo", 1.5)),
                  tcgplayer_skus=(("normal", "NM", 5001), ("reverse_holo", "NM", 5002), ("normal", "LP", 5003)))
MEW = CardRecord(card_id="sv1-151", name="Mew ex", set_id="sv1", set_name="Scarlet & Violet", number="151",
                 rarity="Double Rare", finish="holo", set_code="SVI", language="en", game="pokemon",
                 finishes=("holo",), prices_usd=(("holo", 12.0),), tcgplayer_skus=(("holo", "NM", 6001),))
MEW_JA = CardRecord(card_id="sv1-151-ja", name="Mew ex", set_id="sv1", set_name="Scarlet & Violet", number="151",
                    rarity="Double Rare", finish="holo", set_code="SVI", language="ja", game="pokemon",
                    finishes=("holo",))
BOLT = CardRecord(card_id="6f1a-uuid", name="Lightning Bolt", set_id="m11", set_name="Magic 2011", number="149",
                  rarity="common", finish="normal", set_code="m11", language="en", game="magic",
                  finishes=("normal", "foil"), prices_usd=(("normal", 1.0), ("foil", 4.0)),
                  tcgplayer_product_id=32020)
NOSET = CardRecord(card_id="x-1", name="Mystery", set_id="x", number="1", finish="normal", language="en",
                   game="pokemon", finishes=("normal",))


def read_published(text: str, fmt: str) -> list[dict[str, str]]:
    """A reader written from the published header: the first line must be it, every row has its columns."""
    header = PUBLISHED[fmt]
    lines = text.split("\n")
    assert lines[0] == header
    names = header.split(",")
    rows = list(csv.reader(io.StringIO("\n".join(lines[1:]))))
    assert all(len(r) == len(names) for r in rows)
    return [dict(zip(names, r)) for r in rows]


def event(tid: int, rec: CardRecord | None, bin_name: str = "a", status: SortStatus = SortStatus.CONFIRMED,
          finish_seen: str = "") -> SortEvent:
    """A sorted card as the graph records it: a record of several finishes carries the one its closeups showed,
    or unknown (core/smoothing.py with_finish)."""
    d = SortDecision(track_id=tid, status=status, card=with_finish(rec, finish_seen), bin_name=bin_name,
                     reason="rule", distance_cos=0.1,
                     margin_to_runner_up=math.inf, first_stamp_ns=tid, last_stamp_ns=tid + 1)
    return SortEvent(d, tid, tid * 100, None, "")


@pytest.fixture()
def world(tmp_path: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path]:
    catalogue = tmp_path / "db"
    catalogue.mkdir()
    (catalogue / "metadata.json").write_text(json.dumps(
        {r.card_id: record_to_json(r) for r in (PIKA, MEW, MEW_JA, BOLT, NOSET)}))
    inv = tmp_path / "inv.sqlite"
    with Inventory(inv, session_id="s-nm", model_id="m", database_id="d", reject_bin="reject", opened_ns=1,
                   condition="NM") as i:
        for tid, rec in enumerate([PIKA, PIKA, PIKA, MEW, MEW, MEW_JA, BOLT, BOLT, NOSET], start=1):
            i.append(event(tid, rec))
        i.append(event(20, MEW, "reject"))                                     # rejected: not for sale
        i.append(event(21, None, "reject", SortStatus.UNKNOWN))
    with Inventory(inv, session_id="s-lp", model_id="m", database_id="d", reject_bin="reject", opened_ns=2,
                   condition="Lightly Played") as i:
        i.append(event(30, MEW, "b"))
    return inv, catalogue


def export(world: tuple[pathlib.Path, pathlib.Path], fmt: str, **kw: str):
    inv, catalogue = world
    lines, left_out = aggregate(read_rows(inv), card_states(inv), load_catalogue(catalogue), **kw)
    out = io.StringIO()
    result = export_lines(fmt, lines, out)
    return read_published(out.getvalue(), fmt), result, left_out


def test_tcgplayer_seller_upload_needs_a_sku_and_puts_the_printing_in_condition(world) -> None:
    inv, _ = world
    rows = read_rows(inv)
    correct_cards(inv, [rows[0].id, rows[1].id], finish="normal", stamp_ns=5)
    correct_cards(inv, [rows[2].id], finish="reverse_holo", stamp_ns=6)
    got, result, left_out = export(world, "tcgplayer")
    by_id = {r["TCGplayer Id"]: r for r in got}
    assert set(by_id) == {"5001", "5002", "6001"}
    assert (by_id["5001"]["Add to Quantity"], by_id["5001"]["Condition"], by_id["5001"]["TCG Market Price"]) == (
        "2", "Near Mint", "0.25")
    assert by_id["5002"]["Condition"] == "Near Mint Reverse Holofoil" and by_id["5002"]["TCG Market Price"] == "1.50"
    assert (by_id["6001"]["Add to Quantity"], by_id["6001"]["Condition"]) == ("2", "Near Mint Holofoil")
    assert by_id["6001"]["Product Line"] == "Pokemon" and by_id["6001"]["Set Name"] == "Scarlet & Violet"
    assert by_id["6001"]["Product Name"] == "Mew ex" and by_id["6001"]["Number"] == "151"
    # Mew ex LP (other session), the Japanese Mew, Bolt (no SKUs), Mystery: reported, not written
    missing = {(u.line.card_id, u.line.condition): u.missing for u in result.unfilled}
    assert set(missing) == {("sv1-151", "LP"), ("sv1-151-ja", "NM"), ("6f1a-uuid", "NM"), ("x-1", "NM")}
    assert any("TCGplayer Id" in m for m in missing[("sv1-151", "LP")])
    assert any("printing" in m for m in missing[("6f1a-uuid", "NM")])       # normal or foil: nobody said
    assert result.cards_written + sum(u.line.quantity for u in result.unfilled) == 10
    assert left_out == {"rejected": 1, "status unknown": 1}


def test_tcgplayer_app_export_aggregates_per_printing_condition_and_language(world) -> None:
    inv, _ = world
    rows = read_rows(inv)
    correct_cards(inv, [r.id for r in rows if r.card_id == "sv1-25"], finish="normal", stamp_ns=5)
    correct_cards(inv, [rows[0].id], condition="HP", stamp_ns=6)
    correct_cards(inv, [r.id for r in rows if r.card_id == "6f1a-uuid"][:1], finish="foil", stamp_ns=7)
    got, result, _ = export(world, "tcgplayer-app")
    key = {(r["External ID"], r["Printing"], r["Condition"], r["Language"]): r for r in got}
    assert key[("sv1-25", "Normal", "Near Mint", "English")]["Quantity"] == "2"
    assert key[("sv1-25", "Normal", "Heavily Played", "English")]["Quantity"] == "1"
    assert key[("sv1-25", "Normal", "Near Mint", "English")]["SKU"] == "5001"
    assert key[("sv1-25", "Normal", "Heavily Played", "English")]["SKU"] == ""       # unknown SKU left blank
    assert key[("sv1-151", "Holofoil", "Near Mint", "English")]["Quantity"] == "2"
    assert key[("sv1-151", "Holofoil", "Lightly Played", "English")]["Quantity"] == "1"
    assert key[("sv1-151-ja", "Holofoil", "Near Mint", "Japanese")]["Quantity"] == "1"
    bolt = key[("6f1a-uuid", "Foil", "Near Mint", "English")]
    assert (bolt["Product ID"], bolt["Price Each"], bolt["Price"], bolt["Set Code"]) == ("32020", "4.00", "4.00", "m11")
    assert key[("sv1-151", "Holofoil", "Near Mint", "English")]["Price"] == "24.00"
    assert [u.line.card_id for u in result.unfilled] == ["6f1a-uuid", "x-1"]     # the other Bolt; no set name
    assert "set name" in result.unfilled[1].missing


def test_dragon_shield_export(world) -> None:
    got, result, _ = export(world, "dragonshield")
    mew = [r for r in got if r["Card Name"] == "Mew ex" and r["Language"] == "English"]
    assert {(r["Condition"], r["Quantity"]) for r in mew} == {("NearMint", "2"), ("Excellent", "1")}
    assert all(r["Set Code"] == "SVI" and r["Printing"] == "Holofoil" and r["Folder Name"] == "cardsorter" for r in mew)
    assert {u.line.card_id for u in result.unfilled} == {"sv1-25", "6f1a-uuid", "x-1"}


def test_moxfield_takes_magic_only(world) -> None:
    inv, _ = world
    correct_cards(inv, [r.id for r in read_rows(inv) if r.card_id == "6f1a-uuid"], finish="foil", stamp_ns=5)
    got, result, _ = export(world, "moxfield")
    assert got == [{"Count": "2", "Tradelist Count": "0", "Name": "Lightning Bolt", "Edition": "m11",
                    "Condition": "Near Mint", "Language": "English", "Foil": "foil", "Tags": "", "Last Modified": "",
                    "Collector Number": "149", "Alter": "False", "Proxy": "False", "Purchase Price": ""}]
    assert all("Magic" in u.missing[0] for u in result.unfilled)


def test_condition_language_defaults_fill_only_what_is_missing(tmp_path: pathlib.Path) -> None:
    inv = tmp_path / "inv.sqlite"
    bare = CardRecord(card_id="a-1", name="A", set_id="a", set_name="Set A", number="1", set_code="A")
    with Inventory(inv, session_id="s", model_id="m", database_id="d", reject_bin="reject", opened_ns=1) as i:
        i.append(event(1, bare))
    lines, _ = aggregate(read_rows(inv), card_states(inv), {})
    assert (lines[0].condition, lines[0].language) == ("", "")
    out = io.StringIO()
    assert export_lines("dragonshield", lines, out).lines_written == 0
    lines, _ = aggregate(read_rows(inv), card_states(inv), {"a-1": bare}, default_condition="MP",
                         default_language="de")
    out = io.StringIO()
    export_lines("dragonshield", lines, out)
    row = read_published(out.getvalue(), "dragonshield")[0]
    assert (row["Condition"], row["Language"], row["Set Code"]) == ("Good", "German", "A")


def test_full_csv_carries_condition_language_and_corrections(world) -> None:
    inv, catalogue = world
    rows = read_rows(inv)
    correct_cards(inv, [rows[0].id], condition="DMG", finish="reverse_holo", stamp_ns=9)
    out = io.StringIO()
    assert export_full(rows, card_states(inv), load_catalogue(catalogue), out) == len(rows) == 12
    got = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert (got[0]["condition"], got[0]["finish"], got[0]["corrected"], got[0]["language"], got[0]["set_code"]) == (
        "DMG", "reverse_holo", "1", "en", "SVI")
    assert got[1]["condition"] == "NM" and got[-1]["condition"] == "LP" and got[5]["language"] == "ja"


def test_corrections_are_append_only_and_checked(world) -> None:
    inv, _ = world
    with pytest.raises(InventoryError, match="no card rows"):
        correct_cards(inv, [999], condition="NM", stamp_ns=1)
    with pytest.raises(InventoryError, match="not one of NM, LP"):
        correct_cards(inv, [1], condition="mint-ish", stamp_ns=1)
    with pytest.raises(InventoryError, match="finish 'shiny'"):
        correct_cards(inv, [1], finish="shiny", stamp_ns=1)
    correct_cards(inv, [1], condition="LP", stamp_ns=1)
    correct_cards(inv, [1], condition="MP", stamp_ns=2)
    assert card_states(inv)[1].condition == "MP"
    conn = sqlite3.connect(inv)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE card_corrections SET condition = 'NM'")
    conn.close()
    with pytest.raises(InventoryError, match="sorter.session.condition"):
        Inventory(inv, session_id="s-bad", model_id="m", database_id="d", reject_bin="reject", opened_ns=3,
                  condition="pristine")
    assert normalise_condition("near mint") == "NM" and normalise_condition("") == ""


def test_cli_export_reports_unfilled_lines_and_set_condition(world, tmp_path: pathlib.Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    inv, catalogue = world
    out = tmp_path / "tcg.csv"
    unfilled = tmp_path / "unfilled.csv"
    rc = cli_main(["inventory", "export", "--db", str(inv), "--catalog", str(catalogue), "--format", "tcgplayer",
                   "--out", str(out), "--unfilled", str(unfilled)])
    err = capsys.readouterr().err
    assert rc == 1 and "NOT written" in err and "not exported: 1 rejected, 1 status unknown" in err
    assert out.read_text(encoding="utf-8").split("\n")[0] == PUBLISHED["tcgplayer"]
    missing = list(csv.DictReader(unfilled.open(encoding="utf-8")))
    assert {m["card_id"] for m in missing} >= {"sv1-25", "x-1"}
    pika_rows = [str(r.id) for r in read_rows(inv) if r.card_id == "sv1-25"]
    assert cli_main(["inventory", "set-condition", "--db", str(inv), *pika_rows, "--condition", "NM",
                     "--finish", "normal"]) == 0
    assert "3 cards" in capsys.readouterr().out
    cli_main(["inventory", "export", "--db", str(inv), "--catalog", str(catalogue), "--format", "tcgplayer",
              "--out", str(out)])
    rows = read_published(out.read_text(encoding="utf-8"), "tcgplayer")
    assert {r["TCGplayer Id"]: r["Add to Quantity"] for r in rows}["5001"] == "3"
    assert cli_main(["inventory", "set-condition", "--db", str(inv), "--session", "s-lp", "--condition", "HP"]) == 0
    assert {s.condition for i, s in card_states(inv).items() if i == read_rows(inv, "s-lp")[0].id} == {"HP"}


def test_skus_from_a_tcgplayer_seller_export_fill_the_upload(world, tmp_path: pathlib.Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    inv, _ = world
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "metadata.json").write_text(json.dumps(
        {r.card_id: record_to_json(r) for r in (dataclasses.replace(MEW, tcgplayer_skus=()), MEW_JA)}))
    mine = [PUBLISHED["tcgplayer"],
        "7001,Pokemon,Scarlet & Violet,Mew ex,,151,Double Rare,Near Mint Holofoil,11.50,,,,3,,12.00,",
        "7002,Pokemon,Scarlet & Violet,Mew ex,,151,Double Rare,Lightly Played Holofoil,9.00,,,,0,,,",
        "7003,Pokemon,Scarlet & Violet,Mew ex,,151,Double Rare,Near Mint Holofoil - Japanese,20.00,,,,0,,,",
        "x,Pokemon,Scarlet & Violet,Mew ex,,151,Double Rare,Near Mint,,,,,0,,,",
        "7004,Pokemon,Scarlet & Violet,Mew ex,,151,Double Rare,Pristine Holofoil,,,,,0,,,"]
    (tmp_path / "mine.csv").write_text("\n".join(mine) + "\n")
    out = tmp_path / "upload.csv"
    cli_main(["inventory", "export", "--db", str(inv), "--catalog", str(bare), "--format", "tcgplayer",
              "--out", str(out), "--skus", str(tmp_path / "mine.csv")])
    err = capsys.readouterr().err
    assert "3 TCGplayer SKUs" in err and "2 rows not understood" in err and "Pristine" in err
    got = {r["TCGplayer Id"]: (r["Condition"], r["Add to Quantity"]) for r in
           read_published(out.read_text(encoding="utf-8"), "tcgplayer")}
    assert got == {"7001": ("Near Mint Holofoil", "2"), "7002": ("Lightly Played Holofoil", "1"),
                   "7003": ("Near Mint Holofoil - Japanese", "1")}


@pytest.mark.parametrize(("text", "parsed"), [
    ("Near Mint", ("NM", "normal", "en")), ("Near Mint Foil", ("NM", "foil", "en")),
    ("Heavily Played Reverse Holofoil", ("HP", "reverse_holo", "en")),
    ("Damaged 1st Edition Holofoil", ("DMG", "first_edition_holo", "en")),
    ("Lightly Played - Japanese", ("LP", "normal", "ja")),
])
def test_tcgplayer_condition_strings_parse(text: str, parsed: tuple[str, str, str]) -> None:
    assert parse_tcgplayer_condition(text) == parsed


def test_assume_finish_is_applied_only_where_the_catalogue_lists_it(world) -> None:
    inv, catalogue = world
    lines, _ = aggregate(read_rows(inv), card_states(inv), load_catalogue(catalogue), assume_finish="reverse_holo")
    by_card = {(ln.card_id, ln.condition): ln.finish for ln in lines}
    assert by_card[("sv1-25", "NM")] == "reverse_holo"      # Pikachu lists normal + reverse_holo
    assert by_card[("6f1a-uuid", "NM")] == ""               # Bolt lists normal + foil: still unknown
    assert by_card[("sv1-151", "NM")] == "holo"             # one printing: no assumption needed


def test_a_card_identified_in_review_counts_in_the_marketplace_files(world) -> None:
    from cardsorter.inventory.sqlite_store import append_correction

    inv, _ = world
    unknown = next(r for r in read_rows(inv) if r.status == "unknown")
    rejected_mew = next(r for r in read_rows(inv) if r.rejected and r.card_id == "sv1-151")
    append_correction(inv, unknown.id, MEW, note="review: it is a Mew ex")
    got, _, left_out = export(world, "tcgplayer")
    assert {r["TCGplayer Id"]: r["Add to Quantity"] for r in got}["6001"] == "3"   # 2 sorted + 1 named in review
    assert left_out == {"rejected": 1}
    append_correction(inv, rejected_mew.id, None, note="not a card we know")
    _, _, left_out = export(world, "tcgplayer")
    assert left_out == {"status unknown": 1}


def test_a_finish_the_closeups_showed_is_exported_and_an_unknown_one_is_not_assumed(tmp_path: pathlib.Path) -> None:
    catalogue = tmp_path / "db"
    catalogue.mkdir()
    (catalogue / "metadata.json").write_text(json.dumps({PIKA.card_id: record_to_json(PIKA)}))
    inv = tmp_path / "inv.sqlite"
    with Inventory(inv, session_id="s", model_id="m", database_id="d", reject_bin="reject", opened_ns=1,
                   condition="NM") as i:
        i.append(event(1, PIKA, finish_seen="reverse_holo"))
        i.append(event(2, PIKA, finish_seen="unknown"))
        i.append(event(3, PIKA, finish_seen="holo"))      # a holo this printing does not come in: unknown
    rows = read_rows(inv)
    assert [r.finish for r in rows] == ["reverse_holo", "unknown", "unknown"]
    lines, _ = aggregate(rows, card_states(inv), load_catalogue(catalogue))
    assert sorted((ln.finish, ln.quantity) for ln in lines) == [("", 2), ("reverse_holo", 1)]
