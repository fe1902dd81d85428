"""Models that read a movie's title with its plot (``RunConfig.title``; the default ``catalogue`` does)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from genrelens.config import RunConfig
from genrelens.data.clean import movie_text
from genrelens.predict import NO_INPUT, GenreClassifier


def test_movie_text_joins_title_and_plot():
    assert movie_text("Alien", "A crew meets a creature.") == "Alien. A crew meets a creature."
    assert movie_text("What's Up, Doc?", "Mix-ups at a hotel.") == "What's Up, Doc? Mix-ups at a hotel."
    assert movie_text("  Heat ", None) == "Heat"
    assert movie_text(None, " A heist. ") == "A heist."
    assert movie_text("", "") == "" and movie_text(None, None) == ""


def test_title_is_the_catalogue_default_and_old_configs_read_no_titles(tmp_path):
    assert RunConfig(model="catalogue").title is True
    assert RunConfig(model="integrated").title is False
    saved = {k: v for k, v in json.loads(json.dumps(RunConfig(model="catalogue").__dict__, default=list)).items()
             if k != "title"}
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert RunConfig.load(tmp_path / "config.json").title is False  # trained before titles existed
    with pytest.raises(ValueError, match="title is read as text"):
        RunConfig(model="poster", title=True)


@pytest.fixture(scope="module")
def test_rows(tiny_catalogue_dir, subset_csv) -> pd.DataFrame:
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    ids = json.loads((tiny_catalogue_dir / "split.json").read_text())["test"]
    return df[df["id"].isin(ids)].reset_index(drop=True)


def test_titles_reach_the_model_as_in_training(tiny_catalogue_dir, test_rows):
    """Scoring with ``titles`` is scoring "<title>. <plot>" (what training read); without titles a title model
    still answers from the plot, and differently."""
    clf = GenreClassifier.load(tiny_catalogue_dir)
    assert clf.reads_titles
    rows = test_rows[test_rows["plot"] != ""].head(12)
    plots, titles = list(rows["plot"]), list(rows["title"])
    with_titles = clf.predict_proba(plots, titles=titles)
    joined = clf.predict_proba([movie_text(t, p) for t, p in zip(titles, plots)])
    np.testing.assert_allclose(with_titles, joined, atol=1e-6)
    assert not np.allclose(with_titles, clf.predict_proba(plots), atol=1e-4)


def test_a_title_alone_is_an_input_for_a_title_model_only(tiny_catalogue_dir, tiny_model_dir, test_rows):
    title = test_rows["title"].iloc[0]
    clf = GenreClassifier.load(tiny_catalogue_dir)
    proba, errors = clf.score([None], [None], titles=[title])
    assert errors == {} and proba.shape == (1, len(clf.labels))
    other = GenreClassifier.load(tiny_model_dir)  # integrated: reads no titles
    assert not other.reads_titles
    _, errors = other.score([None], [None], titles=[title])
    assert errors == {0: NO_INPUT}
    with pytest.raises(ValueError, match="does not read titles"):
        other.score(titles=[title])
    with pytest.raises(ValueError, match="2 plots but 1 titles"):
        clf.score(["a", "b"], titles=["x"])
    with pytest.raises(TypeError, match="titles must be a list"):
        clf.score(["a"], titles="x")


def test_explanation_words_point_into_the_text_read(tiny_catalogue_dir, test_rows):
    row = test_rows[test_rows["plot"] != ""].iloc[0]
    clf = GenreClassifier.load(tiny_catalogue_dir)
    e = clf.explain(row["plot"], None, title=row["title"], heatmaps=False)
    assert e["text"] == movie_text(row["title"], row["plot"])
    for w in e["plot_words"]:
        assert e["text"][w["start"]:w["end"]] == w["word"]


def test_batch_table_title_column_is_read(tiny_catalogue_dir, test_rows, tmp_path):
    from genrelens.batch import predict_table

    rows = test_rows.head(20).copy()
    rows.loc[rows.index[0], ["plot", "poster"]] = ""  # a movie known by its title alone
    src = tmp_path / "in.csv"
    rows[["id", "title", "plot", "poster"]].to_csv(src, index=False)
    out = tmp_path / "out.csv"
    clf = GenreClassifier.load(tiny_catalogue_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predict_table(clf, src, out)
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got["error"].iloc[0] == "" and got["genres"].iloc[0] != ""
    root = src.parent
    expect = clf.predict_proba(list(rows["plot"]), [root / p if p else None for p in rows["poster"]],
                               titles=list(rows["title"]), problems="ignore")
    labels = clf.labels
    np.testing.assert_allclose(got[[f"p_{g}" for g in labels]].astype(float).to_numpy(), expect, atol=1e-4)


def test_rest_and_cli_read_the_title(tiny_catalogue_dir, tiny_model_dir, test_rows):
    from fastapi.testclient import TestClient
    from typer.testing import CliRunner

    from genrelens.cli import app as cli
    from genrelens.serve.app import create_app

    row = test_rows[test_rows["plot"] != ""].iloc[0]
    clf = GenreClassifier.load(tiny_catalogue_dir)
    expect = clf.predict_proba([row["plot"]], titles=[row["title"]])[0]
    with TestClient(create_app(classifier=clf)) as c:
        body = c.post("/v1/predict", json={"title": row["title"], "plot": row["plot"]}).json()
        np.testing.assert_allclose([body["scores"][g] for g in clf.labels], expect, atol=1e-4)
        form = c.post("/v1/predict", data={"title": row["title"], "plot": row["plot"]}).json()
        assert form["scores"] == body["scores"]
        batch = c.post("/v1/predict/batch", json={"movies": [{"title": row["title"], "plot": row["plot"]},
                                                             {"title": row["title"]}]}).json()
        assert batch["results"][0]["scores"] == body["scores"] and batch["n_errors"] == 0
        why = c.post("/v1/explain", json={"title": row["title"], "plot": row["plot"]}).json()["explanation"]
        assert why["text"] == movie_text(row["title"], row["plot"])
    with TestClient(create_app(classifier=GenreClassifier.load(tiny_model_dir))) as c:
        r = c.post("/v1/predict", json={"title": row["title"]})
        assert r.status_code == 422 and "does not read titles" in r.json()["detail"]
        r = c.post("/v1/predict", json={"title": row["title"], "plot": row["plot"]}).json()
        assert "title ignored: this model does not read titles" in r["warnings"]
    runner = CliRunner(env={"COLUMNS": "200"})
    r = runner.invoke(cli, ["predict", "--model-dir", str(tiny_catalogue_dir), "--title", row["title"], "--plot",
                            row["plot"], "--json"])
    assert r.exit_code == 0, r.output
    np.testing.assert_allclose([json.loads(r.stdout)["scores"][g] for g in clf.labels], expect, atol=1e-4)
    r = runner.invoke(cli, ["predict", "--model-dir", str(tiny_model_dir), "--title", row["title"]])
    assert r.exit_code != 0 and "does not read titles" in r.output


def test_title_dropout_hides_the_title_of_a_share_of_movies_with_a_plot():
    from genrelens.train.run import texts_of

    part = pd.DataFrame({"title": [f"T{i}" for i in range(100)],
                         "plot": [f"plot {i}" if i % 5 else "" for i in range(100)]})  # 20 title-only movies
    full = texts_of(part, True)
    assert full[1] == "T1. plot 1" and full[0] == "T0"
    dropped = texts_of(part, True, dropout=0.25, seed=3)
    without = [i for i, (a, b) in enumerate(zip(full, dropped)) if a != b]
    assert len(without) == 20 and all(dropped[i] == part["plot"][i] for i in without)  # 25% of the 80 plots
    assert all(dropped[i] == f"T{i}" for i in range(0, 100, 5))  # a title alone is kept: it is all there is
    assert texts_of(part, True, dropout=0.25, seed=3) == dropped and texts_of(part, False)[0] == ""


def test_numeric_and_missing_titles(tiny_catalogue_dir):
    """A spreadsheet may store "1917" or "2012" as numbers: they are read as their digits; None/NaN as none."""
    clf = GenreClassifier.load(tiny_catalogue_dir)
    plot = "A soldier crosses no man's land to deliver a message."
    texts = clf.texts([plot] * 5, [1917, 2012.0, np.int64(300), float("nan"), None], 5)
    assert texts == [f"1917. {plot}", f"2012. {plot}", f"300. {plot}", plot, plot]
