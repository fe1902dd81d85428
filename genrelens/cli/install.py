"""``genrelens install RUN_DIR``: make a trained run the default model (also ``train --install`` and
``benchmark --quick``), saying what it replaced."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import typer

from genrelens.cli.common import console, fail


def describe_model(path: Path) -> str | None:
    """``'<model> trained <date>, test weighted F1 <f1>'`` for the model folder ``path``; None when it holds none."""
    from genrelens import bundle

    if not bundle.is_model_folder(path):
        return None
    try:
        model = json.loads((path / bundle.CONFIG).read_text()).get("model", "?")
    except (OSError, ValueError, AttributeError):
        model = "?"
    marker = path / bundle.MANIFEST if (path / bundle.MANIFEST).exists() else path / bundle.CONFIG
    when = dt.datetime.fromtimestamp(marker.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    text = f"{model} trained {when}"
    try:
        f1 = json.loads((path / bundle.METRICS).read_text())["test"]["weighted_f1"]
        text += f", test weighted F1 {float(f1):.3f}"
    except (OSError, ValueError, KeyError, TypeError):
        pass  # no test metrics saved (or unreadable): the name and date say enough
    return text


def install_run(run_dir: Path, target: Path | None = None) -> Path:
    """Copy the model folder ``run_dir`` to ``target`` (default: the default model folder) and print what it
    replaced; exit 2 when ``run_dir`` is not a model folder."""
    from genrelens import bundle
    from genrelens.errors import GenrelensError
    from genrelens.paths import default_model_dir

    target = Path(target) if target is not None else default_model_dir()
    if not bundle.is_model_folder(run_dir):
        fail(f"{run_dir} is not a model folder (no {bundle.CONFIG} and weights): give a folder that "
             "`genrelens train --out` wrote")
    if target.resolve() == Path(run_dir).resolve():
        console.print(f"{run_dir} is already the model folder {target}: nothing to install", highlight=False)
        return target
    old = describe_model(target)
    new = describe_model(Path(run_dir))
    try:
        bundle.install(run_dir, target)
    except (GenrelensError, ValueError, OSError) as e:
        fail(f"cannot install {run_dir}: {e}", 1)
    console.print(f"installed {new} from {run_dir} as the default model (for predict, evaluate, serve): {target}",
                  highlight=False)
    console.print(f"  it replaced: {old}" if old else "  (there was no default model before)", highlight=False)
    return target


def install(
    run_dir: Path = typer.Argument(..., help="A model folder that `genrelens train --out` (or a benchmark) wrote."),
    model_dir: Path | None = typer.Option(None, "--model-dir", help="Where to install it (default: "
                                          "$GENRELENS_MODEL_DIR, else the user data folder's models/default)."),
) -> None:
    """Make a trained run the default model that predict, evaluate and serve use (a copy, without its training
    checkpoints); says which model it replaced."""
    install_run(run_dir, model_dir)
