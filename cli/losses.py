"""`featkit losses`: every registered loss with its summary and origin."""

from __future__ import annotations

from rich.table import Table

from featkit.cli._common import err_console, out_console
from featkit.losses import LOSSES


def losses() -> None:
    """List the registered losses (built-in and plugins) usable in --loss specs."""
    table = Table(title="featkit losses (combine as e.g. pl+0.5*sfl)")
    table.add_column("name", style="bold")
    table.add_column("summary")
    table.add_column("from")
    for entry in LOSSES.entries():
        table.add_row(entry.name, entry.summary, entry.source)
    out_console.print(table)
    for name, why in LOSSES.plugin_errors.items():
        err_console.print(f"warning: loss plugin '{name}' failed to load: {why}")
