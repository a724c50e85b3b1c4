"""`featkit encoders`: every registered encoder with its hidden feature layers."""

from __future__ import annotations

from rich.table import Table

from featkit.cli._common import err_console, out_console
from featkit.encoders import ENCODERS


def encoders() -> None:
    """List the registered encoders (built-in, timm:<model>, plugins)."""
    table = Table(title="featkit encoders")
    table.add_column("name", style="bold")
    table.add_column("summary")
    table.add_column("from")
    for entry in ENCODERS.entries():
        table.add_row(entry.name, entry.summary, entry.source)
    table.add_row("timm:<model>", "any timm backbone with features_only, light upsampling decoder", "featkit + timm")
    out_console.print(table)
    for name, why in ENCODERS.plugin_errors.items():
        err_console.print(f"warning: encoder plugin '{name}' failed to load: {why}")
