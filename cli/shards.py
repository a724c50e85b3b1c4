"""`featkit shards`: a folder of images as WebDataset tar shards, for clusters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.filesize import decimal

from featkit.cli._common import OverwriteOpt, QuietOpt, count_progress, err_console
from featkit.data.shard_writer import DEFAULT_MAX_COUNT, DEFAULT_MAX_SIZE


def shards(
    images: Annotated[Path, typer.Argument(help="A folder of images (searched recursively), an image, or a .txt file listing image paths.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to create: OUT/shard-000000.tar ... plus OUT/shards.json.")],
    max_count: Annotated[int, typer.Option("--max-count", min=1, help="Most images per shard.")] = DEFAULT_MAX_COUNT,
    max_size: Annotated[float, typer.Option("--max-size", min=1, help="Most bytes per shard, tar headers included (1e9 = 1 GB).")] = DEFAULT_MAX_SIZE,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Copy the images of IMAGES, byte for byte, into WebDataset tar shards in OUT; print the
    brace pattern that reads them all (what train and extract accept as IMAGES)."""
    from featkit.data.shard_writer import write_shards

    with count_progress("shards", quiet) as on_progress:
        summary = write_shards(
            images, out, max_count=max_count, max_size=int(max_size), overwrite=overwrite,
            on_progress=on_progress,
        )  # fmt: skip
    err_console.print(
        f"wrote {len(summary['shards'])} shard(s) to {out}: {summary['images']} images, "
        f"{decimal(summary['bytes'])}; skipped {len(summary['skipped'])}",
        markup=False, soft_wrap=True,
    )  # fmt: skip
    for skipped in summary["skipped"]:
        err_console.print(f"  skipped {skipped['path']}: {skipped['reason']}", markup=False, soft_wrap=True)
    typer.echo(summary["pattern"])
