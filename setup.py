"""pip's build of cardsorter without ROS: `pip install .` (offline tools) and `pip install .[train]`.

colcon builds the ROS 2 package from package.xml + CMakeLists.txt (build type ament_cmake: rosidl
generates cardsorter.msg/.srv) and never runs this file. Here the metadata comes from package.xml and
the dependencies from requirements/runtime.txt and requirements/train.txt, so each has one source;
config/ and models/ travel inside the wheel as cardsorter/_share (found by cardsorter.config.data_roots).
"""

from __future__ import annotations

import pathlib
import re
import shutil
import xml.etree.ElementTree as ET

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

ROOT = pathlib.Path(__file__).resolve().parent
SHARE_DIRS = ("config", "models")          # package data: copied to cardsorter/_share/<dir> in the wheel
SHARE_SKIP = ("__pycache__", "*.pyc", ".*")   # .keep and other dotfiles stay out
_COMMENT = re.compile(r"(^|\s)#.*$")
_HASH = re.compile(r"\s--hash[=\s]\S+")


def package_xml() -> dict[str, str]:
    """name, version, description, license and maintainer from package.xml (the ROS package's manifest)."""
    root = ET.parse(ROOT / "package.xml").getroot()
    maintainer = root.find("maintainer")
    fields = {
        "name": root.findtext("name"),
        "version": root.findtext("version"),
        "description": " ".join((root.findtext("description") or "").split()),
        "license": root.findtext("license"),
        "maintainer": maintainer.text if maintainer is not None else None,
        "maintainer_email": maintainer.get("email") if maintainer is not None else None,
    }
    missing = [k for k, v in fields.items() if not v]
    if missing:
        raise SystemExit(f"package.xml lacks {', '.join(missing)}")
    return {k: str(v).strip() for k, v in fields.items()}


def requirements(name: str | pathlib.Path) -> list[str]:
    """The requirement lines of requirements/<name> as pip reads them: comments, pip options and
    --hash parts dropped, continuation lines joined, `-r other.txt` followed."""
    path = ROOT / "requirements" / name
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    out: list[str] = []
    for raw in text.splitlines():
        line = _HASH.sub("", _COMMENT.sub("", raw)).strip()
        if not line:
            continue
        option, _, value = line.partition(" ")
        if option in ("-r", "--requirement"):
            out += requirements(path.parent / value.strip())   # relative to the including file
        elif not line.startswith("-"):   # -c, --index-url, --extra-index-url …: pip options, not requirements
            out.append(line)
    return out


def package_files(package: str) -> list[str]:
    """Every file of a package directory that is not Python source (e.g. cardsorter/web/static/*), relative to it."""
    base = ROOT / package
    return sorted(str(f.relative_to(base)) for f in base.rglob("*")
                  if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts)


class BuildPyWithShare(build_py):
    """build_py, plus config/ and models/ copied into the built package as cardsorter/_share/."""

    def run(self) -> None:
        super().run()
        share = pathlib.Path(self.build_lib) / "cardsorter" / "_share"
        shutil.rmtree(share, ignore_errors=True)   # no stale files from an earlier build
        for name in SHARE_DIRS:
            shutil.copytree(ROOT / name, share / name, ignore=shutil.ignore_patterns(*SHARE_SKIP))


def main() -> None:
    meta = package_xml()
    setup(
        name=meta["name"],
        version=meta["version"],
        description=meta["description"],
        long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
        long_description_content_type="text/markdown",
        maintainer=meta["maintainer"],
        maintainer_email=meta["maintainer_email"],
        license=meta["license"],
        license_files=["LICENSE", "THIRD_PARTY.md"],
        python_requires=">=3.11",
        packages=find_packages(include=["cardsorter", "cardsorter.*", "training", "training.*"]),
        package_data={"cardsorter": package_files("cardsorter")},
        install_requires=requirements("runtime.txt"),
        extras_require={"train": requirements("train.txt")},
        entry_points={"console_scripts": ["cardsorter = cardsorter.cli.__main__:main"]},
        cmdclass={"build_py": BuildPyWithShare},
        zip_safe=False,   # the models and YAML files are read from the file system
        classifiers=[
            "Programming Language :: Python :: 3",
            "Programming Language :: Python :: 3.11",
            "Programming Language :: Python :: 3.12",
            "Operating System :: POSIX :: Linux",
            "Topic :: Scientific/Engineering :: Image Recognition",
        ],
    )


# setuptools.build_meta (pip) runs this file as __main__; tests import it for requirements() and package_xml().
if __name__ == "__main__":
    main()
