"""Model files: safetensors weights plus a JSON config naming the encoder and its arguments.

A run directory (from ``featkit train``) holds ``config.json`` and ``model.safetensors``.
Nothing is ever unpickled: weights are safetensors, everything else JSON. :func:`load_model`
also accepts registry names (``timm:<model>``, ``pixels``, ``paper-cae``) for baselines.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from featkit.encoders import AutoEncoder, create_encoder
from featkit.errors import CheckpointError, FeatkitError, FeatkitWarning
from featkit.io import atomic_path, read_json

__all__ = [
    "CHECKPOINT_FILE",
    "CONFIG_FILE",
    "PREVIOUS_CHECKPOINT_FILE",
    "WEIGHTS_FILE",
    "load_checkpoint",
    "load_model",
    "load_tensors",
    "remove_stale_temp_files",
    "save_checkpoint",
    "save_model",
    "save_tensors",
]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
#: Training state (weights, optimizer, RNG, position) written by ``featkit train``.
CHECKPOINT_FILE = "checkpoint.safetensors"
#: The checkpoint before the newest, kept as a fallback.
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.safetensors"


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


def save_model(run_dir: str | os.PathLike, model: AutoEncoder) -> Path:
    """Write ``model.safetensors`` into ``run_dir`` (atomically); returns its path."""
    path = Path(run_dir) / WEIGHTS_FILE
    save_tensors(path, model.state_dict(), {"encoder": model.config})
    return path


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer ``state_dict`` into tensors and JSON: no pickle needed."""
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, index, key = name.split("/", 2)
        state.setdefault(int(index), {})[key] = value
    for index, entries in meta["scalars"].items():
        state.setdefault(int(index), {}).update(entries)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: str | os.PathLike,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: dict[str, torch.Tensor],
    meta: dict[str, Any],
) -> Path:
    """Write the training state to ``run_dir/checkpoint.safetensors``, keeping the one before.

    The new file is first written in full under a temporary name; then the current checkpoint
    is linked (or copied) to ``checkpoint.prev.safetensors`` and the new one renamed over it,
    so ``checkpoint.safetensors`` is complete at every moment, even under ``kill -9``, and the
    previous one survives as a fallback.

    Args:
        run_dir: the run directory.
        model: its weights are saved under ``model/<name>``.
        optimizer: state tensors under ``optimizer/<param>/<key>``, the rest as JSON.
        rng: generator states (uint8 tensors) under ``rng/<name>``.
        meta: JSON-serialisable position and bookkeeping (epoch, step, ...).

    Raises:
        CheckpointError: if any weight or optimizer tensor is NaN or infinite.
    """
    run_dir = Path(run_dir)
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    tensors.update(opt_tensors)
    tensors.update({f"rng/{k}": v for k, v in rng.items()})
    path, previous = run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_CHECKPOINT_FILE
    staged = run_dir / f".{CHECKPOINT_FILE}.staged"
    save_tensors(staged, tensors, {**meta, "optimizer": opt_meta})
    if path.exists():  # keep the newest in place while it becomes the previous one
        with atomic_path(previous) as tmp:
            tmp.unlink()
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
    os.replace(staged, path)
    return path


def remove_stale_temp_files(run_dir: str | os.PathLike) -> list[Path]:
    """Delete what interrupted writes left in ``run_dir`` (``.*.tmp``, a staged checkpoint);
    returns the removed paths. Complete files are never touched."""
    run_dir = Path(run_dir)
    stale = [*run_dir.glob(".*.tmp"), *run_dir.glob("*/.*.tmp"), *run_dir.glob(f".{CHECKPOINT_FILE}.staged")]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def load_checkpoint(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read the newest training checkpoint of ``run_dir``.

    Returns:
        ``{"model": state_dict, "optimizer": state_dict, "rng": {name: tensor}, "meta": dict,
        "path": Path}``.

    When the newest checkpoint is missing or corrupt (truncated, bit-flipped) and the previous
    one is good, that one is used and a :class:`~featkit.errors.FeatkitWarning` says so.

    Raises:
        CheckpointError: naming the files when neither checkpoint can be read.
    """
    run_dir = Path(run_dir)
    path, previous = run_dir / CHECKPOINT_FILE, run_dir / PREVIOUS_CHECKPOINT_FILE
    try:
        tensors, meta = load_tensors(path)
    except CheckpointError as exc:
        if not previous.is_file():
            raise CheckpointError(f"cannot resume {run_dir}: {exc}") from exc
        try:
            tensors, meta = load_tensors(previous)
        except CheckpointError as older:
            raise CheckpointError(f"cannot resume {run_dir}: {exc}; and {older}") from older
        warnings.warn(FeatkitWarning(f"{exc}; resuming from the previous checkpoint {previous} instead"), stacklevel=2)
        path = previous
    groups: dict[str, dict[str, torch.Tensor]] = {"model": {}, "optimizer": {}, "rng": {}}
    for name, value in tensors.items():
        kind, _, rest = name.partition("/")
        groups[kind][rest if kind != "optimizer" else name] = value
    return {
        "model": groups["model"],
        "optimizer": _unflatten_optimizer(groups["optimizer"], meta.pop("optimizer")),
        "rng": groups["rng"],
        "meta": meta,
        "path": path,
    }


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
    _attach_whitening(model, run_dir)
    return model, config


def _attach_whitening(model: AutoEncoder, run_dir: Path) -> None:
    """Give ``model`` the run's descriptor whitening (``model.whitening``) when it has one."""
    from featkit.descriptors import WHITENING_FILE, Whitening  # descriptors builds on this module

    path = run_dir / WHITENING_FILE
    if not path.is_file():
        return
    whitening = Whitening.load(path)
    info = {i.name: i for i in model.feature_info}.get(whitening.layer)
    if info is None or whitening.mean.numel() != info.channels * whitening.window**2:
        raise CheckpointError(f"{path}: a whitening for another model (layer '{whitening.layer}', "
                              f"{whitening.mean.numel()} numbers per descriptor)")  # fmt: skip
    model.whitening = whitening


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
