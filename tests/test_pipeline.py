"""One pipeline behind every entry point: the same movies get the same Prediction from the Python API, the CLI,
REST (single and batch) and a batch table; a movie with no usable input gets no genres and a problem everywhere."""

from __future__ import annotations

import base64
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from genrelens.batch import predict_table
from genrelens.cli import app as cli
from genrelens.errors import InputWarning
from genrelens.predict import REVIEW_REASONS, GenreClassifier
from genrelens.serve.app import create_app
from genrelens.types import Movie, Prediction

runner = CliRunner()
N = 6


@pytest.fixture(scope="module")
def clf(tiny_catalogue_dir) -> GenreClassifier:
    return GenreClassifier.load(tiny_catalogue_dir, precision="fp32")


@pytest.fixture(scope="module")
def rows(tiny_catalogue_dir, subset_csv) -> pd.DataFrame:
    """Test-split movies of the real subset, some with a poster."""
    df = pd.read_csv(subset_csv, dtype=str, keep_default_na=False)
    ids = json.loads((tiny_catalogue_dir / "split.json").read_text())["test"]
    df = df[df["id"].isin(ids)].reset_index(drop=True)
    with_poster = df[df["poster"] != ""].head(N // 2)
    return pd.concat([with_poster, df[df["poster"] == ""].head(N - len(with_poster))], ignore_index=True)


@pytest.fixture(scope="module")
def movies(rows, subset_csv) -> list[Movie]:
    return [Movie(id=r.id, title=r.title, plot=r.plot, poster=subset_csv.parent / r.poster if r.poster else None)
            for r in rows.itertuples()]


@pytest.fixture(scope="module")
def python_predictions(clf, movies) -> list[Prediction]:
    return clf.predict_movies(movies)


@pytest.fixture(scope="module")
def python_answers(python_predictions) -> list[dict]:
    return [{**p.to_dict(), "id": None} for p in python_predictions]


def _core(answer: dict) -> dict:
    return {k: answer[k] for k in ("genres", "scores", "confidence", "review", "review_reasons")}


def _b64(path: Path | None) -> str | None:
    return base64.b64encode(path.read_bytes()).decode() if path else None


def test_python_predict_agrees_with_predict_movies(clf, movies, python_answers):
    genres = clf.predict([m.plot for m in movies], [m.poster for m in movies], titles=[m.title for m in movies])
    assert [set(g) for g in genres] == [set(a["genres"]) for a in python_answers]
    proba = clf.predict_proba([m.plot for m in movies], [m.poster for m in movies], titles=[m.title for m in movies])
    assert [list(a["scores"].values()) for a in python_answers] == [[round(float(x), 4) for x in r] for r in proba]
    assert all(a["review"] == bool(a["review_reasons"]) for a in python_answers)
    assert set(REVIEW_REASONS) >= {"low_confidence", "input_ignored", "no_input"}


def test_cli_single_movie_matches_python(clf, movies, python_answers, monkeypatch):
    monkeypatch.setattr(GenreClassifier, "load", classmethod(lambda cls, *a, **k: clf))
    for m, expected in list(zip(movies, python_answers))[:3]:
        args = ["predict", "--plot", m.plot, "--title", m.title, "--json"]
        r = runner.invoke(cli, args + (["--poster", str(m.poster)] if m.poster else []))
        assert r.exit_code == 0, r.output
        assert _core(json.loads(r.stdout)) == _core(expected)


def test_rest_single_and_batch_match_python(clf, movies, python_answers):
    body = [{"id": m.id, "title": m.title, "plot": m.plot, "poster": _b64(m.poster)} for m in movies]
    with TestClient(create_app(classifier=clf)) as client:
        singles = [client.post("/v1/predict", json={k: v for k, v in b.items() if k != "id"}) for b in body]
        batch = client.post("/v1/predict/batch", json={"movies": body})
    assert all(r.status_code == 200 for r in singles) and batch.status_code == 200
    assert [_core(r.json()) for r in singles] == [_core(a) for a in python_answers]
    results = batch.json()["results"]
    assert [r["id"] for r in results] == [m.id for m in movies]
    assert [_core(r) for r in results] == [_core(a) for a in python_answers]  # confidence and review included


def test_batch_table_matches_python(clf, rows, subset_csv, python_predictions, tmp_path):
    table = subset_csv.parent / "pipeline_rows.csv"
    rows.to_csv(table, index=False)
    out = tmp_path / "pred.parquet"  # exact float32 values (a CSV rounds them)
    predict_table(clf, table, out)
    df = pd.read_parquet(out)
    assert df["id"].tolist() == [p.id for p in python_predictions]
    for (_, row), p in zip(df.iterrows(), python_predictions):
        assert row["genres"].split("|") == p.genres
        assert [row[f"p_{g}"] for g in clf.labels] == [np.float32(p.scores[g]) for g in clf.labels]
        assert row["confidence"] == np.float32(p.confidence) and bool(row["review"]) == p.review


def test_a_movie_with_no_usable_input_gets_no_genres_and_a_problem_everywhere(clf, tmp_path, monkeypatch):
    [p] = clf.predict_movies([Movie(id="x", plot="  ")])
    assert p.genres == [] and p.scores is None and p.error and p.review and p.review_reasons == ["no_input"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert clf.predict(["A heist goes wrong.", ""]) [1] == []
    assert any(issubclass(w.category, InputWarning) and "no usable input" in str(w.message) for w in seen)
    monkeypatch.setattr(GenreClassifier, "load", classmethod(lambda cls, *a, **k: clf))
    r = runner.invoke(cli, ["predict", "--plot", "  "])
    assert r.exit_code == 2 and "give --plot" in r.output
    with TestClient(create_app(classifier=clf)) as client:
        single = client.post("/v1/predict", json={"plot": "  "})
        batch = client.post("/v1/predict/batch", json={"movies": [{"id": "x", "plot": ""}, {"plot": "A heist."}]})
    assert single.status_code == 422 and single.json()["error"] == "no_input"
    first, second = batch.json()["results"]
    assert "genres" not in first and first["error"]["code"] == "no_input" and second["genres"]
    table = tmp_path / "t.csv"
    pd.DataFrame({"id": ["x", "y"], "plot": ["", "A heist goes wrong."]}).to_csv(table, index=False)
    predict_table(clf, table, tmp_path / "o.csv")
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert out.loc[0, "genres"] == "" and out.loc[0, "error"] and bool(out.loc[0, "review"])
    assert math.isnan(float(pd.read_csv(tmp_path / "o.csv")[f"p_{clf.labels[0]}"][0])) and out.loc[1, "genres"]


def test_a_title_alone_is_worth_a_check(clf, movies):
    """A title with nothing else the model reads ("Avatar", or "Xq7 zzkp") gets genres guessed from a few words:
    `title_only` flags it everywhere (it used to come back unflagged); a title with a plot or a poster does not."""
    with_poster = next(m for m in movies if m.poster)
    given = [Movie(title="Xq7 zzkp"), Movie(title="Avatar"), Movie(title="Avatar", poster=with_poster.poster),
             Movie(title=with_poster.title, plot=with_poster.plot), Movie(plot="   ", title="Heat"),
             Movie(title="Avatar", poster=b"not an image")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        got = clf.predict_movies(given)
    flagged = ["title_only" in p.review_reasons for p in got]
    assert flagged == [True, True, False, False, True, True], [p.review_reasons for p in got]
    assert all(p.review and p.genres for p, f in zip(got, flagged, strict=True) if f)
    with TestClient(create_app(classifier=clf)) as client:
        answer = client.post("/v1/predict", json={"title": "Xq7 zzkp"}).json()
        assert "title_only" in answer["review_reasons"] and "title_only" in client.get("/v1/model").json()[
            "review_reasons"]
