"""Sort rules: matching, first-match priority, presets, reject/overflow, and every rules-file error."""

from __future__ import annotations

import pathlib
import re

import pytest
import yaml
from decisions_support import BASIC_BINS, card, rules_from, write_rules

from cardsorter.config import REPO_ROOT
from cardsorter.core.bin_rules import CATEGORY_FIELDS, CATEGORY_PRESETS, SortRules, alphabet_ranges, load_rules
from cardsorter.core.errors import ConfigError
from cardsorter.core.sort_routing import RoutingState, route_card
from cardsorter.core.types import CardRecord, SortStatus

CONFIRMED = SortStatus.CONFIRMED


def route(rules: SortRules, c: CardRecord, state: RoutingState | None = None) -> str:
    state = state or RoutingState()
    r = route_card(rules, c, CONFIRMED, False, state)
    state.record(r, c)
    return r.bin_name


@pytest.mark.parametrize("path", [REPO_ROOT / "config" / "bins.yaml", *sorted((REPO_ROOT / "config" / "presets").glob("*.yaml"))],
                         ids=lambda p: p.name)
def test_shipped_rules_files_load(path: pathlib.Path) -> None:
    rules = load_rules(path)
    assert rules.reject_bin in rules.bins and rules.reject_bin not in [r.bin_name for r in rules.rules]


def test_first_match_wins(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, """
        rules:
          - {bin: a, rarity: Rare Holo}
          - {bin: b, set: s1}
          - {bin: c, any: true}
        """)
    assert route(rules, card("s1-1", rarity="Rare Holo")) == "a"    # matches rules 1 and 2: the first wins
    assert route(rules, card("s1-2")) == "b"
    assert route(rules, card("s9-2")) == "c"


def test_unmatched_cards_go_to_the_default_bin(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, """
        default_bin: c
        rules:
          - {bin: a, set: s1}
        """)
    assert route(rules, card("s2-1")) == "c"
    assert route_card(rules_from(tmp_path, "rules:\n  - {bin: a, set: s1}\n"),
                      card("s2-1"), CONFIRMED, False, RoutingState()).bin_name == "overflow"


@pytest.mark.parametrize("field,value,hit,miss", [
    ("set", "[s1, s3]", card("s3-1"), card("s2-1")),
    ("set_range", "[sv2, sv10]", card("sv9-1"), card("sv11-1")),
    ("rarity", "rare holo", card("s1-1", rarity="Rare Holo"), card("s1-1", rarity="Rare")),
    ("type", "Fire", card("s1-1", types=("Fire",)), card("s1-1", types=("Water",))),
    ("type", "Trainer", card("s1-1", supertype="Trainer"), card("s1-1")),
    ("name_range", "[a, m]", card("s1-1", name="Mewtwo"), card("s1-1", name="Ninetales")),
    ("name_range", "[e, f]", card("s1-1", name="Flabébé"), card("s1-1", name="Gible")),
    ("number_range", "[1, 50]", card("s1-9", number="9/102"), card("s1-51", number="51")),
    ("finish", "[holo, reverse_holo]", card("s1-1", finish="reverse_holo"), card("s1-1")),
    ("price_min", "10.0", card("s1-1", price_usd=12.5), card("s1-1", price_usd=3.0)),
    ("price_max", "1.0", card("s1-1", price_usd=0.5), card("s1-1", price_usd=None)),
])
def test_each_field_matches(tmp_path: pathlib.Path, field: str, value: str, hit: CardRecord, miss: CardRecord) -> None:
    rules = rules_from(tmp_path, f"rules:\n  - {{bin: a, {field}: {value}}}\n")
    assert route(rules, hit) == "a"
    assert route(rules, miss) == "overflow"


def test_conditions_in_one_rule_are_and(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, set: s1, rarity: Rare}\n")
    assert route(rules, card("s1-1", rarity="Rare")) == "a"
    assert route(rules, card("s1-1", rarity="Common")) == "overflow"
    assert route(rules, card("s2-1", rarity="Rare")) == "overflow"


def test_want_list_matches_ids_set_numbers_and_names(tmp_path: pathlib.Path) -> None:
    (tmp_path / "wants.txt").write_text("# wants\ns1-1\nS2-5  # a comment\nname:Pikachu\n", encoding="utf-8")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, want_list: wants.txt}\n")
    assert route(rules, card("s1-1")) == "a"
    assert route(rules, card("x-9", set_id="s2", number="5")) == "a"
    assert route(rules, card("s7-3", name="pikachu")) == "a"
    assert route(rules, card("s1-2")) == "overflow"


def test_copies_beyond_n_of_the_same_card(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, """
        rules:
          - {bin: b, copies_beyond: 2}
          - {bin: a, any: true}
        """)
    state = RoutingState()
    bins = [route(rules, card("s1-1"), state) for _ in range(4)]
    assert bins == ["a", "a", "b", "b"]
    assert route(rules, card("s1-2"), state) == "a"                 # another printing counts separately


def test_full_bin_sends_cards_to_overflow_then_reject(tmp_path: pathlib.Path) -> None:
    bins = BASIC_BINS.replace("{name: a, capacity: 100", "{name: a, capacity: 2").replace(
        "{name: overflow, capacity: 100", "{name: overflow, capacity: 1")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    state = RoutingState()
    routes = []
    for i in range(4):
        r = route_card(rules, card(f"s1-{i + 1}"), CONFIRMED, False, state)
        state.record(r, card(f"s1-{i + 1}"))
        routes.append((r.bin_name, r.reason))
    assert [b for b, _ in routes] == ["a", "a", "overflow", "reject"]
    assert "bin a full" in routes[2][1] and "full" in routes[3][1]


def test_emptied_bin_takes_cards_again(tmp_path: pathlib.Path) -> None:
    bins = BASIC_BINS.replace("{name: a, capacity: 100", "{name: a, capacity: 1")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    state = RoutingState()
    assert route(rules, card("s1-1"), state) == "a"
    assert route(rules, card("s1-2"), state) == "overflow"
    state.empty_bin("a")
    assert route(rules, card("s1-3"), state) == "a"


@pytest.mark.parametrize("status", [SortStatus.UNKNOWN, SortStatus.AMBIGUOUS, SortStatus.UNCONFIRMED])
def test_not_confirmed_goes_to_reject_with_reason(tmp_path: pathlib.Path, status: SortStatus) -> None:
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n")
    r = route_card(rules, card("s1-1"), status, False, RoutingState(), why="3 views")
    assert r.bin_name == "reject" and r.reason == f"{status.value}: 3 views"
    again = route_card(rules, card("s1-1"), status, False, RoutingState(), why=f"{status.value}: 3 views")
    assert again.reason == f"{status.value}: 3 views"                # the head is not repeated


def test_double_feed_goes_to_reject_even_when_confirmed(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n")
    r = route_card(rules, card("s1-1"), CONFIRMED, True, RoutingState())
    assert r.bin_name == "reject" and r.reason.startswith("double feed")


def test_full_reject_bin_asks_for_a_pause(tmp_path: pathlib.Path) -> None:
    bins = BASIC_BINS.replace("{name: reject, capacity: 100", "{name: reject, capacity: 1")
    rules = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n", bins=bins)
    state = RoutingState()
    first = route_card(rules, None, SortStatus.UNKNOWN, False, state)
    state.record(first, None)
    second = route_card(rules, None, SortStatus.UNKNOWN, False, state)
    assert not first.bin_full and second.bin_full


def test_by_set_preset_gives_each_new_set_the_next_bin(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, "preset: {name: by_set, bins: [a, b]}\n")
    state = RoutingState()
    got = [route(rules, card(cid), state) for cid in ("s5-1", "s2-1", "s5-2", "s9-1", "s2-3")]
    assert got == ["a", "b", "a", "overflow", "b"]          # a third set finds no free bin


@pytest.mark.parametrize("preset,attr,values", [
    ("by_rarity", "rarity", ("Rare", "Common", "Rare")),
    ("by_type", "supertype", ("Trainer", "Energy", "Trainer")),
])
def test_category_presets(tmp_path: pathlib.Path, preset: str, attr: str, values: tuple[str, ...]) -> None:
    rules = rules_from(tmp_path, f"preset: {{name: {preset}, bins: [a, b, c]}}\n")
    state = RoutingState()
    got = [route(rules, card(f"s1-{i}", **{attr: v}), state) for i, v in enumerate(values, start=1)]
    assert got == ["a", "b", "a"]


@pytest.mark.parametrize("field", sorted(CATEGORY_FIELDS))
def test_a_rule_written_for_categories_reads_back_as_their_condition(tmp_path: pathlib.Path, field: str) -> None:
    category = CATEGORY_FIELDS[field]
    cats = ["b", "d"] if category.is_range else ["Rare Holo", "s2"]
    body = yaml.safe_dump({"rules": [{"bin": "a", category.rule_key: category.rule_value(cats)}]})
    assert rules_from(tmp_path, body).rules[0].condition == category.condition(cats)


@pytest.mark.parametrize("preset", sorted(CATEGORY_PRESETS))
def test_a_per_category_preset_sorts_by_its_field_s_category(tmp_path: pathlib.Path, preset: str) -> None:
    rules = rules_from(tmp_path, f"preset: {{name: {preset}, bins: [a, b]}}\n")
    field = CATEGORY_PRESETS[preset]
    rare, common = card("s1-1", rarity="Rare", supertype="Trainer"), card("s2-1", rarity="Common", supertype="Energy")
    state = RoutingState()
    assert [route(rules, c, state) for c in (rare, common, rare)] == ["a", "b", "a"]
    assert field.category_of(rare) != field.category_of(common)


def test_alphabetical_preset_splits_a_to_z(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, "preset: {name: alphabetical, bins: [a, b]}\n")
    assert route(rules, card("s1-1", name="Abra")) == "a"
    assert route(rules, card("s1-2", name="Mewtwo")) == "a"
    assert route(rules, card("s1-3", name="Zubat")) == "b"
    assert alphabet_ranges(2) == [("a", "m"), ("n", "z")]
    assert alphabet_ranges(26)[25] == ("z", "z")


def test_want_list_preset(tmp_path: pathlib.Path) -> None:
    (tmp_path / "w.txt").write_text("s1-1\n", encoding="utf-8")
    rules = rules_from(tmp_path, "preset: {name: want_list, bins: [b], want_list: w.txt}\n")
    assert route(rules, card("s1-1")) == "b"
    assert route(rules, card("s1-2")) == "overflow"


def test_rules_come_before_the_preset(tmp_path: pathlib.Path) -> None:
    rules = rules_from(tmp_path, """
        rules:
          - {bin: c, rarity: Rare Holo}
        preset: {name: by_set, bins: [a, b]}
        """)
    assert route(rules, card("s1-1", rarity="Rare Holo")) == "c"
    assert route(rules, card("s1-2")) == "a"


# --- every error names the file and the line ----------------------------------------------------

ERRORS = [
    ("missing bin", "rules:\n  - {bin: nowhere, set: s1}\n", 2, "names bin 'nowhere'"),
    ("unknown field", "rules:\n  - {bin: a, colour: red}\n", 2, "unknown field 'colour'"),
    ("reject used by a rule", "rules:\n  - bin: a\n    set: s1\n  - bin: reject\n    set: s2\n", 4,
     "reserved reject bin"),
    ("backwards range", "rules:\n  - bin: a\n    name_range: [m, a]\n", 3, "backwards"),
    ("range not a pair", "rules:\n  - bin: a\n    set_range: [a]\n", 3, "must be [low, high]"),
    ("bad number range", "rules:\n  - bin: a\n    number_range: [50, 10]\n", 3, "backwards"),
    ("bad finish", "rules:\n  - bin: a\n    finish: shiny\n", 3, "unknown finish"),
    ("empty rule", "rules:\n  - bin: a\n", 2, "has no condition"),
    ("rule without bin", "rules:\n  - set: s1\n", 2, "has no 'bin'"),
    ("rule not a mapping", "rules:\n  - a\n", 2, "must be a mapping"),
    ("any not true", "rules:\n  - {bin: a, any: false}\n", 2, "any must be true"),
    ("any with conditions", "rules:\n  - {bin: a, any: true, set: s1}\n", 2, "cannot be combined"),
    ("negative copies", "rules:\n  - {bin: a, copies_beyond: -1}\n", 2, "copies_beyond"),
    ("bad price", "rules:\n  - {bin: a, price_min: cheap}\n", 2, "price_min must be a number"),
    ("price min above max", "rules:\n  - bin: a\n    price_min: 5\n    price_max: 1\n", 4, "above price_max"),
    ("missing want list", "rules:\n  - bin: a\n    want_list: nope.txt\n", 3, "cannot read want list"),
    ("rules not a list", "rules: {bin: a}\n", 1, "must be a list"),
    ("unknown top field", "colour: red\n", 1, "unknown field 'colour'"),
    ("unknown preset", "preset: {name: by_colour, bins: [a]}\n", 1, "unknown preset"),
    ("preset uses reject", "preset:\n  name: by_set\n  bins: [a, reject]\n", 3, "reserved reject bin"),
    ("preset without bins", "preset:\n  name: by_set\n", 1, "needs 'bins'"),
    ("duplicate key", "rules:\n  - bin: a\n    set: s1\n    set: s2\n", 4, "duplicate key 'set'"),
    ("bad yaml", "rules:\n  - {bin: a, set: [s1\n", 3, "invalid YAML"),
    ("default is reject", "default_bin: reject\n", 1, "reserved reject bin"),
]


@pytest.mark.parametrize("body,line,text", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_rules_file_errors_name_the_line(tmp_path: pathlib.Path, body: str, line: int, text: str) -> None:
    path = write_rules(tmp_path, body)
    line += len(BASIC_BINS.splitlines())     # the body follows the bins
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}:"), message
    assert text in message


BIN_ERRORS = [
    ("duplicate bin", "  - {name: a, capacity: 5}\n", 5, "defined twice"),
    ("zero capacity", "  - {name: d, capacity: 0}\n", 4, "capacity must be an integer >= 1"),
    ("bin without capacity", "  - {name: d}\n", 4, "missing 'capacity'"),
    ("unknown bin field", "  - {name: d, capacity: 3, angle: 4}\n", 4, "unknown field 'angle'"),
    ("bad position", "  - {name: d, capacity: 3, position: left}\n", 4, "position must be a number"),
]


@pytest.mark.parametrize("extra,line,text", [e[1:] for e in BIN_ERRORS], ids=[e[0] for e in BIN_ERRORS])
def test_bin_errors_name_the_line(tmp_path: pathlib.Path, extra: str, line: int, text: str) -> None:
    bins = BASIC_BINS.replace("bins:\n", "bins:\n" + extra)
    path = write_rules(tmp_path, "", bins=bins)
    with pytest.raises(ConfigError, match=re.escape(f"{path}:{line}:") + ".*" + re.escape(text)):
        load_rules(path)


def test_missing_reject_bin_is_named(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "bins.yaml"
    path.write_text("overflow_bin: a\nbins:\n  - {name: a, capacity: 3}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bins.yaml:1: missing 'reject_bin'"):
        load_rules(path)


def test_missing_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_rules(tmp_path / "nope.yaml")
