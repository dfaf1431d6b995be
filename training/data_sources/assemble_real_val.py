"""Re-assemble the real validation set (photos + annotations.json) from the public repositories it cites.

Usage: python -m training.data_sources.assemble_real_val MIRRORS OUT
MIRRORS holds one git checkout or bare mirror per source repository, named ``owner+name`` (a bare
``owner+name/repo`` directory also works); OUT receives single/, multi/ and annotations.json.
Each image's bytes are read with ``git cat-file`` at the commit recorded in its ``source`` field, so the
set is byte-identical to the one that was annotated. Nothing is downloaded here.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ANNOTATIONS = HERE / "real_val_annotations.json"


def parse_source(source: str) -> tuple[str, str, str]:
    """Split ``owner/name@commit:path`` into its three parts."""
    repo, rest = source.split("@", 1)
    commit, path = rest.split(":", 1)
    return repo, commit, path


def git_dir(mirrors: pathlib.Path, repo: str) -> pathlib.Path:
    base = mirrors / repo.replace("/", "+")
    for cand in (base / "repo", base / ".git", base):
        if (cand / "HEAD").exists():
            return cand
    raise FileNotFoundError(f"no git directory for {repo} under {base}")


def read_blob(gdir: pathlib.Path, commit: str, path: str) -> bytes:
    out = subprocess.run(["git", "--git-dir", str(gdir), "cat-file", "blob", f"{commit}:{path}"],
                         capture_output=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{gdir}: cannot read {commit}:{path}: {out.stderr.decode(errors='replace').strip()}")
    return out.stdout


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    mirrors, out = pathlib.Path(argv[0]), pathlib.Path(argv[1])
    ann = json.loads(ANNOTATIONS.read_text())
    missing = 0
    for im in ann["images"]:
        repo, commit, path = parse_source(im["source"])
        try:
            data = read_blob(git_dir(mirrors, repo), commit, path)
        except (FileNotFoundError, RuntimeError) as err:
            print(f"skipped {im['file']}: {err}", file=sys.stderr)
            missing += 1
            continue
        dst = out / im["file"]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
    (out / "annotations.json").write_text(json.dumps(ann, indent=1))
    n = len(ann["images"])
    print(f"{n - missing} of {n} photos written to {out} ({sum(len(i['cards']) for i in ann['images'])} cards annotated)")
    return 1 if missing else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
