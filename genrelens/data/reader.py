"""Read CSV/TSV and JSON-lines tables row by row, so one bad row never stops the others.

A row is bad when its bytes are not text in the file's encoding (a Latin-1 ``é`` in a UTF-8 file), when it
has more fields than the header, when a quote in it does not close where its field ends (it would swallow the
rows after it: see :func:`csv_records`), or (JSON lines) when it is not a JSON object. Bad rows are kept as rows
(their readable fields, undecodable bytes shown as U+FFFD) and reported as ``{row: message}``; rows count
from 1 = the first data row (the line after a CSV header), as ``genrelens data validate`` counts them.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pandas as pd

from genrelens.errors import DataError

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
_UNDECODABLE = re.compile(r"[\udc80-\udcff]+")  # bytes kept by errors="surrogateescape"


def check_encoding(encoding: str) -> str:
    """``encoding`` if Python knows it, else a DataError (before anything is read)."""
    try:
        return codecs.lookup(encoding).name
    except LookupError as e:
        raise DataError(f"unknown encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)") from e


def _scrub(text: str) -> tuple[str, str]:
    """``(text with undecodable bytes as U+FFFD, the bytes shown as '0xE9 0x20' or '')``."""
    found = "".join(_UNDECODABLE.findall(text))
    if not found:
        return text, ""
    shown = " ".join(f"0x{ord(c) - 0xDC00:02X}" for c in found[:6]) + (" ..." if len(found) > 6 else "")
    return _UNDECODABLE.sub("\ufffd", text), shown


def legacy_encoding_hint(shown: str) -> str:
    """Which ``--encoding`` to suggest for bytes that are not UTF-8 (``shown``: '0x93 0xE9'): cp1252 where one is in
    0x80-0x9F (Windows' quotes and dashes, which latin-1 reads as invisible control characters), else latin-1."""
    codes = [int(b, 16) for b in re.findall(r"0x([0-9A-Fa-f]{2})", shown)]
    if any(0x80 <= c <= 0x9F for c in codes):
        return "--encoding cp1252 (Windows text; latin-1 would read its quotes and dashes as control characters)"
    return "--encoding latin-1 (or cp1252)"


def _not_text(encoding: str, shown: str) -> str:
    if codecs.lookup(encoding).name == "utf-8":
        return (f"text is not UTF-8 (bytes {shown}): pass {legacy_encoding_hint(shown)} if the file is in a legacy "
                "encoding, or re-save it as UTF-8")
    return f"text is not {encoding} (bytes {shown}): check --encoding"


_LONE = re.compile(r"[\ud800-\udfff]")


def _clean(v):
    """Lone surrogates (a JSON ``"\\ud800"`` escape) in parsed values replaced by U+FFFD: they cannot be stored
    or encoded as UTF-8."""
    if isinstance(v, str):
        return _LONE.sub("\ufffd", v)
    if isinstance(v, list):
        return [_clean(x) for x in v]
    if isinstance(v, dict):
        return {_clean(k): _clean(x) for k, x in v.items()}
    return v


def _open(path: Path, encoding: str):
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    return path.open(encoding=enc, errors="surrogateescape", newline="")


SEPARATORS = (",", ";", "\t", "|")
_SEP_NAMES = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}


def parse_sep(sep: str | None) -> str | None:
    """A separator as given on a command line: ``;``, ``tab`` or ``\\t``, ``comma``, ``|``; None = detect."""
    if sep is None or sep == "" or str(sep).lower() == "auto":
        return None
    sep = _SEP_NAMES.get(str(sep).lower(), str(sep))
    if len(sep) != 1:
        raise DataError(f"separator {sep!r}: give one character (',', ';', '|') or 'tab'")
    return sep


def detect_sep(path: Path, encoding: str = "utf-8", sep: str | None = None) -> str:
    """A CSV's separator: ``sep`` when given, a tab for ``.tsv``, else the one of ``, ; tab |`` that occurs most
    often in the header line (``,`` when none does)."""
    given = parse_sep(sep)
    if given:
        return given
    if path.suffix.lower() == ".tsv":
        return "\t"
    try:
        with _open(path, encoding) as f:
            header = f.readline(1 << 16)
    except OSError:
        return ","
    counts = {s: header.count(s) for s in SEPARATORS}
    best = max(SEPARATORS, key=lambda s: counts[s])  # ties: the earlier (comma first)
    return best if counts[best] else ","


class _Lines:
    """A text file's lines for :func:`csv.reader`, keeping those of the record being read (``taken``) and
    counting them (``pos``: lines consumed); lines put back are read again, first."""

    def __init__(self, f: TextIO) -> None:
        self._f, self._back = f, []
        self.taken: list[str] = []
        self.pos = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = self._back.pop() if self._back else next(self._f)
        self.taken.append(line)
        self.pos += 1
        return line

    def put_back(self, lines: list[str]) -> None:
        self._back.extend(reversed(lines))
        self.pos -= len(lines)


def _fields(line: str, sep: str) -> list[str]:
    """One line's fields, read on its own (a quote it leaves open ends with the line)."""
    return next(csv.reader([line], delimiter=sep), [])


def _line_fields(line: str, sep: str, n_header: int) -> list[str]:
    """The fields of the line where a misplaced quote opens: read with the quote as plain text when that gives
    the header's number of fields (``"He said hello,Drama`` then still has its genres), else as csv reads it."""
    line = line.rstrip("\r\n")
    fields = _fields(line, sep)
    if len(fields) != n_header:
        plain = next(csv.reader([line], delimiter=sep, quoting=csv.QUOTE_NONE), [])
        fields = plain if len(plain) == n_header else fields
    return fields


def _swallowed(lines: list[str], sep: str, n_header: int, n_fields: int) -> tuple[int, bool]:
    """``(lines a misplaced quote swallowed, whether it never closes)`` for a record read over several lines;
    ``(0, False)`` for a well-formed quoted field holding line breaks. A quote swallowed the lines after it when
    it never closes, or when it closes where no field ends (``"A clownfish" searches``) or the record has the
    wrong number of fields, and a line it took in reads as a row on its own (as many fields as the header). A
    record that closes cleanly with fewer fields than the header is a row whose last fields were left out."""
    try:
        closed = len(list(csv.reader(io.StringIO("".join(lines), newline=""), delimiter=sep, strict=True))) == 1
    except csv.Error as e:
        if "unexpected end of data" in str(e):
            return len(lines) - 1, True
        closed = False
    if closed and n_fields <= n_header:
        return 0, False
    if any(len(_fields(line, sep)) >= n_header for line in lines[1:]):
        return len(lines) - 1, False
    return 0, False


def _strict(line: str, sep: str) -> bool:
    """Whether one line reads as a CSV record under csv's strict rules (every quote closes where a field ends)."""
    try:
        list(csv.reader([line.rstrip("\r\n")], delimiter=sep, strict=True))
    except csv.Error:
        return False
    return True


def _unmatched(line: int, n: int, ends: str) -> str:
    return (f'unmatched quote: a quote (") in this row (line {line} of the file) {ends}, which would swallow the '
            f"next {n} line(s) into this row; each line was read as its own row (check this row's quotes)")


def csv_records(f: TextIO, sep: str, blank: list[int] | None = None
                ) -> Iterator[tuple[list[str] | None, str | None]]:
    """``(fields, problem)`` per record of an open CSV file, the header first; blank lines are skipped (their
    file line numbers are appended to ``blank`` when given).

    A quote that does not close where its field ends would swallow every line up to the next quote (or the end of
    the file) into one field: such a record is read from its first line alone, with a problem naming the quote's
    line and how many lines it took in, and reading goes on at the next line, so each of those lines is its own
    row. A well-formed quoted field with line breaks (a plot in paragraphs) is read whole. A record csv cannot
    parse gives ``(None, why)``."""
    lines = _Lines(f)
    reader = csv.reader(lines, delimiter=sep)
    n_header = 0
    while True:
        lines.taken = []
        start = lines.pos + 1
        try:
            rec = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            taken = lines.taken
            if n_header and len(taken) > 1:  # a quote read on to csv's field limit: its lines are rows of their own
                lines.put_back(taken[1:])
                yield _line_fields(taken[0], sep, n_header), _unmatched(start, len(taken) - 1, f"never closes ({e})")
                continue
            yield None, f"cannot parse this row near line {lines.pos}: {e}"
            continue
        if not rec or (n_header and len(rec) == 1 and not rec[0].strip()):
            if blank is not None:
                blank.append(lines.pos)
            continue
        problem = None
        taken = lines.taken
        if n_header and len(taken) == 1 and len(rec) != n_header and '"' in taken[0] and not _strict(taken[0], sep):
            # a quote that closes where no field ends, on its own line: the fields after it are shifted
            rec = _line_fields(taken[0], sep, n_header)
            problem = (f'unmatched quote: a quote (") in this row (line {start} of the file) closes where no field '
                       "ends, which shifts the fields after it (check this row's quotes)")
        elif n_header and len(taken) > 1:
            n, unclosed = _swallowed(taken, sep, n_header, len(rec))
            if n:
                lines.put_back(taken[1:])
                rec = _line_fields(taken[0], sep, n_header)
                problem = _unmatched(start, n, "never closes" if unclosed else f"closes only {n} line(s) later")
        n_header = n_header or len(rec)
        yield rec, problem


def iter_csv(path: Path, encoding: str = "utf-8", sep: str | None = None
             ) -> Iterator[tuple[list[str], dict[str, str], str | None]]:
    """``(header, row, problem)`` per data row (blank lines skipped); ``problem`` None for a good row.
    ``sep``: the separator (None: :func:`detect_sep`). Records are split by :func:`csv_records`."""
    sep = detect_sep(path, encoding, sep)
    shown = "a tab" if sep == "\t" else repr(sep)
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    with _open(path, encoding) as f:
        header: list[str] | None = None
        for rec, note in csv_records(f, sep):
            if rec is None:
                if header is None:
                    raise DataError(f"cannot read {path}: cannot parse its header: {note}")
                yield header, {}, note
                continue
            if header is None:
                names = [_scrub(c.strip())[0] for c in rec]
                header = [c or f"column {j + 1}" for j, c in enumerate(names)]
                continue
            cells = [_scrub(c) for c in rec]
            bad = " ".join(b for _, b in cells if b)
            values = [c for c, _ in cells]
            problems = [note] if note else []
            if len(values) > len(header):
                problems.append(f"{len(values)} fields but the header has {len(header)} (an unquoted {shown} or "
                                "quote?)")
            if bad:
                problems.append(_not_text(encoding, bad))
            values = (values + [""] * len(header))[:len(header)]
            yield header, dict(zip(header, values)), "; ".join(problems) or None
        if header is None:
            raise DataError(f"cannot read {path}: the file is empty")


def iter_jsonl(path: Path, encoding: str = "utf-8") -> Iterator[tuple[dict, str | None]]:
    """``(object, problem)`` per non-blank line; a bad line gives ``({}, why)``."""
    with _open(path, encoding) as f:
        for line in f:
            if not line.strip():
                continue
            text, bad = _scrub(line)
            try:
                item = json.loads(text)
            except ValueError as e:
                yield {}, f"not valid JSON ({e})"
                continue
            if not isinstance(item, dict):
                yield {}, f"a JSON {type(item).__name__}, not an object"
                continue
            yield _clean(item), _not_text(encoding, bad) if bad else None


def iter_table_chunks(path: Path, chunk_size: int, encoding: str = "utf-8", sep: str | None = None
                      ) -> Iterator[tuple[pd.DataFrame, dict[int, str]]]:
    """``(raw rows as strings, {row: problem})`` in chunks of ``chunk_size`` rows of a CSV/TSV or JSON-lines
    file; row numbers are the file's (1 = first data row), across chunks. ``sep``: a CSV's separator (None:
    detected)."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        header: list[str] = []
        items = ((row, problem) for header[:], row, problem in iter_csv(path, encoding, sep))
    elif suffix in JSONL_SUFFIXES:
        header = []
        items = iter_jsonl(path, encoding)
    else:
        raise DataError(f"not a CSV or JSON-lines file: {path}")
    rows: list[dict] = []
    bad: dict[int, str] = {}
    for n, (row, problem) in enumerate(items, 1):
        rows.append(row)
        if problem:
            bad[n] = problem
        if len(rows) == chunk_size:
            yield _frame(rows, header), bad
            rows, bad = [], {}
    if rows:
        yield _frame(rows, header), bad


def _frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    """Rows as a DataFrame of strings (CSV: the header's columns, missing cells ""; JSON lines: as parsed)."""
    if not columns:
        return pd.DataFrame.from_records(rows)
    return pd.DataFrame([[r.get(c, "") for c in columns] for r in rows], columns=columns, dtype=object)


def read_rows(path: Path, encoding: str = "utf-8", sep: str | None = None
              ) -> tuple[pd.DataFrame, dict[int, str]]:
    """The whole file: ``(raw rows, {row: problem})``; see :func:`iter_table_chunks`."""
    frames, bad = [], {}
    for df, b in iter_table_chunks(path, 65_536, encoding, sep):
        frames.append(df)
        bad.update(b)
    if not frames:
        raise DataError(f"{path} has no rows")
    return pd.concat(frames, ignore_index=True), bad
