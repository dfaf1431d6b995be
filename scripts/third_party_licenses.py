"""Print the licenses of cardsorter's installed dependencies (and theirs) as a markdown table, from package metadata.

Usage (in the venv to report on, e.g. a fresh `pip install .`):
    python scripts/third_party_licenses.py [requirements/runtime.txt …]
The License-Expression field is used when present, else the License field's first line, else the
trove classifiers; a package whose metadata names no license is printed as such (check it by hand).
"""

from __future__ import annotations

import pathlib
import re
import sys
from importlib import metadata

ROOT = pathlib.Path(__file__).resolve().parent.parent
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_LICENSE_LINE_MAX = 60


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(path: pathlib.Path) -> list[str]:
    names: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line and not line.startswith("-") and (m := _NAME.match(line)):
            names.append(m.group(1))
    return names


def license_of(dist: metadata.Distribution) -> str:
    meta = dist.metadata
    if meta.get("License-Expression"):
        return str(meta["License-Expression"])
    text = (meta.get("License") or "").strip()
    if text and len(text.splitlines()[0]) <= _LICENSE_LINE_MAX and "\n" not in text.strip():
        return text
    classifiers = [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    if classifiers:
        return ", ".join(classifiers) + " (classifier)"
    if text:
        return text.splitlines()[0][:_LICENSE_LINE_MAX] + " (License field)"
    files = meta.get_all("License-File") or []
    return f"not in the metadata: read its {', '.join(files)}" if files else "not in the metadata"


def applies(requirement: str) -> bool:
    """False for a requirement whose environment marker excludes this machine (e.g. Windows only)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:   # without packaging every requirement is followed
        return True
    marker = Requirement(requirement).marker
    return marker is None or marker.evaluate({"extra": ""})


def walk(roots: list[str]) -> dict[str, tuple[str, str, str]]:
    """{normalised name: (name, version, license)} for the roots and every installed dependency of theirs."""
    found: dict[str, tuple[str, str, str]] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = normalise(name)
        if key in found:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            found[key] = (name, "not installed", "-")
            continue
        found[key] = (dist.metadata["Name"], dist.version, license_of(dist))
        for req in dist.requires or []:
            if "extra ==" in req or not applies(req):
                continue
            if (m := _NAME.match(req)) is not None:
                todo.append(m.group(1))
    return found


def main(argv: list[str]) -> int:
    files = [pathlib.Path(a) for a in argv] or [ROOT / "requirements" / "runtime.txt"]
    direct = {normalise(n) for f in files for n in requirement_names(f)}
    rows = walk([n for f in files for n in requirement_names(f)])
    print("| package | version | license (from its metadata) | why |")
    print("|---|---|---|---|")
    for key, (name, version, lic) in sorted(rows.items()):
        print(f"| {name} | {version} | {lic} | {'direct' if key in direct else 'dependency'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
