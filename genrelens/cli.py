"""The ``genrelens`` command line: data checks, training, evaluation, prediction, serving, benchmarks."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from genrelens.encoders.registry import POSTER_ENCODERS, TEXT_ENCODERS
from genrelens.errors import GenrelensError
from genrelens.models.registry import DEFAULT_MODEL, LOSSES, MODEL_NAMES, MODELS

app = typer.Typer(help="Tell a movie's genres from its plot and poster.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
data_app = typer.Typer(help="Check and describe a movie table.", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)
PRECISION_HELP = ("Encoder precision: auto (the fastest this CPU has units for whose accuracy guard passes, "
                  "else fp32), fp32, bf16 or int8; default $GENRELENS_PRECISION or auto.")
TRAIN_PRECISION_HELP = ("Training precision: auto (bf16 where the CPU has bf16 units, else fp32), fp32 or bf16 "
                        "(CPU autocast for fine-tuning and heads).")
CHECK_HELP = ("Afterwards run the accuracy guard of bf16/int8 against fp32 on the validation split when this CPU has "
              "units for them (minutes), and save its result in the model folder: `--precision auto` then uses it "
              "from the first predict on. Default $GENRELENS_PRECISION_CHECK, else on.")
CHECK_ENV = "GENRELENS_PRECISION_CHECK"
# choices come from the registries (tables of names: importing them loads no torch)
MODEL_CHOICES = ", ".join(MODELS)
LOSS_CHOICES = ", ".join(LOSSES)
TEXT_ENCODER_CHOICES = ", ".join(TEXT_ENCODERS)
POSTER_ENCODER_CHOICES = ", ".join(POSTER_ENCODERS)
DATA_HELP = "Movie table (CSV/JSONL/Parquet or MM-IMDb folder); default: $GENRELENS_DATA or ../shared/data."
POSTERS_HELP = ("Folder that relative poster paths are resolved against (default: the table's folder); absolute "
                "poster paths must lie inside it.")
ENCODING_HELP = "Text encoding of a CSV/JSONL table, e.g. latin-1 or cp1252 for a legacy file."


def fail(message: str, code: int = 1) -> None:
    console.print(f"[red]error:[/] {message}")
    raise typer.Exit(code)


@data_app.command("validate")
def data_validate(
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    check_posters: bool = typer.Option(True, "--check-posters/--no-posters", help="Open and decode every poster."),
    posters: Path | None = typer.Option(None, "--posters", help=POSTERS_HELP),
    encoding: str = typer.Option("utf-8", "--encoding", help=ENCODING_HELP),
    limit: int = typer.Option(50, min=0, help="Problems to list (all are counted)."),
) -> None:
    """Check every row; exit 0 when clean, 1 when problems were found, 2 when the file cannot be read."""
    from genrelens.data.table import resolve_data_path
    from genrelens.data.validate import exit_code, render_validation, validate_table

    result = validate_table(resolve_data_path(data), check_posters=check_posters, encoding=encoding, posters=posters)
    render_validation(result, console, limit=limit)
    raise typer.Exit(exit_code(result))


@data_app.command("stats")
def data_stats(
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    out: Path = typer.Option(Path("runs/stats"), help="Folder for stats.json and stats.md."),
    seed: int = typer.Option(0, min=0, help="Split seed (for the train/validation columns)."),
    oversample: str = typer.Option("study", help="Oversampling shown in Table 1: study or mlros."),
    encoding: str = typer.Option("utf-8", "--encoding", help=ENCODING_HELP),
) -> None:
    """Label frequencies (the study's Table 1), modalities, years, languages, plot lengths, co-occurrence."""
    from genrelens.data.labels import STUDY_LABELS
    from genrelens.data.stats import render_stats, stats_markdown, table_stats
    from genrelens.data.table import load_table
    from genrelens.io import write_json_atomic, write_text_atomic

    try:
        df, report = load_table(data, skip_bad=True, encoding=encoding)
    except GenrelensError as e:
        fail(str(e), 2)
    if report.skipped:
        console.print(f"[yellow]skipped {len(report.skipped)} bad row(s); run `genrelens data validate`[/]")
    stats = table_stats(df, labels=STUDY_LABELS, seed=seed, oversample_method=oversample)
    render_stats(stats, Console())
    write_json_atomic(out / "stats.json", stats)
    write_text_atomic(out / "stats.md", stats_markdown(stats))
    console.print(f"wrote {out / 'stats.json'} and {out / 'stats.md'}")


@app.command()
def train(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="Run config: a TOML file whose keys are RunConfig "
                                       "fields (see --print-config), or a run's config.json; options given on the "
                                       "command line override it."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config as TOML and exit."),
    model: str = typer.Option(DEFAULT_MODEL, help=f"{MODEL_CHOICES}."),
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    out: Path | None = typer.Option(None, help="Model folder to write (default: $GENRELENS_MODEL_DIR or the user data "
                                               "folder's models/default, where predict and serve look)."),
    oversample: str = typer.Option("none", help="none, study (the study's duplication) or mlros (ML-ROS)."),
    oversample_target: float | None = typer.Option(None, min=1.0, help="Train size after oversampling / before."),
    loss: str = typer.Option("double-soft-f1", help=f"{LOSS_CHOICES} (double-soft-f1: the study's)."),
    labels: str = typer.Option("study", help="'study' (its 10 genres), 'top<K>' (of train) or a comma list."),
    seed: int = typer.Option(0, min=0),
    epochs: int | None = typer.Option(None, min=1, help="Max epochs of the dense head."),
    ft_epochs: int | None = typer.Option(None, min=1, help="Epochs of text fine-tuning."),
    ft_layers: int | None = typer.Option(None, min=1, max=12, help="Top transformer layers fine-tuned (the rest "
                                         "stay frozen); at most the encoder's layers (minilm 6, mpnet 12)."),
    max_length: int | None = typer.Option(None, min=8, max=512, help="Max plot tokens."),
    text_encoder: str | None = typer.Option(None, help=f"{TEXT_ENCODER_CHOICES} (default minilm)."),
    poster_encoder: str | None = typer.Option(None, help=f"{POSTER_ENCODER_CHOICES} (default effnet-lite0)."),
    thresholds: str = typer.Option("tuned", help="tuned (per label on validation) or fixed (0.5)."),
    split_file: Path | None = typer.Option(None, help="Reuse a split.json (from another run)."),
    poster_finetune: bool = typer.Option(False, "--poster-finetune",
                                         help="poster model: also fine-tune the CNN's last block."),
    text_from: Path | None = typer.Option(None, help="Reuse the fine-tuned text encoder of this run dir."),
    windows: int | None = typer.Option(None, min=1, max=16, help="Read plots longer than --max-length as up to "
                                       "this many token windows, pooled (default: the model's; catalogue 6, "
                                       "others 1 = the first --max-length tokens)."),
    window_stride: int | None = typer.Option(None, min=0, help="Tokens shared by consecutive windows (default 32)."),
    window_pooling: str | None = typer.Option(None, help="mean or max over a plot's window embeddings, or first "
                                              "(the first window weighs half; default: the model's, catalogue "
                                              "first, others mean)."),
    long_augment: float | None = typer.Option(None, min=0.0, max=1.0, help="Share of training plots also seen "
                                              "with a same-genres plot appended (default: the model's)."),
    lexical: bool | None = typer.Option(None, "--lexical/--no-lexical", help="Late-fuse a TF-IDF + logistic "
                                        "regression channel (default: the model's; catalogue on)."),
    lexical_weight: float | None = typer.Option(None, min=0.0, max=1.0, help="Its fusion weight (default: chosen "
                                                "on validation)."),
    title: bool | None = typer.Option(None, "--title/--no-title", help="Text models read '<title>. <plot>' (the "
                                      "title alone for a movie without a plot; default: the model's; catalogue "
                                      "on)."),
    title_dropout: float | None = typer.Option(None, min=0.0, max=0.99, help="Share of training movies with a plot "
                                              "read without their title (default 0)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop bad rows (listed) instead of stopping."),
    posters: Path | None = typer.Option(None, "--posters", help=POSTERS_HELP),
    encoding: str = typer.Option("utf-8", "--encoding", help=ENCODING_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last epoch."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Training processes on this node (>1: DistributedDataParallel "
                              "via torchrun; gloo on CPU, NCCL on GPU)."),
    nnodes: int = typer.Option(1, "--nnodes", min=1, help="Nodes taking part (run the same command on each)."),
    node_rank: int = typer.Option(0, "--node-rank", min=0, help="This node's rank (0 = the master) when --nnodes > 1."),
    master_addr: str = typer.Option("127.0.0.1", "--master-addr", help="Address of node 0 when --nnodes > 1."),
    master_port: int = typer.Option(29500, "--master-port", min=1, max=65535,
                                    help="Free port on node 0 when --nnodes > 1."),
    precision: str = typer.Option("auto", "--precision", help=TRAIN_PRECISION_HELP),
    precision_check: bool = typer.Option(True, "--precision-check/--no-precision-check", envvar=CHECK_ENV,
                                         help=CHECK_HELP),
) -> None:
    """Train and evaluate one model; its directory then serves `predict`, `evaluate` and `serve`."""
    from genrelens import bundle
    from genrelens.config import RunConfig, read_config_file
    from genrelens.paths import default_model_dir
    from genrelens.train.run import train as run_train

    options = dict(  # RunConfig field -> this command's value
        model=model, data=str(data) if data else None, out=str(out) if out else None, oversample=oversample,
        oversample_target=oversample_target, loss=loss,
        labels=labels if labels in ("study",) or labels.startswith("top") else labels.split(","),
        seed=seed, thresholds=thresholds, split_file=str(split_file) if split_file else None, skip_bad=skip_bad,
        poster_finetune=poster_finetune, epochs=epochs, ft_epochs=ft_epochs, ft_layers=ft_layers,
        max_length=max_length, text_encoder=text_encoder, poster_encoder=poster_encoder,
        windows=windows, window_stride=window_stride, window_pooling=window_pooling, long_augment=long_augment,
        lexical=lexical, lexical_weight=lexical_weight, title=title,
        title_dropout=title_dropout,
        posters=str(posters) if posters else None,
        encoding=encoding, precision=precision)
    try:
        values = read_config_file(config) if config else {}
        values.update(given_options(ctx, options))  # the command line overrides the file
        if text_from:
            values["extra"] = {**values.get("extra", {}), "text_from": str(text_from)}
        values.setdefault("out", str(default_model_dir()))
        cfg = RunConfig(**values)
    except ValueError as e:  # a value RunConfig refuses: a usage error, like typer's own checks
        fail(f"invalid configuration: {e}", 2)
    out = Path(cfg.out)
    if print_config:
        sys.stdout.write(cfg.to_toml())
        return
    if config and config.name == bundle.CONFIG and out.resolve() == config.resolve().parent and not resume:
        fail(f"--config {config} would re-run into the run it came from ({out}) and replace it: give --out", 2)
    try:
        if resume and (out / bundle.CONFIG).exists():
            saved = RunConfig.load(out / bundle.CONFIG)
            if "precision" not in values:  # not asked: go on in the run's own (auto may differ from what it chose)
                cfg = dataclasses.replace(cfg, precision=saved.precision)
            if saved != cfg:
                fail(f"--resume: {out} holds a run with another config; resume it with the same options")
        elif not resume and node_rank == 0:  # other nodes' launchers leave rank 0's folder alone
            import shutil

            shutil.rmtree(out / bundle.CHECKPOINTS, ignore_errors=True)
        if nproc > 1 or nnodes > 1:
            from genrelens.train.launch import launch

            code = launch(cfg, nproc, nnodes, node_rank, master_addr, master_port, resume=resume, progress=progress)
            if code:
                fail(f"distributed training failed (torchrun exit code {code})", code)
            if node_rank == 0 and precision_check:
                run_precision_check(out)
            return
        run_train(cfg, resume=resume, progress=progress, console=console)
    except (GenrelensError, ValueError) as e:
        fail(str(e))
    if precision_check:
        run_precision_check(out)


def run_precision_check(model_dir: Path | None, force: bool = False, strict: bool = False):
    """The accuracy guard of this CPU's bf16/int8 candidates for the model in ``model_dir``, saved in the folder
    (``genrelens.guard.check_precisions``); returns the ``Choice`` (None when the CPU has no candidates). A model
    that cannot be checked is reported, and fails the command only when ``strict``."""
    from genrelens.encoders.precision import candidates
    from genrelens.guard import check_precisions
    from genrelens.predict import GenreClassifier

    if not candidates():
        console.print("precision check: this CPU has no bf16/int8 units that auto would use: auto is fp32",
                      highlight=False, style="dim")
        return None
    try:
        clf = GenreClassifier.load(model_dir, precision="fp32")
        if clf.text_encoder is None and clf.poster_encoder is None:
            console.print(f"precision check: the {clf.name} model has no encoders: nothing to check", style="dim")
            return None
        choice = check_precisions(clf, report=lambda line: console.print(line, highlight=False), force=force)
    except (GenrelensError, ValueError) as e:
        if strict:
            fail(str(e), 2)
        console.print(f"[yellow]precision check skipped:[/] {e}", highlight=False)
        return None
    console.print(choice.summary(), highlight=False)
    return choice


@app.command("precision-check")
def precision_check(
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Model directory (default: $GENRELENS_MODEL_DIR "
                                          "or the user data folder's models/default); its guard results are saved "
                                          "in it."),
    force: bool = typer.Option(False, "--force", help="Run the guard even when this machine's cache has a result."),
    as_json: bool = typer.Option(False, "--json", help="Print the choice and the guard results as JSON on stdout."),
) -> None:
    """Check bf16/int8 against fp32 on the model's validation split (accuracy guard; minutes, once per model and
    CPU kind) and save the result in the model folder, so that `--precision auto` uses it without checking."""
    choice = run_precision_check(model_dir, force=force, strict=True)
    if as_json:
        from genrelens.encoders.precision import describe_cpu

        out = choice.to_json() if choice else {"precision": "fp32", "cpu": describe_cpu(), "guards": []}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")


def given_options(ctx: typer.Context, values: dict) -> dict:
    """The entries of ``values`` whose option was given on the command line (or by an environment variable),
    not left at its default: they override a ``--config`` file."""
    def given(name: str) -> bool:  # by name: typer vendors its own click, with its own ParameterSource
        source = ctx.get_parameter_source(name)
        return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")

    return {k: v for k, v in values.items() if given(k)}


@app.command()
def evaluate(
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    model_dir: Path | None = typer.Option(None, help="Model directory (default: $GENRELENS_MODEL_DIR or the user "
                                                     "data folder's models/default)."),
    posters: Path | None = typer.Option(None, "--posters", help=POSTERS_HELP),
    encoding: str = typer.Option("utf-8", "--encoding", help=ENCODING_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as JSON on stdout."),
    split: str | None = typer.Option(None, help="Score only this split of the model's split.json "
                                                "(train, val or test) when --data is the training data."),
    precision: str | None = typer.Option(None, "--precision", help=PRECISION_HELP),
) -> None:
    """Score a labelled table with a trained model (genre names mapped to the model's labels)."""
    from genrelens.evaluate.run import evaluate_table

    try:
        metrics = evaluate_table(model_dir, data, split=split, encoding=encoding, posters=posters,
                                 precision=precision, report=lambda line: console.print(line, highlight=False))
    except (GenrelensError, ValueError) as e:
        fail(str(e), 2)
    if as_json:
        sys.stdout.write(json.dumps(metrics, indent=2) + "\n")
        return
    t = Table(title=f"{metrics['model']} on {metrics['n_rows']} movies")
    for c in ("label", "precision", "recall", "F1", "support", "share of weighted F1", "ECE", "Brier"):
        t.add_column(c, justify="right" if c != "label" else "left")
    for name, r in metrics["per_label"].items():
        t.add_row(name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"]),
                  f"{r['weighted_f1_share']:.3f}", f"{r['ece']:.3f}", f"{r['brier']:.3f}")
    Console().print(t)
    Console().print(f"weighted F1 {metrics['weighted_f1']:.3f}  micro {metrics['micro_f1']:.3f}  "
                    f"macro {metrics['macro_f1']:.3f}  samples {metrics['samples_f1']:.3f}  "
                    f"ECE {metrics['ece']:.3f}  Brier {metrics['brier']:.3f}  (precision {metrics['precision']})")
    if metrics.get("note"):
        console.print(f"[yellow]note:[/] {metrics['note']}", highlight=False)


@app.command()
def calibrate(
    model_dir: Path | None = typer.Option(None, help="Model directory (default: $GENRELENS_MODEL_DIR or the user "
                                                     "data folder's models/default); it is modified."),
    data: Path | None = typer.Option(None, "--data", help="The model's training data (default: its config's)."),
    review_band: float = typer.Option(0.05, "--review-band", min=0.0, max=1.0,
                                      help="Band of the older review rule, reported beside the confidence "
                                           "cut-off's figures."),
    as_json: bool = typer.Option(False, "--json", help="Print the before/after figures as JSON on stdout."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    precision_check: bool = typer.Option(True, "--precision-check/--no-precision-check", envvar=CHECK_ENV,
                                         help=CHECK_HELP + " (The new thresholds change the model: its old guard "
                                         "result no longer applies.)"),
) -> None:
    """Fit the per-label calibrator of a trained model on its validation split; writes calibration.json."""
    from genrelens.trust import calibrate_model_dir

    try:
        summary = calibrate_model_dir(model_dir, data, band=review_band, progress=progress)
    except (GenrelensError, ValueError) as e:
        fail(str(e), 2)
    if precision_check:
        run_precision_check(model_dir)
    if as_json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    c = summary["calibration"]
    t = Table(title="test split: before and after calibration")
    for col in ("", "ECE", "Brier", "weighted F1", "scores < 0.01 or > 0.99"):
        t.add_column(col, justify="right" if col else "left")
    for k in ("before", "after"):
        t.add_row(k, f"{c[k]['ece']:.4f}", f"{c[k]['brier']:.4f}", f"{c[k]['weighted_f1']:.4f}",
                  f"{c[k]['share_extreme']:.1%}")
    Console().print(t)
    Console().print("methods: " + ", ".join(f"{g} {m}" for g, m in c["methods"].items()))
    r = summary["review"]
    Console().print(f"review queue (confidence < {r['min_confidence']:.4f}, chosen on validation): "
                    f"{r['share_flagged']:.1%} of test movies flagged, catching {r['share_of_wrong_caught']:.1%} of "
                    f"the {r['wrong_sets']} wrong label sets (random flagging: {r['random_flagging_catches']:.1%}, "
                    f"best possible: {r['best_possible_catch']:.1%})", highlight=False)


from genrelens.serve.commands import predict, serve  # noqa: E402

app.command()(predict)
app.command()(serve)


@app.command()
def benchmark(
    data: Path | None = typer.Option(None, "--data", help=DATA_HELP),
    seeds: int = typer.Option(3, min=1, help="Seeds (0..N-1), one split each, shared by every model."),
    models: str = typer.Option(",".join(MODEL_NAMES), help="Comma list of models (default: the study's grid, "
                               "then the extra rows tfidf and catalogue)."),
    oversample: str = typer.Option("none,study", help="Comma list: none, study, mlros."),
    out: Path | None = typer.Option(None, help="Output folder (default runs/benchmark, quick: "
                                               "runs/benchmark-quick)."),
    quick: bool = typer.Option(False, "--quick", help=f"naive + {DEFAULT_MODEL}, 1 seed, no oversampling; installs "
                                                      f"the {DEFAULT_MODEL} model as the default model."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    precision: str = typer.Option("auto", "--precision", help=TRAIN_PRECISION_HELP),
) -> None:
    """Train and evaluate the study's grid on shared splits; write results.json, report.md and report.html."""
    from genrelens.experiments.benchmark import QUICK_MODELS, install_model, run_benchmark, summary_table
    from genrelens.experiments.report import build_report
    from genrelens.paths import default_model_dir

    if quick:
        model_list, ov_list, seeds = list(QUICK_MODELS), ["none"], 1
        out = out or Path("runs/benchmark-quick")
    else:
        model_list = [m.strip() for m in models.split(",") if m.strip()]
        ov_list = [o.strip() for o in oversample.split(",") if o.strip()]
        out = out or Path("runs/benchmark")
    try:
        overrides = {"precision": precision} if precision != "auto" else None
        results = run_benchmark(data, model_list, ov_list, seeds, out, progress=progress, console=console,
                                overrides=overrides)
        console.print(summary_table(results))
        md, html_path = build_report(out)
    except (GenrelensError, ValueError) as e:
        fail(str(e))
    if quick:
        target = install_model(out / "runs" / f"{DEFAULT_MODEL}-none-s0", default_model_dir())
        console.print(f"default model (for predict, evaluate, serve): {target}")
        run_precision_check(target)  # once, here: `predict --precision auto` then knows what this CPU may use
    console.print(f"report: {html_path} (and {md})")


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
