"""genrelens.cli.evaluate: `genrelens evaluate` and `genrelens calibrate` on the tiny naive model."""

import json

from typer.testing import CliRunner

from genrelens.cli import app


def test_evaluate_json_on_the_test_split(tiny_naive_dir, subset_csv):
    r = CliRunner().invoke(app, ["evaluate", "--model-dir", str(tiny_naive_dir), "--data", str(subset_csv),
                                 "--split", "test", "--json"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout[r.stdout.index("{"):])
    assert 0 < metrics["weighted_f1"] <= 1 and metrics["rows"]["split"] == "test"
    assert set(metrics["per_label"]) == set(metrics["labels"])


def test_evaluate_table_output(tiny_naive_dir, subset_csv):
    r = CliRunner().invoke(app, ["evaluate", "--model-dir", str(tiny_naive_dir), "--data", str(subset_csv),
                                 "--split", "test"])
    assert r.exit_code == 0 and "weighted F1" in r.output and "Drama" in r.output


def test_user_errors_exit_2(tiny_naive_dir, tmp_path):
    r = CliRunner().invoke(app, ["evaluate", "--model-dir", str(tmp_path / "none")])
    assert r.exit_code == 2 and "error:" in r.output
    r = CliRunner().invoke(app, ["calibrate", "--model-dir", str(tiny_naive_dir), "--no-precision-check"])
    assert r.exit_code == 2 and "nothing to calibrate" in r.output
