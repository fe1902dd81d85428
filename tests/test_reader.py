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


# A ';' catalogue whose row 2 opens a quote that never closes, and whose row 5 has too many fields.
UNCLOSED = ("id;title;plot\n"
            "q1;Heat;Bank robbers and a detective in Los Angeles clash after a heist.\n"
            'q2;Quote;"He said hello and left the town forever, never to return.\n'
            "q3;Alien;A crew on a spaceship is hunted by a deadly alien creature.\n"
            "q4;Nemo;A clownfish searches the ocean for his lost son.\n"
            "q5;Too;many;fields;here\n")


def test_a_quote_that_never_closes_swallows_no_rows(tmp_path):
    p = tmp_path / "quotes.csv"
    p.write_text(UNCLOSED, encoding="utf-8")
    df, bad = read_rows(p)
    assert list(df["id"]) == ["q1", "q2", "q3", "q4", "q5"]
    assert df.loc[1, "plot"] == "He said hello and left the town forever, never to return."
    assert df.loc[2, "plot"] == "A crew on a spaceship is hunted by a deadly alien creature."
    assert sorted(bad) == [2, 5]
    assert "quote" in bad[2] and "never closes" in bad[2] and "line 3" in bad[2] and "3 line(s)" in bad[2]
    assert "5 fields but the header has 3" in bad[5]
    chunks = list(iter_table_chunks(p, chunk_size=2))  # predict --input reads in chunks: the same rows
    assert [len(c) for c, _ in chunks] == [2, 2, 1] and set().union(*(b for _, b in chunks)) == {2, 5}


def test_a_quote_that_closes_in_a_later_row_swallows_no_rows(tmp_path):
    p = tmp_path / "quotes.csv"
    p.write_text('id,title,plot,genres\n'
                 'q1,Heat,A heist goes wrong.,Crime\n'
                 'q2,Quote,"He said hello and left.,Drama\n'
                 'q3,Alien,A crew is hunted.,Horror\n'
                 'q4,Nemo,"A clownfish" searches the sea,Family\n'
                 'q5,Up,An old man flies away.,Comedy\n', encoding="utf-8")
    df, bad = read_rows(p)
    assert list(df["id"]) == ["q1", "q2", "q3", "q4", "q5"]
    assert list(df["genres"]) == ["Crime", "Drama", "Horror", "Family", "Comedy"]
    assert df.loc[1, "plot"] == '"He said hello and left.'  # the quote read as text: its genres are kept
    assert df.loc[3, "plot"] == "A clownfish searches the sea"
    assert sorted(bad) == [2] and "quote" in bad[2] and "2 line(s)" in bad[2]


def test_multi_line_quoted_fields_still_read_whole(tmp_path):
    """A real export may quote a plot holding line breaks (and separators), in any column."""
    p = tmp_path / "t.csv"
    text = ('plot,id,title,genres\n'
            '"First paragraph, with a comma.\nq9,Second,paragraph,Drama\nThird line.",m1,One,Drama\n'
            '"Short.",m2,Two,Comedy\n'
            '"Ends with a line break\n",m3,Three,Horror\n')
    p.write_text(text, encoding="utf-8")
    df, bad = read_rows(p)
    assert not bad and list(df["id"]) == ["m1", "m2", "m3"]
    assert df.loc[0, "plot"] == "First paragraph, with a comma.\nq9,Second,paragraph,Drama\nThird line."
    assert df.astype(str).equals(pd.read_csv(p, dtype=str, keep_default_na=False).astype(str))


def test_a_stray_quote_that_runs_past_the_field_limit_swallows_no_rows(tmp_path, monkeypatch):
    """A stray quote in a big file reads on until csv's field limit stops it: the lines it took are read as rows of
    their own, as for any unmatched quote (they used to vanish behind one unparseable row)."""
    import csv

    from genrelens.data import reader

    text = "id,title,plot,genres\n1,A,\"stray quote,Drama\n" + "".join(
        f"{i},T{i},{'x' * 60},Drama\n" for i in range(2, 200))
    p = tmp_path / "big.csv"
    p.write_text(text)
    real = csv.field_size_limit
    old = real()
    monkeypatch.setattr(reader.csv, "field_size_limit", lambda n=None: real() if n is None else real(min(n, 2000)))
    try:
        df, bad = read_rows(p)
    finally:
        real(old)
    assert list(df["id"]) == [str(i) for i in range(1, 200)] and list(bad) == [1]
    assert "unmatched quote" in bad[1] and df.loc[5, "plot"] == "x" * 60


def test_a_short_row_with_a_quoted_multi_line_plot_is_one_row(tmp_path):
    """A row that leaves out its last fields (legal CSV) and quotes a plot with a line break that holds the
    separator is one row, not a stray quote and an invented movie."""
    p = tmp_path / "short.csv"
    p.write_text('id,title,plot,poster\n1,A,"Para one.\nThe hero, a cop, his wife, and a dog go."\n2,B,p,\n')
    df, bad = read_rows(p)
    assert list(df["id"]) == ["1", "2"] and not bad
    assert df.loc[0, "plot"] == "Para one.\nThe hero, a cop, his wife, and a dog go."


def test_a_quote_that_closes_mid_field_on_its_own_line_is_an_unmatched_quote(tmp_path):
    """``"Unclosed ... one by one.,"Horror"``: the plot's quote closes at the next field's, which shifts every field
    after it (genres read from the poster column); the row is a bad row named as an unmatched quote, not a warning
    about its field count."""
    p = tmp_path / "t.csv"
    p.write_text('id,title,year,plot,genres,poster\n'
                 '1,"Evil Dead",2013,"Five friends in a cabin are possessed one by one.,"Horror",posters/1.jpg\n'
                 '2,Heat,1995,"A cop, a thief.",Crime,posters/2.jpg\n')
    df, bad = read_rows(p)
    assert list(df["id"]) == ["1", "2"] and list(bad) == [1] and "unmatched quote" in bad[1]
    assert df.loc[1, "genres"] == "Crime"


def test_windows_text_is_pointed_to_cp1252(tmp_path):
    """Smart quotes and dashes (bytes 0x80-0x9F in cp1252) read as control characters under latin-1: the hint
    names cp1252 for them, latin-1 (or cp1252) for other bytes."""
    from genrelens.data.validate import validate_table

    p = tmp_path / "w.csv"
    p.write_bytes("id,title,plot,genres\n1,A,\u201cQuoted\u201d \u2014 a plot.,Drama\n2,Am\u00e9lie,A plot.,Drama\n"
                  .encode("cp1252"))
    _, bad = read_rows(p)
    assert "--encoding cp1252 (Windows text" in bad[1] and "--encoding latin-1 (or cp1252)" in bad[2]
    assert any("--encoding cp1252 (Windows text" in pr.message for pr in validate_table(p).problems)
    df, bad = read_rows(p, encoding="cp1252")
    assert df.loc[0, "plot"] == "\u201cQuoted\u201d \u2014 a plot." and not bad
