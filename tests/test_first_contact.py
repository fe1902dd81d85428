"""A new user's first hour, played from a working folder of their own with relative paths (issue 16).

The folder holds ``batch/messy.csv``: about 50 real movies of the default data (posters copied beside it,
referenced relative to the CSV) plus one row saved in Latin-1, a duplicate id and extra catalogue columns.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from genrelens.cli import app
from genrelens.data.images import resolve_poster_path
from genrelens.data.table import load_table
from genrelens.data.validate import validate_table

runner = CliRunner(env={"COLUMNS": "200"})
LATIN1_ROW = 25  # 1-based data row of the Latin-1 movie in messy.csv


def _messy(folder: Path, real: Path, n: int = 50) -> Path:
    """``folder/batch/messy.csv`` (+ ``posters/``): n real movies, one Latin-1 row, a ``shelf`` column."""
    df = pd.read_csv(real, dtype=str, keep_default_na=False)
    both = df[(df["plot"] != "") & (df["poster"] != "")].head(n - 10)
    plot_only = df[(df["plot"] != "") & (df["poster"] == "")].head(5)
    poster_only = df[(df["plot"] == "") & (df["poster"] != "")].head(5)
    sub = pd.concat([both, plot_only, poster_only]).sample(frac=1, random_state=0).reset_index(drop=True)
    sub = sub.drop(columns=["source"]).assign(shelf=[f"S{i % 7}" for i in range(len(sub))])
    batch = folder / "batch"
    (batch / "posters").mkdir(parents=True)
    for rel in sub["poster"][sub["poster"] != ""]:
        shutil.copy(real.parent / rel, batch / rel)
    lines = sub.to_csv(index=False, lineterminator="\n").encode("utf-8").splitlines(keepends=True)
    latin = 'tmdb-194,Amélie,2001,fr,"Amélie, a waitress in Montmartre, decides to change the lives of the ' \
            'people around her.",Comedy|Romance,,S9\n'
    lines.insert(LATIN1_ROW, latin.encode("latin-1"))
    (batch / "messy.csv").write_bytes(b"".join(lines))
    return batch / "messy.csv"


@pytest.fixture
def newuser(tmp_path: Path, real_data: Path, monkeypatch) -> Path:
    """A fresh working folder (the current directory) with ``batch/messy.csv``."""
    home = tmp_path / "newuser"
    home.mkdir()
    _messy(home, real_data)
    monkeypatch.chdir(home)
    return home


@pytest.fixture
def clean_copy(newuser: Path) -> Path:
    """``batch/clean.csv``: messy.csv without its Latin-1 row (relative path)."""
    raw = (newuser / "batch" / "messy.csv").read_bytes().splitlines(keepends=True)
    del raw[LATIN1_ROW]
    (newuser / "batch" / "clean.csv").write_bytes(b"".join(raw))
    return Path("batch/clean.csv")


# --- 1: relative --data paths ------------------------------------------------------------------------------


def test_relative_data_path_finds_every_poster(clean_copy: Path):
    result = validate_table(clean_copy)
    assert result.fatal is None
    assert [p for p in result.problems if p.column == "poster"] == []
    assert result.n_posters == 45


def test_relative_table_poster_paths_resolve_once(clean_copy: Path):
    df, _ = load_table(clean_copy, need_genres=False)
    root = Path(df.attrs["root"])
    posters = [p for p in df["poster"] if p]
    assert len(posters) == 45
    for p in posters:  # what training and evaluation open
        assert resolve_poster_path(p, root).is_file(), p


def test_evaluate_relative_path_reads_every_poster(clean_copy: Path, tiny_model_dir: Path):
    import json

    r = runner.invoke(app, ["evaluate", "--model-dir", str(tiny_model_dir), "--data", str(clean_copy), "--json"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout)
    assert metrics["rows_with_input_problems"] == 0 and metrics["rows_skipped"] == 0


def test_cli_validate_relative_path(clean_copy: Path):
    r = runner.invoke(app, ["data", "validate", "--data", str(clean_copy)])
    assert r.exit_code == 0, r.output
    assert "not found" not in r.output


# --- 2: files follow the user's umask ----------------------------------------------------------------------


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077])
def test_atomic_writes_follow_the_umask(tmp_path: Path, mask: int):
    from genrelens.io import atomic_dir, write_json_atomic, write_text_atomic

    old = os.umask(mask)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        write_json_atomic(tmp_path / "sub" / "b.json", {"a": 1})
        with atomic_dir(tmp_path / "model") as d:
            (d / "f.txt").write_text("y")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.txt") == 0o666 & ~mask
    assert _mode(tmp_path / "sub" / "b.json") == 0o666 & ~mask
    assert _mode(tmp_path / "model") == 0o777 & ~mask
    assert _mode(tmp_path / "model" / "f.txt") == 0o666 & ~mask


def test_cli_outputs_are_readable_by_others(clean_copy: Path, umask022):
    r = runner.invoke(app, ["data", "stats", "--data", str(clean_copy), "--out", "stats"])
    assert r.exit_code == 0, r.output
    assert _mode(Path("stats/stats.json")) == 0o644
    assert _mode(Path("stats/stats.md")) == 0o644


# --- 3: numeric option ranges ------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["train", "--epochs", "-3"], ["train", "--epochs", "0"], ["train", "--ft-epochs", "-1"],
    ["train", "--ft-layers", "0"], ["train", "--ft-layers", "7"], ["train", "--max-length", "0"],
    ["train", "--oversample-target", "0.5"], ["train", "--seed", "-1"], ["train", "--master-port", "70000"],
    ["data", "validate", "--limit", "-1"], ["data", "stats", "--seed", "-2"],
    ["predict", "--plot", "x", "--chunk-size", "0"], ["serve", "--port", "70000"],
])
def test_cli_refuses_out_of_range_numbers(newuser: Path, args: list[str]):
    if args[0] == "train":  # (a missing table: should the range check fail, nothing long starts)
        args = [*args, "--out", "runs/x", "--data", "nowhere.csv"]
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    option = args[1 if args[0] == "train" else -2]
    assert option in r.output or option.lstrip("-").replace("-", "_") in r.output  # the option is named
    assert not Path("runs/x").exists()  # nothing trained, nothing written


@pytest.mark.parametrize("field,value", [
    ("epochs", -3), ("epochs", 0), ("ft_epochs", 0), ("ft_layers", 0), ("ft_layers", 7), ("max_length", 4),
    ("hidden", 0), ("dropout", 1.0), ("dropout", -0.1), ("modality_dropout", 1.5), ("batch_size", 0),
    ("lr", 0.0), ("ft_lr", -1e-5), ("weight_decay", -1.0), ("warmup_ratio", 1.5), ("patience", -1),
    ("ft_batch_size", 0), ("ft_patience", -1), ("seed", -1), ("oversample_target", 0.9),
    ("split_fractions", (0.8, 0.15, 0.15)), ("split_fractions", (0.7, 0.0, 0.3)),
])
def test_run_config_refuses_out_of_range_values(field: str, value):
    from genrelens.config import RunConfig

    with pytest.raises(ValueError, match=field):
        RunConfig(**{field: value})


def test_run_config_accepts_the_edges():
    from genrelens.config import RunConfig

    RunConfig(epochs=1, ft_epochs=1, ft_layers=6, dropout=0.0, patience=0, seed=0, oversample_target=1.0)
    RunConfig(text_encoder="mpnet", ft_layers=12)


# --- 4: a bare string is not a list of movies --------------------------------------------------------------


@pytest.fixture(scope="module")
def naive_clf(tiny_naive_dir: Path):
    """A real (naive) classifier, trained in a second: input checks run before any encoder."""
    from genrelens.predict import GenreClassifier

    return GenreClassifier.load(tiny_naive_dir)


@pytest.mark.parametrize("kw", [
    {"plots": "A heist goes wrong."}, {"posters": "poster.jpg"}, {"posters": Path("poster.jpg")},
    {"posters": b"\xff\xd8\xff"}, {"plots": ["A heist goes wrong."], "posters": "poster.jpg"},
])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_bare_string_or_poster_is_a_type_error(naive_clf, kw: dict, method: str):
    with pytest.raises(TypeError, match=r"per movie.*\[") as e:
        getattr(naive_clf, method)(**kw)
    assert "plots" in str(e.value) or "posters" in str(e.value)


def test_bare_pil_image_is_a_type_error(naive_clf):
    from PIL import Image

    with pytest.raises(TypeError, match="posters"):
        naive_clf.predict(posters=Image.new("RGB", (8, 8)))


def test_lists_of_one_movie_still_work(naive_clf):
    [genres] = naive_clf.predict(plots=["A heist goes wrong."])
    assert genres and set(genres) <= set(naive_clf.labels)
    assert naive_clf.predict_proba(plots=("A heist goes wrong.",), posters=[None]).shape == (1, len(naive_clf.labels))


# --- 6: evaluate --split on a table that is not the training data ------------------------------------------


@pytest.fixture
def naive_run(naive_copy: Path) -> Path:
    return naive_copy


def test_evaluate_split_on_a_foreign_table_says_what_to_do(naive_run: Path, clean_copy: Path):
    r = runner.invoke(app, ["evaluate", "--model-dir", str(naive_run), "--data", str(clean_copy), "--split", "test"])
    assert r.exit_code == 2, r.output
    out = " ".join(r.output.split())
    assert "empty input array" not in out
    assert "of the model's 'test' split" in out and "drop --split" in out and "trained on" in out
    r = runner.invoke(app, ["evaluate", "--model-dir", str(naive_run), "--data", str(clean_copy)])
    assert r.exit_code == 0, r.output  # without --split the same table is scored


def test_evaluate_split_name_is_checked(naive_run: Path, subset_csv: Path):
    r = runner.invoke(app, ["evaluate", "--model-dir", str(naive_run), "--data", str(subset_csv), "--split", "tset"])
    assert r.exit_code == 2
    assert "train, val or test" in " ".join(r.output.split())
    r = runner.invoke(app, ["evaluate", "--model-dir", str(naive_run), "--data", str(subset_csv), "--split", "test",
                            "--json"])
    assert r.exit_code == 0, r.output


# --- 5: /docs and /redoc work offline ----------------------------------------------------------------------


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_every_asset_from_the_service(naive_clf, page: str):
    import re

    from fastapi.testclient import TestClient

    from genrelens.serve.app import create_app

    with TestClient(create_app(classifier=naive_clf)) as c:
        r = c.get(page)
        assert r.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", r.text)
        assert urls, r.text
        remote = [u for u in urls if re.match(r"(https?:)?//", u)]
        assert remote == [], f"{page} loads {remote} from the network"
        for u in urls:  # the scripts, styles and the OpenAPI document all come from the service
            got = c.get(u)
            assert got.status_code == 200, u
            assert len(got.content) > 1000 or not u.endswith((".js", ".css")), u


# --- 7: a bad row never stops a batch ----------------------------------------------------------------------


def test_reader_reports_bad_rows_with_file_row_numbers(newuser: Path):
    from genrelens.data.reader import iter_table_chunks

    chunks = list(iter_table_chunks(Path("batch/messy.csv"), 10))
    assert sum(len(df) for df, _ in chunks) == 51
    bad = {row: msg for _, b in chunks for row, msg in b.items()}
    assert list(bad) == [LATIN1_ROW]
    assert "not utf-8 (bytes 0xe9" in bad[LATIN1_ROW].lower() and "--encoding latin-1" in bad[LATIN1_ROW]
    df = pd.concat([d for d, _ in chunks], ignore_index=True)
    assert df.loc[LATIN1_ROW - 1, "id"] == "tmdb-194" and "\ufffd" in df.loc[LATIN1_ROW - 1, "title"]
    assert list(df.columns) == ["id", "title", "year", "language", "plot", "genres", "poster", "shelf"]


def test_load_table_skips_the_bad_row_by_number(newuser: Path):
    from genrelens.errors import DataError

    df, report = load_table("batch/messy.csv", skip_bad=True)
    assert len(df) == 50 and "tmdb-194" not in set(df["id"])
    assert [(r, i) for r, i, _ in report.skipped] == [(LATIN1_ROW, "tmdb-194")]
    with pytest.raises(DataError, match=f"row {LATIN1_ROW} \\(tmdb-194\\): text is not"):
        load_table("batch/messy.csv")
    df, report = load_table("batch/messy.csv", encoding="latin-1")
    assert df.loc[LATIN1_ROW - 1, "title"] == "Amélie" and not report.skipped


def test_data_stats_skips_a_latin1_row(newuser: Path):
    r = runner.invoke(app, ["data", "stats", "--data", "batch/messy.csv", "--out", "stats"])
    assert r.exit_code == 0, r.output
    assert "skipped 1 bad row" in r.output
    r = runner.invoke(app, ["data", "stats", "--data", "batch/messy.csv", "--out", "stats", "--encoding", "latin-1"])
    assert r.exit_code == 0 and "skipped" not in r.output, r.output
    r = runner.invoke(app, ["data", "stats", "--data", "batch/messy.csv", "--encoding", "klingon"])
    assert r.exit_code == 2 and "unknown encoding" in r.output


def test_validate_with_encoding(newuser: Path):
    r = runner.invoke(app, ["data", "validate", "--data", "batch/messy.csv", "--no-posters"])
    assert r.exit_code == 1 and "not UTF-8" in r.output
    r = runner.invoke(app, ["data", "validate", "--data", "batch/messy.csv", "--no-posters", "--encoding", "latin-1"])
    assert r.exit_code == 0, r.output


def _read_predictions(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_batch_scores_every_good_row_and_names_the_bad_one(newuser: Path, tiny_model_dir: Path):
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--input", "batch/messy.csv",
                            "--output", "out/pred.csv", "--no-progress"])
    assert r.exit_code == 0, r.output
    out = _read_predictions(Path("out/pred.csv"))
    assert len(out) == 51
    bad = out.iloc[LATIN1_ROW - 1]
    assert bad["id"] == "tmdb-194" and bad["genres"] == ""
    assert bad["error"].startswith(f"row {LATIN1_ROW}: not scored: text is not UTF-8 (bytes 0xE9")
    good = out.drop(index=LATIN1_ROW - 1)
    assert (good["genres"] != "").all()
    # --encoding reads a legacy file on purpose (this one's other rows are ASCII)
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--input", "batch/messy.csv",
                            "--output", "out/latin.csv", "--encoding", "latin-1", "--no-progress"])
    assert r.exit_code == 0, r.output
    latin = _read_predictions(Path("out/latin.csv")).iloc[LATIN1_ROW - 1]
    assert latin["title"] == "Amélie" and latin["genres"] and not latin["error"]


# --- 8: posters outside the table's folder -----------------------------------------------------------------


@pytest.fixture
def elsewhere(clean_copy: Path) -> tuple[Path, Path]:
    """``cat/clean.csv`` whose posters (``posters/<id>.jpg``) live in ``images/``, not beside the table."""
    Path("cat").mkdir()
    shutil.copy(clean_copy, "cat/clean.csv")
    Path("images").mkdir()
    shutil.move("batch/posters", "images/posters")
    return Path("cat/clean.csv"), Path("images")


def test_validate_with_a_posters_folder(elsewhere):
    table, images = elsewhere
    assert validate_table(table).counts().get("poster file missing") == 45
    result = validate_table(table, posters=images)
    assert result.problems == [] and result.n_posters == 45
    r = runner.invoke(app, ["data", "validate", "--data", str(table), "--posters", str(images)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["data", "validate", "--data", str(table), "--posters", "nowhere"])
    assert r.exit_code == 2 and "not a folder" in r.output


def test_absolute_poster_paths_inside_the_named_folder(elsewhere):
    table, images = elsewhere
    df = pd.read_csv(table, dtype=str, keep_default_na=False)
    df["poster"] = [str((images / p).resolve()) if p else "" for p in df["poster"]]
    df.loc[0, "poster"] = "../../etc/passwd"  # traversal stays refused
    df.to_csv(table, index=False)
    result = validate_table(table, posters=images)
    assert [(p.row, p.kind) for p in result.problems] == [(1, "poster outside the data folder")]
    assert validate_table(table).counts()["poster outside the data folder"] == 45  # not named: refused


def test_train_config_and_load_table_take_the_posters_folder(elsewhere):
    from genrelens.config import RunConfig

    table, images = elsewhere
    df, _ = load_table(table, posters=images)
    root = Path(df.attrs["root"])
    assert root == images.resolve()
    assert all(resolve_poster_path(p, root).is_file() for p in df["poster"] if p)
    # stored absolute: the saved model re-reads its table from any working folder (tests/test_messy_tables.py)
    assert RunConfig(data=str(table), posters=str(images)).posters == str(Path.cwd() / "images")
    r = runner.invoke(app, ["train", "--data", str(table), "--posters", str(images), "--print-config"])
    assert r.exit_code == 0 and f'posters = "{Path.cwd() / "images"}"' in r.output, r.output


def test_evaluate_and_predict_with_a_posters_folder(elsewhere, tiny_model_dir: Path):
    import json

    table, images = elsewhere
    base = ["evaluate", "--model-dir", str(tiny_model_dir), "--data", str(table), "--json"]
    without = json.loads(runner.invoke(app, base).stdout)
    found = json.loads(runner.invoke(app, [*base, "--posters", str(images)]).stdout)
    blind = without["rows"]["dropped"].get("with nothing this model reads", 0)  # poster-only rows: not scored
    assert blind > 0 and without["rows_with_input_problems"] + blind >= 40 > found["rows_with_input_problems"]
    assert "with nothing this model reads" not in found["rows"]["dropped"]
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--input", str(table), "--posters",
                            str(images), "--output", "p.csv", "--no-progress"])
    assert r.exit_code == 0, r.output
    found = _read_predictions(Path("p.csv"))
    assert not (found["error"] + found["warnings"]).str.contains("poster").any()


# --- 9: keep the catalogue's columns; duplicates; fail fast -------------------------------------------------


def test_batch_keeps_columns_and_flags_duplicate_ids(clean_copy: Path, tiny_model_dir: Path):
    df = pd.read_csv(clean_copy, dtype=str, keep_default_na=False)
    df = pd.concat([df, df.iloc[[3]]], ignore_index=True)  # row 51 repeats row 4's id
    df.to_csv(clean_copy, index=False)
    base = ["predict", "--model-dir", str(tiny_model_dir), "--input", str(clean_copy), "--no-progress"]
    assert runner.invoke(app, [*base, "--output", "a.csv"]).exit_code == 0
    out = _read_predictions(Path("a.csv"))
    assert list(out.columns[:7]) == ["id", "title", "year", "language", "input_genres", "shelf", "genres"]
    assert list(out.columns[-4:]) == ["review", "review_reasons", "warnings", "error"]
    assert list(out["title"]) == list(df["title"])
    assert list(out["shelf"]) == list(df["shelf"])
    assert out["warnings"].iloc[50] == "row 51: duplicate id (first in row 4)" and out["error"].iloc[50] == ""
    assert out["genres"].iloc[50] == out["genres"].iloc[3]  # still scored
    assert runner.invoke(app, [*base, "--output", "b.jsonl", "--columns", "title,shelf"]).exit_code == 0
    b = pd.read_json("b.jsonl", lines=True, dtype=False)
    assert list(b.columns[:4]) == ["id", "title", "shelf", "genres"]
    assert runner.invoke(app, [*base, "--output", "c.parquet", "--columns", "none"]).exit_code == 0
    assert list(pd.read_parquet("c.parquet").columns[:2]) == ["id", "genres"]


@pytest.mark.parametrize(("extra", "message"), [
    (["--input", "batch/clean.csv", "--output", "x.xlsx"], "unknown output format"),
    (["--input", "batch/nope.csv"], "input not found"),
    (["--input", "batch/clean.csv", "--columns", "title,rating"], "rating not in"),
    (["--input", "batch/clean.csv", "--encoding", "klingon"], "unknown encoding"),
    (["--input", "batch/clean.csv", "--posters", "nowhere"], "not a folder"),
])
def test_batch_fails_fast_before_loading_the_model(clean_copy: Path, extra: list[str], message: str):
    r = runner.invoke(app, ["predict", "--model-dir", "no-model-here", *extra])  # loading it would fail
    assert r.exit_code == 2
    out = " ".join(r.output.split())
    assert message in out and "no model" not in out and "scoring" not in out


# --- 12: train --config run.toml ---------------------------------------------------------------------------


def test_config_file_cli_overrides_and_print_config(newuser: Path, subset_csv: Path):
    Path("run.toml").write_text(f'model = "naive"\ndata = "{subset_csv}"\nseed = 3\nepochs = 5\n'
                                'labels = ["Drama", "Comedy", "Horror"]\n')
    r = runner.invoke(app, ["train", "--config", "run.toml", "--print-config"])
    assert r.exit_code == 0, r.output
    import tomllib

    shown = tomllib.loads(r.stdout)
    assert (shown["model"], shown["seed"], shown["epochs"], shown["labels"]) == ("naive", 3, 5, ["Drama", "Comedy",
                                                                                                   "Horror"])
    assert shown["ft_layers"] == 2 and not Path("runs").exists()  # defaults filled in, nothing trained
    r = runner.invoke(app, ["train", "--config", "run.toml", "--seed", "7", "--model", "poster", "--print-config"])
    shown = tomllib.loads(r.stdout)
    assert (shown["model"], shown["seed"], shown["epochs"]) == ("poster", 7, 5)  # flags win over the file
    Path("again.toml").write_text(r.stdout)  # what --print-config shows is a config file
    r2 = runner.invoke(app, ["train", "--config", "again.toml", "--print-config"])
    assert r2.exit_code == 0 and r2.stdout == r.stdout


@pytest.mark.parametrize(("text", "message"), [
    ("epoch = 3\n", "unknown config key(s) epoch; known keys: model, data, out,"),
    ("epochs = -1\n", "epochs = -1 is out of range"),
    ('epochs = "3"\n', "epochs must be an integer"),
    ("model = 'naive\n", "is not a valid TOML config"),
])
def test_config_file_errors(newuser: Path, text: str, message: str):
    Path("run.toml").write_text(text)
    r = runner.invoke(app, ["train", "--config", "run.toml", "--data", "nowhere.csv"])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())


def test_a_runs_config_json_reruns_it(newuser: Path, subset_csv: Path):
    from genrelens.config import RunConfig

    Path("run.toml").write_text(f'model = "naive"\ndata = "{subset_csv}"\nseed = 1\n')
    r = runner.invoke(app, ["train", "--config", "run.toml", "--out", "runs/a", "--no-progress"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["train", "--config", "runs/a/config.json", "--no-progress"])
    assert r.exit_code == 2 and "give --out" in r.output  # would replace the run it came from
    r = runner.invoke(app, ["train", "--config", "runs/a/config.json", "--out", "runs/b", "--no-progress"])
    assert r.exit_code == 0, r.output
    a, b = RunConfig.load("runs/a/config.json"), RunConfig.load("runs/b/config.json")
    assert (a.out, b.out) == ("runs/a", "runs/b") and {**vars(a), "out": ""} == {**vars(b), "out": ""}
    assert Path("runs/a/split.json").read_text() == Path("runs/b/split.json").read_text()


# --- 10: REST batch answered per item: see tests/test_api.py::test_bad_batches ------------------------------


def test_rest_batch_from_a_catalogue(newuser: Path, naive_clf):
    """The catalogue's rows posted with their own ids; every movie is answered (this model reads neither plots nor
    posters: a poster that is not an image is ignored like a good one, without a warning, as in a table)."""
    import base64

    from fastapi.testclient import TestClient

    from genrelens.serve.app import create_app

    df = pd.read_csv("batch/clean.csv" if Path("batch/clean.csv").exists() else "batch/messy.csv", dtype=str,
                     keep_default_na=False, encoding="latin-1").head(6)
    movies = [{"id": r.id, "plot": r.plot or None,
               "poster": base64.b64encode(Path("batch", r.poster).read_bytes()).decode() if r.poster else None}
              for r in df.itertuples()]
    movies[2]["poster"] = base64.b64encode(b"not an image").decode()
    with TestClient(create_app(classifier=naive_clf)) as c:
        r = c.post("/v1/predict/batch", json={"movies": movies})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["id"] for x in body["results"]] == list(df["id"]) and body["n_errors"] == 0
    assert body["results"][2]["warnings"] == [] and "input_ignored" not in body["results"][2]["review_reasons"]
    assert all("genres" in x for x in body["results"])


# --- 11: the Python API reports bad input ------------------------------------------------------------------


def test_python_api_warns_about_unreadable_posters(newuser: Path, tiny_model_dir: Path):
    from genrelens.errors import InputError, InputWarning
    from genrelens.predict import GenreClassifier

    clf = GenreClassifier.load(tiny_model_dir)
    plots = ["A heist goes wrong.", None, "Two strangers fall in love in Paris."]
    posters = ["batch/nope.jpg", "batch/nope.jpg", None]
    with pytest.warns(InputWarning, match=r"2 of 3 movie.*movies\[0\]: poster ignored.*movies\[1\]: .*no usable"):
        proba = clf.predict_proba(plots, posters)
    assert proba.shape == (3, len(clf.labels))
    with pytest.warns(InputWarning, match="2 of 3") as caught:
        assert len(clf.predict(plots, posters)) == 3
    assert caught[0].filename == __file__  # the warning points at the user's call
    with pytest.raises(InputError, match="movies\\[0\\]"):
        clf.predict(plots, posters, problems="raise")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf.predict(plots, posters, problems="ignore")
        clf.predict([plots[0]], [None])  # nothing wrong: no warning
    _, errors = clf.score(plots, posters)
    assert sorted(errors) == [0, 1]


def test_cli_one_movie_with_a_bad_poster_agrees_with_the_batch(newuser: Path, tiny_model_dir: Path):
    import json

    Path("notanimage.jpg").write_text("hello")
    plot = "A retired hitman is pulled back in for one last job."
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", plot, "--poster",
                            "notanimage.jpg", "--json"])
    assert r.exit_code == 0, r.output
    one = json.loads(r.stdout)
    assert one["genres"] and one["warnings"][0].startswith("poster ignored: poster")
    plain = json.loads(runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--plot", plot,
                                           "--json"]).stdout)
    assert one["scores"] == plain["scores"]  # scored from its plot, as the batch path does
    pd.DataFrame({"id": ["m"], "plot": [plot], "poster": ["notanimage.jpg"]}).to_csv("one.csv", index=False)
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--input", "one.csv", "--output",
                            "one.pred.csv", "--no-progress"])
    row = _read_predictions(Path("one.pred.csv")).iloc[0]
    assert row["genres"].split("|") == one["genres"] and row["warnings"].startswith("poster ignored")
    assert row["error"] == ""
    r = runner.invoke(app, ["predict", "--model-dir", str(tiny_model_dir), "--poster", "notanimage.jpg"])
    assert r.exit_code == 2 and "not an image" in r.output  # nothing else to score from: as the batch, not scored


@pytest.mark.slow
def test_train_poster_model_from_a_relative_path(subset_csv: Path, cache_dir: Path, tmp_path: Path, monkeypatch):
    """Was: "need at least one array to concatenate" (every poster looked up under the table's folder twice)."""
    from conftest import train_tiny

    monkeypatch.chdir(subset_csv.parent.parent)
    metrics = train_tiny("poster", Path(subset_csv.parent.name) / "movies.csv", tmp_path / "poster", cache_dir,
                         epochs=2)
    assert metrics["test"]["weighted_f1"] > 0
