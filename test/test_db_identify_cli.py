"""identify_crops output fields, and the `db` CLI end to end (embedder injected via open_embedder)."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
from db_support import PixelEmbedder, card_image, configs, standard_images

from cardsorter.cli.__main__ import main
from cardsorter.core.model_manifest import write_manifest
from cardsorter.db.build import build_database
from cardsorter.db.database import ReferenceDatabase
from cardsorter.db.errors import ModelMismatchError
from cardsorter.db.identify_crops import identify_crops


@pytest.fixture()
def db(tmp_path: pathlib.Path) -> ReferenceDatabase:
    standard_images(tmp_path / "images", n=5)
    build_config, search_config, _ = configs()
    build_database(tmp_path / "images", tmp_path / "db", PixelEmbedder(), build_config=build_config,
                   search_config=search_config)
    return ReferenceDatabase.load(tmp_path / "db", "pixels-6x8-v1", search_config)


def test_identify_known_and_unknown_crops(db: ReferenceDatabase) -> None:
    known = card_image(1000 * sum(map(ord, "sv1")) + 3)  # sv1-4's picture
    noisy = np.clip(known.astype(int) + 6, 0, 255).astype(np.uint8)
    stranger = card_image(31337)
    out = identify_crops([noisy, stranger], PixelEmbedder(), db, configs()[2], k=3)
    assert out[0]["status"] == "confirmed" and out[0]["card_id"] == "sv1-4" and out[0]["name"] == "Card 4"
    assert out[0]["distance"] < 0.01 and out[0]["margin"] > 0.05
    assert set(out[0]["top_k"][0]) == {"card_id", "name", "set", "number", "distance"}
    assert out[0]["top_k"][0]["card_id"] == "sv1-4" and len(out[0]["top_k"]) == 3
    assert out[1]["status"] == "unknown" and out[1]["card_id"] is None and len(out[1]["top_k"]) == 3
    json.dumps(out)  # JSON-safe


def test_identify_refuses_another_model(db: ReferenceDatabase) -> None:
    with pytest.raises(ModelMismatchError):
        identify_crops([card_image(1)], PixelEmbedder("other"), db, configs()[2], k=3)


@pytest.fixture()
def cli_model(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    from cardsorter.backends import embedders

    def open_test_embedder(backend: str, manifest_path: str, threads: int) -> PixelEmbedder:
        assert backend == "onnx"
        return PixelEmbedder()

    monkeypatch.setattr(embedders, "open_embedder", open_test_embedder, raising=False)
    return write_manifest(tmp_path / "pix.yaml", {
        "model_id": "pixels-6x8-v1", "file": "pix.onnx", "sha256": "ab" * 32, "input_name": "x",
        "input_width": 24, "input_height": 32, "colour_order": "bgr", "layout": "nchw",
        "normalisation": "mean_std", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "output_name": "y",
        "dimension": 144, "metric": "cos"}).path


def test_cli_build_check_add_merge(tmp_path: pathlib.Path, cli_model: pathlib.Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    standard_images(tmp_path / "images", n=4)
    (tmp_path / "images" / "sv1-9_Bad.png").write_bytes(b"not a png")
    db = tmp_path / "db"
    model = ["--model", str(cli_model), "--backend", "onnx"]
    assert main(["db", "build", "--images", str(tmp_path / "images"), "--out", str(db), *model]) == 0
    out, err = capsys.readouterr()
    assert "4 templates of 4 cards" in out and "sv1-9_Bad.png: cannot decode" in out and "embed" in err
    manifest = json.loads((db / "manifest.json").read_text())
    assert manifest["model"]["sha256"] == "ab" * 32
    assert main(["db", "check", str(db), *model]) == 0
    assert "ok " in capsys.readouterr().out
    standard_images(tmp_path / "more", n=2, set_id="sv2")
    assert main(["db", "add", str(db), "--images", str(tmp_path / "more"), *model]) == 0
    assert main(["db", "merge", str(db), "--out", str(tmp_path / "v2")]) == 0
    assert "6 templates of 6 cards" in capsys.readouterr().out
    assert ReferenceDatabase.load(tmp_path / "v2", None, configs()[1]).card_count == 6


def test_cli_check_reports_a_named_error(tmp_path: pathlib.Path, cli_model: pathlib.Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    standard_images(tmp_path / "images", n=2)
    db = tmp_path / "db"
    assert main(["db", "build", "--images", str(tmp_path / "images"), "--out", str(db), "--model",
                 str(cli_model)]) == 0
    (db / "index.json").write_text((db / "index.json").read_text() + " ")
    assert main(["db", "check", str(db)]) == 2
    assert "sha256 differs from the manifest for index.json" in capsys.readouterr().err


def test_cli_build_prints_the_calibration_and_check_plots_it(tmp_path: pathlib.Path, cli_model: pathlib.Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from cardsorter.config import default_params_file

    params = tmp_path / "params.yaml"
    params.write_text(default_params_file().read_text().replace("calibration_cards_min: 100",
                                                                "calibration_cards_min: 20"))
    standard_images(tmp_path / "images", n=24)
    db = tmp_path / "db"
    model = ["--model", str(cli_model), "--backend", "onnx"]
    assert main(["db", "--params", str(params), "build", "--images", str(tmp_path / "images"), "--out", str(db),
                 *model]) == 0
    out = capsys.readouterr().out
    assert "calibration (target 0.50% false accepts per view" in out and "per card (3 agreeing views" in out
    assert main(["db", "--params", str(params), "check", str(db), "--report", str(tmp_path / "cal.png")]) == 0
    assert "confirm_distance_max" in capsys.readouterr().out and (tmp_path / "cal.png").is_file()
    small = tmp_path / "small"
    standard_images(tmp_path / "few", n=3)
    assert main(["db", "build", "--images", str(tmp_path / "few"), "--out", str(small), *model]) == 0
    assert "calibration: not usable" in capsys.readouterr().out
    assert main(["db", "check", str(small), "--report", str(tmp_path / "none.png")]) == 2
    assert "no usable calibration" in capsys.readouterr().err
