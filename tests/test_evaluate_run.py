"""genrelens.evaluate.run: the rows an evaluation used and dropped, and evaluation of a model on a table."""

import pytest

from genrelens.evaluate.run import evaluate_table, rows_line, rows_summary


def test_rows_summary_counts_and_names_the_dropped_rows():
    rows = rows_summary(10, [(3, "m3", "no id (blank)"), (4, "m4", "no id (blank)"), (7, "m7", "bad genres")],
                        [["Western"], ["Western", "War"]], n_used=5, n_input_problems=1, split="test",
                        n_outside_split=0)
    assert rows["dropped"] == {"bad row: no id": 2, "bad row: bad genres": 1, "none of the model's labels": 2}
    assert rows["n_dropped"] == 5 and rows["unlabelled_genres"] == {"Western": 2, "War": 1}
    line = rows_line(rows)
    assert line.startswith("rows: 10 read, 0 outside the 'test' split, 5 used, 5 dropped (2 bad row: no id;")
    assert "their commonest genres: Western, War" in line and "1 scored with less input" in line


def test_rows_line_without_drops():
    assert rows_line(rows_summary(4, [], [], 4)) == "rows: 4 read, 4 used, 0 dropped"


def test_evaluate_the_naive_model_on_its_test_split(tiny_naive_dir, subset_csv):
    m = evaluate_table(tiny_naive_dir, subset_csv, split="test")
    assert 0 < m["weighted_f1"] <= 1 and m["rows"]["split"] == "test"
    assert m["rows"]["used"] + m["rows"]["n_dropped"] + m["rows"]["outside_split"] == m["rows"]["read"] == 400
    assert m["n_rows"] == m["rows"]["used"]
    with pytest.raises(Exception, match="split"):
        evaluate_table(tiny_naive_dir, subset_csv, split="nope")
