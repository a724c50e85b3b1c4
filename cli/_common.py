"""Shared pieces of the CLI: consoles, option aliases declared once, and global state."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

__all__ = ["DeviceOpt", "OverwriteOpt", "QuietOpt", "err_console", "out_console", "state"]

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
    str,
    typer.Option("--model", "-m", help="A run directory from `featkit train`, or a baseline: an encoder name alone (random weights, seeded), pixels, daisy."),
]
OptionalPath = Optional[Path]
