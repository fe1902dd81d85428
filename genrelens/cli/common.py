"""What every command shares: one console, one ``fail``, the ``user_errors`` decorator, option factories, help
texts and choices. Heavy imports (torch, the model, FastAPI) happen inside the commands: ``--help`` stays fast."""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from genrelens.config import OVERSAMPLING, RANGES, THRESHOLDS, WINDOW_POOLING
from genrelens.errors import GenrelensError

# Messages, warnings, progress (results go to stdout). soft_wrap: rich does not break lines at the terminal's
# width, so a path in a message stays whole when it is copied or the output goes to a log (the terminal wraps).
console = Console(stderr=True, soft_wrap=True)
results = Console(soft_wrap=True)  # stdout: tables and result lines; a long line stays one line on a pipe
F = TypeVar("F", bound=Callable[..., Any])

PRECISIONS = ("auto", "fp32", "bf16", "int8")  # genrelens.encoders.precision.CHOICES (not imported: it loads numpy)
PRECISION_HELP = ("Encoder precision: auto (the fastest this CPU has units for whose accuracy guard passes, "
                  "else fp32), fp32, bf16 or int8; default $GENRELENS_PRECISION or auto.")
TRAIN_PRECISION_HELP = ("Training precision: auto (bf16 where the CPU has bf16 units, else fp32), fp32 or bf16 "
                        "(CPU autocast for fine-tuning and heads).")
MODEL_HELP = "Model directory (default: $GENRELENS_MODEL_DIR, else the user data folder's models/default)."
DATA_HELP = "Movie table (CSV/JSONL/Parquet or MM-IMDb folder); default: $GENRELENS_DATA or ../shared/data."
POSTERS_HELP = ("Folder that relative poster paths are resolved against (default: the table's folder); absolute "
                "poster paths must lie inside it.")
ENCODING_HELP = "Text encoding of a CSV/JSONL table, e.g. latin-1 or cp1252 for a legacy file."
SEP_HELP = ("Separator of a CSV table: one character (',', ';', '|') or a name (comma, semicolon, tab, pipe); "
            "default: detected from its header line.")
COLUMN_MAP_HELP = ("Read a field from a column of another name, as FIELD=COLUMN (e.g. plot=overview); repeat it or "
                   "separate pairs with commas. Fields: id, title, year, language, plot, genres, poster. Headers "
                   "also match case-insensitively and through common aliases (overview -> plot, name -> title).")
CHECK_ENV = "GENRELENS_PRECISION_CHECK"
CHECK_HELP = ("Afterwards run the accuracy guard of bf16/int8 against fp32 on the validation split when this CPU has "
              "units for them (minutes), and save its result in the model folder: `--precision auto` then uses it "
              "from the first predict on. Default $GENRELENS_PRECISION_CHECK, else on.")

# choices (their values come from genrelens.config, which RunConfig checks against)
Oversample = Enum("Oversample", {v: v for v in OVERSAMPLING}, type=str)
Thresholds = Enum("Thresholds", {v: v for v in THRESHOLDS}, type=str)
WindowPooling = Enum("WindowPooling", {v: v for v in WINDOW_POOLING}, type=str)


class Engine(StrEnum):
    local = "local"
    ray = "ray"


def value(choice: Enum | str | None) -> str | None:
    """An option's plain value (an Enum member's ``value``)."""
    return choice.value if isinstance(choice, Enum) else choice


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code`` (2: bad input or usage; 1: the work failed)."""
    console.print(f"[red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def user_errors(code: int = 2, prefix: str = "") -> Callable[[F], F]:
    """Turn the user's errors (``GenrelensError``, and ``ValueError`` raised for a bad value) raised by the wrapped
    command into ``error: <prefix><message>`` and exit ``code``; anything else (a bug) keeps its traceback."""
    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except (GenrelensError, ValueError) as e:
                fail(f"{prefix}{e}", code)
        return run  # type: ignore[return-value]
    return wrap


def check_range(field: str, option: str | None = None) -> Callable[[Any], Any]:
    """A typer callback refusing a value outside ``RunConfig``'s range for ``field`` (``config.RANGES``)."""
    kind, low, high, low_in, high_in = RANGES[field]

    def check(v):
        if v is None:
            return v
        too_low = low is not None and (v < low if low_in else v <= low)
        too_high = high is not None and (v > high if high_in else v >= high)
        if too_low or too_high:
            lo = "" if low is None else f"{low}{' <=' if low_in else ' <'} "
            hi = "" if high is None else f" {'<=' if high_in else '<'} {high}"
            raise typer.BadParameter(f"{v!r} is out of range: need {lo}{option or field}{hi}")
        return v
    return check


def ranged(field: str, default: Any, *decls: str, help: str | None = None) -> Any:
    """An option for the RunConfig field ``field``, checked against its range there (the one table of ranges)."""
    kind, low, high, low_in, high_in = RANGES[field]
    bounds = {"min": low} if low is not None and low_in else {}
    bounds |= {"max": high} if high is not None and high_in else {}
    return typer.Option(default, *decls, help=help, callback=check_range(field), **bounds)


def check_precision(v: str | None) -> str | None:
    if v is not None and v not in PRECISIONS:
        raise typer.BadParameter(f"precision must be one of {', '.join(PRECISIONS)}, not {v!r}")
    return v


def precision_option() -> Any:
    return typer.Option(None, "--precision", help=PRECISION_HELP, callback=check_precision)


def model_dir_option(help: str = MODEL_HELP) -> Any:
    return typer.Option(None, "--model-dir", help=help)


def data_option(help: str = DATA_HELP) -> Any:
    return typer.Option(None, "--data", help=help)


def posters_option(help: str = POSTERS_HELP) -> Any:
    return typer.Option(None, "--posters", help=help)


def encoding_option(help: str = ENCODING_HELP) -> Any:
    return typer.Option("utf-8", "--encoding", help=help)


def sep_option(help: str = SEP_HELP) -> Any:
    return typer.Option(None, "--sep", help=help, metavar="SEP")


def column_map_option(help: str = COLUMN_MAP_HELP) -> Any:
    return typer.Option(None, "--column-map", help=help, metavar="FIELD=COLUMN")


def table_options(sep: str | None, column_map: list[str] | None) -> tuple[str | None, dict[str, str] | None]:
    """``(separator, {field: column} or None)`` from ``--sep`` and ``--column-map``; exit 2 on a bad value."""
    from genrelens.data.columns import parse_mapping
    from genrelens.data.reader import parse_sep

    try:
        return parse_sep(sep), parse_mapping(column_map) or None
    except (GenrelensError, ValueError) as e:
        fail(str(e))


def progress_option() -> Any:
    return typer.Option(True, "--progress/--no-progress")


def precision_check_option(extra: str = "") -> Any:
    return typer.Option(True, "--precision-check/--no-precision-check", envvar=CHECK_ENV, help=CHECK_HELP + extra)


def load_classifier(model_dir: Path | None, precision: str | None = None):
    """The model in ``model_dir`` (``GenreClassifier.load``), or exit 2 with why it cannot be loaded."""
    from genrelens.predict import GenreClassifier

    try:
        clf = GenreClassifier.load(model_dir, precision=precision,
                                   report=lambda line: console.print(line, highlight=False))
    except (GenrelensError, ValueError) as e:
        fail(str(e))
    choice = clf.precision_choice
    if choice is not None and choice.guards and not choice.note and choice.precision != "fp32":
        console.print(choice.summary(), highlight=False, style="dim")  # auto chose a reduced precision: say which
    return clf
