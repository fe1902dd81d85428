"""`genrelens train` writes a new run folder, never replaces a model unless asked; `install` makes a run the
default model and says what it replaced (issue 26, item 1)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from genrelens.cli import app

runner = CliRunner()


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A working folder and a genrelens home of the test's own (no default model yet)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENRELENS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("GENRELENS_MODEL_DIR", raising=False)
    return tmp_path / "home"


def train(*args: str):
    return runner.invoke(app, ["train", "--model", "naive", "--no-progress", *args])


def test_train_without_out_writes_a_new_run_not_the_default_model(home, subset_csv, tmp_path):
    res = train("--data", str(subset_csv))
    assert res.exit_code == 0, res.output
    assert not (home / "models" / "default").exists()  # the bug: it was replaced here
    runs = sorted((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("naive-")
    assert (runs[0] / "model.safetensors").is_file()
    assert str(runs[0].relative_to(tmp_path)) in " ".join(res.output.split())
    assert train("--data", str(subset_csv)).exit_code == 0
    assert len(list((tmp_path / "runs").iterdir())) == 2  # a second run: a second folder


def test_an_existing_model_is_replaced_only_with_overwrite(home, subset_csv, tmp_path):
    out = tmp_path / "mine"
    assert train("--data", str(subset_csv), "--out", str(out)).exit_code == 0
    before = (out / "model.safetensors").stat().st_mtime_ns
    res = train("--data", str(subset_csv), "--out", str(out), "--seed", "1")
    assert res.exit_code == 2 and "--overwrite" in res.output and "--resume" in res.output
    assert (out / "model.safetensors").stat().st_mtime_ns == before
    assert json.loads((out / "config.json").read_text())["seed"] == 0
    res = train("--data", str(subset_csv), "--out", str(out), "--seed", "1", "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["seed"] == 1


def test_install_makes_a_run_the_default_and_says_what_it_replaced(home, subset_csv, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert train("--data", str(subset_csv), "--out", str(a)).exit_code == 0
    res = runner.invoke(app, ["install", str(a)])
    assert res.exit_code == 0, res.output
    default = home / "models" / "default"
    assert json.loads((default / "config.json").read_text())["out"] == str(a)
    assert "no default model before" in " ".join(res.output.split())  # rich wraps long paths
    res = train("--data", str(subset_csv), "--out", str(b), "--seed", "1", "--install")
    assert res.exit_code == 0, res.output
    assert json.loads((default / "config.json").read_text())["seed"] == 1
    f1 = json.loads((a / "metrics.json").read_text())["test"]["weighted_f1"]
    replaced = " ".join(res.output.split())
    assert "replaced: naive trained" in replaced and f"test weighted F1 {f1:.3f}" in replaced


def test_install_refuses_a_folder_without_a_model(home, tmp_path):
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["install", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "not a model folder" in " ".join(res.output.split())  # rich wraps long paths
    assert not (home / "models" / "default").exists()


def test_benchmark_quick_still_installs_the_default_model(home, tiny_naive_dir, tmp_path, monkeypatch):
    """`make run` (`benchmark --quick`) leaves its catalogue run as the default model, and says so."""
    import shutil
    import sys

    from rich.table import Table

    from genrelens.experiments import benchmark, report
    from genrelens.models.registry import DEFAULT_MODEL

    out = tmp_path / "bq"

    def fake_run(data, models, oversample, seeds, folder, **kw):  # the grid itself is test_benchmark's
        shutil.copytree(tiny_naive_dir, folder / "runs" / f"{DEFAULT_MODEL}-none-s0")
        return {}

    monkeypatch.setattr(benchmark, "run_benchmark", fake_run)
    monkeypatch.setattr(benchmark, "summary_table", lambda results: Table())
    monkeypatch.setattr(report, "build_report", lambda folder: (folder / "report.md", folder / "report.html"))
    monkeypatch.setattr(sys.modules["genrelens.cli.benchmark"], "run_precision_check", lambda target: None)
    res = runner.invoke(app, ["benchmark", "--quick", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert (home / "models" / "default" / "model.safetensors").is_file()
    assert "as the default model" in " ".join(res.output.split())


def test_resume_without_out_names_the_fix(home, tmp_path):
    res = train("--resume", "--data", "nowhere.csv")
    assert res.exit_code == 2 and "--out" in res.output and not (tmp_path / "runs").exists()
