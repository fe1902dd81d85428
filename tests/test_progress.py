"""genrelens.progress: a bar on a terminal, plain lines on a pipe (one at the start and end of a stage)."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from genrelens.progress import Lines, progress_bar


def piped() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def test_a_pipe_gets_one_line_when_a_stage_starts_and_one_when_it_ends():
    console, out = piped()
    with progress_bar(enabled=True, console=console) as bar:
        assert isinstance(bar, Lines)
        task = bar.add_task("encoding posters", total=3)
        for _ in range(3):
            bar.advance(task)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("encoding posters: 0/3 started")
    assert lines[1].startswith("encoding posters: 3/3 done") and lines[1].endswith(" s)")
    assert len(lines) == 2 and "\x1b" not in out.getvalue()  # no escape codes in a log file


def test_a_stage_cut_short_says_so_and_long_stages_report_between():
    console, out = piped()
    bar = Lines(console, every=0.0)  # a line on every update
    task = bar.add_task("scoring", total=10)
    bar.update(task, completed=4)
    bar.stop()
    text = out.getvalue()
    assert "scoring: 4/10 (" in text and "scoring: 4/10 stopped" in text


def test_a_terminal_gets_rich_progress():
    console = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(progress_bar(console=console), Progress)


def test_progress_lines_on_a_pipe_are_never_cut_at_80_columns():
    """A log or pipe gets one whole line per message (a 90-character epoch line was split at 80 columns)."""
    from genrelens.progress import progress_console

    console = progress_console()
    console.file = io.StringIO()  # not a terminal: rich's default width is 80
    line = "fine-tune minilm (top 1 layers) epoch 1/2: validation weighted F1 0.539 (best so far), 20 s"
    console.print(line, highlight=False, markup=False)
    assert console.file.getvalue() == line + "\n"
