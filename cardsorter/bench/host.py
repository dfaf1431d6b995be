"""What every benchmark prints about the machine it ran on."""

from __future__ import annotations

import pathlib
import platform

CPUINFO_NAME_KEYS = ("model name", "hardware", "cpu model")   # x86, then Arm / other kernels


def cpu_model() -> str:
    """The CPU's name from /proc/cpuinfo, else what ``platform`` says (processor, else architecture)."""
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(CPUINFO_NAME_KEYS):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
