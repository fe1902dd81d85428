"""Loading movie tables: formats, normalization, poster paths, MM-IMDb import, bad rows, the default data."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from genrelens.data.labels import normalize_genre
from genrelens.data.table import ENV_VAR, default_data_path, load_table, resolve_data_path
from genrelens.errors import DataError

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "movies" / "movies.csv"


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["m1", "m2", "m3"],
        "title": ["One", "Two", "Three"],
        "year": ["1999", "2005", ""],
        "language": ["en", "fr", ""],
        "plot": ["A  plot\nwith   spaces.", "Another plot.", ""],
        "genres": ["Drama|science fiction", "  comedy |ROMANCE", "Horror"],
        "poster": ["posters/m1.jpg", "", "posters/m3.jpg"],
        "source": ["a", "b", "c"],
    })


def _check(df: pd.DataFrame, root: Path) -> None:
    assert df["id"].tolist() == ["m1", "m2", "m3"]
    assert df["plot"].tolist() == ["A plot with spaces.", "Another plot.", ""]
    assert df["genres"].tolist() == [["Drama", "Sci-Fi"], ["Comedy", "Romance"], ["Horror"]]
    assert df["year"].tolist()[:2] == [1999, 2005] and pd.isna(df["year"].iloc[2])
    assert df["poster"].tolist() == [str(root / "posters/m1.jpg"), None, str(root / "posters/m3.jpg")]
    assert df["source"].tolist() == ["a", "b", "c"]  # extra columns are kept
    assert df.attrs["root"] == str(root)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_round_trip(tmp_path: Path, fmt: str) -> None:
    raw = _frame()
    path = tmp_path / f"movies.{fmt}"
    if fmt == "csv":
        raw.to_csv(path, index=False)
    elif fmt == "jsonl":
        raw.to_json(path, orient="records", lines=True, force_ascii=False)
    else:
        raw.to_parquet(path, index=False)
    df, report = load_table(path)
    assert report.n_read == 3 and not report.skipped
    _check(df, tmp_path)


def test_list_genres_and_numeric_years(tmp_path: Path) -> None:
    raw = _frame()
    raw["genres"] = [["Drama", "Science Fiction"], ["comedy", " romance "], ["HORROR"]]
    raw["year"] = pd.array([1999, 2005, None], dtype="Int64")
    raw.to_parquet(tmp_path / "m.parquet", index=False)
    raw.to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    for name in ("m.parquet", "m.jsonl"):
        df, _ = load_table(tmp_path / name)
        _check(df, tmp_path)


@pytest.mark.parametrize(("name", "want"), [
    ("science fiction", "Sci-Fi"), ("  Science   FICTION ", "Sci-Fi"), ("sci-fi", "Sci-Fi"),
    ("drama", "Drama"), ("DRAMA", "Drama"), ("film-noir", "Film-Noir"), ("tv movie", "TV Movie"), ("", ""),
])
def test_normalize_genre(name: str, want: str) -> None:
    assert normalize_genre(name) == want


def test_bom_and_windows_line_endings(tmp_path: Path) -> None:
    path = tmp_path / "movies.csv"
    text = "id,genres,plot,poster\r\nm1,Drama,\"two\r\nlines\",\r\nm2,Comedy,x,\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    df, _ = load_table(path)
    assert df.columns[0] == "id" and df["id"].tolist() == ["m1", "m2"]
    assert df["plot"].tolist() == ["two lines", "x"]


def test_folder_resolves_to_movies_csv(tmp_path: Path) -> None:
    _frame().to_csv(tmp_path / "movies.csv", index=False)
    assert resolve_data_path(tmp_path) == tmp_path / "movies.csv"
    df, _ = load_table(tmp_path)
    assert len(df) == 3


def test_mmimdb_folder(tmp_path: Path) -> None:
    folder = tmp_path / "mmimdb"
    folder.mkdir()
    (folder / "0000001.json").write_text(json.dumps({
        "title": "Film", "year": 1999, "plot": ["Short.", "A much longer summary of the film."],
        "genres": ["Drama", "science fiction"],
    }))
    (folder / "0000001.jpeg").write_bytes(b"not checked by load_table")
    (folder / "0000002.json").write_text(json.dumps({"plot": ["Only a plot."], "genres": ["Comedy"]}))
    df, _ = load_table(folder)
    assert df["id"].tolist() == ["0000001", "0000002"]
    assert df["plot"].tolist() == ["A much longer summary of the film.", "Only a plot."]
    assert df["genres"].tolist() == [["Drama", "Sci-Fi"], ["Comedy"]]
    assert df["poster"].tolist() == [str(folder / "0000001.jpeg"), None]
    assert df["year"].iloc[0] == 1999


@pytest.mark.parametrize("drop", [["id"], ["genres"], ["plot", "poster"]])
def test_missing_column(tmp_path: Path, drop: list[str]) -> None:
    path = tmp_path / "movies.csv"
    _frame().drop(columns=drop).to_csv(path, index=False)
    with pytest.raises(DataError, match="column"):
        load_table(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_table(tmp_path / "nope.csv")
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("id,genres,plot\nm1,Drama,Caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        load_table(bad)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet")
    with pytest.raises(DataError):
        load_table(junk)
    other = tmp_path / "movies.docx"
    other.write_bytes(b"x")
    with pytest.raises(DataError, match="format"):
        load_table(other)
    fake = tmp_path / "movies.xlsx"  # .xlsx is read, but this one is no workbook
    fake.write_bytes(b"x")
    with pytest.raises(DataError, match="movies.xlsx"):
        load_table(fake)


def test_bad_rows(tmp_path: Path) -> None:
    raw = pd.DataFrame({
        "id": ["m1", "", "m1", "m4", "m5", "m6"],
        "genres": ["Drama", "Drama", "Comedy", "", "Drama", "Drama"],
        "plot": ["p", "p", "p", "p", "", "p"],
        "poster": ["", "", "", "", "", ""],
    })
    path = tmp_path / "movies.csv"
    raw.to_csv(path, index=False)
    with pytest.raises(DataError, match="4 bad row"):
        load_table(path)
    df, report = load_table(path, skip_bad=True)
    assert df["id"].tolist() == ["m1", "m6"]
    assert [(r, why) for r, _, why in report.skipped] == [
        (2, "empty id"), (3, "duplicate id"), (4, "no genres"), (5, "neither plot nor poster")]
    assert report.n_read == 6
    df, report = load_table(path, skip_bad=True, need_genres=False)
    assert "m4" in df["id"].tolist()


def test_a_row_with_several_problems_is_one_bad_row(tmp_path: Path) -> None:
    """An all-empty row of a ';' export has three problems (empty id, no genres, neither plot nor poster): it is
    one bad row, in the error, the report and every count."""
    path = tmp_path / "export.csv"
    path.write_text("ID;Name;Synopsis;Genre;Poster\n"
                    "m1;One;A plot.;Drama;\n"
                    ";;;;\n"
                    "m1;Again;A plot.;Drama;\n"
                    ";No id;A plot.;;\n"
                    "m5;Five;A plot.;Comedy;\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"^3 bad row\(s\) in .*: row 2 \(\?\): empty id, no genres, neither plot "
                       r"nor poster; row 3 \(m1\): duplicate id; row 4 \(\?\): empty id, no genres\. "):
        load_table(path)
    df, report = load_table(path, skip_bad=True)
    assert df["id"].tolist() == ["m1", "m5"]
    assert report.n_read == 5 and report.n_skipped == 3 == report.n_read - len(df)
    assert report.skipped_rows == [2, 3, 4] and len(report.skipped) == 6  # every problem is still listed
    assert report.summary() == "read 5 rows, skipped 3 (6 problems)"


def test_env_var_overrides_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.csv"
    _frame().to_csv(path, index=False)
    monkeypatch.setenv(ENV_VAR, str(path))
    assert default_data_path() == path
    df, _ = load_table()
    assert len(df) == 3
    monkeypatch.delenv(ENV_VAR)
    assert default_data_path() != path


@pytest.mark.skipif(not REAL.exists(), reason="development data not present")
def test_real_default_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    df, report = load_table()
    assert len(df) == 15_451 and not report.skipped
    assert df["id"].is_unique
    has_plot = df["plot"].str.len() > 0
    has_poster = df["poster"].notna()
    assert has_plot.sum() == 9_852 and has_poster.sum() == 9_377
    assert (has_plot & has_poster).sum() == 3_778 and (~has_plot).sum() == 5_599
    assert all(df["genres"].map(len) > 0)
    assert df["year"].min() == 1902 and df["year"].max() == 2018
