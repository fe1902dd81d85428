"""The ``genrelens`` command line: one module per command group, sharing ``genrelens.cli.common``.

data (validate, stats), train (+ precision-check), install, adapt, evaluate and calibrate, predict, serve,
benchmark. Heavy imports (torch, the model, FastAPI, uvicorn) happen inside the commands, so ``genrelens --help``
stays fast."""

from __future__ import annotations

import typer

from genrelens.cli.adapt import adapt
from genrelens.cli.benchmark import benchmark
from genrelens.cli.common import console, fail
from genrelens.cli.data import data_app
from genrelens.cli.evaluate import calibrate, evaluate
from genrelens.cli.helptext import use_plain_value_names
from genrelens.cli.install import install
from genrelens.cli.predict import predict
from genrelens.cli.serve import serve
from genrelens.cli.train import given_options, precision_check, run_precision_check, train
from genrelens.version import __version__

use_plain_value_names()
app = typer.Typer(help="Tell a movie's genres from its plot and poster.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)


def _version(show: bool) -> None:
    if show:
        typer.echo(f"genrelens {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Tell a movie's genres from its plot and poster."""


app.command()(train)
app.command()(install)
app.command("precision-check")(precision_check)
app.command()(evaluate)
app.command()(calibrate)
app.command()(predict)
app.command()(serve)
app.command()(benchmark)
app.command()(adapt)
app.add_typer(data_app, name="data")

__all__ = ["app", "console", "fail", "given_options", "main", "run_precision_check"]


def main() -> None:  # pragma: no cover - entry point
    app()
