"""genrelens.experiments.blocks: report blocks and sections, and ReportData reading a benchmark's folder."""

import json
import shutil

import numpy as np
import pytest

from genrelens.experiments.blocks import SECTIONS, ReportData, Section, Text, png, skipped


@pytest.fixture()
def bench(tiny_naive_dir, subset_csv, tmp_path):
    """A benchmark folder holding one run: the tiny naive model."""
    shutil.copytree(tiny_naive_dir, tmp_path / "runs" / "naive-none-s0")
    results = {"models": ["naive", "integrated"], "oversampling": ["study", "none"], "seeds": [0],
               "data": str(subset_csv),
               "runs": [{"model": "naive", "oversample": "none", "seed": 0, "dir": "runs/naive-none-s0"},
                        {"model": "integrated", "oversample": "none", "seed": 0, "dir": "runs/missing"}]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    return tmp_path


def test_sections_and_skipped():
    assert Section("table2").title == SECTIONS["table2"]
    s = skipped("curves", "no run.")
    assert s.title == SECTIONS["curves"] and s.blocks == [Text("Skipped: no run.", note=True)]
    assert Text.kind == "text"
    with pytest.raises(KeyError):
        _ = Section("nope").title


def test_report_data_finds_runs_and_aligns_predictions(bench):
    d = ReportData(bench)
    assert d.main_oversampling() == "none"
    assert d.run_dir("naive", "none", 0) == bench / "runs" / "naive-none-s0"
    assert d.run_dir("integrated", "none", 0) is None  # a run without its metrics counts as not run
    assert d.main_model() == "integrated" and d.pick("naive") is not None
    pred = d.predictions(d.pick("naive"))
    test_ids = json.loads((bench / "runs" / "naive-none-s0" / "test_ids.json").read_text())
    assert pred.ids == test_ids and pred.y_true.shape == pred.y_pred.shape == (len(test_ids), len(pred.labels))
    assert (pred.y_pred == pred.y_pred[0]).all() and pred.y_pred.any(1).all()  # naive: the same labels for all
    assert d.predictions(d.pick("naive")) is pred  # cached
    assert d.predictions(bench) is None  # not a model folder


def test_png_renders_a_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(np.arange(3))
    data = png(fig)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000
