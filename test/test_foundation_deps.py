"""Dependencies pinned exactly: the lock files cover requirements/*.txt, and this environment matches them."""

from __future__ import annotations

import importlib.metadata
import os
import pathlib
import shutil
import stat
import subprocess

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = pathlib.Path(__file__).resolve().parent.parent
REQ = ROOT / "requirements"


def _lines(path: pathlib.Path) -> list[str]:
    return [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines() if ln.split("#", 1)[0].strip()]


def _lock(name: str) -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in _lines(REQ / name):
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==" and not req.marker and not req.extras, f"{name}: {line} is not an exact pin"
        key = canonicalize_name(req.name)
        assert key not in pins, f"{name}: {req.name} pinned twice"
        pins[key] = spec.version
    return pins


def test_the_lock_files_pin_every_requirement_exactly_within_its_range() -> None:
    base, train = _lock("lock.txt"), _lock("lock-train.txt")
    assert not set(base) & set(train), "a package in both lock files"
    for source, lock in (("ros-jazzy.txt", base), ("runtime.txt", base), ("dev.txt", base),
                         ("train.txt", {**base, **train})):
        for line in _lines(REQ / source):
            req = Requirement(line)
            key = canonicalize_name(req.name)
            assert key in lock, f"{source}: {req.name} is not in the lock (run python scripts/lock.py)"
            assert req.specifier.contains(lock[key], prereleases=True), \
                f"{source}: {line} does not admit the locked {req.name}=={lock[key]}"


def test_the_loose_requirements_pin_onnxruntime_to_the_measured_version() -> None:
    # onnxruntime 1.32.0 sends DNS queries ~10 s after a session opens; 1.22.1 opens no socket
    # (strace, docs/DEVELOPING.md "No network"). A loose range would let pip pick the newer one.
    (line,) = [ln for ln in _lines(REQ / "runtime.txt") if ln.startswith("onnxruntime")]
    assert line == "onnxruntime==1.22.1"
    assert _lock("lock.txt")["onnxruntime"] == "1.22.1"


def test_the_packages_installed_without_their_dependencies_are_pinned_and_opencv_stays_headless() -> None:
    nodeps = _lock("no-deps.txt")
    assert nodeps == {"rapidocr-onnxruntime": "1.4.4"}
    assert not set(nodeps) & set(_lock("lock.txt")), "a no-deps package is also in the lock"
    for name, version in nodeps.items():
        assert importlib.metadata.version(name) == version, "run scripts/bootstrap.sh"
    # its declared opencv-python (the GUI build) would replace opencv-python-headless's cv2
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.version("opencv-python")
    # its real dependencies are in the lock
    assert {"pyclipper", "shapely", "six", "tqdm", "pillow", "pyyaml", "onnxruntime", "numpy"} <= set(_lock("lock.txt"))


def test_this_environment_has_the_locked_versions() -> None:
    wrong = []
    locks = [_lock("lock.txt")]
    try:
        importlib.metadata.version("torch")
        locks.append(_lock("lock-train.txt"))
    except importlib.metadata.PackageNotFoundError:
        pass                                    # the training extra is optional
    for lock in locks:
        for name, version in lock.items():
            try:
                have = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                wrong.append(f"{name} not installed (locked {version})")
                continue
            if have.split("+")[0] != version:
                wrong.append(f"{name} {have} installed, locked {version}")
    assert not wrong, "run scripts/bootstrap.sh: " + "; ".join(wrong)


# --- the bootstrap ----------------------------------------------------------------------------------

def _copy_tree(dst: pathlib.Path) -> pathlib.Path:
    """The files the source hash covers, copied (no venv, no install/)."""
    for name in ("msg", "srv", "scripts", "cardsorter", "launch", "config", "models", "requirements", "bin"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns("__pycache__", "*.onnx"))
    for name in ("CMakeLists.txt", "package.xml"):
        shutil.copy2(ROOT / name, dst / name)
    return dst


def _hash(tree: pathlib.Path) -> str:
    out = subprocess.run(["bash", str(tree / "scripts" / "bootstrap.sh"), "--source-hash"], capture_output=True,
                         text=True, timeout=60, check=True)
    return out.stdout.strip()


def test_install_is_rebuilt_when_anything_it_installs_changes(tmp_path: pathlib.Path) -> None:
    tree = _copy_tree(tmp_path / "repo")
    first = _hash(tree)
    assert len(first) == 16 and _hash(tree) == first
    seen = {first}
    for rel in ("config/sorter.yaml", "launch/sorter.launch.py", "cardsorter/inventory/sqlite_store.py", "msg/SortEvent.msg",
                "scripts/nodes/camera", "package.xml", "models/cardnet.yaml"):
        with (tree / rel).open("a") as f:
            f.write("\n# changed\n")
        now = _hash(tree)
        assert now not in seen, f"changing {rel} does not rebuild install/"
        seen.add(now)
    (tree / "cardsorter" / "__pycache__").mkdir(exist_ok=True)
    (tree / "cardsorter" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    assert _hash(tree) == now, "bytecode caches must not trigger a rebuild"


def test_bin_cardsorter_shows_bootstrap_progress_on_stderr_and_keeps_stdout_for_the_command(
        tmp_path: pathlib.Path) -> None:
    tree = tmp_path / "repo"
    (tree / "bin").mkdir(parents=True)
    (tree / "scripts").mkdir()
    shutil.copy2(ROOT / "bin" / "cardsorter", tree / "bin" / "cardsorter")
    # A stand-in bootstrap (the real one takes minutes): out of date for --check, then two progress lines.
    (tree / "scripts" / "bootstrap.sh").write_text(
        '[[ "${1:-}" == --check ]] && exit 1\n'
        'echo "[bootstrap] installing 185 pinned packages" >&2\necho "[bootstrap] ready" >&2\n')
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    (fake_bin / "python").write_text('#!/bin/sh\necho "command output: $*"\n')
    (fake_bin / "python").chmod(stat.S_IRWXU)
    (tree / "scripts" / "env.sh").write_text(f'export PATH="{fake_bin}:$PATH"\n')
    out = subprocess.run([str(tree / "bin" / "cardsorter"), "version"], capture_output=True, text=True, timeout=60, check=False,
                         env={**os.environ, "CARDSORTER_SKIP_BOOTSTRAP": "0"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "command output: -m cardsorter.cli version\n"
    assert "setting up the environment first" in out.stderr and "[bootstrap] installing 185" in out.stderr
    # up to date: nothing is said
    (tree / "scripts" / "bootstrap.sh").write_text('[[ "${1:-}" == --check ]] && exit 0\necho "ran" >&2\n')
    out = subprocess.run([str(tree / "bin" / "cardsorter"), "version"], capture_output=True, text=True, timeout=60,
                         check=False)
    assert out.returncode == 0 and out.stderr == "", out.stderr


@pytest.mark.parametrize("script", ["bootstrap.sh", "env.sh", "run_tests.sh", "golden.sh"])
def test_shell_scripts_parse(script: str) -> None:
    subprocess.run(["bash", "-n", str(ROOT / "scripts" / script)], check=True, timeout=30)
