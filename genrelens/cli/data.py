"""``genrelens data validate`` and ``genrelens data stats``: check and describe a movie table."""

from __future__ import annotations

from pathlib import Path

import typer

from genrelens.cli.common import (
    Oversample,
    column_map_option,
    console,
    data_option,
    encoding_option,
    posters_option,
    ranged,
    results,
    sep_option,
    table_options,
    user_errors,
)

data_app = typer.Typer(help="Check and describe a movie table.", no_args_is_help=True)


@data_app.command("validate")
def data_validate(
    data: Path | None = data_option(),
    check_posters: bool = typer.Option(True, "--check-posters/--no-posters", help="Open and decode every poster."),
    posters: Path | None = posters_option(),
    encoding: str = encoding_option(),
    limit: int = typer.Option(50, min=0, help="Problems to list (all are counted)."),
    sep: str | None = sep_option(),
    column_map: list[str] | None = column_map_option(),
) -> None:
    """Check every row; exit 0 when clean, 1 when problems were found, 2 when the file cannot be read."""
    from genrelens.data.table import resolve_data_path
    from genrelens.data.validate import exit_code, render_validation, validate_table

    sep, mapping = table_options(sep, column_map)
    result = validate_table(resolve_data_path(data), check_posters=check_posters, encoding=encoding, posters=posters,
                            sep=sep, columns=mapping)
    render_validation(result, console, limit=limit)
    raise typer.Exit(exit_code(result))


@data_app.command("stats")
@user_errors(code=2)
def data_stats(
    data: Path | None = data_option(),
    out: Path = typer.Option(Path("runs/stats"), help="Folder for stats.json and stats.md."),
    seed: int = ranged("seed", 0, help="Split seed (for the train/validation columns)."),
    oversample: Oversample = typer.Option("study", help="Oversampling shown in Table 1."),
    encoding: str = encoding_option(),
    sep: str | None = sep_option(),
    column_map: list[str] | None = column_map_option(),
) -> None:
    """Label frequencies (the study's Table 1), modalities, years, languages, plot lengths, co-occurrence."""
    from genrelens.data.labels import STUDY_LABELS
    from genrelens.data.stats import render_stats, stats_markdown, table_stats
    from genrelens.data.table import load_table
    from genrelens.io import write_json_atomic, write_text_atomic

    sep, mapping = table_options(sep, column_map)
    df, report = load_table(data, skip_bad=True, encoding=encoding, sep=sep, columns=mapping)
    console.print(report.columns_line(), highlight=False)
    for notice in report.notices:
        console.print(f"[yellow]note:[/] {notice}", highlight=False)
    if report.skipped:
        console.print(f"[yellow]skipped {report.skipped_text()}; run `genrelens data validate`[/]")
    stats = table_stats(df, labels=STUDY_LABELS, seed=seed, oversample_method=oversample.value)
    render_stats(stats, results)
    write_json_atomic(out / "stats.json", stats)
    write_text_atomic(out / "stats.md", stats_markdown(stats))
    console.print(f"wrote {out / 'stats.json'} and {out / 'stats.md'}")
