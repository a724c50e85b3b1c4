"""The Typer application: global options and the one place commands are registered.

Command modules import the library inside their functions, so ``--help`` never loads torch.
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from featkit.cli._common import state
from featkit.cli.listing import encoders, losses
from featkit.cli.match import match
from featkit.cli.cluster import cluster
from featkit.cli.evaluate import evaluate_app
from featkit.cli.extract import extract, merge
from featkit.cli.index import index
from featkit.cli.search import search
from featkit.cli.shards import shards
from featkit.cli.train import train
from featkit.cli.reproduce import reproduce


def _show_flags_without_a_value() -> None:
    """Leave a flag's value column empty in the rich help.

    Typer 0.29's rich help prints every option's type, flags included (``--quiet <bool>``,
    even ``--help <bool>``), as if they took a value; its plain help prints none. Every bool
    option here is already a pure flag (``--quiet``, no value), so only the display changes.
    """
    from typer.core import TyperOption

    show_type = getattr(TyperOption, "display_type_rich", None)
    if show_type is None:  # older Typer renders help another way; nothing to change
        return

    def display_type_rich(self: TyperOption, ctx) -> str | None:
        return None if self.is_flag else show_type(self, ctx)

    TyperOption.display_type_rich = display_type_rich


_show_flags_without_a_value()

app = typer.Typer(
    name="featkit",
    help="Learn image features with frequency-aware convolutional autoencoders "
    "(spatial frequency loss), then extract, search, cluster and match them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from featkit import __version__

        typer.echo(f"featkit {__version__}")
        raise typer.Exit()


@app.callback()
def _global(
    plugin: Annotated[
        Optional[list[str]],
        typer.Option("--plugin", help="Import a local module that registers losses or encoders (repeatable)."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show Python tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    state.debug = debug
    if plugin:
        from featkit.encoders import ENCODERS
        from featkit.losses import LOSSES
        from featkit.registry import import_plugin_module

        for module in plugin:
            import_plugin_module(module, [LOSSES, ENCODERS])


# In the order of the workflow: shard the data, train, export features, use them; then the listings.
app.command("shards")(shards)
app.command("train")(train)
app.command("reproduce")(reproduce)
app.command("extract")(extract)
app.command("merge")(merge)
app.command("index")(index)
app.command("search")(search)
app.command("cluster")(cluster)
app.add_typer(evaluate_app, name="evaluate")
app.command("match")(match)
app.command("losses")(losses)
app.command("encoders")(encoders)
