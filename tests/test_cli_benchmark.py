"""genrelens.cli.benchmark: `genrelens benchmark` turns its options into the grid it runs (grid mocked here)."""

import importlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genrelens.cli import app
from genrelens.errors import DataError
from genrelens.experiments import benchmark as bench
from genrelens.experiments import report


@pytest.fixture()
def grid(monkeypatch, tmp_path):
    calls = {}

    def run_benchmark(data, models, oversampling, seeds, out, **kw):
        calls.update(data=data, models=models, oversampling=oversampling, seeds=seeds, out=out, **kw)
        return []

    monkeypatch.setattr(bench, "run_benchmark", run_benchmark)
    monkeypatch.setattr(bench, "summary_table", lambda results: "table")
    monkeypatch.setattr(report, "build_report", lambda out: (out / "report.md", out / "report.html"))
    return calls


def test_the_grid_from_the_options(grid, tmp_path):
    out = tmp_path / "a-folder-name-long-enough-that-the-report-path-is-wider-than-the-terminal"
    r = CliRunner(env={"COLUMNS": "60"}).invoke(app, ["benchmark", "--models", "naive, tfidf", "--oversample",
                                                      "none,mlros", "--seeds", "2", "--out", str(out),
                                                      "--precision", "fp32", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert grid["models"] == ["naive", "tfidf"] and grid["oversampling"] == ["none", "mlros"]
    assert grid["seeds"] == 2 and grid["out"] == out and grid["overrides"] == {"precision": "fp32"}
    assert f"report: {out / 'report.html'} (and {out / 'report.md'})" in r.output  # whole, to copy from a log


def test_quick_installs_the_default_model(grid, tmp_path, monkeypatch):
    installed = {}
    command = importlib.import_module("genrelens.cli.benchmark")
    monkeypatch.setattr(command, "install_run", lambda src, dst: installed.update(src=src) or dst)
    monkeypatch.setattr(command, "run_precision_check", lambda target: None)
    monkeypatch.setenv("GENRELENS_MODEL_DIR", str(tmp_path / "default"))
    r = CliRunner().invoke(app, ["benchmark", "--quick", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert grid["models"] == list(bench.QUICK_MODELS) and grid["seeds"] == 1 and grid["oversampling"] == ["none"]
    assert installed["src"] == Path(tmp_path) / "runs" / "catalogue-none-s0"


def test_a_failed_run_exits_1_with_its_message(monkeypatch):
    def broken(*a, **k):
        raise DataError("the table has no genres column")

    monkeypatch.setattr(bench, "run_benchmark", broken)
    r = CliRunner().invoke(app, ["benchmark", "--models", "naive"])
    assert r.exit_code == 1 and "error: the table has no genres column" in r.output
    assert CliRunner().invoke(app, ["benchmark", "--seeds", "0"]).exit_code == 2


def test_sep_and_column_map_reach_every_run(grid, tmp_path):
    r = CliRunner().invoke(app, ["benchmark", "--models", "naive", "--out", str(tmp_path), "--no-progress",
                                 "--sep", "semicolon", "--column-map", "plot=overview"])
    assert r.exit_code == 0, r.output
    assert grid["overrides"] == {"sep": ";", "columns": {"plot": "overview"}}


def test_a_benchmark_reads_a_table_by_its_separator_and_column_map(tmp_path):
    """A ';' export with two plot-like columns: the shared split and every run read it with --sep and
    --column-map (the naive model: seconds)."""
    import pandas as pd
    from conftest import DATA

    if not DATA.exists():
        pytest.skip("default data set not found")
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False, nrows=150).rename(columns={"plot": "overview"})
    df.assign(description="short blurb").to_csv(tmp_path / "export.csv", sep=";", index=False)
    with pytest.raises(DataError, match="could both be the 'plot' column"):
        bench.run_benchmark(tmp_path / "export.csv", ["naive"], ["none"], 1, tmp_path / "a", progress=False)
    out = bench.run_benchmark(tmp_path / "export.csv", ["naive"], ["none"], 1, tmp_path / "b", progress=False,
                              overrides={"sep": ";", "columns": {"plot": "overview"}})
    assert out["n_trained"] == 1
    from genrelens.config import RunConfig

    cfg = RunConfig.load(next((tmp_path / "b" / "runs").iterdir()) / "config.json")
    assert cfg.sep == ";" and cfg.columns == {"plot": "overview"}
