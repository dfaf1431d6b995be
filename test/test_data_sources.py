"""Real-data sources for the detector: the committed annotations are well formed and reassembly reads git blobs."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from training.data_sources import assemble_real_val as arv

TAGS = {"glare", "sleeve", "hand", "blur", "tilt", "textured_background", "small", "large", "multi"}


def load() -> dict:
    return json.loads(arv.ANNOTATIONS.read_text())


def cross(o: list[float], a: list[float], b: list[float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def test_every_card_is_a_clockwise_quad_inside_its_photo() -> None:
    for im in load()["images"]:
        assert im["file"].startswith("multi/" if len(im["cards"]) > 1 else "single/"), im["file"]
        assert set(im["tags"]) <= TAGS, im["file"]
        for card in im["cards"]:
            q = card["corners"]
            assert len(q) == 4 and len(card["occluded"]) == 4, im["file"]
            assert all(0 <= x <= im["width"] and 0 <= y <= im["height"] for x, y in q), im["file"]
            # TL -> TR -> BR -> BL turns the same way at every corner (clockwise with y pointing down)
            assert all(cross(q[i], q[(i + 1) % 4], q[(i + 2) % 4]) > 0 for i in range(4)), im["file"]


def test_sources_name_repository_commit_and_path() -> None:
    for im in load()["images"]:
        repo, commit, path = arv.parse_source(im["source"])
        assert repo.count("/") == 1 and len(commit) == 40 and path, im["source"]


def test_reassembly_reads_the_blob_at_the_recorded_commit(tmp_path: pathlib.Path) -> None:
    repo = tmp_path / "owner+name"
    repo.mkdir()

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    (repo / "photo.jpg").write_bytes(b"first")
    git("add", "photo.jpg")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD").strip()
    (repo / "photo.jpg").write_bytes(b"second")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-am", "two")
    gdir = arv.git_dir(tmp_path, "owner/name")
    assert arv.read_blob(gdir, first, "photo.jpg") == b"first"
    with pytest.raises(RuntimeError, match="cannot read"):
        arv.read_blob(gdir, first, "missing.jpg")
    with pytest.raises(FileNotFoundError, match="no git directory"):
        arv.git_dir(tmp_path, "other/repo")


def test_card_faces_are_extracted_at_the_recorded_commit_and_a_missing_mirror_is_skipped(tmp_path: pathlib.Path,
                                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from training.data_sources import extract_card_faces as ecf

    repo = tmp_path / "mirrors" / "owner+faces"
    (repo / "scans").mkdir(parents=True)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    (repo / "scans" / "001_Sprout.png").write_bytes(b"png-1")
    (repo / "scans" / "notes.txt").write_text("not an image")
    (repo / "README.md").write_text("readme")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    first = git("rev-parse", "HEAD").strip()
    git("rm", "-q", "scans/001_Sprout.png")   # gone from the newest commit, as the SV151 scans are
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "two")
    sources = (ecf.FaceSource("faces", "owner/faces", first, "scans/", 1),
               ecf.FaceSource("absent", "owner/absent", first, "", 3))
    written = ecf.extract(tmp_path / "mirrors", tmp_path / "out", sources)
    assert written == {"faces": 1}
    assert [p.name for p in (tmp_path / "out" / "faces").iterdir()] == ["001_Sprout.png"]
    assert (tmp_path / "out" / "faces" / "001_Sprout.png").read_bytes() == b"png-1"
    assert "skipped absent" in capsys.readouterr().err


def test_the_recorded_card_face_sources_name_a_commit_each() -> None:
    from training.data_sources import extract_card_faces as ecf

    assert {s.folder for s in ecf.SOURCES} == {"pokemon-sv151", "pokemon-wotc", "mtg-lea"}
    assert all(s.repo.count("/") == 1 and len(s.commit) == 40 and s.count > 0 for s in ecf.SOURCES)
