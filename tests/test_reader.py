"""genrelens.data.reader: tables read row by row; bad rows kept, numbered and explained."""

import pandas as pd
import pytest

from genrelens.data.reader import check_encoding, detect_sep, iter_table_chunks, parse_sep, read_rows
from genrelens.errors import DataError


def test_bad_bytes_and_extra_fields_are_reported_by_row(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"id,title,plot\nm1,One,fine\nm2,Caf\xe9,latin\n\nm3,Three,a,b\nm4,Four,\n")
    df, bad = read_rows(p)
    assert list(df["id"]) == ["m1", "m2", "m3", "m4"]
    assert df.loc[1, "title"] == "Caf\ufffd" and df.loc[3, "plot"] == ""
    assert set(bad) == {2, 3}
    assert "not UTF-8" in bad[2] and "0xE9" in bad[2] and "--encoding latin-1" in bad[2]
    df, bad = read_rows(p, encoding="latin-1")
    assert df.loc[1, "title"] == "Café" and 2 not in bad


def test_separators_detected_or_given(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("id;title;plot\nm1;A, B;x\n", encoding="utf-8")
    assert detect_sep(p) == ";"
    assert read_rows(p)[0].loc[0, "title"] == "A, B"
    assert parse_sep("tab") == "\t" and parse_sep("auto") is None and parse_sep(";") == ";"
    with pytest.raises(DataError, match="one character"):
        parse_sep("::")
    (tmp_path / "t.tsv").write_text("id,x\tplot\n", encoding="utf-8")
    assert detect_sep(tmp_path / "t.tsv") == "\t"


def test_jsonl_rows_and_chunks(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text('{"id": "m1", "title": "x\\ud800"}\n[1, 2]\nnot json\n{"id": "m4"}\n', encoding="utf-8")
    df, bad = read_rows(p)
    assert len(df) == 4 and df.loc[0, "title"] == "x\ufffd" and df.loc[3, "id"] == "m4"
    assert sorted(bad) == [2, 3] and "not valid JSON" in bad[3]
    chunks = list(iter_table_chunks(p, chunk_size=3))
    assert [len(c) for c, _ in chunks] == [3, 1] and chunks[0][1].keys() == {2, 3}


def test_real_rows_read_like_pandas(real_data, tmp_path):
    head = tmp_path / "head.csv"
    head.write_text("".join(real_data.read_text(encoding="utf-8").splitlines(keepends=True)[:30]), encoding="utf-8")
    df, bad = read_rows(head)
    expected = pd.read_csv(head, dtype=str, keep_default_na=False)
    assert not bad and df.astype(str).equals(expected.astype(str))


def test_unknown_encoding():
    assert check_encoding("LATIN-1") == "iso8859-1"
    with pytest.raises(DataError, match="unknown encoding"):
        check_encoding("utf-9")
