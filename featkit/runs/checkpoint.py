"""Training state in a run directory: weights, optimizer, RNG and position, in
``checkpoint.safetensors`` with the previous one kept as a fallback, so ``resume`` continues
exactly."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch

from featkit.errors import CheckpointError, FeatkitWarning
from featkit.io import atomic_path
from featkit.runs.tensors import load_tensors, save_tensors

__all__ = ["CHECKPOINT_FILE", "PREVIOUS_CHECKPOINT_FILE", "load_checkpoint", "remove_stale_temp_files", "save_checkpoint"]


#: Training state (weights, optimizer, RNG, position) written by ``featkit train``.
CHECKPOINT_FILE = "checkpoint.safetensors"
#: The checkpoint before the newest, kept as a fallback.
PREVIOUS_CHECKPOINT_FILE = "checkpoint.prev.safetensors"


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
