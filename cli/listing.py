"""`featkit losses` and `featkit encoders`: what a registry holds, with summaries and origins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.table import Table

from featkit.cli._common import err_console, out_console

if TYPE_CHECKING:
    from featkit.registry import Registry


def _print_registry(registry: Registry, title: str, extra_rows: tuple[tuple[str, str, str], ...] = ()) -> None:
    table = Table(title=title)
    table.add_column("name", style="bold")
    table.add_column("summary")
    table.add_column("from")
    for entry in registry.entries():
        table.add_row(entry.name, entry.summary, entry.source)
    for row in extra_rows:
        table.add_row(*row)
    out_console.print(table)
    for name, why in registry.plugin_errors.items():
        err_console.print(f"warning: {registry.kind} plugin '{name}' failed to load: {why}", markup=False, soft_wrap=True)


def losses() -> None:
    """List the registered losses (built-in and plugins) usable in --loss specs."""
    from featkit.losses import LOSSES

    _print_registry(LOSSES, "featkit losses (combine as e.g. pl+0.5*sfl)")


def encoders() -> None:
    """List the registered encoders (built-in, timm:<model>, plugins) usable with --encoder, and the pretrained models shipped with featkit (usable with --model and --init)."""
    from featkit.encoders import ENCODERS
    from featkit.io import read_json
    from featkit.runs.models import CONFIG_FILE, DEFAULT_MODEL, pretrained_models

    shipped = []
    for name, folder in pretrained_models().items():
        encoder = read_json(folder / CONFIG_FILE)["encoder"]["name"]
        default = ", the default --model" if name == DEFAULT_MODEL else ""
        shipped.append((name, f"pretrained {encoder}{default}", f"shipped with featkit ({folder / 'PROVENANCE.md'})"))
    _print_registry(
        ENCODERS,
        "featkit encoders",
        (("timm:<model>", "any timm backbone with features_only, light upsampling decoder", "featkit + timm"), *shipped),
    )
