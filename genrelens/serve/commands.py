"""The ``genrelens predict`` and ``genrelens serve`` commands (registered in ``genrelens.cli``).

Heavy imports (torch, the model, FastAPI, uvicorn) happen inside the functions, so ``genrelens --help``
stays fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from genrelens.errors import GenrelensError

console = Console(stderr=True)
MODEL_HELP = "Model directory (default: $GENRELENS_MODEL_DIR, else the user data folder's models/default)."
PRECISION_HELP = ("Encoder precision: auto (the fastest this CPU has units for whose accuracy guard passes, "
                  "else fp32), fp32, bf16 or int8; default $GENRELENS_PRECISION or auto.")


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def _load(model_dir: Path | None, precision: str | None = None):
    from genrelens.predict import GenreClassifier

    try:
        clf = GenreClassifier.load(model_dir, precision=precision,
                                   report=lambda line: console.print(line, highlight=False))
    except (GenrelensError, ValueError) as e:
        _fail(str(e))
    choice = clf.precision_choice
    if choice is not None and choice.guards and not choice.note and choice.precision != "fp32":
        console.print(choice.summary(), highlight=False, style="dim")  # auto chose a reduced precision: say which
    return clf


def predict(
    plot: str | None = typer.Option(None, "--plot", help="Plot summary of one movie."),
    title: str | None = typer.Option(None, "--title", help="Title of one movie (read by models that read titles, "
                                     "the default among them)."),
    poster: Path | None = typer.Option(None, "--poster", help="Poster image file of one movie."),
    table: Path | None = typer.Option(None, "--input", "-i", help="Table to score (CSV/JSONL/Parquet): columns "
                                      "id, title, plot, poster (paths relative to the table's folder)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Predictions file (.csv, .jsonl or .parquet); "
                                       "default: <input>.predictions.csv."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help=MODEL_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one movie's prediction as JSON."),
    chunk_size: int = typer.Option(256, min=1, help="Rows scored (and saved) per chunk."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted batch: skip saved chunks."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    engine: str = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data: --input a file, "
                               "folder or glob of CSV/Parquet with an id column, --output a folder of Parquet)."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to use with --engine ray (default: "
                                       "a local Ray instance)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Scoring actors with --engine ray."),
    posters: Path | None = typer.Option(None, "--posters", help="Folder that relative poster paths of --input are "
                                        "resolved against (default: the table's folder); absolute paths must lie "
                                        "inside it."),
    encoding: str = typer.Option("utf-8", "--encoding", help="Text encoding of a CSV/JSONL --input, e.g. latin-1."),
    columns: str | None = typer.Option(None, "--columns", help="Input columns copied to the output, comma-separated "
                                       "('none': only id; 'all': every one); default: all but plot and poster."),
    precision: str | None = typer.Option(None, "--precision", help=PRECISION_HELP),
    review_below: float | None = typer.Option(None, "--review-below", min=0.0, max=1.0, help="Flag a movie for "
                                              "review when its confidence is below this (default: the cut-off "
                                              "chosen on the model's validation split, in calibration.json)."),
    review_band: float | None = typer.Option(None, "--review-band", min=0.0, max=1.0, help="The older review rule, "
                                             "instead: flag a movie when some label's probability lies within "
                                             "this distance of its threshold (the default rule of models "
                                             "calibrated before the confidence cut-off existed: 0.05)."),
    review_only: bool = typer.Option(False, "--review-only", help="With --input: write only the movies flagged "
                                     "for review, least confident first."),
    explain: bool = typer.Option(False, "--explain", help="One movie: also say why (modality shares, plot words, "
                                 "poster heatmap)."),
    explain_dir: Path | None = typer.Option(None, "--explain-dir", help="With --explain: write the poster heatmaps "
                                            "as PNG files into this folder (JSON then holds their paths)."),
) -> None:
    """Predict genres: of one movie (--plot and/or --poster, with --title) or of every row of a table (--input)."""
    if engine not in ("local", "ray"):
        _fail("--engine must be local or ray")
    if review_band is not None and review_below is not None:
        _fail("give --review-below (a confidence cut-off) or --review-band (the older rule), not both")
    if table is not None:
        if plot is not None or poster is not None or title is not None:
            _fail("give either --input (a table) or --plot/--poster/--title (one movie), not both")
        if explain or explain_dir is not None:
            _fail("--explain goes with --plot/--poster (one movie)")
        if engine == "ray":
            if posters is not None or columns is not None or encoding != "utf-8":
                _fail("--posters, --columns and --encoding work with --engine local only (Ray reads UTF-8 tables "
                      "and resolves posters beside each file)")
            if review_only:
                _fail("--review-only goes with --engine local")
            return _predict_ray(table, output, model_dir, address, workers, chunk_size, resume, progress)
        return _predict_table(table, output, model_dir, chunk_size, resume, progress, encoding, posters, columns,
                              precision, review_band, review_only, review_below)
    if review_only:
        _fail("--review-only goes with --input")
    if explain_dir is not None and not explain:
        _fail("--explain-dir goes with --explain")
    if engine == "ray":
        _fail("--engine ray goes with --input")
    if output is not None or resume or posters is not None or columns is not None or encoding != "utf-8":
        _fail("--output, --resume, --posters, --columns and --encoding go with --input")
    if not (plot and plot.strip()) and poster is None and not (title and title.strip()):
        _fail("give --plot TEXT, --poster FILE (or both; --title TEXT too), or --input TABLE")
    from genrelens.data.clean import clean_text

    # undecodable bytes in argv arrive as lone surrogates: the tokenizer refuses them
    plot, title = (clean_text(x) if x is not None else None for x in (plot, title))
    _predict_one(plot, poster, model_dir, as_json, precision, review_band, explain, explain_dir, review_below, title)


def _predict_one(plot: str | None, poster: Path | None, model_dir: Path | None, as_json: bool,
                 precision: str | None = None, review_band: float | None = None, explain: bool = False,
                 explain_dir: Path | None = None, review_below: float | None = None,
                 title: str | None = None) -> None:
    import numpy as np

    from genrelens.data.images import open_poster

    image, unread = None, []
    if poster is not None:
        try:
            image = open_poster(poster)
        except GenrelensError as e:
            if not (plot and plot.strip()) and not (title and title.strip()):
                _fail(str(e))
            unread = [f"poster ignored: {e}"]  # as in a batch: the movie is scored from its plot
    clf = _load(model_dir, precision)
    if title and title.strip() and not (plot and plot.strip()) and image is None and not clf.reads_titles:
        _fail(f"model {clf.name} does not read titles: give --plot and/or --poster")
    proba, errors = clf.score([plot or ""], [image], titles=[title])
    pred = clf.decide(proba)[0]
    order = np.argsort(-proba[0], kind="stable")
    genres = [clf.labels[j] for j in order if pred[j]]
    warnings = unread + ([errors[0]] if 0 in errors else [])
    if title and title.strip() and not clf.reads_titles:
        warnings.append(f"title ignored: model {clf.name} does not read titles")
    if clf.calibration_note:
        warnings.append(clf.calibration_note)
    confidence = float(clf.confidence(proba, pred[None])[0])
    review = bool(clf.review(proba, review_band, review_below, pred=pred[None])[0])
    by_band = review_band is not None or (review_below is None and clf.review_rule["rule"] == "band")
    why_review = "a genre is close to its threshold" if by_band else "confidence below the review cut-off"
    explanation = None
    if explain:
        try:
            explanation = clf.explain(plot, image, title=title, out_dir=explain_dir)
        except GenrelensError as e:
            _fail(str(e))
    if as_json:
        scores = {clf.labels[j]: round(float(proba[0, j]), 4) for j in range(len(clf.labels))}
        thresholds = {g: round(float(t), 4) for g, t in zip(clf.labels, clf.thresholds)}
        answer = {"genres": genres, "scores": scores, "thresholds": thresholds, "confidence": round(confidence, 4),
                  "review": review, "calibrated": clf.calibrated, "model": clf.name, "precision": clf.precision,
                  "warnings": warnings}
        if explanation is not None:
            answer["explanation"] = explanation
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")
        return
    t = Table(title=f"{clf.name}: {', '.join(genres)}")
    for c in ("genre", "probability", "threshold", ""):
        t.add_column(c, justify="left" if c == "genre" else "right")
    for j in order:
        mark = "[bold green]yes[/]" if pred[j] else ""
        t.add_row(clf.labels[j], f"{proba[0, j]:.3f}", f"{clf.thresholds[j]:.2f}", mark)
    Console().print(t)
    Console().print(f"confidence {confidence:.3f} (probability that the genre set is entirely right)"
                    + (f"  [bold yellow]review[/]: {why_review}" if review else ""),
                    highlight=False)
    if explanation is not None:
        from genrelens.explain import render_text

        Console().print(render_text(explanation), highlight=False)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def _predict_table(src: Path, out: Path | None, model_dir: Path | None, chunk_size: int, resume: bool,
                   progress: bool, encoding: str = "utf-8", posters: Path | None = None,
                   columns: str | None = None, precision: str | None = None, review_band: float | None = None,
                   review_only: bool = False, review_below: float | None = None) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from genrelens.batch import parts_dir, plan_batch, predict_table

    out = out or src.with_name(f"{src.stem}.predictions.csv")
    try:  # everything that can be checked without the model (4-5 s to load) is checked first
        plan = plan_batch(src, out, chunk_size=chunk_size, encoding=encoding, posters=posters, columns=columns)
    except (GenrelensError, ValueError) as e:
        _fail(str(e))
    clf = _load(model_dir, precision)
    bar_columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("movies"),
                   TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*bar_columns, console=console, disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring", total=None)
        try:
            summary = predict_table(clf, plan, chunk_size=chunk_size, resume=resume,
                                    on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                                    review_band=review_band, review_below=review_below, review_only=review_only)
        except (GenrelensError, ValueError) as e:
            bar.stop()
            _fail(str(e))
        except KeyboardInterrupt:
            bar.stop()
            _fail(f"interrupted: finished chunks are kept in {parts_dir(out)}; "
                  f"run the same command with --resume to continue", 130)
    if clf.calibration_note:
        console.print(f"[yellow]note:[/] {clf.calibration_note}", highlight=False)
    _report(summary, review_only)


def _predict_ray(src: Path, out: Path | None, model_dir: Path | None, address: str | None, workers: int,
                 chunk_size: int, resume: bool, progress: bool) -> None:
    """``--engine ray``: see ``genrelens.ray_predict``."""
    import importlib.util

    if out is None or resume:
        _fail("--engine ray needs --output FOLDER and has no --resume")
    if importlib.util.find_spec("ray") is None:
        _fail('--engine ray needs Ray: pip install "genrelens[ray]"')
    from genrelens.ray_predict import predict_ray

    try:
        summary = predict_ray(model_dir, str(src), out, workers=workers, address=address, batch_size=chunk_size,
                              progress=progress)
    except (GenrelensError, ValueError) as e:
        _fail(str(e))
    _report(summary)


def _report(summary, review_only: bool = False) -> None:
    resumed = f" ({summary.n_resumed} from earlier chunks)" if summary.n_resumed else ""
    written = (f"{summary.n_flagged} of {summary.n_rows} rows (those flagged for review)" if review_only
               else f"{summary.n_rows} rows")
    console.print(f"wrote {written} to {summary.output}{resumed}: scored {summary.n_scored_now} "
                  f"in {summary.seconds:.1f} s ({summary.rate:.1f} movies/s)", highlight=False)
    if not review_only and getattr(summary, "n_flagged", 0):
        console.print(f"{summary.n_flagged} row(s) flagged for review (column 'review'; --review-only writes "
                      f"just those)", highlight=False)
    if not summary.n_problems:
        return
    console.print(f"[yellow]{summary.n_problems} row(s) with problems[/] ({summary.n_unscored} not scored); "
                  f"see the 'error' column", highlight=False)
    t = Table("id", "problem", show_header=True)
    for mid, msg in summary.problems:
        t.add_row(mid, msg)
    console.print(t)
    if summary.n_problems > len(summary.problems):
        console.print(f"... and {summary.n_problems - len(summary.problems)} more")


def serve(
    model_dir: Path | None = typer.Option(None, "--model-dir", help=MODEL_HELP),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on (0: any free port)."),
    max_batch: int = typer.Option(32, min=1, help="Most movies scored together in one model call."),
    max_wait_ms: float = typer.Option(0.0, min=0, help="Extra wait for more requests to batch with (requests that "
                                       "arrive while the model is busy batch anyway)."),
    max_body_mb: float = typer.Option(16.0, min=0.001, help="Largest request body, in MB (413 beyond)."),
    max_poster_mb: float = typer.Option(8.0, min=0.001, help="Largest poster, in MB (413 beyond)."),
    max_plot_chars: int = typer.Option(20_000, min=1, help="Longest plot, in characters (413 beyond)."),
    max_movies: int = typer.Option(64, min=1, help="Most movies in one /v1/predict/batch call (413 beyond)."),
    rate_limit: float = typer.Option(0.0, min=0, help="API requests per second per client address (429 "
                                     "beyond); 0 = no limit (the default)."),
    rate_burst: int = typer.Option(20, min=1, help="Requests a client may send at once before --rate-limit "
                                   "applies."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
    precision: str | None = typer.Option(None, "--precision", help=PRECISION_HELP),
) -> None:
    """Serve the REST API (/v1/predict, /docs) and the web page (/) with uvicorn."""
    import uvicorn

    from genrelens.serve.app import create_app
    from genrelens.serve.inputs import MB

    clf = _load(model_dir, precision)
    app = create_app(classifier=clf, max_batch=max_batch, max_wait_ms=max_wait_ms,
                     max_body_bytes=int(max_body_mb * MB), max_poster_bytes=int(max_poster_mb * MB),
                     max_plot_chars=max_plot_chars, max_movies=max_movies,
                     rate_limit=rate_limit or None, rate_burst=rate_burst)
    console.print(f"serving model [bold]{clf.name}[/] ({clf.precision}) from {clf.model_dir} on http://{host}:{port}/ "
                  f"(API docs at /docs)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
