"""`pip install .` without ROS: build the wheel, install it into a fresh venv, run the offline commands.

Marked `wheel`: it creates a venv from this interpreter (no system site-packages, so no ROS wheels),
builds the wheel with plain `pip wheel --no-deps`, installs it with its dependencies from PyPI (pip's
cache makes later runs fast; torch is not installed), then runs `cardsorter catalog generate`,
`db build`, `db check` and `identify --db` on a small procedural catalogue from a directory outside
the repository, and checks that a ROS command explains what it needs instead of a traceback.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterator

import cv2
import numpy as np
import pytest

pytestmark = pytest.mark.wheel

ROOT = pathlib.Path(__file__).resolve().parent.parent
# What setup.py reads or packs (the same as MANIFEST.in plus the packages): nothing else goes into the build.
BUILD_INPUTS = ("setup.py", "pyproject.toml", "MANIFEST.in", "package.xml", "README.md", "LICENSE", "THIRD_PARTY.md",
                "requirements", "config", "models", "cardsorter", "training")
# Variables of the ROS development environment (scripts/env.sh) that must not leak into the fresh venv.
ROS_ENV = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "COLCON_PREFIX_PATH",
           "LD_LIBRARY_PATH", "CARDSORTER_ROOT", "CARDSORTER_VENV", "_ROS_WHEELS_BOOTSTRAP_COMPLETE", "ROS_DISTRO")
PIP_TIMEOUT_S = 900   # a cold pip cache downloads OpenCV, ONNX Runtime, matplotlib, numpy (~100 MB)
CLI_TIMEOUT_S = 300


def package_version() -> str:
    return ET.parse(ROOT / "package.xml").getroot().findtext("version") or ""


def clean_env(venv: pathlib.Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ROS_ENV}
    dev_bins = {str(pathlib.Path(sys.prefix) / "bin"), os.environ.get("CARDSORTER_VENV", "") + "/bin"}
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p not in dev_bins]
    env["PATH"] = os.pathsep.join([str(venv / "bin"), *path])
    env["VIRTUAL_ENV"] = str(venv)
    return env


def run(cmd: list[str], cwd: pathlib.Path, env: dict[str, str],
        timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{proc.args} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A fresh venv with the wheel installed; its environment and a work directory outside the repository.
    Removed afterwards (the venv is about 400 MB)."""
    root = tmp_path_factory.mktemp("wheel")
    try:
        yield _install(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _install(root: pathlib.Path) -> dict[str, object]:
    src = root / "src"
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(exist_ok=True)
            shutil.copy2(source, src / name)
    venv = root / "venv"
    ok(run([sys.executable, "-m", "venv", str(venv)], root, clean_env(venv), timeout=120))
    env = clean_env(venv)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    ok(run([*pip, "wheel", "--no-deps", "-w", str(root / "dist"), str(src)], root, env, timeout=PIP_TIMEOUT_S))
    (wheel,) = (root / "dist").glob("cardsorter-*.whl")
    ok(run([*pip, "install", str(wheel)], root, env, timeout=PIP_TIMEOUT_S))
    work = root / "work"
    work.mkdir()
    return {"venv": venv, "env": env, "work": work, "wheel": wheel}


def cardsorter(installed: dict[str, object], *args: str) -> subprocess.CompletedProcess[str]:
    venv, env, work = installed["venv"], installed["env"], installed["work"]
    assert isinstance(venv, pathlib.Path) and isinstance(work, pathlib.Path) and isinstance(env, dict)
    return run([str(venv / "bin" / "cardsorter"), *args], work, env)


def photo_of(card: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The card on a dark table, a little rotated, as a phone photo shows it."""
    img = cv2.imread(str(card))
    h, w = img.shape[:2]
    canvas = np.full((h + 240, w + 240, 3), 35, np.uint8)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 7.0, 1.0)
    m[:, 2] += 120
    cv2.warpAffine(img, m, (canvas.shape[1], canvas.shape[0]), dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    cv2.imwrite(str(out), canvas)
    return out


def test_the_wheel_is_pure_python_with_the_version_of_package_xml(installed: dict[str, object]) -> None:
    wheel = installed["wheel"]
    assert isinstance(wheel, pathlib.Path)
    assert wheel.name == f"cardsorter-{package_version()}-py3-none-any.whl"


def test_the_venv_has_no_ros_and_the_package_comes_from_the_wheel(installed: dict[str, object]) -> None:
    venv, env, work = installed["venv"], installed["env"], installed["work"]
    assert isinstance(venv, pathlib.Path) and isinstance(work, pathlib.Path) and isinstance(env, dict)
    code = ("import importlib.util, cardsorter.config as c;"
            "print(importlib.util.find_spec('rclpy'), importlib.util.find_spec('cardsorter.msg'));"
            "print(c.__file__); print(c.default_params_file()); print(c.resolve_path('models/cardnet.yaml'))")
    out = ok(run([str(venv / "bin" / "python"), "-c", code], work, env)).stdout.splitlines()
    assert out[0] == "None None", "the fresh venv must not see rclpy or a generated cardsorter.msg"
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert out[1] == str(site / "cardsorter" / "config.py")
    assert out[2] == str(site / "cardsorter" / "_share" / "config" / "sorter.yaml")
    assert out[3] == str(site / "cardsorter" / "_share" / "models" / "cardnet.yaml")
    # Every file of the source package reaches the install: modules and data (the web view's static files).
    source = {f.relative_to(ROOT) for f in (ROOT / "cardsorter").rglob("*")
              if f.is_file() and "__pycache__" not in f.parts and f.suffix != ".pyc"}
    missing = sorted(str(f) for f in source if not (site / f).is_file())
    assert missing == [], f"not in the wheel: {missing}"
    version = ok(cardsorter(installed, "version")).stdout
    assert version.startswith(f"cardsorter {package_version()} (without ROS 2: rclpy is not installed")


def test_catalog_db_build_check_and_identify_find_the_card(installed: dict[str, object]) -> None:
    work = installed["work"]
    assert isinstance(work, pathlib.Path)
    gen = ok(cardsorter(installed, "catalog", "generate", "--out", "catalog", "--cards", "8", "--seed", "5"))
    assert "wrote 8 cards" in gen.stdout
    build = ok(cardsorter(installed, "db", "build", "--images", "catalog/images", "--metadata",
                          "catalog/metadata.json", "--out", "db"))
    assert "8 templates of 8 cards" in build.stdout
    check = ok(cardsorter(installed, "db", "check", "db"))
    assert check.stdout.startswith("ok db: ") and "model cardnet-" in check.stdout

    # A card whose artwork no other printing shares: its identity must be confirmed, not ambiguous.
    cards = json.loads((work / "catalog" / "metadata.json").read_text())
    arts = Counter(c["art_id"] for c in cards)
    card = next(c for c in cards if arts[c["art_id"]] == 1)
    (image,) = (work / "catalog" / "images").glob(f"{card['id']}_*.png")
    photo = photo_of(image, work / "photo.png")
    found = ok(cardsorter(installed, "identify", "--db", "db", str(photo)))
    (record,) = [json.loads(line) for line in found.stdout.splitlines()]
    assert record["class_name"] == "card"
    assert (record["status"], record["card_id"], record["name"]) == ("confirmed", card["id"], card["name"])


def test_a_ros_command_says_it_needs_ros(installed: dict[str, object]) -> None:
    for args in (("demo",), ("run", "--source", "synthetic")):
        proc = cardsorter(installed, *args)
        assert proc.returncode == 2, proc
        assert f"cardsorter {args[0]}: needs ROS 2: use `make demo` or a ROS install" in proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
