"""genrelens.batch: table prediction writes one row per input row, reports problems, and refuses bad plans."""

from pathlib import Path

import pandas as pd
import pytest

from genrelens.batch import output_format, output_name, plan_batch, predict_table, row_status
from genrelens.errors import DataError
from genrelens.predict import GenreClassifier


@pytest.fixture()
def table(tmp_path):
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": ["m1", "m2", "m3"], "title": ["A", "B", "C"], "plot": ["A heist.", "", "Love."],
                  "poster": ["", "", ""], "year": ["1999", "2000", "2001"], "genres": ["x", "y", "z"]}
                 ).to_csv(path, index=False)
    return path


def test_predict_table_writes_every_row(tiny_naive_dir, table, tmp_path):
    clf = GenreClassifier.load(tiny_naive_dir)
    out = tmp_path / "out.csv"
    summary = predict_table(clf, table, out, chunk_size=2)
    df = pd.read_csv(out, dtype={"id": str})
    assert summary.n_rows == 3 and list(df["id"]) == ["m1", "m2", "m3"]
    assert {f"p_{g}" for g in clf.labels} <= set(df.columns) and {"confidence", "review", "error"} <= set(df.columns)
    # input columns are kept (all but plot and poster); one named like an output column is renamed
    assert {"title", "year", "input_genres"} <= set(df.columns) and "plot" not in df.columns
    assert df["genres"].str.len().gt(0).all()
    assert not list(tmp_path.glob("*.parts*"))  # the chunk folder is gone once the output is whole


def test_plan_checks_arguments_before_any_model(table, tmp_path):
    assert plan_batch(table, tmp_path / "o.jsonl", columns="none").keep == []
    assert plan_batch(table, tmp_path / "o.parquet", columns="year,id").keep == ["year"]
    with pytest.raises(DataError, match="unknown output format"):
        plan_batch(table, tmp_path / "o.txt")
    with pytest.raises(DataError, match="not in"):
        plan_batch(table, tmp_path / "o.csv", columns="rating")
    with pytest.raises(DataError, match="input not found"):
        plan_batch(tmp_path / "none.csv", tmp_path / "o.csv")
    with pytest.raises(ValueError, match="chunk_size"):
        plan_batch(table, tmp_path / "o.csv", chunk_size=0)


def test_row_status_and_names():
    assert row_status("", None, None, uses_text=True, uses_poster=True) == (False, "no input: empty plot and no poster")
    assert row_status("A plot", None, None, True, False) == (True, None)
    scored, msg = row_status("", "p.jpg", "poster not found", True, True)
    assert not scored and msg.startswith("poster not found; not scored")
    assert row_status("", None, None, False, False)[0]  # a model that reads nothing answers anyway
    assert output_name("genres") == "input_genres" and output_name("p_Drama") == "input_p_Drama"
    assert output_name("year") == "year" and output_format(Path("x.NDJSON")) == "jsonl"
