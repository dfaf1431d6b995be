"""Terminal output shared by the command line and the benchmarks: a one-line progress bar."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

BAR_WIDTH = 30


def progress_bar(stream: Any = None) -> Callable[[str, int, int], None]:
    """A progress callback drawing `stage [#####.....] done/total` on one line of ``stream`` (stderr)."""
    def report(stage: str, done: int, total: int) -> None:
        out = stream or sys.stderr
        filled = BAR_WIDTH * done // max(total, 1)
        out.write(f"\r{stage:>15} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{total}")
        if done >= total:
            out.write("\n")
        out.flush()
    return report
