"""genrelens.evaluate.run: the rows an evaluation used and dropped, and evaluation of a model on a table."""

import pytest

from genrelens.data.table import rows_line, rows_summary
from genrelens.evaluate.run import evaluate_table


def test_rows_summary_counts_and_names_the_dropped_rows():
    rows = rows_summary(10, [(3, "m3", "no id (blank)"), (4, "m4", "no id (blank)"), (7, "m7", "bad genres")],
                        [["Western"], ["Western", "War"]], n_used=5, n_input_problems=1, split="test",
                        n_outside_split=0)
    assert rows["dropped"] == {"bad rows": 3, "none of the model's labels": 2}
    assert rows["bad_row_problems"] == {"no id": 2, "bad genres": 1}
    assert rows["n_dropped"] == 5 and rows["unlabelled_genres"] == {"Western": 2, "War": 1}
    line = rows_line(rows)
    assert line.startswith("rows: 10 read, 0 outside the 'test' split, 5 used, 5 dropped (3 bad rows: 2 no id, "
                           "1 bad genres; 2 with none of the model's labels")
    assert "their commonest genres: Western, War" in line and "1 scored with less input" in line


def test_a_row_with_several_problems_is_dropped_once():
    """An all-empty row (empty id, no genres, neither plot nor poster) is one dropped row: read = used + dropped."""
    skipped = [(6, "", "empty id"), (6, "", "no genres"), (6, "", "neither plot nor poster"),
               (24, "tmdb-4518", "duplicate id (first in row 2)"), (28, "", "empty id"), (29, "x-recipe", "no genres"),
               (30, "x-quote", "unmatched quote: a quote (\") in this row ..."),
               (31, "x-wide", "6 fields but the header has 4 (an unquoted ',' or quote?)"),
               (32, "", "cannot parse this row near line 40: new-line character seen in unquoted field"),
               (33, "", "cannot parse this row near line 52: new-line character seen in unquoted field")]
    rows = rows_summary(33, skipped, [["Documentary"]], n_used=24)
    assert rows["dropped"] == {"bad rows": 8, "none of the model's labels": 1} and rows["n_dropped"] == 9
    assert rows["used"] + rows["n_dropped"] == rows["read"]
    assert rows["bad_row_problems"] == {"empty id": 2, "no genres": 2, "neither plot nor poster": 1,
                                        "duplicate id": 1, "unmatched quote": 1, "wrong number of fields": 1,
                                        "cannot parse this row": 2}
    assert rows_line(rows).startswith(
        "rows: 33 read, 24 used, 9 dropped (8 bad rows with 10 problems, a row can have several: 2 empty id, "
        "2 no genres, 2 cannot parse this row, 1 neither plot nor poster, 1 duplicate id, 1 unmatched quote, "
        "1 wrong number of fields; 1 with none of the model's labels")


def test_rows_line_without_drops():
    assert rows_line(rows_summary(4, [], [], 4)) == "rows: 4 read, 4 used, 0 dropped"


def test_evaluate_the_naive_model_on_its_test_split(tiny_naive_dir, subset_csv):
    m = evaluate_table(tiny_naive_dir, subset_csv, split="test")
    assert 0 < m["weighted_f1"] <= 1 and m["rows"]["split"] == "test"
    assert m["rows"]["used"] + m["rows"]["n_dropped"] + m["rows"]["outside_split"] == m["rows"]["read"] == 400
    assert m["n_rows"] == m["rows"]["used"]
    with pytest.raises(Exception, match="split"):
        evaluate_table(tiny_naive_dir, subset_csv, split="nope")
