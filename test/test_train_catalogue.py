"""`cardsorter train --images DIR --out models/NAME`: a tiny model for a few steps, end to end, and resume."""

from __future__ import annotations

import json
import pathlib

import pytest
from db_support import standard_images

pytest.importorskip("torch", reason="training extra not installed (pip install -r requirements/train.txt)")
pytest.importorskip("onnx", reason="training extra not installed (pip install -r requirements/train.txt)")

from cardsorter.cli.__main__ import main
from cardsorter.core.model_manifest import load_manifest

TINY = ["--batch", "4", "--dim", "32", "--widths", "8,8,16,16", "--input-w", "32", "--input-h", "44"]


@pytest.mark.train
def test_train_on_own_images_end_to_end_then_resume(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str],
                                                   ) -> None:
    standard_images(tmp_path / "images", n=12)
    (tmp_path / "images" / "sv1-99_Broken.png").write_bytes(b"not an image")
    out = tmp_path / "models" / "mine"
    assert main(["train", "--images", str(tmp_path / "images"), "--out", str(out), "--steps", "3",
                 "--holdout", "0.3", *TINY]) == 0
    captured = capsys.readouterr()
    assert "step 3/3" in captured.err and "ETA" in captured.err           # the progress bar
    assert "sv1-99_Broken.png" in captured.err                           # a bad image is named and skipped
    assert "hailo parser onnx" in captured.out and "hailo compiler mine_optimized.har" in captured.out
    manifest = load_manifest(out.parent / "mine.yaml")
    assert manifest.dimension == 32 and manifest.input_size_wh == (32, 44) and manifest.file.is_file()
    report = json.loads((out.parent / "mine.report.json").read_text())
    held = report["held_out"]
    # the manifest names the cards the model saw (db build calibrates on the others)
    assert manifest.trained_cards is not None and (out.parent / "mine.trained_cards.txt").is_file()
    assert held["per_card"]["known_cards"] > len(manifest.trained_cards) and "sv1-99" not in manifest.trained_cards
    assert held["per_card"]["unknown_cards"] >= 1 and held["per_card"]["known_cards"] >= 1
    assert {"clean", "glare", "occlusion20", "rot180"} <= set(held["per_view_by_nuisance"])
    assert (out.parent / "mine.ckpt").is_file()

    assert main(["train", "--images", str(tmp_path / "images"), "--out", str(out), "--steps", "5", "--resume",
                 "--holdout", "0.3", "--no-report", *TINY]) == 0
    resumed = capsys.readouterr()
    assert "at step 3" in resumed.out and "step 5/5" in resumed.err
    assert "training" in (out.parent / "mine.yaml").read_text() and "steps: 5" in (out.parent / "mine.yaml").read_text()


@pytest.mark.train
def test_resume_refuses_a_checkpoint_of_other_cards(tmp_path: pathlib.Path) -> None:
    standard_images(tmp_path / "a", n=6)
    standard_images(tmp_path / "b", n=7, set_id="sv2")
    out = tmp_path / "m" / "x"
    assert main(["train", "--images", str(tmp_path / "a"), "--out", str(out), "--steps", "1", "--no-report",
                 "--holdout", "0", *TINY]) == 0
    with pytest.raises(SystemExit, match="other cards"):
        main(["train", "--images", str(tmp_path / "b"), "--out", str(out), "--steps", "2", "--resume",
              "--holdout", "0", *TINY])
