"""Re-extract the real card faces (training and measurement only, never committed) from their repositories.

Usage: python -m training.data_sources.extract_card_faces MIRRORS OUT
MIRRORS holds one git checkout or bare mirror per source repository, named ``owner+name`` (what the
workplace's ``fetch`` tool writes under /work/.mirror); OUT receives one folder per source below
(``pokemon-sv151/``, ``pokemon-wotc/``, ``mtg-lea/``) with the images as they are at the recorded
commit. Those folders are what ``bench.open_set --faces``, ``bench.model_embeddings``,
``bench.printing_ocr`` and ``training.make_detector_data --faces`` read (see README.md here).
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
from dataclasses import dataclass

from training.data_sources.assemble_real_val import git_dir, read_blob

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class FaceSource:
    folder: str      # under OUT
    repo: str        # owner/name
    commit: str      # the files are read at this commit (the SV151 images are gone from its newest one)
    prefix: str      # only files under this path ("" = the whole tree), flattened into ``folder``
    count: int       # how many images the source had when it was first extracted


SOURCES = (
    FaceSource("pokemon-sv151", "worklocalinc/pokemon-tcg-151-collection",
               "ad0a9409c676b59385f9559388e8671bafb179c8", "", 207),
    FaceSource("pokemon-wotc", "evanfrang/pokemon_card_images",
               "8aba4205bf4f2f37d249ca49fa70bcc95c6f859c", "pokemon_card_images/", 1140),
    FaceSource("mtg-lea", "freeall/mtg-card-detector",
               "4ce7d6d78d578814c794a5daf189cc72a207a565", "test/limited_edition_alpha/", 290),
)


def image_paths(gdir: pathlib.Path, commit: str, prefix: str) -> list[str]:
    """The image files under ``prefix`` at ``commit``, sorted."""
    out = subprocess.run(["git", "--git-dir", str(gdir), "ls-tree", "-r", "--name-only", commit],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{gdir}: cannot list {commit}: {out.stderr.strip()}")
    return sorted(p for p in out.stdout.splitlines()
                  if p.startswith(prefix) and p.lower().endswith(IMAGE_SUFFIXES))


def extract(mirrors: pathlib.Path, out: pathlib.Path, sources: tuple[FaceSource, ...] = SOURCES) -> dict[str, int]:
    """Images written per folder; a source whose mirror is missing or unreadable is reported and skipped."""
    written: dict[str, int] = {}
    for src in sources:
        try:
            gdir = git_dir(mirrors, src.repo)
            paths = image_paths(gdir, src.commit, src.prefix)
        except (FileNotFoundError, RuntimeError) as err:
            print(f"skipped {src.folder}: {err}", file=sys.stderr)
            continue
        dest = out / src.folder
        dest.mkdir(parents=True, exist_ok=True)
        for path in paths:
            (dest / pathlib.PurePosixPath(path).name).write_bytes(read_blob(gdir, src.commit, path))
        written[src.folder] = len(paths)
        if len(paths) != src.count:
            print(f"{src.folder}: {len(paths)} images, {src.count} when first extracted", file=sys.stderr)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__)
        return 2
    written = extract(pathlib.Path(argv[0]), pathlib.Path(argv[1]))
    for folder, n in written.items():
        print(f"{folder}: {n} images")
    return 0 if len(written) == len(SOURCES) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
