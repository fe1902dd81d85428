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


def test_saving_a_text_encoder_shows_no_transformers_bar(tmp_path, capfd):
    """transformers' "Writing model shards" bar used to appear in the middle of training's output."""
    from transformers.utils import logging as hf_logging

    from genrelens.encoders.text import TextEncoder

    enc = TextEncoder("minilm")
    capfd.readouterr()
    enc.save(tmp_path / "tuned")
    out, err = capfd.readouterr()
    assert "Writing model shards" not in out + err and "it/s" not in err
    assert (tmp_path / "tuned" / "model.safetensors").is_file()
    assert hf_logging.is_progress_bar_enabled()  # the library's own setting is left as it was


@pytest.mark.slow  # trains a model in a subprocess
def test_piped_training_prints_a_line_per_epoch_and_stage(subset_csv, tmp_path):
    """On a pipe a rich bar shows nothing until it ends: training prints a line per epoch and per stage."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "GENRELENS_CACHE": str(tmp_path / "cache"), "GENRELENS_HOME": str(tmp_path / "home"),
           "PYTHONPATH": os.getcwd(), "COLUMNS": "200"}
    env.pop("FORCE_COLOR", None)
    env.pop("TTY_COMPATIBLE", None)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "genrelens.cli", "train", "--model", "text-frozen", "--data",
                           str(subset_csv), "--out", str(out), "--epochs", "3", "--max-length", "64",
                           "--precision", "fp32"], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout + proc.stderr
    epochs = [row["epoch"] for row in json.loads((out / "metrics.json").read_text())["history"]]
    for e in epochs:
        assert re.search(rf"epoch {e}/3: validation weighted F1 \d\.\d{{3}}", text), text
    assert re.search(r"(computing features|encoding texts).*: \d+/\d+ done", text), text
    assert "\x1b[" not in text and "━" not in text  # no bar, no cursor moves
