"""Batch prediction over a movie table, in chunks, resumable, written atomically.

Each chunk of ``chunk_size`` rows is scored and saved as ``<output>.parts/part-NNNNNN.parquet`` (atomic);
``resume=True`` skips chunks already saved. When all chunks are done they are concatenated into the output
(CSV, JSONL or Parquet, by its suffix) by one rename, and the parts folder is removed.

Output columns: ``id`` (from the input; row numbers when it has none), the input's other columns (all but
``plot`` and ``poster`` unless chosen; as text), ``genres`` (``|``-joined), ``p_<Label>`` per label (calibrated
probabilities when the model is calibrated), ``confidence`` (probability that the predicted label set is
entirely right), ``review`` (the confidence is below the model's review cut-off, or some label's probability
lies within ``review_band`` of its threshold when that older rule is asked for, or the row could not be scored)
and ``error`` (why a row was scored with less than it had, or not at all: an unreadable row, with its row
number; a duplicate id, with the row that had it first). ``review_only=True`` writes only
the flagged rows, least confident first.
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

from genrelens.data.table import _as_id, clean_table, read_errors, read_raw
from genrelens.errors import DataError
from genrelens.io import atomic_path

if TYPE_CHECKING:  # the model (torch) is imported only when scoring starts: plan_batch() stays fast
    from genrelens.predict import GenreClassifier

OUTPUT_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet"}
POSTER_PREFIX = "poster ignored"
MANIFEST = "manifest.json"


@dataclass
class BatchSummary:
    """What a batch run did: row counts, problem rows (the first ``MAX_LISTED``), timing."""

    output: Path
    n_rows: int = 0
    n_scored_now: int = 0
    n_resumed: int = 0
    n_problems: int = 0
    n_unscored: int = 0
    n_flagged: int = 0  # rows flagged for review
    problems: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    MAX_LISTED = 20

    @property
    def rate(self) -> float:
        """Movies scored per second in this run."""
        return self.n_scored_now / self.seconds if self.seconds else 0.0


def output_format(path: Path) -> str:
    fmt = OUTPUT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"unknown output format {path.suffix!r}: use .csv, .jsonl or .parquet")
    return fmt


def count_rows(path: Path) -> int | None:
    """Rows in a table file without loading it (None when unknown cheaply)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.ParquetFile(path).metadata.num_rows
        if suffix in (".jsonl", ".ndjson"):
            with path.open("rb") as f:
                return sum(1 for line in f if line.strip())
        if suffix in (".csv", ".tsv", ".txt"):
            with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
                return max(0, sum(1 for _ in csv.reader(f, delimiter="\t" if suffix == ".tsv" else ",")) - 1)
    except (OSError, csv.Error, pa.ArrowException):
        return None
    return None


def iter_chunks(path: Path, chunk_size: int, encoding: str = "utf-8"
                ) -> Iterator[tuple[pd.DataFrame, dict[int, str]]]:
    """``(raw rows, {row: problem})`` in chunks of ``chunk_size`` rows (strings, uncleaned), streamed where the
    format allows; CSV and JSON lines are read row by row, so a bad row is reported, never fatal."""
    from genrelens.data.reader import CSV_SUFFIXES, JSONL_SUFFIXES, iter_table_chunks

    suffix = path.suffix.lower()
    if not path.is_file():
        yield from ((df, {}) for df in _slices(read_raw(path), chunk_size))  # DataError (missing) or a folder
        return
    with read_errors(path):
        if suffix in CSV_SUFFIXES + JSONL_SUFFIXES:
            yield from iter_table_chunks(path, chunk_size, encoding)
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


def output_schema(labels: list[str], kept: list[str] | None = None) -> pa.Schema:
    """``id``, the kept input columns (as text, named by :func:`output_name`), ``genres``, ``p_<Label>``,
    ``confidence``, ``review``, ``error``."""
    return pa.schema([("id", pa.string())] + [(output_name(c), pa.string()) for c in kept or []]
                     + [("genres", pa.string())] + [(f"p_{g}", pa.float32()) for g in labels]
                     + [("confidence", pa.float32()), ("review", pa.bool_()), ("error", pa.string())])


def output_name(column: str) -> str:
    """An input column's name in the output: ``input_<name>`` where it would clash with an output column."""
    clash = column in ("id", "genres", "confidence", "review", "error") or column.startswith("p_")
    return f"input_{column}" if clash else column


def _as_text(v) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
        return None
    return v if isinstance(v, str) else json.dumps(v.tolist() if hasattr(v, "tolist") else v, default=str) \
        if isinstance(v, list | dict | np.ndarray) else str(v)


def score_chunk(clf: GenreClassifier, raw: pd.DataFrame, root: Path, first_row: int,
                bad: dict[int, str] | None = None, keep: list[str] | None = None,
                seen: dict[str, int] | None = None, review_band: float | None = None,
                review_below: float | None = None) -> pd.DataFrame:
    """Score one raw chunk whose first row is row ``first_row`` of the file (1-based).

    bad: ``{row: problem}`` of rows that could not be read (not scored, reported with their row number);
    keep: input columns copied to the output; seen: ``{id: first row}`` across chunks, to flag duplicate ids;
    review_band, review_below: see ``GenreClassifier.review`` (``band``, ``min_confidence``).
    Rows without an ``id`` column are named by their row number.
    """
    from genrelens.predict import NO_INPUT, NOT_SCORED
    from genrelens.types import NO_INPUT as NO_INPUT_REASON
    from genrelens.types import Prediction

    raw = raw.reset_index(drop=True)
    bad = bad or {}
    rows = [first_row + i for i in range(len(raw))]
    passthrough = {output_name(c): [_as_text(v) for v in raw[c]] if c in raw.columns else [None] * len(raw)
                   for c in keep or []}
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
    rows_out, messages = [], []
    for i, (plot, poster, mid, row) in enumerate(zip(inputs.texts, inputs.posters, df["id"], rows)):
        err = (errors.get(i) or "").removesuffix(f"; {NO_INPUT}") or None
        scored, msg = row_status(plot, poster, err if err and err.startswith(POSTER_PREFIX) else None,
                                 clf.uses_text, clf.uses_poster)
        p = predictions[i]
        if row in bad:
            scored, msg = False, f"row {row}: not scored: {bad[row]}"
        if seen is not None and mid:
            if mid in seen:
                msg = "; ".join(x for x in (f"row {row}: duplicate id (first in row {seen[mid]})", msg) if x)
            else:
                seen[mid] = row
        if not scored and p.scored:  # an unreadable row: answered like a movie with no usable input
            p = Prediction([], None, None, True, [NO_INPUT_REASON], p.warnings, id=p.id, error=NOT_SCORED)
        rows_out.append(p.to_row(clf.labels))
        messages.append(msg)
    table = pd.DataFrame(rows_out, columns=["genres", *(f"p_{g}" for g in clf.labels), "confidence", "review"])
    out = pd.DataFrame({"id": df["id"].astype(str), **{k: pd.Series(v, dtype=object) for k, v in passthrough.items()},
                        "genres": table["genres"].astype(object)})
    for g in clf.labels:
        out[f"p_{g}"] = table[f"p_{g}"].to_numpy(dtype=np.float32)
    out["confidence"] = table["confidence"].to_numpy(dtype=np.float32)
    out["review"] = table["review"].to_numpy(dtype=bool)
    out["error"] = pd.Series(messages, dtype=object)
    return out


def _manifest(plan: BatchPlan, clf: GenreClassifier, review_band: float | None = None,
              review_below: float | None = None) -> dict:
    st = plan.src.stat() if plan.src.exists() else None
    return {"version": 2, "input": str(plan.src.resolve()), "input_size": st.st_size if st else None,
            "input_mtime_ns": st.st_mtime_ns if st else None, "chunk_size": plan.chunk_size,
            "encoding": plan.encoding, "posters": str(plan.root), "columns": plan.keep,
            "model_dir": str(Path(clf.model_dir).resolve()), "labels": clf.labels,
            "review_band": review_band, "review_below": review_below, "calibrated": clf.calibrated}


def parts_dir(output: Path) -> Path:
    return output.with_name(output.name + ".parts")


def _prepare_parts(parts: Path, manifest: dict, resume: bool) -> None:
    saved = parts / MANIFEST
    if resume and saved.exists():
        try:
            old = json.loads(saved.read_text())
        except (OSError, ValueError):
            old = None
        if old != manifest:
            raise DataError(f"--resume: {parts} was made from another input, model or chunk size; "
                            f"run without --resume to start over")
        return
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


def input_columns(path: Path, encoding: str = "utf-8") -> list[str]:
    """The input's column names, read cheaply (a CSV header, the first JSON line, the Parquet schema)."""
    from genrelens.data.reader import CSV_SUFFIXES, JSONL_SUFFIXES, iter_csv, iter_jsonl
    from genrelens.data.table import COLUMNS

    suffix = path.suffix.lower()
    if path.is_dir():
        return list(COLUMNS)
    with read_errors(path):
        if suffix in CSV_SUFFIXES:
            return next((header for header, _, _ in iter_csv(path, encoding)), [])
        if suffix in JSONL_SUFFIXES:
            return list(next((item for item, problem in iter_jsonl(path, encoding) if not problem), {}))
        if suffix == ".parquet":
            return list(pq.read_schema(path).names)
        return [str(c) for c in read_raw(path).columns]


def plan_batch(input_path: str | Path, output_path: str | Path, *, chunk_size: int = 256, encoding: str = "utf-8",
               posters: str | Path | None = None, columns: list[str] | str | None = None) -> BatchPlan:
    """Check a batch job's arguments (output format, input, encoding, poster folder, columns) without a model.

    columns: input columns to copy to the output; None = every column but ``id``, ``plot`` and ``poster``;
    "all" = every column; "none" or "" = only ``id``.
    Raises DataError (or ValueError for a bad ``chunk_size``)."""
    from genrelens.data.reader import check_encoding
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
    have = input_columns(src, encoding)
    if columns is None:
        keep = [c for c in have if c not in ("id", "plot", "poster")]
    elif isinstance(columns, str) and columns.strip().lower() in ("all", "none", ""):
        keep = [c for c in have if c != "id"] if columns.strip().lower() == "all" else []
    else:
        columns = [c.strip() for c in columns.split(",") if c.strip()] if isinstance(columns, str) else columns
        unknown = [c for c in columns if c not in have]
        if unknown:
            raise DataError(f"--columns: {', '.join(unknown)} not in {src} (its columns: {', '.join(have)})")
        keep = [c for c in dict.fromkeys(columns) if c != "id"]
    return BatchPlan(src, out, fmt, chunk_size, encoding, root, keep)


def predict_table(clf: GenreClassifier, input_path: str | Path | BatchPlan, output_path: str | Path | None = None,
                  *, chunk_size: int = 256, resume: bool = False,
                  on_progress: Callable[[int, int | None], None] | None = None, encoding: str = "utf-8",
                  posters: str | Path | None = None, columns: list[str] | str | None = None,
                  review_band: float | None = None, review_below: float | None = None,
                  review_only: bool = False) -> BatchSummary:
    """Score every row of ``input_path`` into ``output_path`` (see the module docstring).

    Poster paths are relative to ``posters`` (default: the input's folder), and may not leave it. A row that
    cannot be read (not text in ``encoding``, too many fields) is reported in the ``error`` column with its row
    number; the others are scored. ``columns``: see :func:`plan_batch` (or pass a plan as ``input_path``).
    ``on_progress(rows_done, total)`` is called after each chunk (total None when unknown). ``review_band``,
    ``review_below``: see ``GenreClassifier.review``; ``review_only``: write only the flagged rows. Raises
    DataError for an unusable input.
    """
    plan = input_path if isinstance(input_path, BatchPlan) else plan_batch(
        input_path, output_path, chunk_size=chunk_size, encoding=encoding, posters=posters, columns=columns)
    parts = parts_dir(plan.out)
    _prepare_parts(parts, _manifest(plan, clf, review_band, review_below), resume)
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
    total = count_rows(plan.src) if plan.src.is_file() else None
    start, done = time.perf_counter(), 0
    schema = output_schema(clf.labels, plan.keep)
    seen: dict[str, int] = {}
    for k, (raw, bad) in enumerate(iter_chunks(plan.src, plan.chunk_size, plan.encoding)):
        part = parts / f"part-{k:06d}.parquet"
        if part.exists():
            summary.n_resumed += len(raw)
            if "id" in raw.columns:  # duplicates are flagged across chunks, saved ones included
                for i, v in enumerate(raw["id"]):
                    seen.setdefault(_as_id(v), done + 1 + i)
        else:
            scored = score_chunk(clf, raw, plan.root, first_row=done + 1, bad=bad, keep=plan.keep, seen=seen,
                                  review_band=review_band, review_below=review_below)
            with atomic_path(part) as tmp:
                pq.write_table(pa.Table.from_pandas(scored, schema=schema, preserve_index=False), tmp)
            summary.n_scored_now += len(raw)
        done += len(raw)
        summary.seconds = time.perf_counter() - start
        if on_progress:
            on_progress(done, total)
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
    bad = df[df["error"].notna()]
    summary.n_problems += len(bad)
    summary.n_unscored += int((df["genres"] == "").sum())
    room = BatchSummary.MAX_LISTED - len(summary.problems)
    summary.problems += list(zip(bad["id"].head(room), bad["error"].head(room)))


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
