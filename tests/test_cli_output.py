"""What the CLI prints: plain --help (no Python type names), one line per stage when piped (issue 26, item 8)."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from genrelens.cli import app


def command_paths(group, prefix=()):
    """Every command of the click group ``group``, as argument lists."""
    for name, cmd in group.commands.items():
        if hasattr(cmd, "commands"):
            yield from command_paths(cmd, (*prefix, name))
        else:
            yield [*prefix, name]


COMMANDS = list(command_paths(typer.main.get_command(app)))


def test_every_command_is_listed():
    assert ["train"] in COMMANDS and ["install"] in COMMANDS and ["data", "validate"] in COMMANDS


@pytest.mark.parametrize("args", [[]] + COMMANDS, ids=lambda a: " ".join(a) or "genrelens")
def test_help_shows_no_python_type_names(args):
    res = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert not re.findall(r"<(?:bool|str|int|float|path|int range|float range)>", res.output), res.output
