"""Hidden-layer features of image collections, streamed to disk.

:func:`extract` runs an encoder over a collection of images of any resolution and writes

- ``feats.npy``: float32 rows, and
- ``feats.json`` beside it: the manifest (paths, sizes, model, layer, stride, pooling, the
  files that were skipped and why, the featkit version).

Each cell of the layer's map becomes a local descriptor of ``d`` numbers
(:func:`featkit.features.descriptors.describe`: per-cell L2, a window of neighbouring cells, and the
run's whitening; ``raw=True`` keeps the layer's ``C`` activations instead, ``d = C``).
Pooled features (``pool="avg" | "max" | "gem"``) are one row per image: :math:`(N, D)` with
:math:`D = d \\cdot g^2` for a ``g x g`` pooling grid (``grid=1``: global pooling). Dense
features (``pool="none"``) keep every feature-map cell: ``feats.npy`` is one flat
:math:`(\\sum_i h_i w_i, d)` array, and manifest item ``i`` gives its ``offset`` (first row)
and ``grid`` ``(h_i, w_i)``; cell ``(r, c)`` is row ``offset + r * w_i + c`` and is centred
near pixel ``(c * s + (s - 1) / 2, r * s + (s - 1) / 2)`` of the network's input (stride ``s``;
multiply by ``original_size / size`` when ``max_side`` resized the image).

Memory stays bounded however many images: rows are appended to a partial file in a hidden
folder beside the output (``.feats.npy.partial/``) together with a log of finished files, so
``resume=True`` continues an interrupted run, and the final ``.npy`` only appears, atomically,
once everything is done. ``shard=(i, n)`` processes the ``i``-th of ``n`` contiguous slices of
the sorted file list; :func:`~featkit.features.merging.merge_features` joins the shards into the file one run would give.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from featkit.choices import POOLS
from featkit.data.collections import Collection, open_collection
from featkit.data.loading import default_workers, image_batches
from featkit.encoders import AutoEncoder, FeatureInfo
from featkit.errors import FeatkitError, OutputExistsError
from featkit.features.descriptors import descriptor_dim
from featkit.features.encoding import encode_images
from featkit.features.files import manifest_path
from featkit.features.partial import PartialRun
from featkit.io import ensure_new, read_json
from featkit.runs.models import load_encoder
from featkit.runs.whitening import whitening_for
from featkit.runtime.allocator import release_large_blocks
from featkit.version import __version__

__all__ = ["extract", "parse_shard"]


def parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    """``"2/4"`` -> ``(2, 4)``: the second of four slices (1-based, like ``--shard 1/4`` in jest).

    Raises:
        FeatkitError: when it is not ``i/n`` with ``1 <= i <= n``.
    """
    if shard is None:
        return None
    try:
        i, n = (int(v) for v in shard.split("/")) if isinstance(shard, str) else (int(shard[0]), int(shard[1]))
    except (ValueError, TypeError) as exc:
        raise FeatkitError(f"shard must look like i/n (e.g. 2/4), got '{shard}'") from exc
    if not 1 <= i <= n:
        raise FeatkitError(f"shard {i}/{n} is out of range: i must be between 1 and n")
    return i, n


def _shard_of(collection: Collection, shard: tuple[int, int] | None) -> Collection:
    """The ``i``-th of ``n`` contiguous slices: of the tar files for shards (each job opens
    only its own), else of the sorted images."""
    if shard is None:
        return collection
    i, n = shard
    if collection.kind == "shards":
        first, stop = len(collection.shards) * (i - 1) // n, len(collection.shards) * i // n
        return collection.subset([k for k, ref in enumerate(collection.refs) if first <= ref.shard < stop])
    return collection.subset(range(len(collection) * (i - 1) // n, len(collection) * i // n))


def extract(
    images: str | os.PathLike | Sequence[str | os.PathLike],
    model: str | os.PathLike | None,
    out: str | os.PathLike,
    *,
    layer: str | None = None,
    pool: str = "avg",
    grid: int | None = None,
    batch_size: int = 16,
    workers: int | None = None,
    device: str = "cpu",
    max_side: int | None = None,
    window: int | None = None,
    whiten: bool = True,
    raw: bool = False,
    shard: str | tuple[int, int] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Extract hidden-layer features of every image under ``images`` into ``out``.

    Args:
        images: a folder (searched recursively), one image file, a text file listing images,
            WebDataset tar shards (``shards/part-{000..009}.tar``), or a list of files
            (:func:`featkit.data.collections.open_collection`).
        model: a run directory from ``featkit train``, a shipped model (``None``: the
            shipped :data:`~featkit.runs.models.DEFAULT_MODEL`), ``timm:<name>``, a baseline
            (``pixels``, ``daisy``) or another registered encoder (random weights built from
            :data:`BASELINE_SEED`).
        out: the ``.npy`` to write; the manifest goes to :func:`manifest_path` of it.
        layer: hidden layer (default: the encoder's ``default_layer``).
        pool: ``avg | max | gem`` (one row per image) or ``none`` (dense maps, see module doc).
            ``gem`` is meant for the non-negative activations of ``raw``.
        grid: pooling grid per side; ``D = d * grid**2`` for descriptors of ``d`` numbers. Default: the encoder's
            ``default_grid``: 1 (global pooling) for learned encoders, 8 for ``pixels`` (an
            8 x 8 thumbnail).
        batch_size: images decoded per DataLoader batch; equal sizes run through the model together.
        workers: DataLoader worker processes decoding images (0: in this process); default
            :func:`default_workers`.
        device: ``auto``, ``cpu``, ``cuda``, ...
        max_side: downscale larger images to this longer side; default keeps every resolution.
        window: cells per side stacked into each local descriptor; default the encoder's
            ``default_window`` (3 for the CAEs).
        whiten: apply the run's descriptor whitening (a trained run has one).
        raw: store the layer's activations instead of local descriptors (``window`` and
            ``whiten`` then do nothing).
        shard: ``"i/n"`` or ``(i, n)``: only the ``i``-th of ``n`` contiguous slices of the
            sorted file list, or of the tar files for shards, so each job reads only its own
            (merge with :func:`merge_features`).
        resume: continue an interrupted run of the same settings (a finished ``out`` is kept).
        overwrite: replace an existing ``out`` and discard unfinished work.
        on_progress: called as ``on_progress(done, total)`` after each batch.

    Returns:
        The manifest written beside ``out``.

    Raises:
        OutputExistsError: ``out`` exists (or unfinished work does) and neither ``overwrite``
            nor ``resume`` says what to do.
        ImageError: no images found. Undecodable files are skipped and listed in the manifest.
    """
    out = Path(out)
    _check_settings(out, pool, grid, max_side)
    shard = parse_shard(shard)
    release_large_blocks()
    collection = open_collection(images)
    part = _shard_of(collection, shard)
    net, info = load_encoder(model, device)
    readout = _Readout.of(net, layer, pool, grid, window, whiten, raw)
    config = _run_config(info, readout, max_side, collection, shard)
    if resume and not overwrite:
        finished = _finished_run(out, config)
        if finished is not None:
            return finished
    ensure_new(out, overwrite=overwrite, hint="pass --overwrite")
    partial = _open_partial(out, config, resume=resume, overwrite=overwrite)
    rows = _write_rows(net, readout, part, partial, batch_size=batch_size, workers=workers, max_side=max_side,
                       on_progress=on_progress)  # fmt: skip
    manifest = _manifest(config, partial, rows)
    partial.finish(out, manifest)
    return manifest


def _check_settings(out: Path, pool: str, grid: int | None, max_side: int | None) -> None:
    """The settings that can be checked before anything is opened."""
    if out.suffix != ".npy":
        raise FeatkitError(f"output must be a .npy file, got {out}")
    if pool not in POOLS:
        raise FeatkitError(f"unknown pooling '{pool}'. Expected one of: {', '.join(POOLS)}")
    if grid is not None and grid < 1:
        raise FeatkitError(f"grid must be >= 1, got {grid}")
    if max_side is not None and max_side < 1:
        raise FeatkitError(f"max_side must be >= 1, got {max_side}")


@dataclass(frozen=True)
class _Readout:
    """What is read out of the network: which layer, how each cell becomes a row, how rows pool.

    Attributes:
        layer: the layer's ``feature_info`` entry.
        pool, grid, window, whiten, raw: as :func:`extract` takes them, defaults filled in.
        dim: numbers per cell's row (before pooling over a grid).
        whitened: whether the model's whitening applies to these settings.
    """

    layer: FeatureInfo
    pool: str
    grid: int
    window: int
    whiten: bool
    raw: bool
    dim: int
    whitened: bool

    @classmethod
    def of(cls, net: AutoEncoder, layer: str | None, pool: str, grid: int | None, window: int | None,
           whiten: bool, raw: bool) -> _Readout:  # fmt: skip
        feature = net.layer_info(layer)
        grid = net.default_grid if grid is None else grid
        window = net.default_window if window is None else window
        if window < 1 or window % 2 == 0:
            raise FeatkitError(f"window must be a positive odd number of cells, got {window}")
        dim = feature.channels if raw else descriptor_dim(net, feature.name, window, whiten)
        whitened = not raw and whiten and whitening_for(net, feature.name, window) is not None
        return cls(feature, pool, grid, window, whiten, raw, dim, whitened)


def _run_config(info: dict[str, Any], readout: _Readout, max_side: int | None, collection: Collection,
                shard: tuple[int, int] | None) -> dict[str, Any]:  # fmt: skip
    """The settings that define the output: a resumed or finished run must match them all."""
    dense = readout.pool == "none"
    return {
        **info,
        "layer": readout.layer.name,
        "channels": readout.layer.channels,
        "stride": readout.layer.stride,
        "pool": readout.pool,
        "grid": None if dense else readout.grid,
        "features": "activations" if readout.raw else "descriptors",
        "window": None if readout.raw else readout.window,
        "whitened": readout.whitened,
        "dim": readout.dim if dense else readout.dim * readout.grid * readout.grid,
        "max_side": max_side,
        "root": str(collection.root),
        "kind": collection.kind,
        "shard": list(shard) if shard else None,
        "collection": {"files": len(collection), "digest": collection.digest()},
    }


def _finished_run(out: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The manifest of a finished run of the same settings at ``out``, else ``None``."""
    if not (out.exists() and manifest_path(out).exists()):
        return None
    finished = read_json(manifest_path(out))
    return finished if all(finished.get(k) == v for k, v in config.items()) else None


def _open_partial(out: Path, config: dict[str, Any], *, resume: bool, overwrite: bool) -> PartialRun:
    """Continue the unfinished run beside ``out`` (``resume``) or start a new one."""
    partial = PartialRun(out, config)
    if partial.exists() and not overwrite:
        if not resume:
            raise OutputExistsError(
                f"{partial.dir} holds an unfinished run for {out}; pass --resume to continue it "
                "or --overwrite to start again"
            )
        partial.reopen()
    else:
        partial.start()
    return partial


def _write_rows(
    net: AutoEncoder, readout: _Readout, part: Collection, partial: PartialRun, *, batch_size: int,
    workers: int | None, max_side: int | None, on_progress: Callable[[int, int], None] | None,
) -> int:  # fmt: skip
    """Decode and encode the images the partial run has not done yet, appending their rows
    and records to it; returns the rows written in all (earlier sessions included)."""
    start = len(partial.records)
    rows_done = sum(r.get("rows", 0) for r in partial.records)
    if on_progress:
        on_progress(start, len(part))
    partial.open()
    try:
        workers = default_workers() if workers is None else workers
        for batch in image_batches(part.refs[start:], batch_size=batch_size, workers=workers, max_side=max_side):
            good = [item for item in batch if item.image is not None]
            feats = iter(encode_images(net, [item.image for item in good], readout.layer.name, readout.pool,
                                       readout.grid, raw=readout.raw, window=readout.window,
                                       whiten=readout.whiten))  # fmt: skip
            for item in batch:
                record: dict[str, Any] = {"index": start + item.index, "path": str(item.path)}
                if item.image is None:
                    partial.add({**record, "skipped": item.reason}, None)
                    continue
                rows = next(feats)
                record["original_size"] = list(item.original_size)
                record["size"] = [int(item.image.shape[-1]), int(item.image.shape[-2])]
                if readout.pool == "none":
                    record.update(offset=rows_done, grid=list(rows.shape[:2]))
                    rows = rows.reshape(-1, rows.shape[-1])
                record["rows"] = rows.shape[0] if rows.ndim == 2 else 1
                rows_done += record["rows"]
                partial.add(record, rows)
            if on_progress:
                on_progress(start + batch[-1].index + 1, len(part))
    finally:
        partial.close()
    return rows_done


def _manifest(config: dict[str, Any], partial: PartialRun, rows: int) -> dict[str, Any]:
    """``feats.json``: the settings, one item per image written and every skipped file."""
    return {
        "featkit_version": __version__,
        **config,
        "rows": rows,
        "dense": config["pool"] == "none",
        "items": [
            {k: v for k, v in r.items() if k not in ("index", "rows")} for r in partial.records if "skipped" not in r
        ],
        "skipped": [{"path": r["path"], "reason": r["skipped"]} for r in partial.records if "skipped" in r],
    }
