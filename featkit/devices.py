"""Choosing where to run: ``auto`` means CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from featkit.errors import FeatkitError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device, local_rank: int | None = None) -> torch.device:
    """Turn a user's device string into a :class:`torch.device`.

    Args:
        device: ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
        local_rank: under ``torchrun``, the process's GPU for a bare ``"cuda"``.

    Raises:
        FeatkitError: for a device torch does not know, or CUDA asked for but not available.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise FeatkitError(f"unknown device '{device}' (expected auto, cpu, cuda, cuda:1 ...)") from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise FeatkitError(f"device '{device}' requested but CUDA is not available; use --device cpu")
        if resolved.index is None and local_rank is not None:
            resolved = torch.device("cuda", local_rank)
    return resolved
