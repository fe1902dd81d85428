"""Check a movie table row by row and report every problem (``genrelens data validate``).

Unlike :func:`genrelens.data.table.load_table`, which stops at the first bad file and summarizes bad rows,
this reads as much as it can and lists each problem with the row a user sees: row 1 is the first data row
(the line after a CSV header, the first non-blank line of a JSONL file); row 0 means the whole file.
Bad data never raises: a file that cannot be read at all is reported in ``ValidationResult.fatal``.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from genrelens.data.columns import standardize_columns
from genrelens.data.reader import check_encoding, csv_records, detect_sep, legacy_encoding_hint
from genrelens.data.table import COLUMNS, clean_table, is_url, poster_root, read_raw, resolve_data_path
from genrelens.errors import GenrelensError

Severity = Literal["error", "warning"]

DRAFT_SIZE = 32  # JPEG posters are decoded at 1/2..1/8 scale: every byte is still read and checked
# Undecodable bytes, as kept by errors="surrogateescape" (U+DC80..U+DCFF), and any other lone surrogate (a JSON
# "\ud800" escape): neither can be written as UTF-8.
_BAD_CHARS = re.compile(r"[\ud800-\udfff]+")
_YEAR = re.compile(r"\d{4}")


@dataclass(frozen=True)
class Problem:
    """One finding. ``row`` counts from 1 = first data row (0 = the whole file)."""

    row: int
    id: str
    column: str
    message: str
    severity: Severity = "error"
    kind: str = ""  # short category for summaries, e.g. "duplicate id"; defaults to the message

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", self.message)


@dataclass
class ValidationResult:
    """Everything found in one table."""

    path: str
    n_rows: int = 0
    n_posters: int = 0  # poster files checked
    problems: list[Problem] = field(default_factory=list)
    fatal: str | None = None  # set when the file cannot be read at all
    seconds: float = 0.0
    purpose: str = "training"  # "prediction" for a table without genres (a catalogue to predict on)
    columns: dict[str, str] = field(default_factory=dict)  # field -> the source column that feeds it
    notices: list[str] = field(default_factory=list)  # one line each: aliases used, columns not read, purpose
    sep: str | None = None  # a CSV's separator, as detected or given

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def counts(self) -> dict[str, int]:
        """Problems per kind, most frequent first."""
        return dict(Counter(p.kind for p in self.problems).most_common())

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "n_rows": self.n_rows, "n_posters": self.n_posters, "fatal": self.fatal,
            "n_errors": len(self.errors), "n_warnings": len(self.warnings), "counts": self.counts(),
            "seconds": round(self.seconds, 2), "purpose": self.purpose, "columns": self.columns,
            "notices": self.notices, "sep": self.sep, "problems": [asdict(p) for p in self.problems],
        }


def exit_code(result: ValidationResult) -> int:
    """0 = clean (warnings allowed), 1 = at least one error, 2 = the file could not be read."""
    if result.fatal:
        return 2
    return 1 if result.errors else 0


# --------------------------------------------------------------------------------------------- reading


def _scrub(v: Any) -> tuple[Any, str]:
    """Replace undecodable bytes (lone surrogates) by U+FFFD; also return them as ``'0xE9 0x20'``."""
    if isinstance(v, str):
        found = _BAD_CHARS.findall(v)
        if not found:
            return v, ""
        chars = "".join(found)
        shown = " ".join(f"0x{ord(c) - 0xDC00:02X}" if "\udc80" <= c <= "\udcff" else f"U+{ord(c):04X}"
                         for c in chars[:6]) + (" ..." if len(chars) > 6 else "")
        return _BAD_CHARS.sub("\ufffd", v), shown
    if isinstance(v, list):
        items = [_scrub(x) for x in v]
        return [x for x, _ in items], " ".join(b for _, b in items if b)
    if isinstance(v, dict):
        items = {k: _scrub(x) for k, x in v.items()}
        return {k: x for k, (x, _) in items.items()}, " ".join(b for _, b in items.values() if b)
    return v, ""


def _decode(data: bytes, encoding: str = "utf-8") -> str:
    if codecs.lookup(encoding).name != "utf-8":
        return data.decode(encoding, errors="surrogateescape")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    return data.decode("utf-8", errors="surrogateescape")


def _not_utf8(row: int, mid: str, column: str, shown: str) -> Problem:
    return Problem(row, mid, column, f"text is not UTF-8 (bytes {shown}); re-save the file as UTF-8, or pass "
                   f"{legacy_encoding_hint(shown)} to read a legacy file", kind="not UTF-8")


def _read_csv(path: Path, problems: list[Problem], skip: set[int], encoding: str = "utf-8",
              sep: str | None = None) -> pd.DataFrame:
    """Parse a CSV/TSV tolerantly: bad bytes and bad field counts become problems, row numbers stay right."""
    text = _decode(path.read_bytes(), encoding)
    sep = detect_sep(path, encoding, sep)
    shown = "a tab" if sep == "\t" else repr(sep)
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    records, notes, blank = [], {}, []
    # Records as every other command reads them: blank lines skipped, a misplaced quote never swallows rows.
    for rec, note in csv_records(io.StringIO(text, newline=""), sep, blank):
        if rec is None:
            raise GenrelensError(f"cannot parse {path}: {note}")
        if note:
            notes[len(records)] = note
        records.append(rec)
    if not records:
        raise GenrelensError(f"{path} is empty")
    header = []
    for j, name in enumerate(records[0]):
        name, bad = _scrub(name.strip())
        if bad:
            problems.append(_not_utf8(0, "", name, bad))
        header.append(name or f"column {j + 1}")
    n = len(header)
    rows = []
    for i, rec in enumerate(records[1:], 1):
        if i in notes:
            problems.append(Problem(i, "", "", notes[i], kind="unmatched quote"))
            skip.add(i)
        if len(rec) > n:
            problems.append(Problem(i, "", "", f"{len(rec)} fields but the header has {n} "
                                    f"(an unquoted {shown} or quote?)", kind="wrong number of fields"))
            skip.add(i)
        elif len(rec) < n:
            problems.append(Problem(i, "", "", f"{len(rec)} fields but the header has {n} (the rest read "
                                    "as empty)", severity="warning", kind="too few fields"))
        rows.append((rec + [""] * n)[:n])
    df = pd.DataFrame(rows, columns=header, dtype=object)
    df.attrs["blank_lines"] = blank  # file line numbers, for a notice (they are not rows)
    return df


def _read_jsonl(path: Path, problems: list[Problem], skip: set[int], encoding: str = "utf-8") -> pd.DataFrame:
    """One JSON object per non-blank line; a bad line becomes a problem and an empty placeholder row."""
    records: list[dict] = []
    for line in _decode(path.read_bytes(), encoding).splitlines():
        if not line.strip():
            continue
        i = len(records) + 1
        try:
            item = json.loads(line)
        except ValueError as e:
            item = f"not valid JSON ({e})"
        if not isinstance(item, dict):
            msg = item if isinstance(item, str) else f"a JSON {type(item).__name__}, not an object"
            problems.append(Problem(i, "", "", _scrub(msg)[0], kind="bad JSON line"))
            skip.add(i)
            item = {}
        clean = {}  # undecodable bytes must go before pandas sees them (Arrow strings are UTF-8)
        for key, value in item.items():
            (key, bad_key), (value, bad) = _scrub(str(key)), _scrub(value)
            if bad_key or bad:
                problems.append(_not_utf8(i, _scrub(str(item.get("id", "")))[0], key, bad or bad_key))
            clean[key] = value
        records.append(clean)
    if not records:
        raise GenrelensError(f"{path} is empty")
    if len(skip) == len(records):
        raise GenrelensError(f"{path} holds no JSON objects (line 1: {problems[0].message})")
    return pd.DataFrame.from_records(records)


def _read(path: Path, problems: list[Problem], skip: set[int], encoding: str = "utf-8",
          sep: str | None = None) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if path.is_file() and suffix in (".csv", ".tsv", ".txt"):
        return _read_csv(path, problems, skip, encoding, sep)
    if path.is_file() and suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(path, problems, skip, encoding)
    return read_raw(path)  # Parquet, .xlsx, MM-IMDb folder, or a clear error


# ---------------------------------------------------------------------------------------------- checks


def _year_text(v: Any) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and pd.isna(v)):
        return ""
    if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _row_checks(raw: pd.DataFrame, df: pd.DataFrame, have: set[str], skip: set[int]) -> list[Problem]:
    """Per-row checks without file I/O. Without a genres column (a table to predict on) a title is input enough."""
    out: list[Problem] = []
    first: dict[str, int] = {}
    years = raw["year"].tolist() if "year" in have else [None] * len(df)
    titles_count = "genres" not in have and "title" in have
    inputs = ("plot", "poster", "title") if titles_count else ("plot", "poster")
    cols = zip(df["id"], df["genres"], df["plot"], df["poster"], df["title"], years, strict=True)
    for i, (mid, genres, plot, poster, title, year) in enumerate(cols, 1):
        if i in skip:
            continue
        poster = poster if isinstance(poster, str) else ""
        if "id" in have:
            if not mid:
                out.append(Problem(i, "", "id", "empty id"))
            elif mid in first:
                out.append(Problem(i, mid, "id", f"duplicate id (first in row {first[mid]})",
                                   kind="duplicate id"))
            else:
                first[mid] = i
        if "genres" in have and not genres:
            out.append(Problem(i, mid, "genres", "no genres"))
        if any(c in have for c in inputs) and not plot and not poster and not (titles_count and title):
            out.append(Problem(i, mid, "plot", "neither plot, title nor poster" if titles_count
                               else "neither plot nor poster"))
        y = _year_text(year)
        if y and not _YEAR.fullmatch(y):
            out.append(Problem(i, mid, "year", f"year {y[:20]!r} is not a 4-digit number", severity="warning",
                               kind="bad year"))
    return out


_POSTER_KINDS = [  # (words in a PosterError message, kind); first match wins
    (("url",), "poster is a URL (not fetched)"),
    (("outside", "escap"), "poster outside the data folder"),
    (("not found", "missing", "no such", "does not exist"), "poster file missing"),
    (("empty", "zero", "0 bytes"), "poster file empty"),
    (("bomb", "too large", "too big", "pixels", "exceeds"), "poster too large"),
    (("not an image", "cannot identify", "unknown format", "not a picture"), "poster not an image"),
]


def _poster_kind(message: str) -> str:
    low = re.sub(r"'[^']*'|\"[^\"]*\"", "", message).lower()  # ignore quoted file names
    for words, kind in _POSTER_KINDS:
        if any(w in low for w in words):
            return kind
    return "poster corrupt or unreadable"


def _check_poster(path: str, root: Path) -> str | None:
    """None if the poster decodes, else the reason."""
    from genrelens.data.images import open_poster  # imported late: the CLI loads this module eagerly

    try:
        with open_poster(path, root=root, draft_size=DRAFT_SIZE):
            return None
    except GenrelensError as e:
        return str(e) or type(e).__name__
    except Exception as e:  # open_poster should raise PosterError; never let a poster crash validation
        return f"cannot read poster: {type(e).__name__}: {e}"


def _poster_checks(
    df: pd.DataFrame, root: Path, skip: set[int], progress: bool, workers: int
) -> tuple[int, list[Problem]]:
    pairs = enumerate(zip(df["id"], df["poster"], strict=True), 1)
    todo = [(i, mid, p) for i, (mid, p) in pairs if isinstance(p, str) and p and i not in skip]
    if not todo:
        return 0, []
    reasons: Iterable[str | None]
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:  # Pillow decodes without the GIL
        reasons = pool.map(lambda t: _check_poster(t[2], root), todo, chunksize=32)
        reasons = _with_progress(reasons, len(todo), "checking posters") if progress else list(reasons)
        out = [Problem(i, mid, "poster", _relative(msg, root), kind=_poster_kind(msg))
               for (i, mid, _), msg in zip(todo, reasons, strict=True) if msg]
    return len(todo), out


def _relative(message: str, root: Path) -> str:
    """Shorten absolute poster paths in messages to paths relative to the data folder."""
    return message.replace(str(root) + os.sep, "")


def _with_progress(items: Iterable, total: int, what: str) -> list:
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from genrelens.progress import progress_bar

    out = []
    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with progress_bar(*cols) as bar:
        task = bar.add_task(what, total=total)
        for k, x in enumerate(items, 1):
            out.append(x)
            if k % 64 == 0 or k == total:
                bar.update(task, completed=k)
    return out


def validate_table(
    path: str | os.PathLike | None = None, check_posters: bool = True, progress: bool = True, workers: int = 2,
    encoding: str = "utf-8", posters: str | os.PathLike | None = None, sep: str | None = None, columns=None,
) -> ValidationResult:
    """Check a table file (CSV/TSV, JSONL, Parquet, .xlsx or an MM-IMDb folder; None = the default data set).

    ``encoding``: of a CSV/JSONL file; ``posters``: the folder relative poster paths are resolved against
    (default: the table's folder); ``sep``: a CSV's separator (None: detected); ``columns``: an explicit
    ``{field: source column}`` mapping (see :mod:`genrelens.data.columns`). A table without a genres column is
    checked as a table to predict on (``purpose == "prediction"``). Never raises for bad data: unreadable files
    set ``fatal``, everything else becomes a Problem.
    """
    t0 = time.perf_counter()
    p = resolve_data_path(path)
    result = ValidationResult(path=str(p))
    problems: list[Problem] = []
    skip: set[int] = set()  # rows too broken for further checks
    try:
        if not p.exists():
            raise GenrelensError(f"not found: {p}")
        check_encoding(encoding)
        root = poster_root(p, posters)
        if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt"):
            result.sep = detect_sep(p, encoding, sep)
        raw = _read(p, problems, skip, encoding, sep)
        blank = raw.attrs.get("blank_lines") or []
        raw.columns = [str(c) for c in raw.columns]
        raw, cmap = standardize_columns(raw, columns)
        result.columns, result.notices = dict(cmap.sources), list(cmap.notices)
        if blank:
            shown = ", ".join(map(str, blank[:5])) + (f" and {len(blank) - 5:,} more" if len(blank) > 5 else "")
            result.notices.append(f"{len(blank):,} blank line{'s' if len(blank) > 1 else ''} skipped (file "
                                  f"line{'s' if len(blank) > 1 else ''} {shown}): they are not rows, so row numbers "
                                  "count data rows")
    except GenrelensError as e:
        result.fatal = str(e)
    except (OSError, MemoryError, ValueError) as e:
        result.fatal = f"cannot read {p}: {type(e).__name__}: {e}"
    if result.fatal:
        result.seconds = time.perf_counter() - t0
        return result

    raw = raw.reset_index(drop=True)
    raw.columns = [str(c) for c in raw.columns]
    result.n_rows = len(raw)
    have = set(raw.columns)
    if not len(raw):
        problems.append(Problem(0, "", "", "the table has no rows", kind="no rows"))
    from genrelens.data.columns import one_column_hint as _one_column_hint

    hint = _one_column_hint(list(raw.columns))
    if "genres" not in have:
        result.purpose = "prediction"
        result.notices.append("no 'genres' column: checked as a table to predict on (train and evaluate need "
                              "genres)")
        if "id" not in have:
            problems.append(Problem(0, "", "id", "no 'id' column: predictions name rows by their row number",
                                    severity="warning", kind="no id column"))
    elif "id" not in have:
        problems.append(Problem(0, "", "id", "missing column 'id'" + hint, kind="missing column"))
    inputs = ("plot", "title", "poster") if result.purpose == "prediction" else ("plot", "poster")
    if not any(c in have for c in inputs):
        names = " or ".join(f"a {c!r}" for c in inputs)
        problems.append(Problem(0, "", "plot", f"needs {names} column (has none; its columns: "
                                f"{', '.join(raw.columns)})" + hint, kind="missing column"))

    # Undecodable bytes: report them per cell, then carry on with U+FFFD in their place.
    for col in raw.columns:
        if raw[col].dtype != object:
            continue
        values = raw[col].tolist()
        ids = raw["id"].tolist() if "id" in have else [""] * len(raw)
        for i, v in enumerate(values):
            clean, bad = _scrub(v)
            if bad:
                problems.append(_not_utf8(i + 1, _scrub(str(ids[i]))[0], col, bad))
                values[i] = clean
        raw[col] = pd.Series(values, index=raw.index, dtype=object)

    filled = raw.copy()
    for c in COLUMNS:
        if c not in have:
            filled[c] = ""
    try:
        df = clean_table(filled, root)
    except Exception as e:  # clean_table copes with odd values; this is a last line of defence
        result.fatal = f"cannot interpret the table: {type(e).__name__}: {e}"
        result.problems = problems
        return result
    problems += _row_checks(raw, df, have, skip)
    if check_posters and "poster" in have:
        result.n_posters, found = _poster_checks(df, root, skip, progress, workers)
        problems += found
    elif "poster" in have:  # not opened, but a web address is named even then
        from genrelens.data.images import url_message

        problems += [Problem(i, mid, "poster", url_message(p), kind="poster is a URL (not fetched)")
                     for i, (mid, p) in enumerate(zip(df["id"], df["poster"], strict=True), 1)
                     if i not in skip and is_url(p)]
    result.problems = sorted(problems, key=lambda q: (q.row, q.severity != "error"))
    result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------------------------------------- output


def result_lines(result: ValidationResult) -> list[str]:
    """The plain lines printed before the problems: the separator when not a comma, the columns read (when one is
    read under another name, or an input column is absent), notices."""
    from genrelens.data.columns import FIELDS

    lines = []
    if result.sep and result.sep != ",":
        lines.append("separator: " + ("tab" if result.sep == "\t" else repr(result.sep)))
    renamed = any(src != f for f, src in result.columns.items())
    if result.columns and (renamed or not all(c in result.columns for c in ("title", "plot", "poster"))):
        lines.append("columns read: " + ", ".join(
            f"{f} <- {result.columns[f]}" if result.columns[f] != f else f for f in FIELDS if f in result.columns))
    return lines + list(result.notices)


def render_validation(result: ValidationResult, console: Any = None, limit: int = 50) -> None:
    """Print a summary, counts per problem kind and the first ``limit`` problems as rich tables."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()
    if result.fatal:
        console.print(f"[bold red]cannot read the table:[/] {escape(result.fatal)}")
        return
    n_err, n_warn = len(result.errors), len(result.warnings)
    posters = f", {result.n_posters:,} posters checked" if result.n_posters else ""
    head = f"{escape(result.path)}: {result.n_rows:,} rows{posters} in {result.seconds:.1f} s"
    for line in result_lines(result):
        console.print(escape(line))
    if not result.problems:
        console.print(f"[bold green]OK[/] {head}: no problems found"
                      + (" (for prediction)" if result.purpose == "prediction" else ""))
        return
    color = "red" if n_err else "yellow"
    console.print(f"[bold {color}]{n_err:,} error(s), {n_warn:,} warning(s)[/] in {head}")

    summary = Table(title="Problems by type", title_justify="left")
    summary.add_column("problem")
    summary.add_column("severity")
    summary.add_column("rows", justify="right")
    severity = {p.kind: p.severity for p in result.problems}
    for kind, n in result.counts().items():
        summary.add_row(escape(kind), severity[kind], f"{n:,}")
    console.print(summary)

    shown = result.problems[:limit]
    more = len(result.problems) > limit
    title = "Problems" + (f" (first {limit} of {len(result.problems):,})" if more else "")
    table = Table(title=title, title_justify="left",
                  caption="row 1 = first data row (blank lines are not rows); row 0 = the whole file",
                  caption_justify="left")
    for c, kw in (("row", {"justify": "right"}), ("id", {}), ("column", {}), ("severity", {}),
                  ("problem", {"overflow": "fold"})):
        table.add_column(c, **kw)
    for p in shown:
        sev = "[red]error[/]" if p.severity == "error" else "[yellow]warning[/]"
        table.add_row(str(p.row) if p.row else "file", escape(p.id), escape(p.column), sev, escape(p.message))
    console.print(table)
