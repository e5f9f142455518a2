"""Progress bars for long work (rich), quiet when asked or when not on a terminal."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

console = Console(stderr=True)


def globally_enabled() -> bool:
    return os.environ.get("XLBENCH_PROGRESS", "1") != "0"


@contextmanager
def bar(description: str, total: int | None, enabled: bool = True) -> Iterator:
    """Yield ``advance(n=1)``; the bar disappears when the work is done."""
    if not enabled or not globally_enabled() or not console.is_terminal:
        yield lambda n=1: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


@contextmanager
def bytes_bar(description: str, total: int | None, done: int = 0, enabled: bool = True) -> Iterator:
    """Like ``bar`` for a transfer: sizes and speed in bytes, starting at ``done`` (a resumed file)."""
    if not enabled or not globally_enabled() or not console.is_terminal:
        yield lambda n: None
        return
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=total, completed=done)
        yield lambda n: progress.advance(task, n)


def note(message: str) -> None:
    """One line of information for the user, on stderr so tables on stdout stay clean."""
    console.print(message, highlight=False, soft_wrap=True)


_said: set[str] = set()


def note_once(message: str) -> None:
    """``note``, but at most once per process for the same message (a condition that holds for
    every run of a command, such as a full /dev/shm, is said once)."""
    if message not in _said:
        _said.add(message)
        note(message)
