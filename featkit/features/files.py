"""Feature files: ``feats.npy`` (float32 rows) and its manifest ``feats.json``, read whole or in
chunks of bounded memory."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from featkit.errors import ShapeError
from featkit.io import read_json

__all__ = ["class_labels", "iter_feature_chunks", "load_features", "manifest_path"]


def manifest_path(features: str | os.PathLike) -> Path:
    """``feats.npy`` -> ``feats.json``."""
    return Path(features).with_suffix(".json")


def npy_header(rows: int, dim: int) -> bytes:
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
