"""Config-field helpers every layer may use: a documented field with an optional range, and its checks."""

from __future__ import annotations

import dataclasses
from typing import Any


def doc(text: str, *, lo: float | None = None, hi: float | None = None) -> Any:
    """Field with a description and no default: ``fps: float = doc("frames per second", lo=1)``.

    ``lo`` / ``hi`` are inclusive bounds: checked by ``check_ranges`` (from the config's
    ``__post_init__``) and published as the ROS parameter's range (cardsorter.ros.params).
    """
    metadata: dict[str, Any] = {"doc": text}
    if lo is not None or hi is not None:
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"doc range low {lo} is above high {hi}")
        metadata["range"] = (lo, hi)
    return dataclasses.field(metadata=metadata)


def describe(f: dataclasses.Field[Any]) -> str:
    return str(f.metadata.get("doc", f.name))


def value_range(f: dataclasses.Field[Any]) -> tuple[float | None, float | None]:
    """The inclusive (low, high) bounds a field declares with ``doc(..., lo=, hi=)``; None: unbounded."""
    lo, hi = f.metadata.get("range", (None, None))
    return lo, hi


def check_ranges(config: Any) -> None:
    """ValueError naming the first field of dataclass ``config`` outside its declared range."""
    for f in dataclasses.fields(config):
        lo, hi = value_range(f)
        value = getattr(config, f.name)
        if (lo is not None and not value >= lo) or (hi is not None and not value <= hi):
            bounds = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            raise ValueError(f"{f.name} must be in {bounds}, got {value}")


def section(text: str) -> Any:
    """A nested settings dataclass under its own name: ``classical: ClassicalConfig = section("...")``
    holds the parameters ``classical.*`` (cardsorter.settings walks it)."""
    return dataclasses.field(metadata={"doc": text, "section": "named"})


def inline(text: str) -> Any:
    """A nested settings dataclass whose fields sit at this level (no prefix): a core config embedded
    in a node's settings, e.g. the smoother's ``confirm_views`` at the top of its block."""
    return dataclasses.field(metadata={"doc": text, "section": "inline"})


def section_kind(f: dataclasses.Field[Any]) -> str | None:
    """``"named"``, ``"inline"`` or None (a parameter)."""
    kind = f.metadata.get("section")
    return str(kind) if kind is not None else None
