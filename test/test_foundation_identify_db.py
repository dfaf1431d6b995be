"""`identify --db`: photos in, one identity per card found (the command a user runs on a new database)."""

from __future__ import annotations

import json
import pathlib

import cv2
import numpy as np
import pytest
from rosutil import make_world

from cardsorter.cli.__main__ import main


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("identify")
    return make_world(root, cards=10, seed=31, unknown=0)


def photo_of(card: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    """The card lying on a dark table, a little rotated, as a phone photo would show it."""
    img = cv2.imread(str(card))
    h, w = img.shape[:2]
    canvas = np.full((h + 240, w + 240, 3), 35, np.uint8)
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 7.0, 1.0)
    m[:, 2] += 120
    cv2.warpAffine(img, m, (canvas.shape[1], canvas.shape[0]), dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    cv2.imwrite(str(out), canvas)
    return out


def test_identify_with_db_prints_the_identity_fields_for_each_card(world: dict[str, pathlib.Path],
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    card = sorted((world["catalog"] / "images").glob("*.png"))[3]
    photo = photo_of(card, world["root"] / "photo.png")
    assert main(["identify", "--db", str(world["db"]), str(photo)]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for key in ("image", "bbox", "quad", "status", "card_id", "name", "distance", "margin", "top_k"):
        assert key in record, key
    assert record["image"] == str(photo)
    assert record["status"] in ("confirmed", "uncertain", "unknown", "ambiguous")
    assert len(record["top_k"]) >= 2
    assert {"card_id", "name", "set", "number", "distance"} <= set(record["top_k"][0])
    expected_id = card.name.split("_")[0]
    assert expected_id in [c["card_id"] for c in record["top_k"]], "the photographed card is among the top k"
