"""Batch prediction over a movie table, in chunks, resumable, written atomically.

Each chunk of ``chunk_size`` rows is scored and saved as ``<output>.parts/part-NNNNNN.parquet`` (atomic);
``resume=True`` skips chunks already saved. When all chunks are done they are concatenated into the output
(CSV, JSONL or Parquet, by its suffix) by one rename, and the parts folder is removed.

Input headers are matched to the fields genrelens reads case-insensitively and through common aliases
(``overview`` -> ``plot``), or as mapped explicitly (``column_map``); a CSV's separator is detected unless given.

Output columns: ``id`` (from the input; row numbers when it has none), the input's other columns (all but the
id, plot and poster columns unless chosen; as text), ``genres`` (``|``-joined), ``p_<Label>`` per label
(calibrated probabilities when the model is calibrated), ``confidence`` (probability that the predicted label set
is entirely right), ``review`` (the confidence is below the model's review cut-off, or some label's probability
lies within ``review_band`` of its threshold when that older rule is asked for, or an input was ignored, or the
row could not be scored), ``review_reasons`` (why, ``|``-joined), ``warnings`` (notes on a row that was scored:
an input ignored, such as an unreadable poster; an empty or duplicate id, with the row that had it first) and
``error`` (why a row was not scored: nothing to read, or an unreadable row, with its row number).
``review_only=True`` writes only the flagged rows, least confident first.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genrelens.data.columns import ColumnMap, map_columns, standardize_columns
from genrelens.data.table import _as_id, clean_table, id_problems, read_errors, read_raw
from genrelens.errors import DataError
from genrelens.io import atomic_path

if TYPE_CHECKING:  # the model (torch) is imported only when scoring starts: plan_batch() stays fast
    from genrelens.predict import GenreClassifier

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
POSTER_PREFIX = "poster ignored"
MANIFEST = "manifest.json"


@dataclass
class BatchSummary:
    """What a batch run did: row counts, problem rows (the first ``MAX_LISTED``), timing.

    ``n_rows``, ``n_unscored``, ``n_problems`` and ``n_flagged`` count the whole output (chunks saved by an earlier
    run included); ``n_read_now`` the rows this run read and answered (``n_resumed`` the others), of which
    ``n_scored_now`` were scored (given genres)."""

    output: Path
    n_rows: int = 0
    n_scored_now: int = 0  # rows scored in this run (an unreadable row or one with nothing to read is not)
    n_resumed: int = 0
    n_problems: int = 0
    n_unscored: int = 0
    n_flagged: int = 0  # rows flagged for review
    n_read_now: int = 0  # rows read and answered in this run, scored or not
    problems: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    MAX_LISTED = 20

    @property
    def n_scored(self) -> int:
        """Rows of the output that were scored (given genres)."""
        return self.n_rows - self.n_unscored

    @property
    def rate(self) -> float:
        """Rows read and answered per second in this run."""
        return self.n_read_now / self.seconds if self.seconds else 0.0


def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"unknown output format {path.suffix!r}: use .csv, .jsonl or .parquet")
    return fmt


def count_rows(path: Path, sep: str | None = None) -> int | None:
    """Rows in a table file without loading it, as :func:`iter_chunks` reads them (blank lines are not rows; None
    when unknown cheaply). ``sep``: a CSV's separator (None: detected)."""
    from genrelens.data.reader import csv_records, detect_sep

    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.ParquetFile(path).metadata.num_rows
        if suffix in (".jsonl", ".ndjson"):
            with path.open("rb") as f:
                return sum(1 for line in f if line.strip())
        if suffix in (".csv", ".tsv", ".txt"):
            with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
                return _csv_rows(["?"] if rec is None else rec for rec, _ in csv_records(f, detect_sep(path, sep=sep)))
    except (OSError, csv.Error, pa.ArrowException):
        return None
    return None


def _csv_rows(records: Iterator[list[str]]) -> int:
    """Data rows among CSV records (``genrelens.data.reader.csv_records``: a record it cannot parse is ``["?"]``),
    skipped as ``genrelens.data.reader.iter_csv`` skips them: empty records, and after the header, records of one
    blank cell (a line of spaces)."""
    header, rows = False, 0
    for rec in records:
        if not rec or (header and len(rec) == 1 and not rec[0].strip()):
            continue
        if header:
            rows += 1
        header = True
    return rows


def iter_chunks(path: Path, chunk_size: int, encoding: str = "utf-8", sep: str | None = None
                ) -> Iterator[tuple[pd.DataFrame, dict[int, str]]]:
    """``(raw rows, {row: problem})`` in chunks of ``chunk_size`` rows (strings, uncleaned), streamed where the
    format allows; CSV and JSON lines are read row by row, so a bad row is reported, never fatal. ``sep``: a
    CSV's separator (None: detected)."""
    from genrelens.data.reader import CSV_SUFFIXES, JSONL_SUFFIXES, iter_table_chunks

    suffix = path.suffix.lower()
    if not path.is_file():
        yield from ((df, {}) for df in _slices(read_raw(path), chunk_size))  # DataError (missing) or a folder
        return
    with read_errors(path):
        if suffix in CSV_SUFFIXES + JSONL_SUFFIXES:
            yield from iter_table_chunks(path, chunk_size, encoding, sep)
        elif suffix == ".parquet":
            yield from ((b.to_pandas(), {}) for b in pq.ParquetFile(path).iter_batches(batch_size=chunk_size))
        else:
            yield from ((df, {}) for df in _slices(read_raw(path), chunk_size))


def _slices(df: pd.DataFrame, size: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(df), size):
        yield df.iloc[start:start + size]


def row_status(plot: str, poster: str | None, poster_error: str | None, uses_text: bool,
               uses_poster: bool) -> tuple[bool, str | None]:
    """``(scored, message)`` for one row: whether the model had anything to read, and what went wrong."""
    if not plot and poster is None:
        return (not (uses_text or uses_poster)), "no input: empty plot and no poster"
    plot_ok = bool(plot) and uses_text
    poster_ok = poster is not None and uses_poster and poster_error is None
    scored = plot_ok or poster_ok or not (uses_text or uses_poster)
    parts = [poster_error] if poster_error else []
    if not scored:
        parts.append("not scored: " + ("empty plot" if uses_text and not plot else "no usable input")
                     + (" and no poster" if poster is None and uses_poster else "")
                     + (" (this model reads posters only)" if not uses_text and plot else "")
                     + (" (this model reads plots only)" if not uses_poster and poster is not None else ""))
    return scored, "; ".join(parts) or None


OUTPUT_COLUMNS = ("id", "genres", "confidence", "review", "review_reasons", "warnings", "error")


def output_schema(labels: list[str], kept: list[str] | None = None) -> pa.Schema:
    """``id``, the kept input columns (as text, named by :func:`output_name`), ``genres``, ``p_<Label>``,
    ``confidence``, ``review``, ``review_reasons``, ``warnings``, ``error``."""
    return pa.schema([("id", pa.string())] + [(output_name(c), pa.string()) for c in kept or []]
                     + [("genres", pa.string())] + [(f"p_{g}", pa.float32()) for g in labels]
                     + [("confidence", pa.float32()), ("review", pa.bool_()), ("review_reasons", pa.string()),
                        ("warnings", pa.string()), ("error", pa.string())])


def output_name(column: str) -> str:
    """An input column's name in the output: ``input_<name>`` where it would clash with an output column."""
    clash = column in OUTPUT_COLUMNS or column.startswith("p_")
    return f"input_{column}" if clash else column


def _as_text(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return v if isinstance(v, str) else json.dumps(v.tolist() if hasattr(v, "tolist") else v, default=str) \
        if isinstance(v, list | dict | np.ndarray) else str(v)


def score_chunk(clf: GenreClassifier, raw: pd.DataFrame, root: Path, first_row: int,
                bad: dict[int, str] | None = None, keep: list[str] | None = None,
                seen: dict[str, int] | None = None, review_band: float | None = None,
                review_below: float | None = None, columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Score one raw chunk whose first row is row ``first_row`` of the file (1-based).

    bad: ``{row: problem}`` of rows that could not be read (not scored, reported with their row number);
    keep: input columns copied to the output (by their names in the input); seen: ``{id: first row}`` across
    chunks, to flag empty and duplicate ids; review_band, review_below: see ``GenreClassifier.review`` (``band``,
    ``min_confidence``); columns: ``{field: input column}`` (see :func:`genrelens.data.columns.map_columns`:
    headers also match case-insensitively and through aliases). Rows without an id column are named by their
    row number.
    """
    from genrelens.predict import NO_INPUT, NOT_SCORED
    from genrelens.types import NO_INPUT as NO_INPUT_REASON
    from genrelens.types import Prediction

    raw = raw.reset_index(drop=True)
    bad = bad or {}
    rows = [first_row + i for i in range(len(raw))]
    passthrough = {output_name(c): [_as_text(v) for v in raw[c]] if c in raw.columns else [None] * len(raw)
                   for c in keep or []}
    raw, _ = standardize_columns(raw, columns)  # ``ID``, ``overview``...: read as id, plot... (never row numbers)
    if "id" not in raw.columns:
        raw = raw.assign(id=[str(r) for r in rows])
    if "genres" not in raw.columns:
        raw = raw.assign(genres="")
    if bad:  # an unreadable row is not scored: its cells may hold anything
        unread = [r in bad for r in rows]
        for c in ("title", "plot", "poster"):
            if c in raw.columns:
                raw[c] = raw[c].where(~pd.Series(unread, index=raw.index), "")
    try:
        df = clean_table(raw, root)
    except DataError:
        raise
    except Exception as e:  # clean_table copes with odd values; never let a chunk end in a traceback
        raise DataError(f"cannot interpret rows {first_row}-{first_row + len(raw) - 1}: {type(e).__name__}: {e}") from e
    from genrelens.types import Movie

    movies = [Movie(id=mid, title=t, plot=p, poster=q)
              for mid, t, p, q in zip(df["id"], df["title"], df["plot"], df["poster"])]
    inputs = clf.preprocess(movies)  # what the model reads (title + plot), built once
    proba, errors, usable = clf.forward(inputs, root=root)
    predictions = clf.postprocess(inputs, proba, errors, usable, review_band, review_below)
    id_notes = id_problems(df["id"], first_row, seen) if seen is not None else {}
    rows_out, messages, notes = [], [], []
    for i, (plot, poster, row) in enumerate(zip(inputs.texts, inputs.posters, rows, strict=True)):
        err = (errors.get(i) or "").removesuffix(f"; {NO_INPUT}") or None
        scored, msg = row_status(plot, poster, err if err and err.startswith(POSTER_PREFIX) else None,
                                 clf.uses_text, clf.uses_poster)
        p = predictions[i]
        if row in bad:
            scored, msg = False, f"row {row}: not scored: {bad[row]}"
        note = [f"row {row}: {id_notes[row]}"] if row in id_notes else []
        if scored and msg:  # an input ignored on a row that was scored: a warning, not an error
            note.append(msg)
            msg = None
        if not scored and p.scored:  # an unreadable row: answered like a movie with no usable input
            p = Prediction([], None, None, True, [NO_INPUT_REASON], p.warnings, id=p.id, error=NOT_SCORED)
        rows_out.append(p.to_row(clf.labels))
        messages.append(msg)
        notes.append("; ".join(note) or None)
    table = pd.DataFrame(rows_out, columns=["genres", *(f"p_{g}" for g in clf.labels), "confidence", "review",
                                            "review_reasons"])
    out = pd.DataFrame({"id": df["id"].astype(str), **{k: pd.Series(v, dtype=object) for k, v in passthrough.items()},
                        "genres": table["genres"].astype(object)})
    for g in clf.labels:
        out[f"p_{g}"] = table[f"p_{g}"].to_numpy(dtype=np.float32)
    out["confidence"] = table["confidence"].to_numpy(dtype=np.float32)
    out["review"] = table["review"].to_numpy(dtype=bool)
    out["review_reasons"] = table["review_reasons"].astype(object)
    out["warnings"] = pd.Series(notes, dtype=object)
    out["error"] = pd.Series(messages, dtype=object)
    return out


def _manifest(plan: BatchPlan, clf: GenreClassifier, review_band: float | None = None,
              review_below: float | None = None) -> dict:
    st = plan.src.stat() if plan.src.exists() else None
    return {"version": 2, "input": str(plan.src.resolve()), "input_size": st.st_size if st else None,
            "input_mtime_ns": st.st_mtime_ns if st else None, "chunk_size": plan.chunk_size,
            "encoding": plan.encoding, "posters": str(plan.root), "columns": plan.keep, "sep": plan.sep,
            "column_map": plan.columns,
            "model_dir": str(Path(clf.model_dir).resolve()), "labels": clf.labels,
            "review_band": review_band, "review_below": review_below, "calibrated": clf.calibrated}


def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def saved_parts(parts: Path) -> list[Path]:
    """The chunks an earlier run saved in ``parts``."""
    return sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []


def _prepare_parts(parts: Path, manifest: dict, resume: bool, restart: bool = False) -> None:
    saved = parts / MANIFEST
    if resume and saved.exists():
        try:
            old = json.loads(saved.read_text())
        except (OSError, ValueError):
            old = None
        if old != manifest:
            raise DataError(f"--resume: {parts} was made from another input, model, chunk size or settings; "
                            f"run with --restart to discard its saved chunks and start over")
        return
    if not resume and not restart and (done := saved_parts(parts)):
        raise DataError(f"{parts} holds {len(done)} chunk(s) saved by an earlier, interrupted run: run the same "
                        f"command with --resume to continue it, or with --restart to discard them and start over")
    shutil.rmtree(parts, ignore_errors=True)
    parts.mkdir(parents=True)
    with atomic_path(saved) as tmp:
        tmp.write_text(json.dumps(manifest, indent=2))


@dataclass
class BatchPlan:
    """A batch job checked before any model is loaded (:func:`plan_batch`)."""

    src: Path
    out: Path
    fmt: str
    chunk_size: int
    encoding: str
    root: Path  # the folder relative poster paths are resolved against
    keep: list[str]  # input columns copied to the output
    sep: str | None = None  # a CSV's separator (detected unless given)
    columns: dict[str, str] = field(default_factory=dict)  # an explicit {field: input column} mapping
    column_map: ColumnMap = field(default_factory=ColumnMap)  # which input column feeds each field, and notices

    def columns_line(self) -> str:
        """``columns used: id <- ID, title, plot <- overview, ...`` (a table is never read from less, silently)."""
        return "columns used: " + (self.column_map.describe() or "none")


def input_columns(path: Path, encoding: str = "utf-8", sep: str | None = None) -> list[str]:
    """The input's column names, read cheaply (a CSV header, the first JSON line, the Parquet schema). ``sep``: a
    CSV's separator (None: detected)."""
    from genrelens.data.reader import CSV_SUFFIXES, JSONL_SUFFIXES, iter_csv, iter_jsonl
    from genrelens.data.table import COLUMNS

    suffix = path.suffix.lower()
    if path.is_dir():
        return list(COLUMNS)
    with read_errors(path):
        if suffix in CSV_SUFFIXES:
            header = next((header for header, _, _ in iter_csv(path, encoding, sep)), None)
            if header is None:  # a header without rows (scoring then says "no rows")
                from genrelens.data.reader import detect_sep

                with path.open(encoding="utf-8-sig", errors="replace", newline="") as f:
                    header = next(csv.reader(f, delimiter=detect_sep(path, encoding, sep)), [])
            return [c.strip() for c in header]
        if suffix in JSONL_SUFFIXES:
            return list(next((item for item, problem in iter_jsonl(path, encoding) if not problem), {}))
        if suffix == ".parquet":
            return list(pq.read_schema(path).names)
        return [str(c) for c in read_raw(path).columns]


def plan_batch(input_path: str | Path, output_path: str | Path, *, chunk_size: int = 256, encoding: str = "utf-8",
               posters: str | Path | None = None, columns: list[str] | str | None = None, sep: str | None = None,
               column_map: dict[str, str] | list[str] | str | None = None) -> BatchPlan:
    """Check a batch job's arguments (output format, input, encoding, separator, poster folder, columns) without
    a model.

    columns: input columns to copy to the output; None = every column but those read as the id, plot and
    poster; "all" = every column; "none" or "" = only ``id``. sep: a CSV's separator (None: detected).
    column_map: ``{field: input column}`` (or ``["plot=overview", ...]``); other headers are matched
    case-insensitively and through aliases (``plan.column_map`` says which column feeds each field).
    Raises DataError (or ValueError for a bad ``chunk_size``)."""
    from genrelens.data.columns import parse_mapping
    from genrelens.data.reader import CSV_SUFFIXES, check_encoding, detect_sep
    from genrelens.data.table import poster_root

    src, out = Path(input_path), Path(output_path)
    fmt = output_format(out)
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    if not src.exists():
        raise DataError(f"input not found: {src}")
    if out.exists() and src.resolve() == out.resolve():
        raise DataError(f"--output {out} is the input file: choose another path")
    check_encoding(encoding)
    root = poster_root(src, posters)
    sep = detect_sep(src, encoding, sep) if src.is_file() and src.suffix.lower() in CSV_SUFFIXES else None
    mapping = parse_mapping(column_map)
    have = input_columns(src, encoding, sep)
    cmap = map_columns(have, mapping)
    id_column = cmap.sources.get("id", "id")
    read = {cmap.sources[f] for f in ("id", "plot", "poster") if f in cmap.sources}
    if columns is None:
        keep = [c for c in have if c not in read]
    elif isinstance(columns, str) and columns.strip().lower() in ("all", "none", ""):
        keep = [c for c in have if c != id_column] if columns.strip().lower() == "all" else []
    else:
        columns = [c.strip() for c in columns.split(",") if c.strip()] if isinstance(columns, str) else columns
        unknown = [c for c in columns if c not in have]
        if unknown:
            raise DataError(f"--columns: {', '.join(unknown)} not in {src} (its columns: {', '.join(have)})")
        keep = [c for c in dict.fromkeys(columns) if c != id_column]
    return BatchPlan(src, out, fmt, chunk_size, encoding, root, keep, sep, mapping, cmap)


def predict_table(clf: GenreClassifier, input_path: str | Path | BatchPlan, output_path: str | Path | None = None,
                  *, chunk_size: int = 256, resume: bool = False, restart: bool = False,
                  on_progress: Callable[[int, int | None], None] | None = None, encoding: str = "utf-8",
                  posters: str | Path | None = None, columns: list[str] | str | None = None,
                  review_band: float | None = None, review_below: float | None = None,
                  review_only: bool = False, sep: str | None = None,
                  column_map: dict[str, str] | list[str] | str | None = None) -> BatchSummary:
    """Score every row of ``input_path`` into ``output_path`` (see the module docstring).

    Poster paths are relative to ``posters`` (default: the input's folder), and may not leave it. A row that
    cannot be read (not text in ``encoding``, too many fields) is reported in the ``error`` column with its row
    number; the others are scored. ``columns``, ``sep``, ``column_map``: see :func:`plan_batch` (or pass a plan as
    ``input_path``). When the parts folder holds chunks of an earlier run, ``resume`` continues it and
    ``restart`` discards them; with neither, DataError names both (nothing is discarded silently).
    ``on_progress(rows_done, total)`` is called after each chunk (total None when unknown). ``review_band``,
    ``review_below``: see ``GenreClassifier.review``; ``review_only``: write only the flagged rows. Raises
    DataError for an unusable input.
    """
    plan = input_path if isinstance(input_path, BatchPlan) else plan_batch(
        input_path, output_path, chunk_size=chunk_size, encoding=encoding, posters=posters, columns=columns, sep=sep,
        column_map=column_map)
    readable = [f for f in ("plot", "poster") + (("title",) if clf.reads_titles else ())
                if f in plan.column_map.sources]
    if not readable and plan.src.is_file() and (clf.uses_text or clf.uses_poster):
        raise DataError(f"the table needs a 'plot' or a 'poster' column for model {clf.name}"
                        + ("" if clf.reads_titles else " (it reads no titles)")
                        + f"; it has: {plan.column_map.describe() or 'no column genrelens reads'} (a plot under "
                        f"another name: --column-map plot=COLUMN)")
    parts = parts_dir(plan.out)
    _prepare_parts(parts, _manifest(plan, clf, review_band, review_below), resume, restart)
    summary = BatchSummary(plan.out)
    try:
        done = _score_chunks(clf, plan, parts, summary, on_progress, review_band, review_below)
        if done == 0:
            raise DataError(f"{plan.src} has no rows")
    except DataError:  # a bad table: leave nothing behind unless chunks were saved
        if not any(parts.glob("part-*.parquet")):
            shutil.rmtree(parts, ignore_errors=True)
        raise
    _assemble(sorted(parts.glob("part-*.parquet")), plan.out, plan.fmt, summary, review_only)
    shutil.rmtree(parts, ignore_errors=True)
    return summary


def _score_chunks(clf: GenreClassifier, plan: BatchPlan, parts: Path, summary: BatchSummary,
                  on_progress: Callable[[int, int | None], None] | None, review_band: float | None = None,
                  review_below: float | None = None) -> int:
    """Score and save each chunk not saved yet; returns the rows seen."""
    total = count_rows(plan.src, plan.sep) if plan.src.is_file() else None
    start, done = time.perf_counter(), 0
    schema = output_schema(clf.labels, plan.keep)
    seen: dict[str, int] = {}
    id_column = plan.column_map.sources.get("id")
    for k, (raw, bad) in enumerate(iter_chunks(plan.src, plan.chunk_size, plan.encoding, plan.sep)):
        part = parts / f"part-{k:06d}.parquet"
        if part.exists():
            summary.n_resumed += len(raw)
            if id_column in raw.columns:  # duplicates are flagged across chunks, saved ones included
                for i, v in enumerate(raw[id_column]):
                    if _as_id(v):
                        seen.setdefault(_as_id(v), done + 1 + i)
        else:
            scored = score_chunk(clf, raw, plan.root, first_row=done + 1, bad=bad, keep=plan.keep, seen=seen,
                                  review_band=review_band, review_below=review_below, columns=plan.columns)
            with atomic_path(part) as tmp:
                pq.write_table(pa.Table.from_pandas(scored, schema=schema, preserve_index=False), tmp)
            summary.n_read_now += len(raw)
            summary.n_scored_now += int((scored["genres"] != "").sum())
        done += len(raw)
        summary.seconds = time.perf_counter() - start
        if on_progress:
            on_progress(done, total)
    if on_progress and total != done:  # the count was cheap, not exact (a row across lines...): end at what was read
        on_progress(done, done)
    return done


def _assemble(files: list[Path], out: Path, fmt: str, summary: BatchSummary, review_only: bool = False) -> None:
    """Concatenate the parts into ``out`` (one atomic rename), counting rows and problems on the way.
    ``review_only``: only the rows flagged for review, least confident (and unscored) first."""
    if review_only:
        return _assemble_review(files, out, fmt, summary)
    with atomic_path(out) as tmp:
        if fmt == "parquet":
            with pq.ParquetWriter(tmp, pq.read_schema(files[0])) as writer:
                for file in files:
                    table = pq.read_table(file)
                    _count(table.to_pandas(), summary)
                    writer.write_table(table)
            return
        with tmp.open("w", encoding="utf-8", newline="") as f:
            for n, file in enumerate(files):
                df = pq.read_table(file).to_pandas()
                _count(df, summary)
                if fmt == "csv":
                    df.to_csv(f, header=n == 0, index=False, float_format="%.5f", lineterminator="\n")
                elif len(df):
                    text = df.to_json(orient="records", lines=True, force_ascii=False, double_precision=5)
                    f.write(text if text.endswith("\n") else text + "\n")


def _count(df: pd.DataFrame, summary: BatchSummary) -> None:
    summary.n_rows += len(df)
    summary.n_flagged += int(df["review"].sum()) if "review" in df else 0
    notes = df["warnings"] if "warnings" in df else pd.Series(None, index=df.index, dtype=object)
    problem = df["error"].where(df["error"].notna(), notes)  # not scored: why; scored: its warnings
    bad = problem[problem.notna()]
    summary.n_problems += len(bad)
    summary.n_unscored += int((df["genres"] == "").sum())
    room = BatchSummary.MAX_LISTED - len(summary.problems)
    summary.problems += list(zip(df["id"][bad.index].head(room), bad.head(room)))


def _assemble_review(files: list[Path], out: Path, fmt: str, summary: BatchSummary) -> None:
    """The review queue: flagged rows of every part, sorted by confidence (unscored rows first)."""
    tables = []
    for file in files:
        df = pq.read_table(file).to_pandas()
        _count(df, summary)
        tables.append(df[df["review"]])
    queue = pd.concat(tables, ignore_index=True).sort_values("confidence", kind="stable", na_position="first")
    with atomic_path(out) as tmp:
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pandas(queue, schema=pq.read_schema(files[0]), preserve_index=False), tmp)
        elif fmt == "csv":
            queue.to_csv(tmp, index=False, float_format="%.5f", lineterminator="\n")
        else:
            text = (queue.to_json(orient="records", lines=True, force_ascii=False, double_precision=5)
                    if len(queue) else "")
            tmp.write_text(text if not text or text.endswith("\n") else text + "\n", encoding="utf-8")
