"""``genrelens benchmark``: the study's grid of models on shared splits, and its report."""

from __future__ import annotations

from pathlib import Path

import typer

from genrelens.cli.common import (
    TRAIN_PRECISION_HELP,
    column_map_option,
    console,
    data_option,
    progress_option,
    sep_option,
    table_options,
    user_errors,
)
from genrelens.cli.install import install_run
from genrelens.cli.train import run_precision_check
from genrelens.models.registry import DEFAULT_MODEL, MODEL_NAMES


@user_errors(code=1)
def benchmark(
    data: Path | None = data_option(),
    seeds: int = typer.Option(3, min=1, help="Seeds (0..N-1), one split each, shared by every model."),
    models: str = typer.Option(",".join(MODEL_NAMES), help="Comma list of models (default: the study's grid, "
                               "then the extra rows tfidf and catalogue)."),
    oversample: str = typer.Option("none,study", help="Comma list: none, study, mlros."),
    out: Path | None = typer.Option(None, help="Output folder (default runs/benchmark, quick: "
                                               "runs/benchmark-quick)."),
    quick: bool = typer.Option(False, "--quick", help=f"naive + {DEFAULT_MODEL}, 1 seed, no oversampling; installs "
                                                      f"the {DEFAULT_MODEL} model as the default model."),
    progress: bool = progress_option(),
    precision: str = typer.Option("auto", "--precision", help=TRAIN_PRECISION_HELP),
    sep: str | None = sep_option(),
    column_map: list[str] | None = column_map_option(),
) -> None:
    """Train and evaluate the study's grid on shared splits; write results.json, report.md and report.html."""
    from genrelens.experiments.benchmark import QUICK_MODELS, run_benchmark, summary_table
    from genrelens.experiments.report import build_report
    from genrelens.paths import default_model_dir

    if quick:
        model_list, ov_list, seeds = list(QUICK_MODELS), ["none"], 1
        out = out or Path("runs/benchmark-quick")
    else:
        model_list = [m.strip() for m in models.split(",") if m.strip()]
        ov_list = [o.strip() for o in oversample.split(",") if o.strip()]
        out = out or Path("runs/benchmark")
    sep, mapping = table_options(sep, column_map)
    overrides = {"precision": precision} if precision != "auto" else {}
    overrides.update({k: v for k, v in (("sep", sep), ("columns", mapping)) if v})  # each run reads the table so too
    results = run_benchmark(data, model_list, ov_list, seeds, out, progress=progress, console=console,
                            overrides=overrides)
    console.print(summary_table(results))
    md, html_path = build_report(out)
    if quick:
        # --quick (`make run`) installs its catalogue run as the default model on purpose (says what it replaced)
        target = install_run(out / "runs" / f"{DEFAULT_MODEL}-none-s0", default_model_dir())
        run_precision_check(target)  # once, here: `predict --precision auto` then knows what this CPU may use
    console.print(f"report: {html_path} (and {md})")
