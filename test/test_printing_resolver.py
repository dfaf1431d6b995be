"""The printing resolver (core/printing.py): collector numbers parsed from OCR lines, voted over views."""

from __future__ import annotations

import pytest

from cardsorter.core.printing import (
    RECOMMENDED_MIN_AGREEING_VIEWS,
    PrintingResolverConfig,
    PrintingVerdict,
    ViewReading,
    number_matches,
    parse_line,
    read_lines,
    resolve_printing,
)
from cardsorter.core.types import CardRecord

CONFIG = PrintingResolverConfig(min_agreeing_views=RECOMMENDED_MIN_AGREEING_VIEWS)


def card(card_id: str, number: str, total: int, set_code: str = "MEW") -> CardRecord:
    return CardRecord(card_id=card_id, name="Card", set_id=set_code.lower(), number=number,
                      printed_total=total, set_code=set_code)


def view(*texts: str, conf: float = 0.95) -> ViewReading:
    return read_lines([(t, conf) for t in texts])


@pytest.mark.parametrize(("line", "expected"), [
    ("025/165", ["025/165"]),
    ("MEW EN 025/165", ["025/165"]),
    ("O25/l65", ["025/165"]),            # look-alikes in digit context
    ("lO6 / 165", ["106/165"]),          # spaces around the slash
    ("S1/102", ["51/102"]),
    ("SV049/SV122", ["SV049/SV122"]),
    ("TG05/TG30", ["TG05/TG30"]),
    ("Wizards14/130", ["14/130"]),       # the s glued to a word is not a 5
    ("©1999 Wizards 117/1324", ["117/1324"]),  # the rarity mark glued after the total, kept for the match
    ("Weakness Resistance Retreat", []),
    ("1234/165", []),                    # four real digits: not a collector number
    ("1/2", []),                         # a total has at least two digits
])
def test_parse_line_reads_collector_numbers(line: str, expected: list[str]) -> None:
    assert [n.text for n in parse_line(line, 0.9)] == expected


def test_read_lines_keeps_capital_tokens_as_possible_set_codes() -> None:
    reading = view("MEW EN 025/165", "the flavour text")
    assert "MEW" in reading.codes and "EN" in reading.codes
    assert "the" not in reading.codes


@pytest.mark.parametrize(("line", "number", "total", "matches"), [
    ("025/165", "25", 165, True),
    ("025/165", "025", 165, True),
    ("025/165", "25", 0, True),          # the catalogue does not know the total: the number decides
    ("025/165", "25", 102, False),
    ("EN025/165", "25", 165, True),      # a code glued before the number
    ("117/1324", "117", 132, True),      # one glued trailing digit after the total
    ("SV049/SV122", "SV049", 122, True),
    ("TG05/TG30", "TG05", 195, True),    # subset total: the prefixes agree, the main set's total is not printed
    ("TG05/TG30", "5", 195, False),
    ("05/TG30", "TG05", 195, False),
])
def test_number_matches_a_printing(line: str, number: str, total: int, matches: bool) -> None:
    (reading,) = parse_line(line, 0.9)
    assert number_matches(reading, card("c", number, total)) is matches


def test_two_views_agreeing_on_one_candidate_name_the_exact_printing() -> None:
    cands = [card("sv3pt5-25", "25", 165), card("sv3pt5-181", "181", 165)]
    res = resolve_printing([view("MEW EN 025/165"), view("025/165")], cands, CONFIG)
    assert res.verdict is PrintingVerdict.EXACT
    assert res.card == cands[0]
    assert (res.agreeing_views, res.views) == (2, 2)


def test_one_view_is_never_enough() -> None:
    cands = [card("a", "25", 165), card("b", "181", 165)]
    res = resolve_printing([view("025/165"), view("blurred text")], cands, CONFIG)
    assert res.verdict is PrintingVerdict.AMBIGUOUS
    assert res.card is None
    assert "1 of 2 views" in res.reason


def test_no_number_read_is_unreadable() -> None:
    cands = [card("a", "25", 165), card("b", "181", 165)]
    res = resolve_printing([view("Pikachu"), view()], cands, CONFIG)
    assert res.verdict is PrintingVerdict.UNREADABLE
    assert res.card is None


def test_no_candidates_is_ambiguous() -> None:
    res = resolve_printing([view("025/165"), view("025/165")], [], CONFIG)
    assert res.verdict is PrintingVerdict.AMBIGUOUS
    assert res.card is None


# The research's real confident wrong reads (RESULTS.md, "What the numbers say" 5).
@pytest.mark.parametrize(("true_number", "true_total", "wrong_read"), [
    ("106", 165, "105/165"),
    ("113", 132, "13/132"),
    ("113", 132, "133/132"),
])
def test_a_wrong_read_that_matches_no_candidate_names_nothing(true_number: str, true_total: int,
                                                             wrong_read: str) -> None:
    cands = [card("true", true_number, true_total), card("other", "181", true_total)]
    res = resolve_printing([view(wrong_read, conf=0.97), view(wrong_read, conf=0.97)], cands, CONFIG)
    assert res.verdict is PrintingVerdict.AMBIGUOUS
    assert res.card is None
    assert wrong_read in res.reason


@pytest.mark.parametrize(("true_number", "wrong_number", "total", "wrong_read", "true_read"), [
    ("106", "105", 165, "105/165", "106/165"),
    ("113", "13", 132, "13/132", "113/132"),
    ("113", "133", 132, "133/132", "113/132"),
])
def test_a_wrong_read_that_matches_another_candidate_makes_the_track_ambiguous(
        true_number: str, wrong_number: str, total: int, wrong_read: str, true_read: str) -> None:
    cands = [card("true", true_number, total), card("wrong", wrong_number, total)]
    views = [view(true_read), view(true_read), view(wrong_read, conf=0.97)]
    res = resolve_printing(views, cands, CONFIG)
    assert res.verdict is PrintingVerdict.AMBIGUOUS
    assert res.card is None
    assert "several printings" in res.reason


def test_a_read_matching_no_candidate_does_not_block_two_agreeing_views() -> None:
    cands = [card("true", "106", 165), card("other", "181", 165)]
    views = [view("106/165"), view("105/165"), view("106/165")]
    res = resolve_printing(views, cands, CONFIG)
    assert res.verdict is PrintingVerdict.EXACT
    assert res.card == cands[0]
    assert res.read == ("106/165", "105/165")


def test_the_set_code_read_tells_apart_printings_with_the_same_number() -> None:
    cands = [card("mew-25", "25", 165, "MEW"), card("xyz-25", "25", 165, "XYZ")]
    res = resolve_printing([view("MEW EN 025/165"), view("MEW 025/165")], cands, CONFIG)
    assert res.verdict is PrintingVerdict.EXACT
    assert res.card == cands[0]


def test_the_same_number_without_a_set_code_is_ambiguous() -> None:
    cands = [card("mew-25", "25", 165, "MEW"), card("xyz-25", "25", 165, "XYZ")]
    res = resolve_printing([view("025/165"), view("025/165")], cands, CONFIG)
    assert res.verdict is PrintingVerdict.AMBIGUOUS


def test_min_agreeing_views_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="min_agreeing_views"):
        PrintingResolverConfig(min_agreeing_views=0)
