"""genrelens.experiments.trust_report: the calibration and explanation sections of the benchmark report."""

import json
import shutil

import pytest

from genrelens.experiments.blocks import ReportData
from genrelens.experiments.trust_report import (
    explained_figure,
    reliability_figure,
    section_calibration,
    section_explained,
)

PNG = b"\x89PNG\r\n\x1a\n"


def _calibration(ece):
    rel = {"count": [5, 0, 10], "mean_proba": [0.1, None, 0.8], "frequency": [0.2, None, 0.7]}
    return {"ece": ece, "brier": 0.1, "reliability": rel}


def test_reliability_figure_is_a_png():
    assert reliability_figure({"before": _calibration(0.2), "after": _calibration(0.05)}, title="t")[:8] == PNG


def test_explained_figure_is_a_png_with_or_without_a_heatmap():
    e = {"words": {"Drama": [{"word": "love", "attribution": 0.4}, {"word": "gun", "attribution": -0.2}]},
         "modalities": {"Drama": {"plot": 0.6, "poster": 0.2, "plot_share": 0.75, "poster_share": 0.25}},
         "probabilities": {"Drama": 0.8}}
    heat = reliability_figure({"before": _calibration(0.2), "after": _calibration(0.05)})
    assert explained_figure("Movie", e, "Drama", heat)[:8] == PNG
    assert explained_figure("Movie", e, "Drama", None)[:8] == PNG


@pytest.fixture()
def naive_only(tiny_naive_dir, subset_csv, tmp_path):
    shutil.copytree(tiny_naive_dir, tmp_path / "runs" / "naive-none-s0")
    (tmp_path / "results.json").write_text(json.dumps({
        "models": ["naive"], "oversampling": ["none"], "seeds": [0], "data": str(subset_csv),
        "runs": [{"model": "naive", "oversample": "none", "seed": 0, "dir": "runs/naive-none-s0"}]}))
    return ReportData(tmp_path)


def test_sections_are_skipped_without_a_neural_model(naive_only):
    cal = section_calibration(naive_only)
    assert cal.key == "calibration" and cal.blocks[0].text == "Skipped: no trained neural model."
    ex = section_explained(naive_only)
    assert ex.key == "explained" and ex.blocks[0].text.startswith("Skipped: no integrated or catalogue model")
