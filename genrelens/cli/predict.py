"""``genrelens predict``: the genres of one movie (--plot, --poster, --title) or of every row of a table (--input).

It parses its input into ``Movie``s and renders the ``Prediction``s of ``GenreClassifier.predict_movies``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from genrelens.cli.common import (
    Engine,
    column_map_option,
    console,
    encoding_option,
    fail,
    load_classifier,
    model_dir_option,
    precision_option,
    progress_option,
    results,
    sep_option,
    table_options,
)
from genrelens.errors import GenrelensError


def predict(
    plot: str | None = typer.Option(None, "--plot", help="Plot summary of one movie."),
    title: str | None = typer.Option(None, "--title", help="Title of one movie (read by models that read titles, "
                                     "the default among them)."),
    poster: str | None = typer.Option(None, "--poster", help="Poster image file of one movie (a web address is not "
                                      "fetched: download the image first)."),
    table: Path | None = typer.Option(None, "--input", "-i", help="Table to score (CSV/JSONL/Parquet/.xlsx): "
                                      "columns id, title, plot, poster (paths relative to the table's folder), "
                                      "or their other names (see --column-map)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Predictions file (.csv, .jsonl or .parquet); "
                                       "default: <input>.predictions.csv."),
    model_dir: Path | None = model_dir_option(),
    as_json: bool = typer.Option(False, "--json", help="Print one movie's prediction as JSON."),
    chunk_size: int = typer.Option(256, min=1, help="Rows scored (and saved) per chunk."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted batch: skip saved chunks."),
    restart: bool = typer.Option(False, "--restart", help="Discard the chunks an interrupted batch saved and start "
                                 "over."),
    progress: bool = progress_option(),
    engine: Engine = typer.Option("local", "--engine", help="local (this process) or ray (Ray Data: --input a file, "
                               "folder or glob of CSV/Parquet with an id column, --output a folder of Parquet)."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster to use with --engine ray (default: "
                                       "a local Ray instance)."),
    workers: int = typer.Option(1, "--workers", min=1, help="Scoring actors with --engine ray."),
    posters: Path | None = typer.Option(None, "--posters", help="Folder that relative poster paths of --input are "
                                        "resolved against (default: the table's folder); absolute paths must lie "
                                        "inside it."),
    encoding: str = encoding_option("Text encoding of a CSV/JSONL --input, e.g. latin-1."),
    columns: str | None = typer.Option(None, "--columns", help="Input columns copied to the output, comma-separated "
                                       "('none': only id; 'all': every one); default: all but plot and poster."),
    sep: str | None = sep_option("Separator of a CSV --input: one character or a name (comma, semicolon, tab, "
                                 "pipe); default: detected from its header line."),
    column_map: list[str] | None = column_map_option(),
    precision: str | None = precision_option(),
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
    if review_band is not None and review_below is not None:
        fail("give --review-below (a confidence cut-off) or --review-band (the older rule), not both")
    if resume and restart:
        fail("give --resume (continue with the saved chunks) or --restart (discard them), not both")
    if table is not None:
        if plot is not None or poster is not None or title is not None:
            fail("give either --input (a table) or --plot/--poster/--title (one movie), not both")
        if explain or explain_dir is not None:
            fail("--explain goes with --plot/--poster (one movie)")
        if as_json:
            fail("--json prints one movie's prediction (--plot/--poster/--title); a table's predictions go to "
                 "--output, whose .jsonl suffix writes JSON lines")
        if engine is Engine.ray:
            if posters is not None or columns is not None or encoding != "utf-8" or sep or column_map or restart:
                fail("--posters, --columns, --encoding, --sep, --column-map and --restart work with --engine local "
                     "only (Ray reads UTF-8 tables with the columns id, title, plot, poster and resolves posters "
                     "beside each file)")
            if review_only:
                fail("--review-only goes with --engine local")
            return _predict_ray(table, output, model_dir, address, workers, chunk_size, resume, progress, precision)
        return _predict_table(table, output, model_dir, chunk_size, resume, progress, encoding, posters, columns,
                              precision, review_band, review_only, review_below, sep, column_map, restart)
    if review_only:
        fail("--review-only goes with --input")
    if explain_dir is not None and not explain:
        fail("--explain-dir goes with --explain")
    if engine is Engine.ray:
        fail("--engine ray goes with --input")
    if (output is not None or resume or restart or posters is not None or columns is not None or encoding != "utf-8"
            or sep is not None or column_map):
        fail("--output, --resume, --restart, --posters, --columns, --encoding, --sep and --column-map go with --input")
    if not (plot and plot.strip()) and poster is None and not (title and title.strip()):
        given = [f"{name} is empty" for name, value in (("--plot", plot), ("--title", title)) if value is not None]
        fail(("; ".join(given) + ": " if given else "")
             + "give --plot TEXT, --poster FILE (or both; --title TEXT too), or --input TABLE")
    # undecodable bytes in argv arrive as lone surrogates: the pipeline's model text replaces them
    _predict_one(plot, poster, model_dir, as_json, precision, review_band, explain, explain_dir, review_below, title)


CLI_URL_ADVICE = "download the image and give its file path to --poster"


def _predict_one(plot: str | None, poster: str | None, model_dir: Path | None, as_json: bool,
                 precision: str | None = None, review_band: float | None = None, explain: bool = False,
                 explain_dir: Path | None = None, review_below: float | None = None,
                 title: str | None = None) -> None:
    from genrelens.data.images import is_url, open_poster, url_message
    from genrelens.errors import PosterError
    from genrelens.predict import REVIEW_REASON_TEXT
    from genrelens.types import LOW_CONFIDENCE, Movie

    image, unread = None, None
    if poster is not None:  # kept a string: a URL read as a Path would lose a slash ("https:/...")
        try:
            if is_url(poster):
                raise PosterError(url_message(poster.strip(), CLI_URL_ADVICE))
            image = open_poster(poster)
        except GenrelensError as e:
            # as in a table: the pipeline ignores the poster with a warning and scores the movie from what else it
            # has; with nothing else it is not scored (REST answers such a movie the same way)
            unread = e
    clf = load_classifier(model_dir, precision)
    if title and title.strip() and not (plot and plot.strip()) and image is None and not clf.reads_titles:
        fail(f"model {clf.name} does not read titles: give --plot and/or --poster"
             + (f" (the poster given is ignored: {unread})" if unread is not None else ""))
    movie = Movie(title=title, plot=plot, poster=unread if unread is not None else image)
    [p] = clf.predict_movies([movie], review_band=review_band, review_below=review_below)
    if not p.scored:
        fail("; ".join(p.warnings + [p.error]))
    genres, warnings, review = p.genres, p.warnings + ([clf.calibration_note] if clf.calibration_note else []), p.review
    by_band = review_band is not None or (review_below is None and clf.review_rule["rule"] == "band")
    why = {LOW_CONFIDENCE: f"{REVIEW_REASON_TEXT[LOW_CONFIDENCE]} ("
           + ("a genre is close to its threshold)" if by_band else "confidence below the review cut-off)")}
    why_review = "; ".join(why.get(code, REVIEW_REASON_TEXT.get(code, code)) for code in p.review_reasons)
    explanation = None
    if explain:
        try:
            explanation = clf.explain(plot, image, title=title, out_dir=explain_dir)
        except GenrelensError as e:
            fail(str(e))
    if as_json:
        answer = p.to_dict()
        answer = {"genres": genres, "scores": answer["scores"],
                  "thresholds": {g: round(float(t), 4) for g, t in zip(clf.labels, clf.thresholds)},
                  "confidence": answer["confidence"], "review": review, "review_reasons": p.review_reasons,
                  "calibrated": clf.calibrated, "model": clf.name, "precision": clf.precision,
                  "precision_note": clf.precision_note, "warnings": warnings}
        if explanation is not None:
            answer["explanation"] = explanation
        sys.stdout.write(json.dumps(answer, indent=2) + "\n")
        return
    t = Table(title=f"{clf.name}: {', '.join(genres)}")
    for c in ("genre", "probability", "threshold", ""):
        t.add_column(c, justify="left" if c == "genre" else "right")
    threshold = dict(zip(clf.labels, clf.thresholds))
    for g, score in sorted(p.scores.items(), key=lambda kv: -kv[1]):  # stable: ties keep the label order
        t.add_row(g, f"{score:.3f}", f"{threshold[g]:.2f}", "[bold green]yes[/]" if g in genres else "")
    results.print(t)
    results.print(f"confidence {p.confidence:.3f} (probability that the genre set is entirely right)"
                    + (f"  [bold yellow]review[/]: {why_review}" if review else ""),
                    highlight=False)
    if explanation is not None:
        from genrelens.explain import render_text

        results.print(render_text(explanation), highlight=False)
    for w in warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def _predict_table(src: Path, out: Path | None, model_dir: Path | None, chunk_size: int, resume: bool,
                   progress: bool, encoding: str = "utf-8", posters: Path | None = None,
                   columns: str | None = None, precision: str | None = None, review_band: float | None = None,
                   review_only: bool = False, review_below: float | None = None, sep: str | None = None,
                   column_map: list[str] | None = None, restart: bool = False) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from genrelens.batch import parts_dir, plan_batch, predict_table, saved_parts
    from genrelens.progress import progress_bar

    out = out or src.with_name(f"{src.stem}.predictions.csv")
    sep, mapping = table_options(sep, column_map)
    try:  # everything that can be checked without the model (4-5 s to load) is checked first
        plan = plan_batch(src, out, chunk_size=chunk_size, encoding=encoding, posters=posters, columns=columns,
                          sep=sep, column_map=mapping)
    except (GenrelensError, ValueError) as e:
        fail(str(e))
    if not resume and not restart and (done := saved_parts(parts_dir(out))):  # before the model is loaded
        fail(f"{parts_dir(out)} holds {len(done)} chunk(s) saved by an earlier, interrupted run: run the same "
             f"command with --resume to continue it, or with --restart to discard them and start over")
    console.print(plan.columns_line(), highlight=False)  # never score a table from less than it has, silently
    for notice in plan.column_map.notices:
        console.print(f"[yellow]note:[/] {notice}", highlight=False)
    clf = load_classifier(model_dir, precision)
    bar_columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("movies"),
                   TimeElapsedColumn(), TimeRemainingColumn())
    with progress_bar(*bar_columns, enabled=progress, console=console) as bar:
        task = bar.add_task("scoring", total=None)
        try:
            summary = predict_table(clf, plan, chunk_size=chunk_size, resume=resume, restart=restart,
                                    on_progress=lambda done, total: bar.update(task, completed=done, total=total),
                                    review_band=review_band, review_below=review_below, review_only=review_only)
        except (GenrelensError, ValueError) as e:
            bar.stop()
            fail(str(e))
        except KeyboardInterrupt:
            bar.stop()
            fail(f"interrupted: finished chunks are kept in {parts_dir(out)}; run the same command with --resume to "
                 f"continue (or --restart to start over)", 130)
    if clf.calibration_note:
        console.print(f"[yellow]note:[/] {clf.calibration_note}", highlight=False)
    _report(summary, review_only)


def _predict_ray(src: Path, out: Path | None, model_dir: Path | None, address: str | None, workers: int,
                 chunk_size: int, resume: bool, progress: bool, precision: str | None = None) -> None:
    """``--engine ray``: see ``genrelens.ray_predict``."""
    import importlib.util

    if out is None or resume:
        fail("--engine ray needs --output FOLDER and has no --resume")
    if importlib.util.find_spec("ray") is None:
        fail('--engine ray needs Ray: pip install "genrelens[ray]"')
    from genrelens.ray_predict import predict_ray

    try:
        summary = predict_ray(model_dir, str(src), out, workers=workers, address=address, batch_size=chunk_size,
                              progress=progress, precision=precision)
    except (GenrelensError, ValueError) as e:
        fail(str(e))
    _report(summary)


def _report(summary, review_only: bool = False) -> None:
    """The batch's closing lines: rows written, scored and not, this run's pace, the problem rows."""
    counted = f"{summary.n_scored} scored, {summary.n_unscored} not scored"
    if review_only:
        written, counted = (f"{summary.n_flagged} of {summary.n_rows} rows (those flagged for review)",
                            f"of the {summary.n_rows} rows read, {counted}")
    else:
        written = f"{summary.n_rows} rows"
    resumed = f"{summary.n_resumed} from earlier chunks; " if summary.n_resumed else ""
    now = " in this run" if summary.n_resumed else ""
    console.print(f"wrote {written} to {summary.output}: {counted} ({resumed}{summary.n_read_now} read{now} in "
                  f"{summary.seconds:.1f} s, {summary.rate:.1f} rows/s)", highlight=False)
    if not review_only and getattr(summary, "n_flagged", 0):
        console.print(f"{summary.n_flagged} row(s) flagged for review (column 'review'; --review-only writes "
                      f"just those)", highlight=False)
    if not summary.n_problems:
        return
    console.print(f"[yellow]{summary.n_problems} row(s) with problems[/] ({summary.n_unscored} not scored); "
                  f"see the 'error' (not scored) and 'warnings' (scored) columns", highlight=False)
    t = Table("id", "problem", show_header=True)
    for mid, msg in summary.problems:
        t.add_row(str(mid) if mid not in (None, "") else "(no id)", msg)
    console.print(t)
    if summary.n_problems > len(summary.problems):
        console.print(f"... and {summary.n_problems - len(summary.problems)} more")
    if any("outside the data folder" in msg for _, msg in summary.problems):
        console.print("posters are read only inside the table's folder: --posters DIR names the folder that holds "
                      "them (their paths, absolute or relative, must lie inside it)", highlight=False)
