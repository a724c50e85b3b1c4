"""Tensor files: safetensors written atomically with JSON metadata and a digest, read back with
every failure a :class:`~featkit.errors.CheckpointError`. Nothing is ever unpickled."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from featkit.errors import CheckpointError
from featkit.io import atomic_path

__all__ = ["load_tensors", "save_tensors"]


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Write tensors (and JSON metadata) to a safetensors file atomically.

    Raises:
        CheckpointError: if a floating-point tensor holds NaN or infinite values (nothing is
            written, so a non-finite checkpoint never reaches the disk).
    """
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    bad = _first_non_finite(tensors)
    if bad is not None:
        raise CheckpointError(f"{path}: refusing to write tensor '{bad}' with NaN or infinite values")
    meta = {"featkit": json.dumps(metadata or {}), "sha256": _digest(tensors)}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def _first_non_finite(tensors: dict[str, torch.Tensor]) -> str | None:
    """Name of the first floating-point tensor holding NaN or infinity, else ``None``."""
    return next((n for n, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())), None)


def _digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes: safetensors has no checksum
    of its own, so a flipped bit in the data would otherwise load silently."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_tensors(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_tensors`.

    Raises:
        CheckpointError: naming the file when it is missing, truncated or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as fh:
            header = fh.metadata() or {}
        meta = json.loads(header.get("featkit", "{}"))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({reason})") from exc
    if "sha256" in header and header["sha256"] != _digest(tensors):
        raise CheckpointError(f"{path}: corrupt checkpoint (its data does not match its SHA-256 checksum)")
    bad = _first_non_finite(tensors)
    if bad is not None:
        raise CheckpointError(f"{path}: tensor '{bad}' holds NaN or infinite values")
    return tensors, meta
