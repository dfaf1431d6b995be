"""Static checks the style guide asks for: mypy --strict on core/ and backends/, ruff on everything."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_core_and_backends_pass_mypy_strict() -> None:
    out = run(sys.executable, "-m", "mypy", "--strict", "cardsorter/core", "cardsorter/backends")
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is installed by requirements/dev.txt")
def test_ruff_is_clean() -> None:
    out = run("ruff", "check", "cardsorter", "test", "training", "--output-format", "concise")
    assert out.returncode == 0, out.stdout + out.stderr
