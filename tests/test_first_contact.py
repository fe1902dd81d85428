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
    from genrelens.train.config import RunConfig

    with pytest.raises(ValueError, match=field):
        RunConfig(**{field: value})


def test_run_config_accepts_the_edges():
    from genrelens.train.config import RunConfig

    RunConfig(epochs=1, ft_epochs=1, ft_layers=6, dropout=0.0, patience=0, seed=0, oversample_target=1.0)
    RunConfig(text_encoder="mpnet", ft_layers=12)


# --- 4: a bare string is not a list of movies --------------------------------------------------------------


@pytest.fixture
def naive_clf(tmp_path: Path):
    """A real (naive) classifier: input checks run before any encoder."""
    import numpy as np

    from genrelens.predict import GenreClassifier
    from genrelens.train.config import RunConfig

    return GenreClassifier(tmp_path, RunConfig(model="naive"), ["Drama", "Comedy"], np.array([0.5, 0.5], np.float32),
                           naive_freq=np.array([0.6, 0.3], np.float32))


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
    assert naive_clf.predict(plots=["A heist goes wrong."]) == [["Drama"]]
    assert naive_clf.predict_proba(plots=("A heist goes wrong.",), posters=[None]).shape == (1, 2)


# --- 6: evaluate --split on a table that is not the training data ------------------------------------------


@pytest.fixture
def naive_run(tmp_path: Path, subset_csv: Path, cache_dir: Path) -> Path:
    from conftest import train_tiny

    out = tmp_path / "naive-run"
    train_tiny("naive", subset_csv, out, cache_dir)
    return out


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
