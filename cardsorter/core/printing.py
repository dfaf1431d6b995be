"""Printing resolver: collector numbers and set codes read from a card's text lines, voted over views.

Pure: it parses the text an OCR engine returned (cardsorter.backends.printing_ocr) and compares it with
the catalogue's candidate printings of the matched artwork. A reading counts only when it equals a
candidate's (number, printed total); the resolver names a printing only when the readings of at least
``min_agreeing_views`` views agree with exactly one candidate and with no other. Never a guess: OCR
reads wrong numbers at high confidence (issue #14 research, docs/PRINTINGS.md: 105/165 for 106/165,
13/132 for 113/132, 133/132 — 0–2 % of clean cards, up to 6 % under glare or blur).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cardsorter.core.fields import check_ranges, doc
from cardsorter.core.finish import FOIL_CLASSES, narrow_by_finish
from cardsorter.core.types import CardRecord

# OCR look-alikes of digits. They become digits only where a digit belongs (the number and the total
# of "NNN/TTT"), never inside a word: "Wizards14/130" is 14/130, not 514/130.
# The research's set (RESULTS.md "Reading rule"); B/8, Z/2, D/0 are not mapped.
LOOKALIKE_DIGITS = {"O": "0", "o": "0", "l": "1", "I": "1", "i": "1", "|": "1", "S": "5", "s": "5"}
_LOOKALIKE_CLASS = "0-9OolIi|Ss"
# "NNN/TTT" with optional capital prefixes (SV049/SV122, TG05/TG30, RC12/RC32); a number has 1–3 digits,
# a total 2–3 (research: one more glued character after the total is the WOTC rarity mark read as a digit).
_NUMBER_RE = re.compile(
    rf"(?P<left>[A-Za-z{_LOOKALIKE_CLASS}]+)\s*/\s*(?P<right>[A-Za-z{_LOOKALIKE_CLASS}]+)")
_SUFFIX_RE = re.compile(rf"[{_LOOKALIKE_CLASS}]+$")
_PREFIX_RE = re.compile(r"^[A-Z]{1,4}$")   # SV, TG, RC, SWSH
# Set codes are printed in capitals (MEW, SVI, PAL); a token of capitals and digits, 2–6 long.
_CODE_RE = re.compile(r"(?<![A-Za-z0-9])[A-Z][A-Z0-9]{1,5}(?![A-Za-z0-9])")
MAX_NUMBER_DIGITS = 3
MIN_TOTAL_DIGITS = 2


@dataclass(frozen=True)
class CollectorNumber:
    """One "NNN/TTT" read on a card: letter prefix and digits as normalised (look-alikes mapped)."""

    prefix: str          # "" or capitals: SV, TG, RC
    digits: str          # the number's digits, leading zeros kept ("025")
    total_prefix: str    # "" or the total's capitals (TG30 -> TG)
    total_digits: str    # the printed total's digits ("165"); one glued trailing digit possible ("1324")
    confidence: float    # the recogniser's score of the line it was read from
    line: str            # the recognised line, as the engine returned it

    def __post_init__(self) -> None:
        if not (self.digits.isdigit() and self.total_digits.isdigit()):
            raise ValueError(f"collector number {self.digits!r}/{self.total_digits!r}: digits expected")

    @property
    def text(self) -> str:
        return f"{self.prefix}{self.digits}/{self.total_prefix}{self.total_digits}"


@dataclass(frozen=True)
class ViewReading:
    """What one view of a card yielded: its recognised lines and the numbers and capital tokens in them."""

    lines: tuple[tuple[str, float], ...]
    numbers: tuple[CollectorNumber, ...]
    codes: tuple[str, ...]     # capital tokens (possible set codes: MEW, SVI), upper-case as printed
    method: str = ""           # how the reader got the lines (detect, fixed-box); "" unknown
    skipped: str = ""          # why the reader did not read this view ("" = it did)
    # the finish over the track's closeups up to this one (core/finish.py): "" when none was compared
    finish: str = ""           # normal | holo | reverse_holo | unknown
    finish_views: int = 0
    finish_reason: str = ""


def _to_digits(chars: str) -> str:
    return "".join(LOOKALIKE_DIGITS.get(c, c) for c in chars)


def _split_left(token: str) -> tuple[str, str] | None:
    """(prefix, digits) of the number side, or None when it holds no plausible number."""
    run = _SUFFIX_RE.search(token)
    if run is None:
        return None
    rest, digits = token[:run.start()], run.group()
    if rest and not _PREFIX_RE.match(rest):
        # glued to a word ("Wizards14"): look-alike letters at the joint belong to the word
        digits = digits.lstrip("OolIi|Ss")
        rest = ""
    if len(digits) > MAX_NUMBER_DIGITS:
        extra, digits = digits[:-MAX_NUMBER_DIGITS], digits[-MAX_NUMBER_DIGITS:]
        if any(c.isdigit() for c in extra):
            return None    # four real digits: not a collector number
    digits = _to_digits(digits)
    if not digits or not any(c.isdigit() for c in run.group()) or not digits.isdigit():
        return None
    return rest, digits


def _split_right(token: str) -> tuple[str, str] | None:
    """(prefix, digits) of the total side: optional capitals, then 2–4 digit-like characters."""
    m = re.match(rf"^([A-Z]{{1,3}}(?=[0-9]))?([{_LOOKALIKE_CLASS}]{{{MIN_TOTAL_DIGITS},{MAX_NUMBER_DIGITS + 1}}})",
                 token)
    if m is None:
        return None
    prefix, digits = m.group(1) or "", _to_digits(m.group(2))
    if not digits.isdigit() or not any(c.isdigit() for c in m.group(2)):
        return None
    return prefix, digits


def parse_line(text: str, confidence: float) -> tuple[CollectorNumber, ...]:
    """Every collector number in one recognised line, tolerant of O/0, l/I/1 and S/5 in digit context."""
    out = []
    for m in _NUMBER_RE.finditer(text):
        left, right = _split_left(m.group("left")), _split_right(m.group("right"))
        if left is None or right is None:
            continue
        out.append(CollectorNumber(left[0], left[1], right[0], right[1], confidence, text))
    return tuple(out)


def read_lines(lines: Iterable[tuple[str, float]], *, method: str = "") -> ViewReading:
    """Parse one view's recognised (text, confidence) lines into its readings."""
    kept = tuple((str(t), float(c)) for t, c in lines)
    numbers = tuple(n for t, c in kept for n in parse_line(t, c))
    codes = tuple(dict.fromkeys(code for t, _ in kept for code in _CODE_RE.findall(t)))
    return ViewReading(kept, numbers, codes, method)


def _canonical(prefix: str, digits: str) -> str:
    return prefix.upper() + (digits.lstrip("0") or "0")


def _catalogue_number(number: str) -> tuple[str, str] | None:
    """(prefix, digits) of a catalogue number ("025", "SV049", "TG05"); None if it has another form. A
    lower-case suffix ("12rh", "136a") is not printed in the "NNN/TTT" line: "12rh" reads as 12, so a
    variant and its base printing are named alike and the reading cannot pick one of them."""
    m = re.match(r"^([A-Za-z]{0,4})([0-9]{1,4})[a-z]{0,3}$", number.strip())
    return (m.group(1).upper(), m.group(2)) if m else None


def _fold_code(code: str) -> str:
    return _to_digits(code.upper())   # both sides folded alike: MEW read as MEV/ME W is still not MEW


def number_matches(reading: CollectorNumber, card: CardRecord) -> bool:
    """The reading is this printing's collector number and (where the catalogue knows it) printed total."""
    cat = _catalogue_number(card.number)
    if cat is None:
        return False
    cat_prefix, cat_digits = cat
    prefix = reading.prefix
    if not cat_prefix and prefix and not reading.total_prefix:
        prefix = ""    # a set or language code glued before the number ("EN025/165")
    if _fold_code(_canonical(prefix, reading.digits)) != _fold_code(_canonical(cat_prefix, cat_digits)):
        return False
    if reading.total_prefix:
        # a subset total (TG05/TG30): the catalogue holds the main set's total, the prefixes must agree
        return _fold_code(reading.total_prefix) == _fold_code(cat_prefix)
    if card.printed_total <= 0:
        return True
    total = str(card.printed_total)
    read = reading.total_digits.lstrip("0") or "0"
    # one glued trailing digit: the WOTC rarity mark after the total is often read as one ("117/1324")
    return read == total or (len(read) == len(total) + 1 and read.startswith(total))


def view_matches(view: ViewReading, candidates: Sequence[CardRecord]) -> frozenset[int]:
    """Indices of the candidates this view's readings name; a set code read narrows equal numbers."""
    by_number = {i for i, card in enumerate(candidates) if any(number_matches(r, card) for r in view.numbers)}
    codes = {_fold_code(c) for c in view.codes}
    with_code = {i for i in by_number if candidates[i].set_code and _fold_code(candidates[i].set_code) in codes}
    return frozenset(with_code or by_number)


def views_naming(views: Sequence[ViewReading], card: CardRecord) -> int:
    """How many views have a reading of this printing's collector number."""
    return sum(1 for v in views if any(number_matches(r, card) for r in v.numbers))


class PrintingVerdict(enum.Enum):
    EXACT = "exact"              # the readings agree with exactly one candidate over enough views
    AMBIGUOUS = "ambiguous"      # readings name several candidates, too few views, or no candidate
    UNREADABLE = "unreadable"    # no collector number was read in any view


@dataclass(frozen=True)
class PrintingResolverConfig:
    """How many views must agree before a reading names a printing."""

    min_agreeing_views: int = doc(
        "views whose readings name the same candidate printing (and no other) before it is the exact "
        "printing; research (docs/PRINTINGS.md): confident wrong reads happen on 0–6 % of views, so one "
        "view is never enough", lo=1)

    def __post_init__(self) -> None:
        check_ranges(self)


# The research's recommendation (RESULTS.md "Decision rule": exactly one matching candidate over >= 2 views).
RECOMMENDED_MIN_AGREEING_VIEWS = 2
CLOSEUP_HEIGHT_MAX_PX = 2000


@dataclass(frozen=True)
class PrintingConfig:
    """The printing reader in the graph (docs/PRINTINGS.md): which closeups of a track it reads and how the
    smoother votes over them. Shared by the printing_reader and smoother nodes (the ``/**`` block)."""

    views_max: int = doc(
        "closeups of one track the reader reads, at most, when the track's art has several printings in the "
        "database; the smoother waits for them before a station's final (0: no reader: printings of one art "
        "stay AMBIGUOUS)", lo=0)
    min_agreeing_views: int = doc(
        "closeups whose readings name the same printing, and no view another, before the smoother confirms it "
        "(confident wrong reads happen on 0–6 % of views: one is never enough)", lo=1)
    view_interval_frames: int = doc("frames between two closeups of one track (distinct views of the card)", lo=1)
    card_height_px: int = doc(
        "height of the rectified closeup the camera cuts from its main stream (the reader reads from 500 px; "
        "research: 1000 px target, 700 px at least)", lo=64, hi=CLOSEUP_HEIGHT_MAX_PX)

    def __post_init__(self) -> None:
        check_ranges(self)

    @property
    def resolver(self) -> PrintingResolverConfig:
        return PrintingResolverConfig(min_agreeing_views=self.min_agreeing_views)


@dataclass(frozen=True)
class PrintingResolution:
    verdict: PrintingVerdict
    card: CardRecord | None      # the exact printing (EXACT only)
    agreeing_views: int          # views naming `card` (EXACT) or the best-supported candidate
    views: int                   # views read
    read: tuple[str, ...]        # every distinct collector number read, e.g. ("106/165", "105/165")
    reason: str


def resolve_printing(views: Sequence[ViewReading], candidates: Sequence[CardRecord],
                     config: PrintingResolverConfig, finish: str = "") -> PrintingResolution:
    """The exact printing among ``candidates`` (the best artwork's printings) named by the track's views.

    ``finish`` (core/finish.py: normal, holo, reverse_holo; anything else: not known) narrows printings the
    readings name alike, a normal and a reverse holo of one number, to the one of that finish."""
    read = tuple(dict.fromkeys(n.text for v in views for n in v.numbers))
    n_views = len(views)
    if not candidates:
        return PrintingResolution(PrintingVerdict.AMBIGUOUS, None, 0, n_views, read, "no candidate printings")
    if not read:
        return PrintingResolution(PrintingVerdict.UNREADABLE, None, 0, n_views, read,
                                  f"no collector number read in {n_views} views")
    support = [0] * len(candidates)
    for view in views:
        for i in view_matches(view, candidates):
            support[i] += 1
    named = [i for i, s in enumerate(support) if s > 0]
    shown = ", ".join(read)
    if not named:
        return PrintingResolution(PrintingVerdict.AMBIGUOUS, None, 0, n_views, read,
                                  f"read {shown}: no candidate printing has it")
    by_finish = ""
    if len(named) > 1 and finish in FOIL_CLASSES:
        narrowed = [named[k] for k in narrow_by_finish([candidates[i].finish for i in named], finish)]
        if len(narrowed) == 1:
            named, by_finish = narrowed, f", the {finish.replace('_', ' ')} of the printings read alike"
    best = max(named, key=lambda i: support[i])
    if len(named) > 1:
        which = ", ".join(f"{_label(candidates[i])} ({support[i]} views)" for i in named)
        return PrintingResolution(PrintingVerdict.AMBIGUOUS, None, support[best], n_views, read,
                                  f"readings name several printings: {which}")
    if support[best] < config.min_agreeing_views:
        return PrintingResolution(PrintingVerdict.AMBIGUOUS, None, support[best], n_views, read,
                                  f"{_label(candidates[best])} read in {support[best]} of {n_views} views, "
                                  f"{config.min_agreeing_views} needed")
    return PrintingResolution(PrintingVerdict.EXACT, candidates[best], support[best], n_views, read,
                              f"{_label(candidates[best])} read in {support[best]} of {n_views} views{by_finish}")


def _label(card: CardRecord) -> str:
    total = f"/{card.printed_total}" if card.printed_total > 0 else ""
    return f"{card.card_id} {card.number}{total}"
