"""``genrelens train`` and ``genrelens precision-check``: train a model, check its reduced precisions."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import typer

from genrelens.cli.common import (
    MODEL_HELP,
    TRAIN_PRECISION_HELP,
    Oversample,
    Thresholds,
    WindowPooling,
    column_map_option,
    console,
    data_option,
    encoding_option,
    fail,
    model_dir_option,
    posters_option,
    precision_check_option,
    progress_option,
    ranged,
    sep_option,
    user_errors,
    value,
)
from genrelens.encoders.registry import POSTER_ENCODERS, TEXT_ENCODERS, encoders_help
from genrelens.errors import GenrelensError
from genrelens.models.registry import DEFAULT_MODEL, LOSSES, MODELS

# choices come from the registries (tables of names: importing them loads no torch)
MODEL_CHOICES = ", ".join(MODELS)
LOSS_CHOICES = ", ".join(LOSSES)
TEXT_ENCODER_CHOICES = encoders_help(TEXT_ENCODERS)
POSTER_ENCODER_CHOICES = encoders_help(POSTER_ENCODERS)


def train(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", help="Run config: a TOML file whose keys are RunConfig "
                                       "fields (see --print-config), or a run's config.json; options given on the "
                                       "command line override it."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the resolved config as TOML and exit."),
    model: str = typer.Option(DEFAULT_MODEL, help=f"{MODEL_CHOICES}."),
    data: Path | None = data_option(),
    out: Path | None = typer.Option(None, help="Model folder to write (default: a new run folder "
                                               "runs/<model>-<YYYYmmdd-HHMMSS> under the working folder). An "
                                               "existing model folder is refused unless --overwrite or --resume."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model already in --out."),
    install: bool = typer.Option(False, "--install", help="Afterwards make the run the default model that predict, "
                                 "evaluate and serve use (as `genrelens install OUT`)."),
    oversample: Oversample = typer.Option("none", help="none, study (the study's duplication) or mlros (ML-ROS)."),
    oversample_target: float | None = ranged("oversample_target", None, help="Train size after oversampling / "
                                             "before."),
    loss: str = typer.Option("double-soft-f1", help=f"{LOSS_CHOICES} (double-soft-f1: the study's)."),
    labels: str = typer.Option("study", help="'study' (its 10 genres), 'top<K>' (of train) or a comma list."),
    seed: int = ranged("seed", 0),
    epochs: int | None = ranged("epochs", None, help="Max epochs of the dense head."),
    ft_epochs: int | None = ranged("ft_epochs", None, help="Epochs of text fine-tuning (default: the model's, 2 "
                                                          "for catalogue, 4 for the others)."),
    ft_layers: int | None = ranged("ft_layers", None, help="Top transformer layers fine-tuned (the rest "
                                         "stay frozen; default: the model's, 1 for catalogue, 2 for the others); at "
                                         "most the encoder's layers (minilm 6, mpnet 12)."),
    max_length: int | None = ranged("max_length", None, help="Max plot tokens."),
    text_encoder: str | None = typer.Option(None, help=f"{TEXT_ENCODER_CHOICES} (default minilm)."),
    poster_encoder: str | None = typer.Option(None, help=f"{POSTER_ENCODER_CHOICES} (default effnet-lite0)."),
    thresholds: Thresholds = typer.Option("tuned", help="tuned (per label on validation) or fixed (0.5)."),
    split_file: Path | None = typer.Option(None, help="Reuse a split.json (from another run)."),
    poster_finetune: bool = typer.Option(False, "--poster-finetune",
                                         help="poster model: also fine-tune the CNN's last block."),
    text_from: Path | None = typer.Option(None, help="Reuse the fine-tuned text encoder of this run dir."),
    windows: int | None = ranged("windows", None, help="Read plots longer than --max-length as up to "
                                       "this many token windows, pooled (default: the model's; catalogue 6, "
                                       "others 1 = the first --max-length tokens)."),
    window_stride: int | None = ranged("window_stride", None, help="Tokens shared by consecutive windows (default "
                                       "32)."),
    window_pooling: WindowPooling | None = typer.Option(None, help="mean or max over a plot's window embeddings, "
                                                        "or first (the first window weighs half; default: the "
                                                        "model's, catalogue first, others mean)."),
    long_augment: float | None = ranged("long_augment", None, help="Share of training plots also seen "
                                              "with a same-genres plot appended (default: the model's)."),
    lexical: bool | None = typer.Option(None, "--lexical/--no-lexical", help="Late-fuse a TF-IDF + logistic "
                                        "regression channel (default: the model's; catalogue on)."),
    lexical_weight: float | None = typer.Option(None, min=0.0, max=1.0, help="Its fusion weight (default: chosen "
                                                "on validation)."),
    title: bool | None = typer.Option(None, "--title/--no-title", help="Text models read '<title>. <plot>' (the "
                                      "title alone for a movie without a plot; default: the model's; catalogue "
                                      "on)."),
    title_dropout: float | None = ranged("title_dropout", None, help="Share of training movies with a plot "
                                              "read without their title (default 0)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop bad rows (listed) instead of stopping."),
    posters: Path | None = posters_option(),
    encoding: str = encoding_option(),
    sep: str | None = sep_option(),
    column_map: list[str] | None = column_map_option(),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run from its last epoch."),
    progress: bool = progress_option(),
    nproc: int = typer.Option(1, "--nproc", min=1, help="Training processes on this node (>1: DistributedDataParallel "
                              "via torchrun; gloo on CPU, NCCL on GPU)."),
    nnodes: int = typer.Option(1, "--nnodes", min=1, help="Nodes taking part (run the same command on each)."),
    node_rank: int = typer.Option(0, "--node-rank", min=0, help="This node's rank (0 = the master) when --nnodes > 1."),
    master_addr: str = typer.Option("127.0.0.1", "--master-addr", help="Address of node 0 when --nnodes > 1."),
    master_port: int = typer.Option(29500, "--master-port", min=1, max=65535,
                                    help="Free port on node 0 when --nnodes > 1."),
    precision: str = typer.Option("auto", "--precision", help=TRAIN_PRECISION_HELP),
    precision_check: bool = precision_check_option(),
) -> None:
    """Train and evaluate one model into a new run folder (or --out); `genrelens install RUN` (or --install) then
    makes it the default model of `predict`, `evaluate` and `serve`."""
    from genrelens import bundle
    from genrelens.config import RunConfig, read_config_file

    options = dict(  # RunConfig field -> this command's value
        model=model, data=str(data) if data else None, out=str(out) if out else None, oversample=value(oversample),
        oversample_target=oversample_target, loss=loss,
        labels=labels if labels in ("study",) or labels.startswith("top") else labels.split(","),
        seed=seed, thresholds=value(thresholds), split_file=str(split_file) if split_file else None, skip_bad=skip_bad,
        poster_finetune=poster_finetune, epochs=epochs, ft_epochs=ft_epochs, ft_layers=ft_layers,
        max_length=max_length, text_encoder=text_encoder, poster_encoder=poster_encoder,
        windows=windows, window_stride=window_stride, window_pooling=value(window_pooling), long_augment=long_augment,
        lexical=lexical, lexical_weight=lexical_weight, title=title,
        title_dropout=title_dropout,
        posters=str(posters) if posters else None,
        encoding=encoding, precision=precision, sep=sep)

    @user_errors(code=2, prefix="invalid configuration: ")  # a value RunConfig refuses: a usage error
    def resolve() -> tuple[RunConfig, dict]:
        values = read_config_file(config) if config else {}
        values.update(given_options(ctx, options))  # the command line overrides the file
        if column_map or values.get("sep"):
            from genrelens.data.columns import parse_mapping
            from genrelens.data.reader import parse_sep

            values["sep"] = parse_sep(values.get("sep"))  # "semicolon", "tab": stored as the character
            if column_map:
                values["columns"] = parse_mapping(column_map)
        if text_from:
            values["extra"] = {**values.get("extra", {}), "text_from": str(text_from)}
        if "out" not in values:
            if resume:
                raise ValueError("--resume continues a run: give its folder as --out")
            values["out"] = str(new_run_dir(values.get("model", DEFAULT_MODEL)))
        return RunConfig(**values), values

    cfg, values = resolve()
    out = Path(cfg.out)
    if print_config:
        sys.stdout.write(cfg.to_toml())
        return
    if config and config.name == bundle.CONFIG and out.resolve() == config.resolve().parent and not resume:
        fail(f"--config {config} would re-run into the run it came from ({out}) and replace it: give --out", 2)
    if not resume and not overwrite and node_rank == 0 and bundle.is_model_folder(out):
        fail(f"{out} already holds a model: give another --out, --overwrite to replace it, or --resume to "
             "continue its run", 2)
    console.print(f"training {cfg.model} into {out}", highlight=False)
    run(cfg, values, out, resume, progress, nproc, nnodes, node_rank, master_addr, master_port, precision_check)
    if node_rank != 0:
        return
    if install:
        from genrelens.cli.install import install_run

        install_run(out)
    else:
        console.print(f"model saved in {out}; `genrelens install {out}` makes it the default model "
                      "(for predict, evaluate, serve)", highlight=False)


def new_run_dir(model: str, root: Path = Path("runs")) -> Path:
    """A run folder that does not exist yet: ``runs/<model>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``... on a clash)."""
    import datetime as dt

    base = root / f"{model}-{dt.datetime.now():%Y%m%d-%H%M%S}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


@user_errors(code=1)  # the run failed
def run(cfg, values: dict, out: Path, resume: bool, progress: bool, nproc: int, nnodes: int, node_rank: int,
        master_addr: str, master_port: int, precision_check: bool) -> None:
    """Start (or resume) the training run ``cfg``, here or with torchrun, then its precision check."""
    from genrelens import bundle
    from genrelens.config import RunConfig
    from genrelens.train.run import resolve_precision
    from genrelens.train.run import train as run_train

    if resume and (out / bundle.CONFIG).exists():
        saved = RunConfig.load(out / bundle.CONFIG)
        if "precision" not in values:  # not asked: go on in the run's own (auto may differ from what it chose)
            cfg = dataclasses.replace(cfg, precision=saved.precision)
        else:  # asked: compare what it resolves to on this CPU with what the run saved
            cfg = resolve_precision(cfg)
        if saved != cfg:
            fail(f"--resume: {out} holds a run with another config; resume it with the same options", 1)
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


def precision_check(
    model_dir: Path | None = model_dir_option(MODEL_HELP + " Its guard results are saved in it."),
    force: bool = typer.Option(False, "--force", help="Run the guard even when this machine's cache has a result."),
    as_json: bool = typer.Option(False, "--json", help="Print the choice and the guard results as JSON on stdout."),
) -> None:
    """Check this CPU's reduced precisions (bf16, then int8; fastest first, until one passes) against fp32 on the
    model's validation split (accuracy guard; minutes, once per model and CPU kind) and save the result in the
    model folder, so that `--precision auto` uses it without checking."""
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
