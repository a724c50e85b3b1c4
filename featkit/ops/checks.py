"""Input checks with messages that say what was expected (kornia's KORNIA_CHECK spirit)."""

from __future__ import annotations

import torch

from featkit.errors import ShapeError

__all__ = ["check_image_batch", "check_same_shape"]


def check_image_batch(x: torch.Tensor, name: str = "input", *, min_channels: int = 1) -> None:
    """Check that ``x`` is a floating (N, C, H, W) tensor with finite values.

    Raises:
        ShapeError: naming ``name`` and what was wrong.
    """
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ShapeError(f"{name} must have shape (N, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ShapeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if x.shape[1] < min_channels:
        raise ShapeError(f"{name} needs at least {min_channels} channels, got {x.shape[1]}")
    if min(x.shape) == 0:
        raise ShapeError(f"{name} is empty: shape {tuple(x.shape)}")
    # one reduction on the fast path: a finite sum means finite values (NaN and inf propagate);
    # only a non-finite sum (which may also be an overflow) pays for the exact check
    if not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        raise ShapeError(f"{name} contains NaN or infinite values")


def check_same_shape(
    a: torch.Tensor, b: torch.Tensor, names: tuple[str, str] = ("output", "target")
) -> None:
    """Check that two tensors have identical shapes.

    Raises:
        ShapeError: with both shapes.
    """
    if a.shape != b.shape:
        raise ShapeError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}"
        )
