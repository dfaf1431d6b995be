"""The user's bins file: its bins, ordered first-match rules, presets, reject and overflow bins, and the
card fields sorted one category per bin (one mapping for presets, rules and multi-pass plans)."""

from __future__ import annotations

import dataclasses
import pathlib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from cardsorter.core.errors import ConfigError
from cardsorter.core.types import FINISHES, CardRecord

RULE_FIELDS = ("bin", "set", "set_range", "rarity", "type", "name_range", "number_range", "finish",
               "want_list", "copies_beyond", "price_min", "price_max", "any", "note")
BIN_FIELDS = ("name", "capacity", "position", "gate_mm", "drop_sensor_pin", "note")
TOP_FIELDS = ("bins", "reject_bin", "overflow_bin", "default_bin", "rules", "preset")
PRESET_FIELDS = ("name", "bins", "want_list")
PRESETS = ("by_set", "by_rarity", "by_type", "alphabetical", "want_list")
ALPHABET = "abcdefghijklmnopqrstuvwxyz"


# --- YAML with line numbers ---------------------------------------------------------------------

class _LDict(dict[Any, Any]):
    """A YAML mapping that remembers the line of itself and of each key (1-based)."""

    line: int = 0
    lines: dict[Any, int]


class _LList(list[Any]):
    """A YAML sequence that remembers the line of itself and of each item (1-based)."""

    line: int = 0
    lines: list[int]


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> _LDict:
    loader.flatten_mapping(node)
    out = _LDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key '{key}' (first on line {out.lines[key]})", key_node.start_mark)
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


def _construct_sequence(loader: _LineLoader, node: yaml.SequenceNode) -> _LList:
    out = _LList(loader.construct_object(child, deep=True) for child in node.value)
    out.line = node.start_mark.line + 1
    out.lines = [child.start_mark.line + 1 for child in node.value]
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


# --- keys used to compare names, sets and collector numbers -------------------------------------

def fold(text: str) -> str:
    """Case- and accent-insensitive form of a name ("Flabébé" → "flabebe")."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def natural_key(text: str) -> tuple[tuple[int, Any], ...]:
    """Natural order: "sv2" < "sv10", "9" < "10" < "10a"; letters before digits at one position."""
    parts = re.findall(r"\d+|\D+", fold(text))
    return tuple((1, int(p)) if p.isdigit() else (0, p) for p in parts)


def number_key(number: str) -> tuple[tuple[int, Any], ...]:
    """Collector number order; "4/102" counts as 4."""
    return natural_key(number.split("/", 1)[0])


# --- the rules model ----------------------------------------------------------------------------

@dataclass(frozen=True)
class BinSpec:
    """One physical bin: its name, how many cards it holds, and its calibrated positions."""

    name: str
    capacity: int
    position: float | None      # actuator position (servo angle in degrees, stepper steps, ...)
    gate_mm: float | None       # flow mode: where this bin's gate is along the belt
    drop_sensor_pin: int | None
    line: int


@dataclass(frozen=True)
class Condition:
    """Every field set must match (AND); an unset field matches anything."""

    sets: frozenset[str] | None = None
    set_range: tuple[str, str] | None = None
    rarities: frozenset[str] | None = None
    types: frozenset[str] | None = None
    name_range: tuple[str, str] | None = None
    number_range: tuple[str, str] | None = None
    finishes: frozenset[str] | None = None
    want: frozenset[str] | None = None
    copies_beyond: int | None = None
    price_min: float | None = None
    price_max: float | None = None

    def matches(self, card: CardRecord, copies_before: int) -> bool:
        if self.sets is not None and fold(card.set_id) not in self.sets:
            return False
        if self.set_range is not None and not _in_range(natural_key(card.set_id), self.set_range, natural_key):
            return False
        if self.rarities is not None and fold(card.rarity) not in self.rarities:
            return False
        if self.types is not None and not ({fold(card.supertype), *map(fold, card.types)} & self.types):
            return False
        if self.name_range is not None and not _name_in_range(card.name, self.name_range):
            return False
        if self.number_range is not None and not _in_range(number_key(card.number), self.number_range, number_key):
            return False
        if self.finishes is not None and fold(card.finish) not in self.finishes:
            return False
        if self.want is not None and not (want_keys(card) & self.want):
            return False
        if self.copies_beyond is not None and copies_before < self.copies_beyond:
            return False
        if self.price_min is not None or self.price_max is not None:
            if card.price_usd is None:
                return False
            if self.price_min is not None and card.price_usd < self.price_min:
                return False
            if self.price_max is not None and card.price_usd > self.price_max:
                return False
        return True


def want_keys(card: CardRecord) -> set[str]:
    """The want-list entries that name this card: its id, "set-number", or "name:<name>"."""
    return {fold(card.card_id), fold(f"{card.set_id}-{card.number}"), "name:" + fold(card.name)}


def _in_range(key: Any, bounds: tuple[str, str], keyfunc: Callable[[str], Any]) -> bool:
    return bool(keyfunc(bounds[0]) <= key <= keyfunc(bounds[1]))


def _name_in_range(name: str, bounds: tuple[str, str]) -> bool:
    """Inclusive by prefix: ["a", "m"] holds "Abra" and "Mewtwo", not "Ninetales"."""
    lo, hi = fold(bounds[0]), fold(bounds[1])
    folded = fold(name)
    return lo <= folded[:len(lo)] and folded[:len(hi)] <= hi


@dataclass(frozen=True)
class CategoryField:
    """A card field sorted one category per bin. The per-category presets, the bins-file rules and the
    multi-pass plans all turn "these categories" into a rule condition through this one mapping."""

    name: str                                   # what the user sorts by: set, rarity, type, letter
    rule_key: str                               # the bins-file rule key holding the categories
    condition_field: str                        # the Condition field that rule key sets
    category_of: Callable[[CardRecord], str]    # a card's category
    preset: str | None = None                   # the preset giving each new category the next free bin

    @property
    def is_range(self) -> bool:
        """Categories in order, held by a rule as [first, last] (letters) rather than as a list."""
        return self.condition_field == "name_range"

    def condition(self, categories: Sequence[str]) -> Condition:
        """Cards in one of ``categories`` (a range: from the first to the last)."""
        if self.is_range:
            return Condition(name_range=(categories[0], categories[-1]))
        values: dict[str, Any] = {self.condition_field: frozenset(fold(c) for c in categories)}
        return dataclasses.replace(Condition(), **values)

    def rule_value(self, categories: Sequence[str]) -> list[str]:
        """``categories`` as a bins-file rule writes them under ``rule_key`` (load_rules reads them back)."""
        return [categories[0], categories[-1]] if self.is_range else list(categories)


CATEGORY_FIELDS: dict[str, CategoryField] = {f.name: f for f in (
    CategoryField("set", "set", "sets", lambda c: c.set_id, "by_set"),
    CategoryField("rarity", "rarity", "rarities", lambda c: c.rarity or "(no rarity)", "by_rarity"),
    CategoryField("type", "type", "types", lambda c: c.supertype or (c.types[0] if c.types else "(no type)"),
                  "by_type"),
    CategoryField("letter", "name_range", "name_range", lambda c: (c.name[:1] or "?").lower()),
)}
CATEGORY_PRESETS: dict[str, CategoryField] = {f.preset: f for f in CATEGORY_FIELDS.values() if f.preset}


@dataclass(frozen=True)
class Rule:
    """Cards matching ``condition`` go to ``bin_name`` — or, for a per-category preset rule
    (``category_key`` set), each new category takes the next free bin of ``bins``."""

    index: int                  # 1-based position in the final rule list
    bin_name: str
    condition: Condition
    line: int
    label: str
    category_key: str | None = None       # a CATEGORY_FIELDS name
    bins: tuple[str, ...] = ()

    @property
    def where(self) -> str:
        return f"rule {self.index} ({self.label}, line {self.line})"


@dataclass(frozen=True)
class SortRules:
    """The bins and the ordered rules of one bins file (first match wins)."""

    path: str
    bins: Mapping[str, BinSpec]
    reject_bin: str
    overflow_bin: str
    default_bin: str
    rules: tuple[Rule, ...]

    @property
    def depend_on_finish(self) -> bool:
        """Some rule looks at the card's finish (a ``finish:`` condition)."""
        return any(rule.condition.finishes is not None for rule in self.rules)

    @property
    def sort_bins(self) -> tuple[str, ...]:
        """Every bin a rule may use (all but the reject bin), in file order."""
        return tuple(name for name in self.bins if name != self.reject_bin)


# --- loading ------------------------------------------------------------------------------------

class _Ctx:
    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def error(self, line: int, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{line}: {message}")


def load_rules(path: str | pathlib.Path) -> SortRules:
    """Read and check a bins file; any error names the file and the line at fault."""
    path = pathlib.Path(path)
    ctx = _Ctx(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read rules file {path}: {err}") from err
    try:
        raw = yaml.load(text, Loader=_LineLoader)
    except yaml.MarkedYAMLError as err:
        line = err.problem_mark.line + 1 if err.problem_mark is not None else 0
        raise ctx.error(line, f"invalid YAML: {err.problem or err}") from err
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from err
    if not isinstance(raw, _LDict):
        raise ctx.error(1, "a rules file must be a mapping with 'bins' and 'rules'")
    _check_keys(ctx, raw, TOP_FIELDS, "top-level")
    bins = _load_bins(ctx, raw)

    def bin_ref(value: Any, line: int, what: str, allow_reject: bool = False) -> str:
        if not isinstance(value, str) or value not in bins:
            raise ctx.error(line, f"{what} names bin {value!r}, which is not in 'bins' ({', '.join(bins)})")
        if not allow_reject and value == reject:
            raise ctx.error(line, f"{what} may not use the reserved reject bin {reject!r}")
        return value

    for key in ("reject_bin", "overflow_bin"):
        if key not in raw:
            raise ctx.error(raw.line, f"missing '{key}'")
    reject = bin_ref(raw["reject_bin"], raw.lines["reject_bin"], "reject_bin", allow_reject=True)
    overflow = bin_ref(raw["overflow_bin"], raw.lines["overflow_bin"], "overflow_bin")
    default = (bin_ref(raw["default_bin"], raw.lines["default_bin"], "default_bin")
               if "default_bin" in raw else overflow)

    rules: list[Rule] = []
    raw_rules = raw.get("rules")
    if raw_rules is not None:
        if not isinstance(raw_rules, _LList):
            raise ctx.error(raw.lines["rules"], "'rules' must be a list of rules")
        for i, (item, line) in enumerate(zip(raw_rules, raw_rules.lines, strict=True), start=1):
            rules.append(_load_rule(ctx, item, line, len(rules) + 1, f"rules[{i}]", bin_ref))
    if "preset" in raw:
        rules.extend(_load_preset(ctx, raw["preset"], raw.lines["preset"], len(rules), bin_ref))
    return SortRules(str(path), bins, reject, overflow, default, tuple(rules))


def _check_keys(ctx: _Ctx, mapping: _LDict, allowed: Sequence[str], what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ctx.error(mapping.lines[key], f"unknown field {key!r} in {what} (known: {', '.join(allowed)})")


def _load_bins(ctx: _Ctx, raw: _LDict) -> dict[str, BinSpec]:
    if "bins" not in raw:
        raise ctx.error(raw.line, "missing 'bins'")
    items = raw["bins"]
    if not isinstance(items, _LList) or not items:
        raise ctx.error(raw.lines["bins"], "'bins' must be a non-empty list of {name, capacity, ...}")
    bins: dict[str, BinSpec] = {}
    for item, line in zip(items, items.lines, strict=True):
        if not isinstance(item, _LDict):
            raise ctx.error(line, f"a bin must be a mapping with name and capacity, got {item!r}")
        _check_keys(ctx, item, BIN_FIELDS, "bin")
        for key in ("name", "capacity"):
            if key not in item:
                raise ctx.error(item.line, f"bin is missing '{key}'")
        name = item["name"]
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ctx.error(item.lines["name"], f"bin name must be a non-empty string without edge spaces, got {name!r}")
        if name in bins:
            raise ctx.error(item.lines["name"], f"bin {name!r} is defined twice (first on line {bins[name].line})")
        capacity = item["capacity"]
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ctx.error(item.lines["capacity"], f"bin {name!r}: capacity must be an integer >= 1, got {capacity!r}")
        position = _opt_number(ctx, item, "position", name)
        gate = _opt_number(ctx, item, "gate_mm", name)
        pin = item.get("drop_sensor_pin")
        if pin is not None and (isinstance(pin, bool) or not isinstance(pin, int) or pin < 0):
            raise ctx.error(item.lines["drop_sensor_pin"], f"bin {name!r}: drop_sensor_pin must be a GPIO number")
        bins[name] = BinSpec(name, capacity, position, gate, pin, item.line)
    return bins


def _opt_number(ctx: _Ctx, item: _LDict, key: str, name: str) -> float | None:
    value = item.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.error(item.lines[key], f"bin {name!r}: {key} must be a number, got {value!r}")
    return float(value)


def _str_set(ctx: _Ctx, value: Any, line: int, key: str) -> frozenset[str]:
    items = [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value
    if not isinstance(items, list) or not items or not all(
            isinstance(v, (str, int)) and not isinstance(v, bool) for v in items):
        raise ctx.error(line, f"{key} must be a value or a non-empty list of values, got {value!r}")
    return frozenset(fold(str(v)) for v in items)


def _range(ctx: _Ctx, value: Any, line: int, key: str, keyfunc: Callable[[str], Any]) -> tuple[str, str]:
    if (not isinstance(value, list) or len(value) != 2
            or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)):
        raise ctx.error(line, f"{key} must be [low, high], got {value!r}")
    lo, hi = str(value[0]), str(value[1])
    if not lo.strip() or not hi.strip():
        raise ctx.error(line, f"{key} bounds must not be empty, got {value!r}")
    if keyfunc(lo) > keyfunc(hi):
        raise ctx.error(line, f"{key} [{lo}, {hi}] is backwards: low is after high")
    return lo, hi


def _number(ctx: _Ctx, value: Any, line: int, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ctx.error(line, f"{key} must be a number >= 0, got {value!r}")
    return float(value)


def read_want_list(ctx: _Ctx, value: Any, line: int) -> frozenset[str]:
    """A want list: one entry per line (card id, set-number, or name:<name>); # comments."""
    if not isinstance(value, str) or not value.strip():
        raise ctx.error(line, f"want_list must be a file name, got {value!r}")
    path = pathlib.Path(value)
    if not path.is_absolute():
        path = ctx.path.parent / path
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise ctx.error(line, f"cannot read want list {path}: {err}") from err
    entries = set()
    for text in lines:
        text = text.split("#", 1)[0].strip()
        if text.lower().startswith("name:"):
            entries.add("name:" + fold(text[5:]))
        elif text:
            entries.add(fold(text))
    if not entries:
        raise ctx.error(line, f"want list {path} has no entries")
    return frozenset(entries)


BinRef = Callable[..., str]


def _load_rule(ctx: _Ctx, item: Any, line: int, index: int, label: str, bin_ref: BinRef) -> Rule:
    if not isinstance(item, _LDict):
        raise ctx.error(line, f"{label} must be a mapping like {{bin: NAME, set: base1}}, got {item!r}")
    _check_keys(ctx, item, RULE_FIELDS, label)
    if "bin" not in item:
        raise ctx.error(item.line, f"{label} has no 'bin'")
    bin_name = bin_ref(item["bin"], item.lines["bin"], label)
    kw: dict[str, Any] = {}
    ln = item.lines

    def categories(name: str) -> None:
        f = CATEGORY_FIELDS[name]
        if f.rule_key in item:
            kw[f.condition_field] = _str_set(ctx, item[f.rule_key], ln[f.rule_key], f.rule_key)

    categories("set")
    if "set_range" in item:
        kw["set_range"] = _range(ctx, item["set_range"], ln["set_range"], "set_range", natural_key)
    categories("rarity")
    categories("type")
    if "name_range" in item:
        kw["name_range"] = _range(ctx, item["name_range"], ln["name_range"], "name_range", fold)
    if "number_range" in item:
        kw["number_range"] = _range(ctx, item["number_range"], ln["number_range"], "number_range", number_key)
    if "finish" in item:
        finishes = _str_set(ctx, item["finish"], ln["finish"], "finish")
        bad = sorted(finishes - set(FINISHES))
        if bad:
            raise ctx.error(ln["finish"], f"unknown finish {bad} (known: {', '.join(FINISHES)})")
        kw["finishes"] = finishes
    if "want_list" in item:
        kw["want"] = read_want_list(ctx, item["want_list"], ln["want_list"])
    if "copies_beyond" in item:
        n = item["copies_beyond"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ctx.error(ln["copies_beyond"], f"copies_beyond must be an integer >= 0, got {n!r}")
        kw["copies_beyond"] = n
    for key in ("price_min", "price_max"):
        if key in item:
            kw[key] = _number(ctx, item[key], ln[key], key)
    if kw.get("price_min") is not None and kw.get("price_max") is not None and kw["price_min"] > kw["price_max"]:
        raise ctx.error(ln["price_max"], f"price_min {kw['price_min']} is above price_max {kw['price_max']}")
    if "any" in item:
        if item["any"] is not True:
            raise ctx.error(ln["any"], "any must be true (a catch-all rule)")
        if kw:
            raise ctx.error(ln["any"], "any: true cannot be combined with other conditions")
    elif not kw:
        raise ctx.error(item.line, f"{label} has no condition; write 'any: true' for a catch-all rule")
    return Rule(index, bin_name, Condition(**kw), item.line, label)


def _load_preset(ctx: _Ctx, item: Any, line: int, start: int, bin_ref: BinRef) -> list[Rule]:
    if not isinstance(item, _LDict):
        raise ctx.error(line, f"preset must be a mapping like {{name: by_set, bins: [...]}}, got {item!r}")
    _check_keys(ctx, item, PRESET_FIELDS, "preset")
    name = item.get("name")
    if name not in PRESETS:
        raise ctx.error(item.lines.get("name", line), f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    raw_bins = item.get("bins")
    if not isinstance(raw_bins, _LList) or not raw_bins:
        raise ctx.error(item.lines.get("bins", line), f"preset {name} needs 'bins': a non-empty list of bin names")
    bins = tuple(bin_ref(b, bl, f"preset {name}") for b, bl in zip(raw_bins, raw_bins.lines, strict=True))
    if len(set(bins)) != len(bins):
        raise ctx.error(raw_bins.line, f"preset {name} lists a bin twice")
    label = f"preset {name}"
    if name in CATEGORY_PRESETS:
        return [Rule(start + 1, bins[0], Condition(), item.line, label, category_key=CATEGORY_PRESETS[name].name,
                     bins=bins)]
    if name == "want_list":
        if "want_list" not in item:
            raise ctx.error(line, "preset want_list needs 'want_list': a file of wanted cards")
        want = read_want_list(ctx, item["want_list"], item.lines["want_list"])
        return [Rule(start + 1, bins[0], Condition(want=want), item.line, label)]
    return [Rule(start + 1 + i, b, Condition(name_range=(lo, hi)), item.line, f"{label} {lo}-{hi}")
            for i, (b, (lo, hi)) in enumerate(zip(bins, alphabet_ranges(len(bins)), strict=True))]


def alphabet_ranges(n_bins: int) -> list[tuple[str, str]]:
    """A–Z split into ``n_bins`` contiguous letter ranges as even as letters allow."""
    if not 1 <= n_bins <= len(ALPHABET):
        raise ValueError(f"alphabetical needs 1..26 bins, got {n_bins}")
    ranges = []
    for i in range(n_bins):
        lo = i * len(ALPHABET) // n_bins
        hi = (i + 1) * len(ALPHABET) // n_bins - 1
        ranges.append((ALPHABET[lo], ALPHABET[hi]))
    return ranges
