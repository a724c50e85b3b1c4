"""Hidden-layer features of image collections, streamed to disk.

:func:`extract` runs an encoder over a collection of images of any resolution and writes

- ``feats.npy``: float32 rows, and
- ``feats.json`` beside it: the manifest (paths, sizes, model, layer, stride, pooling, the
  files that were skipped and why, the featkit version).

Each cell of the layer's map becomes a local descriptor of ``d`` numbers
(:func:`featkit.descriptors.describe`: per-cell L2, a window of neighbouring cells, and the
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
the sorted file list; :func:`merge_features` joins the shards into the file one run would give.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from featkit.allocator import release_large_blocks
from featkit.checkpoint import load_model
from featkit.choices import POOLS
from featkit.data import size_buckets
from featkit.descriptors import describe, descriptor_dim, whitening_for
from featkit.encoders import AutoEncoder
from featkit.errors import FeatkitError, OutputExistsError, ShapeError
from featkit.devices import network_input, resolve_device
from featkit.io import atomic_path, ensure_new, read_json, write_json
from featkit.pipeline import Collection, default_workers, image_batches, open_collection

__all__ = [
    "POOLS",
    "class_labels",
    "encode_images",
    "extract",
    "iter_feature_chunks",
    "load_encoder",
    "load_features",
    "manifest_path",
    "merge_features",
    "parse_shard",
    "pool_maps",
]

#: Exponent of generalised-mean pooling (Radenović et al.); 1 is average, infinity is max.
GEM_P = 3.0
#: Seed used to build randomly initialised baselines, so they are the same model every time.
BASELINE_SEED = 0
#: Seconds between checkpoints of a running extraction (what ``resume`` can fall back to).
CHECKPOINT_EVERY_S = 2.0
#: Pixels per forward pass: larger batches of the same size overflow the CPU caches and run
#: 2-3x slower per image (measured with paper-cae on 128 x 128 images).
PIXELS_PER_FORWARD = 1 << 16
_PARTIAL_ROWS, _PARTIAL_LOG, _PARTIAL_CONFIG = "rows.f32", "done.jsonl", "config.json"


# -- running the model ------------------------------------------------------------------------
def _fingerprint(model: AutoEncoder) -> str:
    """A short hash of the encoder's name, arguments, weights and descriptor whitening: equal
    means same features."""
    digest = hashlib.sha256(json.dumps(model.config, sort_keys=True, default=str).encode())
    tensors = dict(model.state_dict())
    whitening = getattr(model, "whitening", None)
    if whitening is not None:
        digest.update(f"{whitening.layer}/{whitening.window}".encode())
        tensors.update({"whitening.mean": whitening.mean, "whitening.projection": whitening.projection})
    for name, tensor in sorted(tensors.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def load_encoder(spec: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[AutoEncoder, dict[str, Any]]:
    """Load the model behind ``spec`` and describe it for manifests.

    Registry names with random weights (``paper-cae``, ``timm:resnet18``) are built from
    :data:`BASELINE_SEED`, so extracting twice gives the same features.

    Returns:
        ``(model, info)`` with ``info = {"model": spec, "encoder": {...}, "fingerprint": ...}``;
        a run directory is recorded by its absolute path.
    """
    is_path = Path(spec).exists()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(BASELINE_SEED)
        model, config = load_model(spec, device=resolve_device(device))
    info = {
        "model": str(Path(spec).resolve()) if is_path else str(spec),
        "encoder": config["encoder"],
        "fingerprint": _fingerprint(model),
    }
    return model, info


def pool_maps(maps: torch.Tensor, pool: str, grid: int = 1) -> torch.Tensor:
    """Pool feature maps over a ``grid x grid`` layout of cells.

    Args:
        maps: :math:`(N, C, h, w)`.
        pool: ``"avg"``, ``"max"`` or ``"gem"`` (generalised mean with p = :data:`GEM_P` of the
            values clamped at 1e-6; meant for non-negative maps such as ReLU outputs).
        grid: cells per side; 1 pools globally.

    Returns:
        :math:`(N, C \\cdot g^2)`, channel-major (all cells of channel 0 first).

    Examples:
        >>> pool_maps(torch.arange(8.0).view(1, 2, 2, 2), "avg")
        tensor([[1.5000, 5.5000]])
    """
    if pool == "avg":
        pooled = F.adaptive_avg_pool2d(maps, grid)
    elif pool == "max":
        pooled = F.adaptive_max_pool2d(maps, grid)
    elif pool == "gem":
        pooled = F.adaptive_avg_pool2d(maps.clamp(min=1e-6).pow(GEM_P), grid).pow(1.0 / GEM_P)
    else:
        raise FeatkitError(f"unknown pooling '{pool}'. Expected one of: {', '.join(POOLS)}")
    return pooled.flatten(1)


@torch.inference_mode()
def encode_images(
    model: AutoEncoder, images: Sequence[torch.Tensor], layer: str, pool: str = "avg", grid: int = 1, *,
    raw: bool = False, window: int | None = None, whiten: bool = True,
) -> list[np.ndarray]:  # fmt: skip
    """Features of images of any sizes; equally sized ones run as one batch.

    Args:
        model: the encoder (on its device, in eval mode).
        images: :math:`(3, H_i, W_i)` tensors in [-1, 1].
        layer: one of ``model.feature_info``.
        pool: ``avg | max | gem`` -> a :math:`(D g^2,)` vector per image; ``none`` -> the dense
            map, channels last: :math:`(h_i, w_i, D)`.
        grid: pooling grid (see :func:`pool_maps`).
        raw: the layer's activations themselves (D = C), instead of its local descriptors
            (:func:`featkit.descriptors.describe`).
        window, whiten: the descriptors' settings (ignored when ``raw``).

    Returns:
        One float32 array per image, in input order.
    """
    device = next(iter(model.parameters()), torch.empty(0)).device
    out: list[np.ndarray | None] = [None] * len(images)
    sizes = [tuple(im.shape[-2:]) for im in images]
    for bucket in size_buckets(sizes, None):
        h, w = sizes[bucket[0]]
        step = max(1, PIXELS_PER_FORWARD // (h * w))
        for first in range(0, len(bucket), step):
            batch = bucket[first : first + step]
            stacked = network_input(torch.stack([images[i] for i in batch]), device)
            if raw:
                maps = model.features(stacked, layer)
            else:
                maps = describe(model, stacked, layer=layer, window=window, whiten=whiten)
            rows = maps.permute(0, 2, 3, 1) if pool == "none" else pool_maps(maps, pool, grid)
            rows = rows.float().cpu().numpy()
            for i, r in zip(batch, rows):
                out[i] = r
    return out  # type: ignore[return-value]


# -- the features file --------------------------------------------------------------------------
def manifest_path(features: str | os.PathLike) -> Path:
    """``feats.npy`` -> ``feats.json``."""
    return Path(features).with_suffix(".json")


def _npy_header(rows: int, dim: int) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f4", "fortran_order": False, "shape": (rows, dim)})
    return buffer.getvalue()


def _npy_layout(path: Path) -> tuple[int, tuple[int, ...], np.dtype]:
    """(data offset, shape, dtype) of a .npy file, read from its header."""
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(fh)
            offset = fh.tell()
    except (OSError, ValueError) as exc:
        raise ShapeError(f"{path}: not a readable .npy file ({exc})") from exc
    if fortran:
        raise ShapeError(f"{path}: Fortran-ordered arrays are not supported; save with np.save(np.ascontiguousarray(x))")
    return offset, shape, dtype


def load_features(path: str | os.PathLike, *, mmap: bool = True) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Read a features file and the manifest beside it (``None`` for a plain .npy).

    Args:
        path: a ``.npy`` of shape :math:`(N, D)`.
        mmap: map the file instead of reading it into memory.

    Raises:
        ShapeError: a missing file, a file that is not 2-D float, or one that disagrees with
            its manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise ShapeError(f"{path}: no such features file")
    try:
        feats = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ShapeError(f"{path}: not a readable .npy file ({exc})") from exc
    if feats.ndim != 2 or not np.issubdtype(feats.dtype, np.floating):
        raise ShapeError(f"{path}: expected a 2-D float array (N, D), got {feats.ndim}-D {feats.dtype}")
    mpath = manifest_path(path)
    if not mpath.is_file():
        return feats, None
    try:
        manifest = read_json(mpath)
    except (OSError, json.JSONDecodeError) as exc:
        raise ShapeError(f"{mpath}: unreadable manifest ({exc})") from exc
    if manifest.get("rows") != feats.shape[0] or manifest.get("dim") != feats.shape[1]:
        raise ShapeError(
            f"{path} has shape {feats.shape} but {mpath} describes "
            f"({manifest.get('rows')}, {manifest.get('dim')}); they are from different runs"
        )
    return feats, manifest


def iter_feature_chunks(path: str | os.PathLike, chunk_rows: int = 65536) -> Iterator[np.ndarray]:
    """Read a 2-D float32 ``.npy`` in row blocks with plain file reads (no memory map), so
    memory stays at one block however large the file."""
    path = Path(path)
    offset, shape, dtype = _npy_layout(path)
    if len(shape) != 2 or dtype != np.float32:
        raise ShapeError(f"{path}: expected a 2-D float32 array, got shape {shape} of {dtype}")
    rows, dim = shape
    with open(path, "rb") as fh:
        fh.seek(offset)
        for start in range(0, rows, chunk_rows):
            n = min(chunk_rows, rows - start)
            block = np.fromfile(fh, dtype=np.float32, count=n * dim)
            if block.size != n * dim:
                raise ShapeError(f"{path}: truncated file (expected {rows} rows of {dim})")
            yield block.reshape(n, dim)


def class_labels(manifest: dict[str, Any]) -> tuple[np.ndarray, list[str]] | None:
    """Class of each row from the ImageFolder convention (``root/<class>/.../image``).

    Returns:
        ``(labels, class_names)`` with integer labels indexing ``class_names``, or ``None`` when
        some image does not sit in a class subfolder of the manifest's root, or the manifest
        describes dense features.
    """
    if manifest.get("pool") == "none" or manifest.get("kind") == "shards":
        return None
    root = Path(manifest["root"])
    names = []
    for item in manifest["items"]:
        parts = Path(item["path"]).relative_to(root).parts if Path(item["path"]).is_relative_to(root) else ()
        if len(parts) < 2:
            return None
        names.append(parts[0])
    classes = sorted(set(names))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[n] for n in names], dtype=np.int64), classes


# -- extraction ---------------------------------------------------------------------------------
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


class _PartialRun:
    """The hidden folder holding an unfinished extraction: appended rows, a log of finished
    files, and the settings that must match for ``resume``."""

    def __init__(self, out: Path, config: dict[str, Any]) -> None:
        self.dir = out.with_name(f".{out.name}.partial")
        self.config = config
        self.dim = config["dim"]
        self.records: list[dict[str, Any]] = []
        self._pending: list[dict[str, Any]] = []
        self._last_checkpoint = time.monotonic()

    def exists(self) -> bool:
        return self.dir.is_dir()

    def start(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        write_json(self.dir / _PARTIAL_CONFIG, self.config)
        (self.dir / _PARTIAL_ROWS).touch()
        (self.dir / _PARTIAL_LOG).touch()

    def reopen(self) -> None:
        """Load what an interrupted run finished and cut off anything written after it."""
        saved = read_json(self.dir / _PARTIAL_CONFIG)
        changed = sorted(k for k in set(saved) | set(self.config) if saved.get(k) != self.config.get(k))
        if changed:
            raise FeatkitError(
                f"cannot resume {self.dir}: it was started with different {', '.join(changed)}; "
                "pass --overwrite to start again"
            )
        for line in (self.dir / _PARTIAL_LOG).read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut short by the interruption: redo that file
            if record.get("index") != len(self.records):
                break
            self.records.append(record)
        rows = sum(r.get("rows", 0) for r in self.records)
        with open(self.dir / _PARTIAL_ROWS, "r+b") as fh:
            fh.truncate(rows * self.dim * 4)
        with open(self.dir / _PARTIAL_LOG, "w") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in self.records)

    def open(self) -> None:
        self._rows = open(self.dir / _PARTIAL_ROWS, "ab")
        self._log = open(self.dir / _PARTIAL_LOG, "a")

    def add(self, record: dict[str, Any], rows: np.ndarray | None) -> None:
        if rows is not None:
            self._rows.write(np.ascontiguousarray(rows, dtype="<f4").tobytes())
        self._pending.append(record)
        if time.monotonic() - self._last_checkpoint > CHECKPOINT_EVERY_S:
            self.checkpoint()

    def checkpoint(self) -> None:
        """Make the rows durable, then log the files they belong to."""
        self._rows.flush()
        os.fsync(self._rows.fileno())
        self._log.writelines(json.dumps(r) + "\n" for r in self._pending)
        self._log.flush()
        os.fsync(self._log.fileno())
        self.records += self._pending
        self._pending = []
        self._last_checkpoint = time.monotonic()

    def close(self) -> None:
        self.checkpoint()
        self._rows.close()
        self._log.close()

    def finish(self, out: Path, manifest: dict[str, Any]) -> None:
        """Write the final ``.npy`` (header + the appended rows) and the manifest, atomically."""
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as dst, open(self.dir / _PARTIAL_ROWS, "rb") as src:
                dst.write(_npy_header(manifest["rows"], self.dim))
                shutil.copyfileobj(src, dst, length=1 << 22)
        write_json(manifest_path(out), manifest)
        shutil.rmtree(self.dir, ignore_errors=True)


def extract(
    images: str | os.PathLike | Sequence[str | os.PathLike],
    model: str | os.PathLike,
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
            (:func:`featkit.pipeline.open_collection`).
        model: a run directory from ``featkit train``, ``timm:<name>``, a baseline (``pixels``,
            ``daisy``) or another registered encoder (random weights built from
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
    if out.suffix != ".npy":
        raise FeatkitError(f"output must be a .npy file, got {out}")
    if pool not in POOLS:
        raise FeatkitError(f"unknown pooling '{pool}'. Expected one of: {', '.join(POOLS)}")
    if grid is not None and grid < 1:
        raise FeatkitError(f"grid must be >= 1, got {grid}")
    if max_side is not None and max_side < 1:
        raise FeatkitError(f"max_side must be >= 1, got {max_side}")
    shard = parse_shard(shard)
    release_large_blocks()
    collection = open_collection(images)
    part = _shard_of(collection, shard)
    net, info = load_encoder(model, device)
    feature = net.layer_info(layer)
    grid = net.default_grid if grid is None else grid
    window = net.default_window if window is None else window
    if window < 1 or window % 2 == 0:
        raise FeatkitError(f"window must be a positive odd number of cells, got {window}")
    dim = feature.channels if raw else descriptor_dim(net, feature.name, window, whiten)
    whitened = not raw and whiten and whitening_for(net, feature.name, window) is not None
    config = {
        **info,
        "layer": feature.name,
        "channels": feature.channels,
        "stride": feature.stride,
        "pool": pool,
        "grid": None if pool == "none" else grid,
        "features": "activations" if raw else "descriptors",
        "window": None if raw else window,
        "whitened": whitened,
        "dim": dim if pool == "none" else dim * grid * grid,
        "max_side": max_side,
        "root": str(collection.root),
        "kind": collection.kind,
        "shard": list(shard) if shard else None,
        "collection": {"files": len(collection), "digest": collection.digest()},
    }
    if resume and not overwrite and out.exists() and manifest_path(out).exists():
        finished = read_json(manifest_path(out))
        if all(finished.get(k) == v for k, v in config.items()):
            return finished
    ensure_new(out, overwrite=overwrite, hint="pass --overwrite")

    partial = _PartialRun(out, config)
    if partial.exists() and not overwrite:
        if not resume:
            raise OutputExistsError(
                f"{partial.dir} holds an unfinished run for {out}; pass --resume to continue it "
                "or --overwrite to start again"
            )
        partial.reopen()
    else:
        partial.start()

    start = len(partial.records)
    rows_done = sum(r.get("rows", 0) for r in partial.records)
    if on_progress:
        on_progress(start, len(part))
    partial.open()
    try:
        workers = default_workers() if workers is None else workers
        for batch in image_batches(part.refs[start:], batch_size=batch_size, workers=workers, max_side=max_side):
            good = [item for item in batch if item.image is not None]
            feats = iter(encode_images(net, [item.image for item in good], feature.name, pool, grid, raw=raw,
                                       window=window, whiten=whiten))  # fmt: skip
            for item in batch:
                record: dict[str, Any] = {"index": start + item.index, "path": str(item.path)}
                if item.image is None:
                    partial.add({**record, "skipped": item.reason}, None)
                    continue
                rows = next(feats)
                record["original_size"] = list(item.original_size)
                record["size"] = [int(item.image.shape[-1]), int(item.image.shape[-2])]
                if pool == "none":
                    record.update(offset=rows_done, grid=list(rows.shape[:2]))
                    rows = rows.reshape(-1, rows.shape[-1])
                record["rows"] = rows.shape[0] if rows.ndim == 2 else 1
                rows_done += record["rows"]
                partial.add(record, rows)
            if on_progress:
                on_progress(start + batch[-1].index + 1, len(part))
    finally:
        partial.close()

    from featkit import __version__

    manifest = {
        "featkit_version": __version__,
        **config,
        "rows": rows_done,
        "dense": pool == "none",
        "items": [
            {k: v for k, v in r.items() if k not in ("index", "rows")} for r in partial.records if "skipped" not in r
        ],
        "skipped": [{"path": r["path"], "reason": r["skipped"]} for r in partial.records if "skipped" in r],
    }
    partial.finish(out, manifest)
    return manifest


def merge_features(
    parts: Sequence[str | os.PathLike], out: str | os.PathLike, *, overwrite: bool = False
) -> dict[str, Any]:
    """Join the shards of one collection (``extract(..., shard="i/n")`` for every ``i``) into
    the features one unsharded run would write, streaming (memory stays at one block).

    Raises:
        FeatkitError: a part that is not a shard, shards of different models, settings or
            collections, or a missing or repeated shard.
    """
    out = ensure_new(out, overwrite=overwrite)
    if out.suffix != ".npy":
        raise FeatkitError(f"output must be a .npy file, got {out}")
    manifests = []
    for part in parts:
        _, manifest = load_features(part)
        if manifest is None or not manifest.get("shard"):
            raise FeatkitError(f"{part} is not a shard (no manifest with 'shard' beside it; extract with --shard i/n)")
        manifests.append((manifest["shard"][0], Path(part), manifest))
    manifests.sort(key=lambda m: m[0])
    first = manifests[0][2]
    n = first["shard"][1]
    same = ("fingerprint", "layer", "pool", "grid", "dim", "max_side", "collection")
    for _, part, manifest in manifests[1:]:
        differ = [k for k in same if manifest.get(k) != first.get(k)]
        if differ:
            raise FeatkitError(f"{part} differs from {manifests[0][1]} in {', '.join(differ)}; shards must come from one run")
    got = [m[0] for m in manifests]
    if got != list(range(1, n + 1)):
        raise FeatkitError(f"need shards 1..{n} exactly once, got {', '.join(f'{i}/{n}' for i in got)}")

    items, skipped, rows = [], [], 0
    for _, _, manifest in manifests:
        for item in manifest["items"]:
            items.append({**item, "offset": item["offset"] + rows} if manifest["dense"] else item)
        skipped += manifest["skipped"]
        rows += manifest["rows"]
    with atomic_path(out) as tmp:
        with open(tmp, "wb") as dst:
            dst.write(_npy_header(rows, first["dim"]))
            for _, part, _ in manifests:
                for block in iter_feature_chunks(part):
                    dst.write(block.tobytes())
    merged = {**first, "shard": None, "rows": rows, "items": items, "skipped": skipped}
    write_json(manifest_path(out), merged)
    return merged
