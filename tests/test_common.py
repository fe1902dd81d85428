"""genrelens.cli.common: user errors become messages and exit codes; bugs keep their traceback."""

import pytest
import typer
from typer.testing import CliRunner

from genrelens.cli.common import Engine, check_precision, check_range, fail, user_errors, value
from genrelens.errors import DataError

app = typer.Typer()


@app.command()
def cmd(kind: str, hidden: int = typer.Option(512, callback=check_range("hidden", "--hidden"))):
    @user_errors(code=2, prefix="reading: ")
    def work():
        if kind == "user":
            raise DataError("the table has no plot column")
        if kind == "value":
            raise ValueError("bad value")
        if kind == "bug":
            raise KeyError("oops")
        typer.echo(f"ok {hidden}")
    work()


def test_user_errors_exit_2_with_a_message():
    runner = CliRunner()
    r = runner.invoke(app, ["user"])
    assert r.exit_code == 2 and "error: reading: the table has no plot column" in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    r = runner.invoke(app, ["value"])
    assert r.exit_code == 2 and "bad value" in r.output


def test_other_exceptions_keep_their_traceback():
    r = CliRunner().invoke(app, ["bug"])
    assert r.exit_code == 1 and isinstance(r.exception, KeyError)


def test_range_callback_reads_runconfig_ranges():
    r = CliRunner().invoke(app, ["fine", "--hidden", "0"])
    assert r.exit_code == 2 and "need 1 <= --hidden" in r.output
    assert CliRunner().invoke(app, ["fine", "--hidden", "3"]).output.strip() == "ok 3"


def test_fail_value_and_precision():
    with pytest.raises(typer.Exit) as e:
        fail("nope", code=1)
    assert e.value.exit_code == 1
    assert value(Engine.ray) == "ray" and value("x") == "x" and value(None) is None
    assert check_precision("int8") == "int8"
    with pytest.raises(typer.BadParameter, match="precision must be one of"):
        check_precision("fp16")
