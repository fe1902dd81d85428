"""The CLI end to end: data validate/stats, train naive -> evaluate --json."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from genrelens.cli import app

runner = CliRunner()


def test_help_lists_commands():
    out = runner.invoke(app, ["--help"]).output
    for cmd in ("data", "train", "evaluate", "predict", "serve", "benchmark"):
        assert cmd in out


def test_data_stats_on_default_data(real_data, tmp_path):
    res = runner.invoke(app, ["data", "stats", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["rows"] == 15451
    assert "Mystery" in (tmp_path / "stats.md").read_text()
    assert "Drama" in res.stdout


def test_validate_reports_rows_and_exit_codes(subset_csv, tmp_path):
    clean = runner.invoke(app, ["data", "validate", "--data", str(subset_csv)])
    assert clean.exit_code == 0, clean.output
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False).head(5)
    (tmp_path / "posters").mkdir()
    (tmp_path / "posters" / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    df.loc[1, "poster"] = "posters/bad.jpg"
    df.loc[3, "plot"], df.loc[3, "poster"] = "", ""
    df.to_csv(tmp_path / "bad.csv", index=False)
    res = runner.invoke(app, ["data", "validate", "--data", str(tmp_path / "bad.csv")])
    assert res.exit_code == 1
    assert "2" in res.output and "4" in res.output  # rows 2 (corrupt poster) and 4 (no plot, no poster)
    df.drop(columns=["genres"]).to_csv(tmp_path / "nogenres.csv", index=False)
    res = runner.invoke(app, ["data", "validate", "--data", str(tmp_path / "nogenres.csv")])
    assert res.exit_code == 1 and "genres" in res.output
    res = runner.invoke(app, ["data", "validate", "--data", str(tmp_path / "missing.csv")])
    assert res.exit_code == 2
    assert "Traceback" not in res.output


def test_train_naive_then_evaluate_json(real_data, tmp_path):
    out = tmp_path / "naive"
    res = runner.invoke(app, ["train", "--model", "naive", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "config.json").read_text())["model"] == "naive"
    split = json.loads((out / "split.json").read_text())
    df = pd.read_csv(real_data, dtype=str, keep_default_na=False)
    test = df[df["id"].isin(split["test"])].copy()
    test["poster"] = [str(real_data.parent / p) if p else "" for p in test["poster"]]
    test["genres"] = test["genres"].str.replace("Sci-Fi", "science fiction")  # mapped by normalization
    test.to_csv(tmp_path / "test.csv", index=False)
    res = runner.invoke(app, ["evaluate", "--model-dir", str(out), "--data", str(tmp_path / "test.csv"), "--json"])
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout)
    for key in ("weighted_f1", "micro_f1", "macro_f1", "samples_f1", "per_label", "n_rows", "labels"):
        assert key in m
    saved = json.loads((out / "metrics.json").read_text())["test"]
    assert m["n_rows"] == saved["n_rows"]
    assert m["weighted_f1"] == saved["weighted_f1"]
    assert m["per_label"]["Sci-Fi"]["support"] == saved["per_label"]["Sci-Fi"]["support"]


def test_bad_model_dir_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["evaluate", "--model-dir", str(tmp_path), "--data", str(tmp_path / "x.csv")])
    assert res.exit_code != 0 and "Traceback" not in res.output


def test_version_option():
    from genrelens.version import __version__

    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.strip() == f"genrelens {__version__}"


@pytest.mark.parametrize("option,value", [("--title-dropout", "1.0"), ("--window-stride", "300"),
                                          ("--long-augment", "1.5"), ("--windows", "17")])
def test_train_options_take_their_ranges_from_runconfig(tmp_path, option, value):
    """The CLI refuses what RunConfig refuses (config.RANGES, one table), before anything runs."""
    r = CliRunner().invoke(app, ["train", option, value, "--out", str(tmp_path / "x"), "--data", "nowhere.csv"])
    assert r.exit_code == 2 and option in r.output and not (tmp_path / "x").exists()
