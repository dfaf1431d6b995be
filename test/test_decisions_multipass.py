"""Multi-pass planning: coarse groups first, each split in later passes until every category is alone."""

from __future__ import annotations

import dataclasses
import math
import pathlib

import pytest
from decisions_support import card, rules_from

from cardsorter.core.bin_rules import load_rules
from cardsorter.core.multipass import (
    partition,
    plan_passes,
    rules_for_step,
    step_rules_yaml,
)
from cardsorter.core.sort_routing import RoutingState, route_card
from cardsorter.core.types import SortStatus


def leaves(plan) -> dict[str, list[int]]:
    """category → the pass numbers of the runs in which it ends alone in a bin."""
    out: dict[str, list[int]] = {}
    for step in plan.steps:
        for _, cats in step.assignment:
            if len(cats) == 1:
                out.setdefault(cats[0], []).append(step.pass_number)
    return out


def test_one_pass_when_bins_suffice() -> None:
    plan = plan_passes(["s1", "s2", "s3"], ["a", "b", "c", "d"])
    assert plan.passes == 1 and len(plan.steps) == 1
    assert plan.steps[0].assignment == (("a", ("s1",)), ("b", ("s2",)), ("c", ("s3",)))


@pytest.mark.parametrize("n_cats,n_bins", [(5, 2), (13, 3), (40, 6), (100, 9), (7, 7), (8, 7)])
def test_every_category_ends_alone_in_log_b_passes(n_cats: int, n_bins: int) -> None:
    cats = [f"set{i:03d}" for i in range(n_cats)]
    plan = plan_passes(cats, [f"bin{i}" for i in range(n_bins)])
    alone = leaves(plan)
    assert sorted(alone) == cats and all(len(v) == 1 for v in alone.values())
    assert plan.passes == max(1, math.ceil(math.log(n_cats) / math.log(n_bins) - 1e-9))


def test_first_pass_is_coarse_and_contiguous() -> None:
    cats = [f"s{i:02d}" for i in range(10)]
    plan = plan_passes(cats, ["a", "b", "c"])
    first = plan.steps[0]
    assert first.pass_number == 1 and first.pile == tuple(cats)
    flat = [c for _, group in first.assignment for c in group]
    assert flat == cats                                       # order kept: the piles stack in order
    later = [s for s in plan.steps if s.pass_number == 2]
    assert {s.pile for s in later} == {g for _, g in first.assignment if len(g) > 1}


def test_weights_balance_the_groups() -> None:
    cats = ["big", "s1", "s2", "s3", "s4"]
    runs = partition(cats, 2, {"big": 100, "s1": 1, "s2": 1, "s3": 1, "s4": 1})
    assert runs == [("big",), ("s1", "s2", "s3", "s4")]


def test_rules_for_a_step_route_each_category_to_its_bin(tmp_path: pathlib.Path) -> None:
    base = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n")
    plan = plan_passes(["s1", "s2", "s3", "s4", "s5"], base.sort_bins[:2], field="set")
    first = plan.steps[0]
    rules = rules_for_step(first, "set", base)
    for cat in ["s1", "s2", "s3", "s4", "s5"]:
        r = route_card(rules, card(f"{cat}-1"), SortStatus.CONFIRMED, False, RoutingState())
        assert r.bin_name == first.bin_of(cat)


def test_letter_passes_use_name_ranges(tmp_path: pathlib.Path) -> None:
    base = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n")
    plan = plan_passes(list("abcdefghijklmnopqrstuvwxyz"), ["a", "b", "c"], field="letter")
    rules = rules_for_step(plan.steps[0], "letter", base)
    r = route_card(rules, card("s1-1", name="Zubat"), SortStatus.CONFIRMED, False, RoutingState())
    assert r.bin_name == plan.steps[0].bin_of("z")


def test_needs_two_bins() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        plan_passes(["a", "b"], ["only"])


def test_plan_description_lists_every_run() -> None:
    plan = plan_passes([f"s{i}" for i in range(5)], ["a", "b"])
    text = plan.lines()
    assert text[0].startswith(f"{len(plan.steps)} runs in {plan.passes} passes")


@pytest.mark.parametrize("field,make", [("set", lambda cat: card(f"{cat}-1")),
                                        ("letter", lambda cat: card("s1-1", name=f"{cat.upper()}xy")),
                                        ("rarity", lambda cat: card("s1-1", rarity=cat))])
def test_written_pass_files_load_and_route_like_the_plan(tmp_path: pathlib.Path, field: str, make) -> None:
    base = rules_from(tmp_path, "rules:\n  - {bin: a, any: true}\n")
    cats = list("abcdefg") if field == "letter" else [f"r{i}" for i in range(7)]
    plan = plan_passes(cats, ["a", "b", "c"], field=field)
    for i, step in enumerate(plan.steps):
        path = tmp_path / f"run{i}.yaml"
        path.write_text(step_rules_yaml(step, field, base), encoding="utf-8")
        rules = load_rules(path)
        assert [dataclasses.replace(b, line=0) for b in rules.bins.values()] == \
            [dataclasses.replace(b, line=0) for b in base.bins.values()]
        for cat in step.pile:
            r = route_card(rules, make(cat), SortStatus.CONFIRMED, False, RoutingState())
            assert r.bin_name == step.bin_of(cat), (step, cat)
