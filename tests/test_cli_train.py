"""genrelens.cli.train: `genrelens train` resolves its config (file, options, defaults) before training anything."""

import importlib
import re
import tomllib

import pytest
from typer.testing import CliRunner

from genrelens.cli import app
from genrelens.config import RunConfig

cli_train = importlib.import_module("genrelens.cli.train")  # the package re-exports the command as `train`


def _print_config(*args) -> dict:
    r = CliRunner().invoke(app, ["train", "--print-config", *args])
    assert r.exit_code == 0, r.output
    return tomllib.loads(r.stdout)


def test_options_override_the_config_file_and_defaults_stay(tmp_path):
    (tmp_path / "run.toml").write_text('model = "naive"\nseed = 4\nepochs = 9\n')
    cfg = _print_config("--config", str(tmp_path / "run.toml"), "--seed", "7", "--out", str(tmp_path / "o"))
    assert (cfg["model"], cfg["seed"], cfg["epochs"], cfg["out"]) == ("naive", 7, 9, str(tmp_path / "o"))
    assert cfg["labels"] == "study" and cfg["loss"] == "double-soft-f1"
    assert _print_config("--labels", "Drama,Comedy", "--out", "x")["labels"] == ["Drama", "Comedy"]


@pytest.mark.parametrize(("args", "message"), [(["--model", "bert"], "invalid configuration: unknown model 'bert'"),
                                               (["--dropout-is-not-an-option"], "No such option"),
                                               (["--ft-layers", "0"], "greater than or equal to 1"),
                                               (["--ft-layers", "9"], "minilm has 6"),
                                               (["--labels", "top0"], "K >= 1")])
def test_bad_values_exit_2_before_training(args, message, monkeypatch):
    monkeypatch.setattr(cli_train, "run", lambda *a, **k: pytest.fail("training started"))
    r = CliRunner().invoke(app, ["train", "--out", "x", *args])
    assert r.exit_code == 2 and message in _plain(r.output)


def _plain(output: str) -> str:
    """The output's words, without rich's box drawing and line wrapping."""
    return re.sub(r"[\s│╭╮╰╯─]+", " ", output)


def test_a_config_json_cannot_rerun_into_its_own_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(cli_train, "run", lambda *a, **k: pytest.fail("training started"))
    RunConfig(model="naive", out=str(tmp_path)).save(tmp_path / "config.json")
    r = CliRunner().invoke(app, ["train", "--config", str(tmp_path / "config.json")])
    assert r.exit_code == 2 and "would re-run into the run it came from" in _plain(r.output)


def test_the_resolved_config_reaches_the_run(tmp_path, monkeypatch):
    seen = {}
    monkeypatch.setattr(cli_train, "run", lambda cfg, values, out, *rest: seen.update(cfg=cfg, values=values))
    r = CliRunner().invoke(app, ["train", "--model", "naive", "--out", str(tmp_path / "m"), "--seed", "2"])
    assert r.exit_code == 0, r.output
    assert seen["cfg"].model == "naive" and seen["cfg"].seed == 2
    assert set(seen["values"]) >= {"model", "out", "seed"} and "epochs" not in seen["values"]  # only what was given


def test_a_run_refused_on_its_data_leaves_no_folder(tmp_path):
    """A label typo is found once the table is read: the run stops there and leaves no half-made folder (its
    config.json and split.json used to stay, which `genrelens install` then called a folder without a config)."""
    import pandas as pd
    from conftest import DATA

    if not DATA.exists():
        pytest.skip("default data set not found")
    pd.read_csv(DATA, dtype=str, keep_default_na=False, nrows=120).to_csv(tmp_path / "m.csv", index=False)
    r = CliRunner().invoke(app, ["train", "--model", "naive", "--data", str(tmp_path / "m.csv"), "--labels",
                                 "Drama,Comdey", "--out", str(tmp_path / "run"), "--no-progress"])
    assert r.exit_code != 0 and "did you mean 'Comedy'" in _plain(r.output), r.output
    assert not (tmp_path / "run").exists()


def test_training_says_which_rows_it_used_and_dropped(tmp_path):
    """`train --skip-bad` with a label list says how many rows it read, used and dropped, and why, as `evaluate`
    does (it used to print the split sizes alone: 57 of 404 rows went without a word)."""
    import json

    import pandas as pd
    from conftest import DATA

    if not DATA.exists():
        pytest.skip("default data set not found")
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False, nrows=200)
    bad = df.head(3).assign(id="")  # three rows without an id
    pd.concat([df, bad]).to_csv(tmp_path / "m.csv", index=False)
    r = CliRunner().invoke(app, ["train", "--model", "naive", "--data", str(tmp_path / "m.csv"), "--labels",
                                 "Drama,Comedy", "--skip-bad", "--out", str(tmp_path / "run"), "--no-progress",
                                 "--no-precision-check"])
    assert r.exit_code == 0, r.output
    unlabelled = sum(not {"Drama", "Comedy"} & set(g.split("|")) for g in df["genres"])
    used = 200 - unlabelled
    line = _plain(r.output)
    assert f"rows: 203 read, {used} used, {unlabelled + 3} dropped (3 bad rows: 3 empty id; {unlabelled} with none " \
           "of the model's labels" in line, line
    rows = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]["rows_summary"]
    assert rows["used"] + rows["n_dropped"] == rows["read"] == 203


def test_training_names_the_rows_a_text_model_cannot_read(tmp_path):
    """A text model trained on a table with poster-only rows says how many rows it has nothing to read in, and
    that `evaluate` leaves them out (the two row counts used to disagree without a word)."""
    import json

    import pandas as pd
    from conftest import DATA

    if not DATA.exists():
        pytest.skip("default data set not found")
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    with_plot = df[df["plot"] != ""].head(240)
    poster_only = df[(df["plot"] == "") & (df["poster"] != "")].head(60).assign(title="")
    pd.concat([with_plot, poster_only]).to_csv(tmp_path / "m.csv", index=False)
    r = CliRunner().invoke(app, ["train", "--model", "tfidf", "--data", str(tmp_path / "m.csv"), "--posters",
                                 str(DATA.parent), "--out", str(tmp_path / "run"), "--no-progress",
                                 "--no-precision-check"])
    assert r.exit_code == 0, r.output
    blind = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]["rows_with_nothing_read"]
    assert 0 < blind <= 60
    assert f"note: {blind} of these rows have nothing tfidf reads (it reads no posters)" in _plain(r.output)
