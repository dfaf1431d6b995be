"""setup.py's inputs, the data-file lookup of a wheel install, ROS commands without ROS, and colcon's view."""

from __future__ import annotations

import argparse
import importlib.util
import pathlib
import shutil
import subprocess
import sys
import types

import pytest

from cardsorter import config
from cardsorter.cli import basic, bench, extras  # noqa: F401 - the command modules load before any patch, as in a full run
from cardsorter.cli.__main__ import main

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_setup_py() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("cardsorter_setup_py", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)   # not __main__: setup() does not run
    return module


def test_setup_py_reads_requirements_as_pip_does(tmp_path: pathlib.Path) -> None:
    (tmp_path / "base.txt").write_text("numpy==2.2.6 \\\n    --hash=sha256:aa --hash=sha256:bb\n")
    (tmp_path / "lock.txt").write_text(
        "# a lock file\n--index-url https://pypi.org/simple\n-r base.txt\n\n"
        "onnxruntime==1.22.1    # pinned by robot-a\nrosbags==0.11.9; python_version >= '3.11'\n")
    assert load_setup_py().requirements(tmp_path / "lock.txt") == [
        "numpy==2.2.6", "onnxruntime==1.22.1", "rosbags==0.11.9; python_version >= '3.11'"]


def test_setup_py_takes_its_metadata_from_package_xml_and_its_pins_from_requirements() -> None:
    setup_py = load_setup_py()
    meta = setup_py.package_xml()
    assert meta["name"] == "cardsorter" and meta["license"] == "Apache-2.0"
    assert meta["version"] == config.package_version()
    runtime = setup_py.requirements("runtime.txt")
    assert "usearch==2.26.6" in runtime and all(not r.startswith(("#", "-")) for r in runtime)
    assert not any(r.startswith("torch") for r in runtime), "torch belongs to the train extra only"
    assert any(r.startswith("torch==") for r in setup_py.requirements("train.txt"))


def test_a_wheel_install_finds_config_and_models_in_its_package_data(tmp_path: pathlib.Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    share = tmp_path / "site-packages" / "cardsorter" / "_share"
    shutil.copytree(ROOT / "config", share / "config")
    (share / "models").mkdir()
    (share / "models" / "cardnet.yaml").write_text("model_id: x\n")
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path / "site-packages")   # no package.xml: not a checkout
    monkeypatch.setattr(config, "WHEEL_SHARE", share)
    monkeypatch.setattr(config, "_ament_share", lambda: None)
    monkeypatch.chdir(tmp_path)
    assert not config.is_source_checkout()
    assert config.default_params_file() == share / "config" / "sorter.yaml"
    assert config.resolve_path("models/cardnet.yaml") == share / "models" / "cardnet.yaml"
    # An output path found nowhere stays relative to the working directory (not inside site-packages).
    assert config.resolve_path("var/inventory.sqlite") == pathlib.Path("var/inventory.sqlite")
    monkeypatch.setattr(config, "WHEEL_SHARE", tmp_path / "nothing")
    with pytest.raises(config.ConfigError, match="config/sorter.yaml"):
        config.default_params_file()


@pytest.fixture()
def without_ros(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extras, "ros_missing", lambda: "rclpy is not installed")


@pytest.mark.parametrize("argv", [["run", "--source", "synthetic", "--set", "camera.fps=5"], ["demo", "--cards", "3"],
                                  ["record", "bag", "--run"], ["replay", "bag", "--db", "db"],
                                  ["bench", "--only", "graph"]])
def test_ros_commands_without_ros_say_so(argv: list[str], without_ros: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == extras.MISSING_EXIT
    err = capsys.readouterr().err
    assert "needs ROS 2: use `make demo` or a ROS install (rclpy is not installed)" in err
    assert err.startswith(f"cardsorter {argv[0]}")


def test_an_offline_command_still_refuses_unknown_arguments(without_ros: None) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["inventory", "summary", "--db", "x.sqlite", "--no-such-flag"])
    assert exit_info.value.code == 2


def test_version_works_without_ros(without_ros: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.startswith(f"cardsorter {config.package_version()} (without ROS 2: rclpy")


def test_guarded_explains_a_missing_ros_module_and_reraises_any_other(capsys: pytest.CaptureFixture[str]) -> None:
    def needs(module: str) -> int:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)

    assert extras.guarded("run", lambda _a: needs("rclpy.executors"))(argparse.Namespace()) == extras.MISSING_EXIT
    assert "cardsorter run: needs ROS 2" in capsys.readouterr().err
    assert extras.guarded("demo", lambda _a: needs("cardsorter.msg"))(argparse.Namespace()) == extras.MISSING_EXIT
    with pytest.raises(ModuleNotFoundError):
        extras.guarded("run", lambda _a: needs("numpy_typo"))(argparse.Namespace())


BLOCK_ROS = """
import importlib.abc, importlib, pkgutil, sys
ROS = {ros!r}
class BlockRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == m or name.startswith(m + ".") for m in ROS):
            raise ModuleNotFoundError(f"No module named {{name!r}} (hidden by the test)", name=name)
        return None
sys.meta_path.insert(0, BlockRos())
import cardsorter
names = [m.name for m in pkgutil.walk_packages(cardsorter.__path__, "cardsorter.")
         if not m.name.startswith(("cardsorter.ros", "cardsorter.msg", "cardsorter.srv"))]
for name in names:
    importlib.import_module(name)
from cardsorter.cli.__main__ import build_parser, main
build_parser()
print(len(names), sorted(m for m in sys.modules if m.split(".")[0] in {{r.split(".")[0] for r in ROS}} - {{"cardsorter"}}))
sys.exit(main(["demo", "--cards", "2"]))
"""


def test_every_module_but_the_ros_nodes_imports_without_ros() -> None:
    """With rclpy, ament_index and the generated messages hidden, every other module and the CLI still load."""
    code = BLOCK_ROS.format(ros=extras.ROS_MODULES)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         check=False)
    assert out.returncode == extras.MISSING_EXIT, out.stdout + out.stderr
    count, leaked = out.stdout.split(" ", 1)
    assert int(count) >= 40 and leaked.strip() == "[]", out.stdout
    assert "cardsorter demo: needs ROS 2: use `make demo` or a ROS install" in out.stderr
    assert "Traceback" not in out.stderr


def test_ros_missing_names_what_is_absent_here() -> None:
    # This suite runs in the ROS development environment (bootstrap): rclpy and the generated messages exist.
    assert extras.ros_missing() is None


def test_colcon_sees_one_ament_cmake_package_despite_setup_py() -> None:
    colcon = shutil.which("colcon")
    if colcon is None:
        pytest.skip("colcon is not installed here (scripts/bootstrap.sh installs it)")
    out = subprocess.run([colcon, "list", "--base-paths", str(ROOT)], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True).stdout
    assert out.splitlines() == [f"cardsorter\t{ROOT}\t(ros.ament_cmake)"], "one package, built by ament_cmake"
