"""genrelens.ray_predict: the ray engine's inputs, row resolution and scorer (run here without Ray itself)."""

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from genrelens.errors import DataError
from genrelens.ray_predict import ROOT, RayScorer, columns_of, input_files, read_output, resolve_rows


def test_input_files_from_a_file_a_folder_or_a_glob(tmp_path):
    pd.DataFrame({"id": ["a"], "plot": ["x"]}).to_csv(tmp_path / "b.csv", index=False)
    pq.write_table(pa.table({"id": ["c"], "plot": ["y"]}), tmp_path / "a.parquet")
    (tmp_path / "notes.txt").write_text("id\n")
    assert [f.name for f in input_files(tmp_path)] == ["a.parquet", "b.csv"]
    assert [f.name for f in input_files(tmp_path / "*.csv")] == ["b.csv"]
    assert columns_of(tmp_path / "a.parquet") == ["id", "plot"]
    pd.DataFrame({"plot": ["x"]}).to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(DataError, match="no 'id' column"):
        input_files(tmp_path / "noid.csv")
    with pytest.raises(DataError, match="no CSV or Parquet input"):
        input_files(tmp_path / "none" / "*.csv")


def test_resolve_rows_makes_posters_absolute(tmp_path):
    batch = pd.DataFrame({"id": [1, 2], "plot": ["x", None], "poster": ["posters/a.jpg", "/abs/b.jpg"],
                          "path": [str(tmp_path / "t.csv")] * 2})
    rows = resolve_rows(batch)
    assert list(rows.columns) == ["id", "title", "plot", "poster", ROOT]
    assert rows["id"].tolist() == ["1", "2"] and rows["plot"].tolist() == ["x", ""]
    assert rows["title"].tolist() == ["", ""]
    assert rows["poster"].tolist() == [str(tmp_path / "posters/a.jpg"), "/abs/b.jpg"]
    assert rows[ROOT].tolist() == [str(tmp_path)] * 2


def test_scorer_answers_an_arrow_table_per_batch(tiny_naive_dir, tmp_path):
    scorer = RayScorer(str(tiny_naive_dir))
    batch = resolve_rows(pd.DataFrame({"id": ["a", "b"], "plot": ["A heist.", "Love."], "poster": ["", ""],
                                       "path": [str(tmp_path / "t.csv")] * 2}))
    table = scorer(batch)
    assert table.schema == scorer.schema and table.num_rows == 2
    out = table.to_pandas()
    assert out["id"].tolist() == ["a", "b"] and out["genres"].str.len().gt(0).all()
    pq.write_table(table, tmp_path / "part-0.parquet")
    assert read_output(tmp_path)["id"].tolist() == ["a", "b"] and read_output(tmp_path / "none").empty
