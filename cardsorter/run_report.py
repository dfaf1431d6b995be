"""Run reports: a markdown summary with PNG figures (per-stage latency, decision bands, bin counts)."""

from __future__ import annotations

import collections
import math
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _num(value: str | None) -> float:
    try:
        return float(value) if value is not None else math.nan
    except ValueError:
        return math.nan


def stage_latencies(diagnostics: Mapping[str, Mapping[str, str]]) -> list[tuple[str, float, float, float]]:
    """(node, p50 ms, p95 ms, processed) per node from the last /diagnostics of each."""
    rows = []
    for name, values in sorted(diagnostics.items()):
        rows.append((name.split("/")[-1], _num(values.get("latency_p50_ms")), _num(values.get("latency_p95_ms")),
                     _num(values.get("processed"))))
    return rows


def plot_latency(rows: Sequence[tuple[str, float, float, float]], path: pathlib.Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = [r[0] for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [r[1] for r in rows], width=0.4, label="p50")
    ax.bar([i + 0.2 for i in x], [r[2] for r in rows], width=0.4, label="p95")
    ax.set_xticks(list(x), names, rotation=20)
    ax.set_ylabel("ms per call")
    ax.set_title("Per-stage latency")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bands(distances: Mapping[str, Sequence[float]], thresholds: Mapping[str, float], path: pathlib.Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = [i / 100 for i in range(0, 101, 2)]
    for band, values in sorted(distances.items()):
        if values:
            ax.hist([min(v, 1.0) for v in values], bins=bins, alpha=0.6, label=f"{band} ({len(values)})")
    for name, value in thresholds.items():
        ax.axvline(value, linestyle="--", color="k", linewidth=1)
        ax.text(value, ax.get_ylim()[1] * 0.9, f" {name}", fontsize=7)
    ax.set_xlabel("cosine distance of the best card (per view)")
    ax.set_ylabel("views")
    ax.set_title("Decision bands")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_bins(bin_counts: Mapping[str, int], path: pathlib.Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    names = sorted(bin_counts)
    ax.bar(names, [bin_counts[n] for n in names], color="tab:green")
    ax.set_ylabel("cards")
    ax.set_title("Cards per bin")
    plt.setp(ax.get_xticklabels(), rotation=20)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def bin_counts(sorted_bins: Sequence[str]) -> dict[str, int]:
    return dict(collections.Counter(sorted_bins))
