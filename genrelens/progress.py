"""Progress of long work on stderr: a rich bar on a terminal; on a pipe or a log file (where a bar shows nothing
until it ends) plain lines instead: one when a stage starts, one when it ends, and one every ``LINE_EVERY``
seconds of a long stage."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import Progress

T = TypeVar("T")
LINE_EVERY = 30.0  # seconds between the lines of one long stage on a pipe


def progress_console() -> Console:
    """Where progress goes: stderr (results go to stdout); a line longer than the terminal (or than 80 columns on
    a pipe or log) stays one line."""
    return Console(stderr=True, soft_wrap=True)


def is_terminal(console: Console | None = None) -> bool:
    """Whether a live bar can be shown (stderr is a terminal)."""
    return (console or progress_console()).is_terminal


class Lines:
    """The part of :class:`rich.progress.Progress` that genrelens uses, written as plain lines."""

    def __init__(self, console: Console | None = None, every: float = LINE_EVERY) -> None:
        self.console, self.every = console or progress_console(), every
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> Lines:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        pass

    def stop(self) -> None:
        for task in self.tasks.values():
            if not task["done"] and task["completed"]:
                self._line(task, "stopped")
            task["done"] = True

    def add_task(self, description: str, total: float | None = None, completed: float = 0, **_: Any) -> int:
        task_id = len(self.tasks)
        now = time.monotonic()
        self.tasks[task_id] = {"description": description, "total": total, "completed": completed, "start": now,
                               "last": now, "done": False}
        self._line(self.tasks[task_id], "started")
        return task_id

    def advance(self, task_id: int, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: int, *, description: str | None = None, advance: float | None = None,
               completed: float | None = None, total: float | None = None, **_: Any) -> None:
        task = self.tasks[task_id]
        if description is not None:
            task["description"] = description
        if total is not None:
            task["total"] = total
        if completed is not None:
            task["completed"] = completed
        if advance:
            task["completed"] += advance
        if task["done"]:
            return
        if task["total"] is not None and task["completed"] >= task["total"]:
            task["done"] = True
            self._line(task, "done")
        elif time.monotonic() - task["last"] >= self.every:
            self._line(task, "")

    def _line(self, task: dict[str, Any], what: str) -> None:
        task["last"] = time.monotonic()
        total = task["total"]
        count = f"{task['completed']:.0f}/{total:.0f}" if total is not None else f"{task['completed']:.0f}"
        elapsed = task["last"] - task["start"]
        text = f"{task['description']}: {count}" + (f" {what}" if what else "")
        self.console.print(text + (f" ({elapsed:.0f} s)" if what != "started" else ""), highlight=False,
                           markup=False)


def progress_bar(*columns: Any, enabled: bool = True, transient: bool = True,
                 console: Console | None = None) -> Progress | Lines:
    """A rich ``Progress`` on a terminal (disabled when not ``enabled``), else :class:`Lines`."""
    console = console or progress_console()
    if enabled and not console.is_terminal:
        return Lines(console)
    return Progress(*columns, disable=not enabled, transient=transient, console=console)


def track(items: Iterable[T], description: str, enabled: bool = True, total: int | None = None) -> Iterator[T]:
    """``rich.progress.track`` with :func:`progress_bar`'s choice of bar or lines."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_bar(enabled=enabled) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
