"""Batch prediction at scale on Ray Data: ``genrelens predict --input <folder|glob> --output <folder> --engine ray``.

Pipeline: Ray's CSV/Parquet readers (every column read as text, one read task per file or file block) ->
a light stage that resolves each row's poster path against its own file's folder -> an actor pool of
``workers`` scorers (``map_batches`` with :class:`RayScorer`, which loads the model once per actor and
scores with :func:`genrelens.batch.score_chunk`, so rows match the single-process ``predict`` exactly) ->
Parquet partitions written into ``<output>``. Output columns: those of :func:`genrelens.batch.output_schema`.

Every input needs an ``id`` column: row numbers are not stable once rows are spread over a cluster.
On a cluster (``address``), the model directory and the input files must be readable at the same paths on
every node (a shared file system), and genrelens must be installed there.
"""

from __future__ import annotations

import csv
import glob
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from genrelens.batch import BatchSummary, _count, output_schema, score_chunk
from genrelens.bundle import read_meta
from genrelens.data.columns import standardize_columns
from genrelens.errors import DataError

INPUT_SUFFIXES = (".csv", ".parquet")
ROOT = "_root"  # the folder of the file a row came from (poster paths are relative to it)


def input_files(spec: str | Path) -> list[Path]:
    """The tables to score: a file, every CSV/Parquet file in a folder, or the files a glob matches."""
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.suffix.lower() in INPUT_SUFFIXES and f.is_file())
    elif p.is_file():
        files = [p]
    else:
        files = sorted(Path(f) for f in glob.glob(str(spec)) if Path(f).suffix.lower() in INPUT_SUFFIXES)
    if not files:
        raise DataError(f"no CSV or Parquet input found at {spec}")
    for f in files:
        if f.suffix.lower() not in INPUT_SUFFIXES:
            raise DataError(f"{f}: the ray engine reads .csv and .parquet files")
        if "id" not in columns_of(f):
            raise DataError(f"{f} has no 'id' column: the ray engine needs one (row numbers are not stable "
                            f"across partitions)")
    return [f.resolve() for f in files]


def columns_of(path: Path) -> list[str]:
    """A table's column names, read from its header or schema only."""
    try:
        if path.suffix.lower() == ".parquet":
            return list(pq.read_schema(path).names)
        with path.open(newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as e:
        raise DataError(f"cannot read {path}: {e}") from e


def resolve_rows(batch: pd.DataFrame) -> pd.DataFrame:
    """``id``, ``title``, ``plot``, ``poster`` as text plus the row's file folder; relative posters made absolute."""
    roots = batch["path"].map(lambda p: str(Path(p).parent))
    batch, _ = standardize_columns(batch)  # headers in any case and the usual aliases (overview -> plot, ...)
    out = pd.DataFrame({c: _text(batch[c]) if c in batch.columns else "" for c in ("id", "title", "plot", "poster")})
    out["poster"] = [str(Path(r) / p) if p and not Path(p).is_absolute() else p
                     for p, r in zip(out["poster"], roots)]
    out[ROOT] = roots.to_numpy()
    return out


def _text(col: pd.Series) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v) for v in col.tolist()]


class RayScorer:
    """A Ray Data actor: loads the model once, then scores batches of resolved rows into Arrow tables."""

    def __init__(self, model_dir: str, threads: int = 1, precision: str | None = None) -> None:
        import torch

        from genrelens.predict import GenreClassifier

        torch.set_num_threads(max(1, threads))
        self.clf = GenreClassifier.load(model_dir, precision=precision)
        self.schema = output_schema(self.clf.labels)

    def __call__(self, batch: pd.DataFrame) -> pa.Table:
        parts = [score_chunk(self.clf, rows.drop(columns=[ROOT]), Path(root), first_row=1)
                 for root, rows in batch.groupby(ROOT, sort=False)]
        scored = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=self.schema.names)
        return pa.Table.from_pandas(scored, schema=self.schema, preserve_index=False)


def read_dataset(files: list[Path]):
    """One Ray dataset over every input file, all columns as text, with each row's file path."""
    import pyarrow.csv as pacsv
    import ray.data

    csvs = [str(f) for f in files if f.suffix.lower() == ".csv"]
    pqs = [str(f) for f in files if f.suffix.lower() == ".parquet"]
    parts = []
    if csvs:
        names = {c for f in csvs for c in columns_of(Path(f))}
        parts.append(ray.data.read_csv(
            csvs, include_paths=True, num_cpus=0,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in names},
                                                 strings_can_be_null=False)))
    if pqs:
        parts.append(ray.data.read_parquet(pqs, include_paths=True, num_cpus=0))
    # Reading and path resolution are light I/O: 0 CPUs, or the scoring actors (holding every CPU) would
    # starve them and the pipeline would stall.
    parts = [d.map_batches(resolve_rows, batch_format="pandas", num_cpus=0) for d in parts]
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def predict_ray(model_dir: str | Path | None, inputs: str | Path, output: str | Path, *, workers: int = 1,
                address: str | None = None, batch_size: int = 256, cpus_per_worker: float = 1.0,
                num_cpus: int | None = None, progress: bool = True, precision: str | None = None) -> BatchSummary:
    """Score every row of ``inputs`` into Parquet partitions in the folder ``output`` (see module docstring);
    ``precision`` as ``GenreClassifier.load`` takes it (default ``$GENRELENS_PRECISION``, else auto).

    Starts a local Ray instance (``num_cpus`` CPUs, default all) unless ``address`` names a cluster or Ray is
    already initialised; shuts down only what it started. The output appears in one rename when complete.
    """
    import ray
    import ray.data

    from genrelens.paths import default_model_dir

    model_dir = Path(model_dir) if model_dir else default_model_dir()
    read_meta(model_dir)  # ModelError naming what is missing when the folder holds no model
    files = input_files(inputs)
    out = Path(output)
    if out.suffix.lower() in (".csv", ".jsonl", ".ndjson", ".parquet") and not out.is_dir():
        raise DataError(f"--output {out}: the ray engine writes a folder of Parquet partitions; give a folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"--output {out} exists and is not empty: choose a new folder")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    saved = ctx.execution_options.preserve_order, ctx.enable_progress_bars
    ctx.execution_options.preserve_order = True  # partitions follow the input order
    ctx.enable_progress_bars = progress
    t0 = time.perf_counter()
    try:
        ds = read_dataset(files).map_batches(
            RayScorer, fn_constructor_kwargs={"model_dir": str(model_dir.resolve()),
                                              "threads": int(cpus_per_worker), "precision": precision},
            batch_size=batch_size, batch_format="pandas", num_cpus=cpus_per_worker,
            compute=ray.data.ActorPoolStrategy(size=workers))
        ds.write_parquet(str(partial), ray_remote_args={"num_cpus": 0})  # I/O: leave the CPUs to the scorers
    finally:
        ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        if started:
            ray.shutdown()
    seconds = time.perf_counter() - t0
    if out.exists():
        out.rmdir()
    partial.rename(out)
    summary = BatchSummary(out, seconds=seconds)
    for f in output_files(out):
        names = pq.read_schema(f).names
        kept = [c for c in ("id", "genres", "review", "warnings", "error") if c in names]
        _count(pq.read_table(f, columns=kept).to_pandas(), summary)
    summary.n_read_now, summary.n_scored_now = summary.n_rows, summary.n_scored
    return summary


def output_files(folder: str | Path) -> list[Path]:
    """The Parquet partitions of a ray-engine output, in input order."""
    return sorted(Path(folder).glob("*.parquet"))


def read_output(folder: str | Path) -> pd.DataFrame:
    """All partitions of a ray-engine output as one table."""
    files = output_files(folder)
    return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True) if files else pd.DataFrame()
