"""Load a movie table (CSV/TSV with any common separator, JSONL, Parquet, .xlsx or an MM-IMDb folder) into one
DataFrame.

The table contract: one row per movie with columns
``id`` (str), ``title`` (str), ``year`` (Int64, may be NA), ``language`` (str),
``plot`` (str, "" when absent), ``genres`` (list[str], normalized names; ``|``, ``,``, ``;`` or ``/``
separated in a text cell), ``poster`` (absolute path str, an ``http(s)://`` URL as given, or None); extra columns
are kept. Headers are matched to these fields case-insensitively and through aliases (see
:mod:`genrelens.data.columns`).
``df.attrs["root"]`` is the folder that relative poster paths were resolved against; ``df.attrs["columns"]``
the source column of each field; ``df.attrs["column_notices"]`` what the user should be told about them.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from genrelens.data.columns import one_column_hint as _one_column_hint
from genrelens.data.columns import standardize_columns
from genrelens.data.labels import split_genres
from genrelens.errors import DataError

COLUMNS = ["id", "title", "year", "language", "plot", "genres", "poster"]
REQUIRED = ["id", "genres"]
INPUTS = ("plot", "title", "poster")  # a table needs at least one of these for anything to be read
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
URL_PREFIXES = ("http://", "https://")
ENV_VAR = "GENRELENS_DATA"


def default_data_path() -> Path:
    """The data set used when none is given: ``$GENRELENS_DATA``, else ``../shared/data`` beside the repo."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    repo = Path(__file__).resolve().parents[2]
    for base in (repo.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"):
        if (base / "movies" / "movies.csv").exists():
            return base / "movies" / "movies.csv"
    return repo.parent / "shared" / "data" / "movies" / "movies.csv"


def resolve_data_path(path: str | os.PathLike | None) -> Path:
    """``path`` if given, else the default; a folder holding ``movies.csv`` resolves to that file."""
    p = Path(path).expanduser() if path else default_data_path()
    if p.is_dir() and (p / "movies.csv").exists():
        p = p / "movies.csv"
    elif p.is_dir() and (p / "movies" / "movies.csv").exists():
        p = p / "movies" / "movies.csv"
    return p


@contextmanager
def read_errors(path: Path) -> Iterator[None]:
    """Turn the many exception types pandas/pyarrow raise for a bad file into one clear DataError."""
    try:
        yield
    except DataError:
        raise
    except UnicodeDecodeError as e:
        raise DataError(f"{path} is not UTF-8 text (byte {e.start}): re-save it as UTF-8") from e
    except Exception as e:  # pandas/pyarrow raise many types for a bad file
        raise DataError(f"cannot read {path}: {type(e).__name__}: {e}") from e


def is_url(value: object) -> bool:
    """Whether a poster cell is a web address (genrelens never fetches those)."""
    return isinstance(value, str) and value.strip().lower().startswith(URL_PREFIXES)


def read_raw(path: Path, sep: str | None = None) -> pd.DataFrame:
    """Read a table file as strings, without any cleaning. ``sep``: a CSV's separator (None: detected).
    Raises DataError when it cannot be read."""
    if not path.exists():
        raise DataError(f"data not found: {path} (give --data PATH or set ${ENV_VAR})")
    if path.is_dir():
        if any(path.glob("*.json")):
            return read_mmimdb(path)
        raise DataError(f"{path} is a folder without movies.csv or MM-IMDb <id>.json files")
    suffix = path.suffix.lower()
    with read_errors(path):
        if suffix == ".parquet":
            df = pd.read_parquet(path)
        elif suffix in (".jsonl", ".ndjson"):
            df = pd.read_json(path, lines=True, dtype=False, encoding="utf-8")
        elif suffix == ".json":  # a JSON array of objects, or JSON lines
            text = path.read_text(encoding="utf-8-sig")
            df = pd.read_json(io.StringIO(text), lines=not text.lstrip().startswith("["), dtype=False)
        elif suffix in (".csv", ".tsv", ".txt"):
            from genrelens.data.reader import detect_sep

            df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig",
                             sep=detect_sep(path, "utf-8", sep))
        elif suffix in EXCEL_SUFFIXES:
            df = read_excel(path)
        elif suffix == ".xls":
            raise DataError(f"{path}: the old .xls format is not read: save the sheet as .xlsx or .csv")
        else:
            raise DataError(f"unknown table format {suffix!r}: use .csv, .tsv, .jsonl, .parquet or .xlsx")
    return df


def read_excel(path: Path) -> pd.DataFrame:
    """The first sheet of an .xlsx workbook, as text (whole numbers without ``.0``, empty cells "")."""
    df = pd.read_excel(path, sheet_name=0, dtype=object, engine="openpyxl")
    df.columns = [str(c).strip() for c in df.columns]

    def text(v) -> str:
        if v is None or (isinstance(v, float) and pd.isna(v)):
            return ""
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return str(v)

    return df.map(text).astype(object)


def read_mmimdb(folder: Path) -> pd.DataFrame:
    """Import the MM-IMDb layout: ``<id>.json`` (``plot`` list, ``genres`` list) beside ``<id>.jpeg``."""
    rows = []
    for f in sorted(folder.glob("*.json")):
        try:
            item = json.loads(f.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise DataError(f"{f}: not a readable JSON file ({e})") from e
        plot = item.get("plot") or []
        if isinstance(plot, list):
            plot = max(plot, key=len) if plot else ""  # MM-IMDb keeps several summaries: take the fullest
        images = (f.with_suffix(s) for s in (".jpeg", ".jpg", ".png"))
        poster = next((im.name for im in images if im.exists()), "")
        rows.append({
            "id": f.stem,
            "title": item.get("title", ""),
            "year": str(item.get("year", "") or ""),
            "language": ",".join(item.get("languages", []) or []) if isinstance(item.get("languages"), list)
            else str(item.get("languages", "") or ""),
            "plot": plot,
            "genres": "|".join(item.get("genres", []) or []),
            "poster": poster,
        })
    return pd.DataFrame(rows, columns=COLUMNS)


from genrelens.data.clean import clean_text  # noqa: E402 - re-exported: defined without pandas for cold starts


def _as_text(v) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)) or v is pd.NA:
        return ""
    return clean_text(" ".join(str(v).split()))


def _as_id(v) -> str:
    """Ids as text; an integral float (a Parquet/JSON id column read as float) loses its ``.0``."""
    if isinstance(v, float) and not pd.isna(v) and v.is_integer():
        return str(int(v))
    return _as_text(v)


def _as_years(values: pd.Series) -> pd.Series:
    """Years as Int64: anything that is not a whole number in 1..9999 (``1999.5``, ``1e30``, ``True``,
    ``"abc"``) becomes NA (``data validate`` warns about it) instead of failing the cast."""
    text = values.map(lambda v: "" if isinstance(v, bool) else _as_text(v))
    num = pd.to_numeric(text, errors="coerce").astype("float64")
    ok = num.notna() & (num % 1 == 0) & num.between(1, 9999)
    return num.where(ok).astype("Int64")


def _as_genres(v) -> list[str]:
    if isinstance(v, (list, tuple)) or hasattr(v, "tolist"):
        return split_genres(v)
    return split_genres(_as_text(v))


@dataclass
class LoadReport:
    """What loading dropped or fixed, so nothing is skipped silently."""

    n_read: int = 0
    skipped: list[tuple[int, str, str]] = field(default_factory=list)  # (row number, id, reason), per problem
    columns: dict[str, str] = field(default_factory=dict)  # field -> the source column that feeds it
    notices: list[str] = field(default_factory=list)  # one line each: aliases used, columns not read
    sep: str | None = None  # a CSV's separator, as detected or given

    @property
    def skipped_rows(self) -> list[int]:
        """The rows skipped, each once (``skipped`` lists every problem, and a row can have several)."""
        return sorted({r for r, _, _ in self.skipped})

    @property
    def n_skipped(self) -> int:
        """How many rows were skipped (not problems: an all-empty row is one row with three)."""
        return len(self.skipped_rows)

    def skipped_text(self) -> str:
        """``4 bad rows (6 problems)``, ``1 bad row``: rows counted once, problems named when more."""
        n, m = self.n_skipped, len(self.skipped)
        return f"{n} bad row{'' if n == 1 else 's'}" + (f" ({m} problems)" if m != n else "")

    def summary(self) -> str:
        return f"read {self.n_read} rows, skipped {self.n_skipped}" + (
            f" ({len(self.skipped)} problems)" if len(self.skipped) != self.n_skipped else "")

    def columns_line(self) -> str:
        """``columns read: id, title, plot <- overview, ...`` (so a table is never read from less, silently)."""
        from genrelens.data.columns import FIELDS

        return "columns read: " + ", ".join(f"{f} <- {self.columns[f]}" if self.columns[f] != f else f
                                            for f in FIELDS if f in self.columns)


def clean_table(raw: pd.DataFrame, root: Path, columns=None, required: tuple[str, ...] | list[str] = tuple(REQUIRED)
                ) -> pd.DataFrame:
    """Coerce a raw table to the contract (see module docstring). Missing required columns raise DataError.

    ``root`` (the folder relative poster paths are resolved against) is made absolute first, so poster paths
    come out absolute and are never joined to the table's folder twice, whatever the working folder.
    ``columns``: an explicit ``{field: source column}`` mapping (or ``["plot=overview", ...]``), applied before
    case-insensitive matching and aliases; ``required``: the fields that must have a column."""
    root = Path(root).resolve()
    raw, cmap = standardize_columns(raw, columns)
    names = [str(c) for c in raw.columns]
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise DataError(f"missing column(s): {', '.join(missing)} (have: {', '.join(names)})"
                        + _one_column_hint(names))
    if not any(c in raw.columns for c in INPUTS):
        raise DataError("the table needs a 'plot', 'title' or 'poster' column (or one of their other names, e.g. "
                        f"overview, name, poster_path); it has: {', '.join(names)}" + _one_column_hint(names))
    df = raw.copy()
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = ""
    df["id"] = df["id"].map(_as_id)
    for c in ("title", "language", "plot"):
        df[c] = df[c].map(_as_text)
    df["year"] = _as_years(df["year"])
    df["genres"] = df["genres"].map(_as_genres)
    # An explicit object Series: pandas 3 would infer its "str" dtype and turn None into NaN.
    posters = [_poster_path(_as_text(v), root) for v in df["poster"]]
    df["poster"] = pd.Series(posters, index=df.index, dtype=object)
    df = df.reset_index(drop=True)
    df.attrs["root"] = str(root)
    df.attrs["columns"] = dict(cmap.sources)
    df.attrs["column_notices"] = list(cmap.notices)
    return df


def poster_root(table: Path, posters: str | os.PathLike | None = None) -> Path:
    """The folder relative poster paths are resolved against: ``posters`` when given (``--posters DIR``),
    else the table's folder (the table itself when it is an MM-IMDb folder); absolute."""
    if posters is not None:
        root = Path(posters).expanduser()
        if not root.is_dir():
            raise DataError(f"--posters {root}: not a folder")
        return root.resolve()
    return (table if table.is_dir() else table.parent).resolve()


def _poster_path(rel: str, root: Path) -> str | None:
    if not rel:
        return None
    if is_url(rel):  # kept as given: named as a URL where it is opened, never joined to a folder
        return rel
    p = Path(rel)
    return str(p if p.is_absolute() else root / p)


def id_problems(ids, first_row: int = 1, seen: dict[str, int] | None = None, where: str = "in row"
                ) -> dict[int, str]:
    """``{row: "empty id" | "duplicate id (first in row N)"}`` for ids whose first is row ``first_row``;
    ``seen`` (``{id: first row}``) carries across chunks of one file; ``where``: how the first is named
    (``"at index"``: ``duplicate id (first at index N)``)."""
    seen = {} if seen is None else seen
    out = {}
    for row, mid in enumerate(ids, first_row):
        mid = _as_id(mid)
        if not mid:
            out[row] = "empty id"
        elif mid in seen:
            out[row] = f"duplicate id (first {where} {seen[mid]})"
        else:
            seen[mid] = row
    return out


def row_problems(df: pd.DataFrame, titles_count: bool = False) -> list[tuple[int, str, str]]:
    """Cheap per-row problems (no file I/O): (row number, id, reason). Rows count from 1 (header = 0).
    ``titles_count``: a title alone is input enough (prediction with a model that reads titles)."""
    out = []
    seen: set[str] = set()
    for i, (mid, genres, plot, poster, title) in enumerate(
        zip(df["id"], df["genres"], df["plot"], df["poster"], df["title"], strict=True), 1
    ):
        if not mid:
            out.append((i, mid, "empty id"))
        elif mid in seen:
            out.append((i, mid, "duplicate id"))
        seen.add(mid)
        if not genres:
            out.append((i, mid, "no genres"))
        if not plot and not poster and not (titles_count and title):
            out.append((i, mid, "neither plot, title nor poster" if titles_count else "neither plot nor poster"))
    return out


def read_table_rows(path: Path, encoding: str = "utf-8", sep: str | None = None
                    ) -> tuple[pd.DataFrame, dict[int, str]]:
    """``(raw table, {row: problem})``: CSV/TSV and JSON lines are read row by row, so a row that is not text in
    ``encoding`` (or has too many fields, or is not a JSON object) is reported instead of failing the file.
    ``sep``: a CSV's separator (None: detected from its header)."""
    from genrelens.data.reader import CSV_SUFFIXES, JSONL_SUFFIXES, check_encoding, read_rows

    check_encoding(encoding)
    if path.is_file() and path.suffix.lower() in CSV_SUFFIXES + JSONL_SUFFIXES:
        with read_errors(path):
            return read_rows(path, encoding, sep=sep)
    return read_raw(path, sep=sep), {}


def load_table(
    path: str | os.PathLike | None = None, *, skip_bad: bool = False, need_genres: bool = True,
    encoding: str = "utf-8", posters: str | os.PathLike | None = None, sep: str | None = None,
    columns=None,
) -> tuple[pd.DataFrame, LoadReport]:
    """Load and clean a movie table.

    Rows with an empty or duplicate id, no genres (when ``need_genres``), neither plot nor poster (nor title,
    without ``need_genres``: a table to predict on), or text that is not in ``encoding`` are bad: with
    ``skip_bad`` they are dropped and listed in the report, otherwise a DataError names them. ``posters``: the
    folder relative poster paths are resolved against (default: the table's folder). ``sep``: a CSV's separator
    (None: detected). ``columns``: ``{field: source column}`` (see :func:`clean_table`). The report says which
    column feeds each field (``report.columns``, ``report.columns_line()``) and lists notices about them.
    """
    p = resolve_data_path(path)
    if not p.exists():
        raise DataError(f"data not found: {p} (give --data PATH or set ${ENV_VAR})")
    raw, unreadable = read_table_rows(p, encoding, sep)
    df = clean_table(raw, poster_root(p, posters), columns=columns,
                     required=REQUIRED if need_genres else [c for c in REQUIRED if c != "genres"])
    if need_genres and not any(c in df.attrs["columns"] for c in ("plot", "poster")):
        raise DataError("the table needs a 'plot' or a 'poster' column to train or evaluate on (a title alone is "
                        f"read for prediction only); it has: {', '.join(map(str, raw.columns))}")
    if not len(df):
        raise DataError(f"{p} has no rows")
    report = LoadReport(n_read=len(df), columns=dict(df.attrs["columns"]), notices=list(df.attrs["column_notices"]))
    if p.is_file() and p.suffix.lower() in (".csv", ".tsv", ".txt"):
        from genrelens.data.reader import detect_sep

        report.sep = detect_sep(p, encoding, sep)
    ids = df["id"].tolist()
    problems = [(r, ids[r - 1], why) for r, why in unreadable.items()]
    problems += [pr for pr in row_problems(df, titles_count=not need_genres)
                 if (need_genres or pr[2] != "no genres") and pr[0] not in unreadable]
    problems.sort(key=lambda pr: pr[0])
    if problems:
        if not skip_bad:
            by_row: dict[int, tuple[str, list[str]]] = {}
            for r, i, why in problems:  # a row with several problems is one bad row
                by_row.setdefault(r, (i, []))[1].append(why)
            shown = "; ".join(f"row {r} ({i or '?'}): {', '.join(whys)}" for r, (i, whys) in list(by_row.items())[:5])
            more = f" and {len(by_row) - 5} more" if len(by_row) > 5 else ""
            raise DataError(
                f"{len(by_row)} bad row(s) in {p}: {shown}{more}. "
                "Run `genrelens data validate` for the full list, or pass --skip-bad to drop them."
            )
        bad_rows = {r for r, _, _ in problems}
        report.skipped = problems
        root = df.attrs["root"]
        df = df[[i not in bad_rows for i in range(1, len(df) + 1)]].reset_index(drop=True)
        df.attrs["root"] = root
    return df, report


# ------------------------------------------------------------------- which rows a command used, dropped and why

NO_INPUT_ROWS = "with nothing this model reads"  # metrics["rows"]["dropped"]: labelled rows not scored


def _reason(why: str) -> str:
    """A problem's kind, as ``data validate`` names it: ``duplicate id (first in row 4)`` -> ``duplicate id``,
    ``unmatched quote: ...`` -> ``unmatched quote``, ``7 fields but the header has 6 ...`` -> ``wrong number of
    fields``."""
    if re.match(r"\d+ fields but the header has", why):
        return "wrong number of fields"
    why = re.sub(r" near line \d+", "", why)  # "cannot parse this row near line 7: ..." is one kind
    return re.split(r" \(|: |; ", why, maxsplit=1)[0]


def rows_summary(n_read: int, skipped: list[tuple[int, str, str]], unlabelled_genres: list[list[str]],
                 n_used: int, n_input_problems: int = 0, split: str | None = None, n_outside_split: int = 0,
                 columns: dict[str, str] | None = None, notices: list[str] | None = None, n_no_input: int = 0
                 ) -> dict:
    """Which rows of the table an evaluation used, which it dropped and why (``metrics["rows"]``).

    skipped: the loader's bad rows ``(row, id, reason)``, one per problem (a row can have several); unlabelled_genres:
    the genres of the rows that carry none of the model's labels (their commonest genres are named, so a convention
    problem shows); n_no_input: labelled rows with nothing the model reads (not scored). ``dropped`` counts rows,
    each once (``read = used + n_dropped + outside_split``);
    ``bad_row_problems`` counts the bad rows' problems by kind."""
    problems = Counter(_reason(why) for _, _, why in skipped)
    genres = Counter(g for gs in unlabelled_genres for g in gs)
    dropped = {}
    if skipped:
        dropped["bad rows"] = len({r for r, _, _ in skipped})
    if unlabelled_genres:
        dropped["none of the model's labels"] = len(unlabelled_genres)
    if n_no_input:
        dropped[NO_INPUT_ROWS] = int(n_no_input)
    return {"read": int(n_read), "used": int(n_used), "dropped": dropped, "n_dropped": int(sum(dropped.values())),
            "bad_row_problems": dict(problems.most_common()),
            "split": split, "outside_split": int(n_outside_split), "with_input_problems": int(n_input_problems),
            "unlabelled_genres": dict(genres.most_common(5)), "columns": dict(columns or {}),
            "notices": list(notices or [])}


def rows_line(rows: dict) -> str:
    """One line for evaluate's text output: ``rows: 100 read, 31 used, 69 dropped (2 bad rows: 2 no genres; 67 with
    none of the model's labels; their commonest genres: ...)``; rows are counted once, the bad rows' problems each."""
    parts = [f"{rows['read']:,} read"]
    if rows.get("split"):
        parts.append(f"{rows['outside_split']:,} outside the {rows['split']!r} split")
    parts.append(f"{rows['used']:,} used")
    why = []
    for reason, n in rows["dropped"].items():
        if reason == "none of the model's labels":
            common = ", ".join(rows.get("unlabelled_genres") or {}) or "no genres"
            why.append(f"{n:,} with none of the model's labels (their commonest genres: {common})")
        elif reason == "bad rows":
            problems = rows.get("bad_row_problems") or {}
            m = sum(problems.values())
            head = f"{n:,} bad row{'' if n == 1 else 's'}"
            if m != n:
                head += f" with {m:,} problems, a row can have several"
            why.append(head + ": " + ", ".join(f"{k:,} {kind}" for kind, k in problems.items()))
        else:
            why.append(f"{n:,} {reason}")
    parts.append(f"{rows['n_dropped']:,} dropped" + (f" ({'; '.join(why)})" if why else ""))
    line = "rows: " + ", ".join(parts)
    if rows.get("with_input_problems"):
        line += f"; {rows['with_input_problems']:,} scored with less input than they had (unreadable posters)"
    return line
