"""Model files: safetensors weights plus a JSON config naming the encoder and its arguments.

A run directory (from ``featkit train``) holds ``config.json`` and ``model.safetensors``.
Nothing is ever unpickled: weights are safetensors, everything else JSON. :func:`load_model`
also accepts registry names (``timm:<model>``, ``pixels``, ``paper-cae``) for baselines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from featkit.encoders import AutoEncoder, create_encoder
from featkit.errors import CheckpointError, FeatkitError
from featkit.io import atomic_path, read_json

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "load_model", "load_tensors", "save_model", "save_tensors"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, Any] | None = None) -> None:
    """Write tensors (and JSON metadata) to a safetensors file atomically."""
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"featkit": json.dumps(metadata or {})}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=meta)


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
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("featkit", "{}"))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({exc})") from exc
    for name, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: tensor '{name}' holds NaN or infinite values")
    return tensors, meta


def save_model(run_dir: str | os.PathLike, model: AutoEncoder) -> Path:
    """Write ``model.safetensors`` into ``run_dir`` (atomically); returns its path."""
    path = Path(run_dir) / WEIGHTS_FILE
    save_tensors(path, model.state_dict(), {"encoder": model.config})
    return path


def _from_run_dir(run_dir: Path) -> tuple[AutoEncoder, dict[str, Any]]:
    config_path, weights_path = run_dir / CONFIG_FILE, run_dir / WEIGHTS_FILE
    if not config_path.is_file():
        raise CheckpointError(f"{run_dir}: not a featkit run directory (no {CONFIG_FILE})")
    try:
        config = read_json(config_path)
        encoder = config["encoder"]
        name, args = encoder["name"], encoder.get("args", {})
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{config_path}: unreadable run config ({exc})") from exc
    tensors, meta = load_tensors(weights_path)
    if meta.get("encoder", {}).get("name", name) != name:
        raise CheckpointError(
            f"{weights_path}: weights of encoder '{meta['encoder']['name']}' but {config_path} names '{name}'"
        )
    model = create_encoder(name, **args)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise CheckpointError(f"{weights_path}: weights do not fit encoder '{name}' ({first[-1].strip() if first else exc})") from exc
    return model, config


def load_model(spec: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[AutoEncoder, dict[str, Any]]:
    """Rebuild a model for feature extraction, in eval mode.

    Args:
        spec: a run directory from ``featkit train``; or a registry name such as
            ``timm:resnet18`` (random weights), ``pixels`` or ``paper-cae`` (random init).
        device: where to put it.

    Returns:
        ``(model, config)``; ``config`` is the run's ``config.json`` or ``{"encoder": ...}``.

    Raises:
        CheckpointError: a run directory that is incomplete, corrupt or for another model.
        UnknownNameError: a name that is neither a directory nor a registered encoder.
    """
    path = Path(spec)
    if path.is_dir():
        model, config = _from_run_dir(path)
    elif path.suffix in (".safetensors", ".json") and path.exists():
        model, config = _from_run_dir(path.parent)
    else:
        try:
            model = create_encoder(str(spec))
        except FeatkitError as exc:
            raise type(exc)(f"'{spec}' is neither a run directory nor an encoder: {exc}") from exc
        config = {"encoder": model.config}
    return model.to(device).eval(), config
