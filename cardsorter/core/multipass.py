"""Multi-pass sorting: when categories outnumber bins, sort coarse groups first and split them later."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from cardsorter.core.bin_rules import CATEGORY_FIELDS, Rule, SortRules

PASS_FIELDS = tuple(CATEGORY_FIELDS)   # set, rarity, type, letter


@dataclass(frozen=True)
class PassStep:
    """One run of a pile through the machine: which categories each bin receives."""

    pass_number: int                                   # 1 = the first, coarsest pass
    pile: tuple[str, ...]                              # the categories of the cards fed in this run
    assignment: tuple[tuple[str, tuple[str, ...]], ...]  # (bin, categories it receives), in bin order

    def bin_of(self, category: str) -> str | None:
        for bin_name, cats in self.assignment:
            if category in cats:
                return bin_name
        return None


@dataclass(frozen=True)
class MultiPassPlan:
    field: str
    steps: tuple[PassStep, ...]                        # in the order to run them (pass 1 first)

    @property
    def passes(self) -> int:
        return max((s.pass_number for s in self.steps), default=0)

    def lines(self) -> list[str]:
        out = [f"{len(self.steps)} runs in {self.passes} passes, by {self.field}"]
        for s in self.steps:
            out.append(f"pass {s.pass_number}: feed the pile of {_span(s.pile)}")
            out += [f"  {b}: {_span(c)}" for b, c in s.assignment]
        return out


def _span(cats: Sequence[str]) -> str:
    return cats[0] if len(cats) == 1 else f"{cats[0]}..{cats[-1]} ({len(cats)})"


def partition(items: Sequence[str], groups: int, weights: Mapping[str, float]) -> list[tuple[str, ...]]:
    """Split ``items`` (kept in order) into ``groups`` non-empty runs minimising the heaviest run."""
    n = len(items)
    k = min(groups, n)
    w = [max(0.0, float(weights.get(c, 1.0))) for c in items]
    prefix = [0.0]
    for x in w:
        prefix.append(prefix[-1] + x)
    inf = float("inf")
    # best[j][i]: the lightest possible heaviest run when the first i items form j runs
    best = [[inf] * (n + 1) for _ in range(k + 1)]
    cut = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for j in range(1, k + 1):
        for i in range(j, n - (k - j) + 1):
            for s in range(j - 1, i):
                cost = max(best[j - 1][s], prefix[i] - prefix[s])
                if cost < best[j][i]:
                    best[j][i], cut[j][i] = cost, s
    runs: list[tuple[str, ...]] = []
    i = n
    for j in range(k, 0, -1):
        s = cut[j][i]
        runs.append(tuple(items[s:i]))
        i = s
    return runs[::-1]


def plan_passes(categories: Sequence[str], bins: Sequence[str], field: str = "set",
                weights: Mapping[str, float] | None = None) -> MultiPassPlan:
    """Plan passes so every category ends alone in a bin.

    Pass 1 puts contiguous groups of categories into the bins (balanced by ``weights``, e.g. card
    counts per set); every bin that got more than one category is fed again in a later pass and
    split further. With C categories and B bins that takes ceil(log_B C) passes.
    """
    if field not in PASS_FIELDS:
        raise ValueError(f"field must be one of {PASS_FIELDS}, got {field!r}")
    if len(bins) < 2:
        raise ValueError(f"multi-pass sorting needs at least 2 sort bins, got {len(bins)}")
    if len(set(categories)) != len(categories):
        raise ValueError("categories must be unique")
    if not categories:
        return MultiPassPlan(field, ())
    weights = weights or {}
    steps: list[PassStep] = []
    queue: list[tuple[int, tuple[str, ...]]] = [(1, tuple(categories))]
    while queue:
        number, pile = queue.pop(0)
        runs = partition(pile, len(bins), weights)
        assignment = tuple(zip(bins, runs))
        steps.append(PassStep(number, pile, assignment))
        queue += [(number + 1, run) for run in runs if len(run) > 1]
    return MultiPassPlan(field, tuple(steps))


def rules_for_step(step: PassStep, field: str, base: SortRules) -> SortRules:
    """The rules for one run: each bin takes its categories; bins, reject and overflow from ``base``."""
    category = CATEGORY_FIELDS.get(field)
    rules = []
    for i, (bin_name, cats) in enumerate(step.assignment, start=1):
        if bin_name not in base.bins or bin_name == base.reject_bin:
            raise ValueError(f"pass {step.pass_number} uses bin {bin_name!r}, not a sort bin of {base.path}")
        if category is None:
            raise ValueError(f"field must be one of {PASS_FIELDS}, got {field!r}")
        rules.append(Rule(i, bin_name, category.condition(cats), 0, f"pass {step.pass_number} {_span(cats)}"))
    return dataclasses.replace(base, rules=tuple(rules))


def step_rules_yaml(step: PassStep, field: str, base: SortRules) -> str:
    """A bins file for one run (load it with load_rules): ``base``'s bins, reject and overflow, one
    rule per bin for its categories; cards outside the pile go to the overflow bin."""
    rules_for_step(step, field, base)      # validates the bins and the field
    category = CATEGORY_FIELDS[field]
    rules: list[dict[str, Any]] = [{"bin": bin_name, category.rule_key: category.rule_value(cats)}
                                   for bin_name, cats in step.assignment]
    bins = []
    for spec in base.bins.values():
        entry: dict[str, Any] = {"name": spec.name, "capacity": spec.capacity}
        for attr in ("position", "gate_mm", "drop_sensor_pin"):
            if getattr(spec, attr) is not None:
                entry[attr] = getattr(spec, attr)
        bins.append(entry)
    body = {"reject_bin": base.reject_bin, "overflow_bin": base.overflow_bin, "default_bin": base.overflow_bin,
            "bins": bins, "rules": rules}
    header = (f"# Multi-pass sorting by {field}, pass {step.pass_number}: feed the pile of "
              f"{_span(step.pile)} (bins and positions from {base.path}).\n")
    return header + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, default_flow_style=None)
