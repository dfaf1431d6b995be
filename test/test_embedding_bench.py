"""The embedding benchmark runs end to end on a tiny catalogue and reports every method and nuisance."""

from __future__ import annotations

from cardsorter.bench.embedding import format_table, run


def test_benchmark_reports_every_method_and_nuisance() -> None:
    report = run(cards=8, unknown=2, nuisances=("clean", "rot180"))
    assert set(report["results"]) == {"model", "phash", "pixels", "hist_grad"}
    for per_method in report["results"].values():
        assert set(per_method) == {"clean", "rot180"}
        for s in per_method.values():
            assert set(s) == {"top1", "top3", "art_top1"}
            assert 0.0 <= s["top1"] <= s["top3"] <= 1.0
    assert report["ms_per_crop_batch8"] > 0 and report["machine"]["cores"]
    assert "clean_top1" in report["original_bar"]
    assert "rot180" in format_table(report)
