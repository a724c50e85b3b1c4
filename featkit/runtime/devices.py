"""Choosing where to run: ``auto`` means CUDA when present, else the CPU."""

from __future__ import annotations

import torch

from featkit.errors import FeatkitError

__all__ = ["network_input", "resolve_device"]


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


def network_input(batch: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A :math:`(N, C, H, W)` batch on ``device`` in channels-last memory layout.

    Values and shape are unchanged; only the layout is. Convolutions take oneDNN's fast path
    on the CPU with it: a full-batch epoch of ``bench/bench_train.py`` ran 1.4x faster here
    (1.74 s -> 1.24 s on 2 threads), extraction of 128 px images 1.7x.
    """
    return batch.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
