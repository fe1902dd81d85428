"""``validate_table``: every kind of bad row is reported with the row a user sees, and the right exit code."""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from rich.console import Console

from genrelens.data.validate import Problem, exit_code, render_validation, validate_table

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "movies" / "movies.csv"
HEADER = "id,title,year,language,plot,genres,poster"


def _jpeg(w: int = 48, h: int = 72) -> bytes:
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _png_header(w: int, h: int) -> bytes:
    """A PNG that declares w x h pixels but holds no pixel data: an image bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + chunk(b"IEND", b"")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "posters").mkdir(parents=True)
    good = _jpeg()
    (data / "posters" / "good.jpg").write_bytes(good)
    (data / "posters" / "good2.jpg").write_bytes(good)
    (data / "posters" / "corrupt.jpg").write_bytes(good[: len(good) // 2])
    (data / "posters" / "text.jpg").write_text("I am a text file, not a JPEG.\n")
    (data / "posters" / "zero.jpg").write_bytes(b"")
    (data / "posters" / "bomb.png").write_bytes(_png_header(30_000, 30_000))
    (tmp_path / "outside.jpg").write_bytes(good)
    return data


def _write_csv(path: Path, lines: list[str], *, bom: bool = False, crlf: bool = False,
               encoding_overrides: dict[int, bytes] | None = None) -> Path:
    eol = b"\r\n" if crlf else b"\n"
    chunks = [encoding_overrides.get(i) if encoding_overrides and i in encoding_overrides else line.encode()
              for i, line in enumerate(lines)]
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + eol.join(chunks) + eol)
    return path


# Row numbers as a user sees them: row 1 = the first line after the header.
ROWS = [
    HEADER,
    'm1,Good,1999,en,"A plot that spans\ntwo lines, with a comma",Drama,posters/good.jpg',  # row 1: fine
    "m2,Corrupt,2000,en,A plot.,Drama,posters/corrupt.jpg",  # row 2
    "m3,No plot no poster,2000,en,,Comedy,",  # row 3
    "m4,Missing,2000,en,A plot.,Drama,posters/missing.jpg",  # row 4
    "m1,Duplicate,2000,en,Another plot.,Drama,posters/good2.jpg",  # row 5
    "m6,Latin-1,2000,fr,PLACEHOLDER,Drama,",  # row 6: replaced by latin-1 bytes below
    "m7,Text poster,2000,en,A plot.,Drama,posters/text.jpg",  # row 7
    "m8,Escaping,2000,en,A plot.,Drama,../outside.jpg",  # row 8
    "m9,Zero bytes,2000,en,A plot.,Drama,posters/zero.jpg",  # row 9
    "m10,Bomb,2000,en,A plot.,Drama,posters/bomb.png",  # row 10
    "m11,No genres,2000,en,A plot.,,",  # row 11
    "m12,Odd year,19x5,en,A plot.,Drama,",  # row 12: warning only
    ",No id,2000,en,A plot.,Drama,",  # row 13
    "m14,Fine,,en,A plot.,Horror|science fiction,",  # row 14: fine (a missing year is allowed)
]
EXPECTED = {  # row -> (column, kind)
    2: ("poster", "poster corrupt or unreadable"),
    3: ("plot", "neither plot nor poster"),
    4: ("poster", "poster file missing"),
    5: ("id", "duplicate id"),
    6: ("plot", "not UTF-8"),
    7: ("poster", "poster not an image"),
    8: ("poster", "poster outside the data folder"),
    9: ("poster", "poster file empty"),
    10: ("poster", "poster too large"),
    11: ("genres", "no genres"),
    12: ("year", "bad year"),
    13: ("id", "empty id"),
}


@pytest.mark.parametrize(("bom", "crlf"), [(False, False), (True, True)])
def test_every_problem_on_its_row(folder: Path, bom: bool, crlf: bool) -> None:
    latin = "m6,Latin-1,2000,fr,Un café crème,Drama,".encode("latin-1")
    path = _write_csv(folder / "movies.csv", ROWS, bom=bom, crlf=crlf, encoding_overrides={6: latin})
    result = validate_table(path, progress=False)
    assert result.fatal is None
    assert result.n_rows == len(ROWS) - 1
    assert result.n_posters == 8
    found = {(p.row, p.column, p.kind) for p in result.problems}
    assert found == {(r, c, k) for r, (c, k) in EXPECTED.items()}
    by_row = {p.row: p for p in result.problems}
    assert by_row[5].id == "m1" and "first in row 1" in by_row[5].message
    assert "0xE9" in by_row[6].message and by_row[6].id == "m6"
    assert by_row[12].severity == "warning" and len(result.warnings) == 1
    assert exit_code(result) == 1
    json.dumps(result.to_dict())  # serializable for a --json flag


def test_render(folder: Path) -> None:
    latin = "m6,Latin-1,2000,fr,Un café crème,Drama,".encode("latin-1")
    path = _write_csv(folder / "movies.csv", ROWS, encoding_overrides={6: latin})
    result = validate_table(path, progress=False)
    out = io.StringIO()
    render_validation(result, Console(file=out, width=200), limit=5)
    text = out.getvalue()
    assert "11 error(s), 1 warning(s)" in text
    assert "first 5 of 12" in text and "row 1 = first data row" in text
    assert "poster file missing" in text and "not UTF-8" in text  # the per-type summary lists all kinds


def test_clean_table_exits_zero(folder: Path) -> None:
    lines = [HEADER, 'm1,Good,1999,en,"A plot, quoted",Drama|Comedy,posters/good.jpg',
             "m2,Plot only,2001,en,Just a plot.,Horror,", "m3,Poster only,,,,Drama,posters/good2.jpg"]
    for bom, crlf in ((False, False), (True, True)):
        result = validate_table(_write_csv(folder / "movies.csv", lines, bom=bom, crlf=crlf), progress=False)
        assert result.problems == [] and exit_code(result) == 0
        assert result.n_rows == 3 and result.n_posters == 2
    out = io.StringIO()
    render_validation(result, Console(file=out, width=300))
    assert "no problems" in out.getvalue()


def test_warnings_do_not_fail(folder: Path) -> None:
    path = _write_csv(folder / "movies.csv", [HEADER, "m1,A,99,en,A plot.,Drama,"])
    result = validate_table(path, progress=False)
    assert [p.kind for p in result.problems] == ["bad year"] and exit_code(result) == 0


def test_missing_columns(folder: Path) -> None:
    # without genres the table is one to predict on: validated as such, not refused (issue 26, item 8)
    path = _write_csv(folder / "movies.csv", ["id,title,plot", "m1,A,A plot."])
    result = validate_table(path, progress=False)
    assert result.problems == [] and result.purpose == "prediction" and exit_code(result) == 0
    assert any("predict" in n for n in result.notices)
    path = _write_csv(folder / "movies.csv", ["title,genres", "A,Drama"])
    result = validate_table(path, progress=False)
    assert {(p.row, p.column) for p in result.problems} == {(0, "id"), (0, "plot")}
    assert exit_code(result) == 1


def test_unreadable_files_exit_two(tmp_path: Path) -> None:
    for name in ("nope.csv", "empty.csv", "junk.parquet", "x.xlsx", "junk.jsonl"):
        path = tmp_path / name
        if path.name != "nope.csv":
            path.write_bytes(b"" if path.name == "empty.csv" else b"\x00\x01 not a table")
        result = validate_table(path, progress=False)
        assert result.fatal and exit_code(result) == 2, path.name
        out = io.StringIO()
        render_validation(result, Console(file=out, width=200))
        assert "cannot read" in out.getvalue()


def test_field_count_and_header_bytes(folder: Path) -> None:
    lines = [HEADER, "m1,A,2000,en,A plot.,Drama,,extra", "m2,B,2000,en,A plot.",
             "m3,C,2000,en,A plot.,Drama,"]
    result = validate_table(_write_csv(folder / "movies.csv", lines), progress=False)
    assert [(p.row, p.kind, p.severity) for p in result.problems] == [
        (1, "wrong number of fields", "error"), (2, "no genres", "error"), (2, "too few fields", "warning")]
    header = b"id,genres,pl\xffot"
    path = folder / "bad_header.csv"
    path.write_bytes(header + b"\nm1,Drama,x\n")
    result = validate_table(path, progress=False)
    assert result.problems[0].row == 0 and result.problems[0].kind == "not UTF-8"


def test_an_unmatched_quote_is_named_and_swallows_no_rows(folder: Path) -> None:
    """A quote opened in row 2 and never closed used to merge rows 2..6 into one: "OK, 2 rows"."""
    lines = [HEADER, "m1,Heat,1995,en,A heist goes wrong.,Crime,posters/good.jpg",
             'm2,Quote,2000,en,"He said hello and left the town forever.,Drama,',
             "m3,Alien,1979,en,A crew is hunted by an alien.,Horror,",
             "m4,Nemo,2003,en,A clownfish searches for his son.,Family,posters/good2.jpg",
             "m5,Too,2001,en,many,fields,here,Drama",
             "m6,Up,2009,en,An old man flies his house away.,Comedy,"]
    for crlf in (False, True):
        result = validate_table(_write_csv(folder / "movies.csv", lines, crlf=crlf), progress=False)
        assert result.n_rows == 6 and result.n_posters == 2
        assert [(p.row, p.kind) for p in result.problems] == [(2, "unmatched quote"),
                                                              (5, "wrong number of fields")]
        assert "line 3 of the file" in result.problems[0].message and "4 line(s)" in result.problems[0].message
        assert exit_code(result) == 1


def test_jsonl_and_parquet(folder: Path) -> None:
    lines = [
        json.dumps({"id": "m1", "genres": ["Drama"], "plot": "A plot.", "poster": "posters/good.jpg"}),
        "",
        "{not json",
        json.dumps({"id": "m3", "genres": [], "plot": "Caf\udce9", "poster": ""}, ensure_ascii=False)
        .encode("utf-8", "surrogateescape").decode("latin-1"),
        json.dumps({"id": "m4", "genres": ["Drama"], "plot": "", "poster": "posters/text.jpg"}),
    ]
    path = folder / "movies.jsonl"
    path.write_bytes("\n".join(lines).encode("latin-1"))
    result = validate_table(path, progress=False)
    assert {(p.row, p.kind) for p in result.problems} == {
        (2, "bad JSON line"), (3, "not UTF-8"), (3, "no genres"), (4, "poster not an image")}
    pd.DataFrame({"id": ["m1", "m1"], "genres": [["Drama"], ["Comedy"]], "plot": ["p", "q"],
                  "poster": ["posters/good.jpg", "posters/missing.jpg"]}).to_parquet(folder / "m.parquet")
    result = validate_table(folder / "m.parquet", progress=False)
    assert {(p.row, p.kind) for p in result.problems} == {(2, "duplicate id"), (2, "poster file missing")}


def test_skip_posters(folder: Path) -> None:
    path = _write_csv(folder / "movies.csv", [HEADER, "m1,A,2000,en,A plot.,Drama,posters/missing.jpg"])
    result = validate_table(path, check_posters=False, progress=False)
    assert result.problems == [] and result.n_posters == 0


def test_problem_kind_defaults_to_message() -> None:
    assert Problem(1, "m1", "id", "empty id").kind == "empty id"


@pytest.mark.skipif(not REAL.exists(), reason="development data not present")
def test_real_data_is_clean() -> None:
    result = validate_table(REAL, progress=False)
    assert result.fatal is None and result.problems == []
    assert result.n_rows == 15_451 and result.n_posters == 9_377
    assert exit_code(result) == 0


def test_header_only_is_an_error(tmp_path: Path) -> None:
    result = validate_table(_write_csv(tmp_path / "movies.csv", [HEADER]), progress=False)
    assert [p.kind for p in result.problems] == ["no rows"] and exit_code(result) == 1


def test_mmimdb_folder(tmp_path: Path) -> None:
    (tmp_path / "0001.json").write_text(json.dumps({"plot": ["A plot."], "genres": ["Drama"]}))
    (tmp_path / "0001.jpeg").write_bytes(_jpeg()[:300])
    (tmp_path / "0002.json").write_text(json.dumps({"plot": [], "genres": ["Drama"]}))
    result = validate_table(tmp_path, progress=False)
    assert {(p.row, p.kind) for p in result.problems} == {
        (1, "poster corrupt or unreadable"), (2, "neither plot nor poster")}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert exit_code(validate_table(empty, progress=False)) == 2


def test_blank_lines_are_named_with_their_file_lines(tmp_path: Path) -> None:
    """A blank line is not a row, so the rows after it no longer match file lines: validate says so (it was
    silent, and "row 8" was line 10 of the file)."""
    table = tmp_path / "t.csv"
    table.write_text("id,title,plot,genres\nm1,A,A heist.,Crime\n\nm2,B,A ghost.,Horror\n   \nm3,C,Love.,Romance\n")
    result = validate_table(table, check_posters=False, progress=False)
    assert result.n_rows == 3
    notice = [n for n in result.notices if "blank line" in n]
    assert notice == ["2 blank lines skipped (file lines 3, 5): they are not rows, so row numbers count data rows"]
