"""Shared pieces of the CLI: consoles, option aliases declared once, and global state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

__all__ = ["DeviceOpt", "OverwriteOpt", "QuietOpt", "count_progress", "err_console", "out_console", "state"]

#: Messages, progress bars and errors go to stderr so stdout stays parseable.
err_console = Console(stderr=True, highlight=False)
#: Tables and results.
out_console = Console(highlight=False)


class _State:
    debug: bool = False


state = _State()

DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ...")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars; plain log lines only.")]
OverwriteOpt = Annotated[bool, typer.Option("--overwrite", help="Replace existing outputs instead of refusing.")]
ModelOpt = Annotated[
    Optional[str],
    typer.Option("--model", "-m", help="A run directory from `featkit train`, a shipped model (see `featkit encoders`), or a baseline: an encoder name alone (random weights, seeded), pixels, daisy. Default: the shipped featkit-cae."),
]
OptionalPath = Optional[Path]


@contextmanager
def count_progress(label: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A transient progress bar on stderr; yields the ``on_progress(done, total)`` callback
    the library's long operations take."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err_console, transient=True, disable=quiet,
    ) as progress:  # fmt: skip
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)
