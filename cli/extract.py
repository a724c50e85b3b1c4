"""`featkit extract` and `featkit merge`: hidden-layer features of an image collection."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from featkit.cli._common import DeviceOpt, ModelOpt, OverwriteOpt, QuietOpt, count_progress, err_console
from featkit.choices import POOLS

Pool = Enum("Pool", {p: p for p in POOLS}, type=str)


def extract(
    images: Annotated[Path, typer.Argument(help="A folder of images (searched recursively), one image, a .txt list of paths, or WebDataset tar shards ('shards/part-{000..099}.tar').")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Features file to write (.npy); the manifest goes beside it (.json).")],
    model: ModelOpt = None,
    layer: Annotated[Optional[str], typer.Option("--layer", help="Hidden layer (see `featkit encoders`); default: the encoder's.")] = None,
    pool: Annotated[Pool, typer.Option("--pool", help="avg/max/gem: one row per image; none: dense maps with their stride.")] = Pool.avg,
    grid: Annotated[Optional[int], typer.Option("--grid", min=1, help="Pool over a GRID x GRID layout (D = channels x GRID^2); 1 pools globally. Default: the encoder's own, 1 for learned encoders, 8 for pixels (an 8 x 8 thumbnail).")] = None,
    window: Annotated[Optional[int], typer.Option("--window", min=1, help="Stack the WINDOW x WINDOW neighbouring cells into each local descriptor (odd). Default: the encoder's, 3 for the CAEs.")] = None,
    whiten: Annotated[bool, typer.Option("--whiten/--no-whiten", help="Apply the run's descriptor whitening, fitted on its training images (trained runs have one).")] = True,
    raw: Annotated[bool, typer.Option("--raw", help="Store the layer's activations themselves instead of local descriptors (ignores --window and --whiten).")] = False,
    shard: Annotated[Optional[str], typer.Option("--shard", help="i/n: only the i-th of n slices of the sorted file list (1-based); join with `featkit merge`.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run with the same settings.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images decoded per batch; equal sizes run together.")] = 16,
    workers: Annotated[Optional[int], typer.Option("--workers", min=0, help="Processes decoding images (0: none; default: none on <= 2 cores, else half the cores).")] = None,
    device: DeviceOpt = "auto",
    max_side: Annotated[Optional[int], typer.Option("--max-side", min=1, help="Downscale images whose longer side is larger (default: keep every resolution).")] = None,
    overwrite: OverwriteOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Extract features of every image in IMAGES with MODEL (default: the shipped featkit-cae) into a .npy plus a .json manifest.

    Features are local descriptors of the layer's cells (each cell L2-normalised, stacked with its neighbours, whitened when MODEL is a trained run), pooled per image or kept dense; --raw stores the activations instead.
    """
    from featkit.features.extraction import extract as extract_features

    with count_progress("extract", quiet) as on_progress:
        manifest = extract_features(
            images, model, out, layer=layer, pool=pool.value, grid=grid, batch_size=batch_size, workers=workers,
            device=device, max_side=max_side, window=window, whiten=whiten, raw=raw, shard=shard, resume=resume, overwrite=overwrite,
            on_progress=on_progress,
        )  # fmt: skip
    err_console.print(
        f"wrote {out}: {len(manifest['items'])} images, {manifest['rows']} x {manifest['dim']} "
        f"({manifest['layer']} {manifest['features']}, stride {manifest['stride']}, pool {manifest['pool']}); "
        f"skipped {len(manifest['skipped'])}; model {manifest['model']}",
        soft_wrap=True,
    )
    for skipped in manifest["skipped"]:
        err_console.print(f"  skipped {skipped['path']}: {skipped['reason']}", markup=False, soft_wrap=True)


def merge(
    parts: Annotated[list[Path], typer.Argument(help="Features files from `featkit extract --shard i/n`, one per shard.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Merged features file (.npy).")],
    overwrite: OverwriteOpt = False,
) -> None:
    """Merge the shards of one extraction into the file a single run would write."""
    from featkit.features.merging import merge_features

    manifest = merge_features(parts, out, overwrite=overwrite)
    err_console.print(f"wrote {out}: {len(manifest['items'])} images from {len(parts)} shards", soft_wrap=True)
