"""Pooling a feature map into one row per image: average, max or generalised mean (GeM) over a
``grid x grid`` layout of cells."""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn.functional as F

from featkit.choices import POOLS
from featkit.errors import FeatkitError

__all__ = ["GEM_P", "pool_maps", "pool_strips"]


#: Exponent of generalised-mean pooling (Radenović et al.); 1 is average, infinity is max.
GEM_P = 3.0


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
    return pool_strips([maps], pool, grid)


def pool_strips(strips: Iterable[torch.Tensor], pool: str, grid: int = 1) -> torch.Tensor:
    """:func:`pool_maps` of the map whose consecutive strips of rows these are, holding one
    strip at a time: each region of the grid is pooled within every row first (a region's
    mean is the mean of its rows' means; its maximum the maximum of theirs), then over rows.

    Args:
        strips: :math:`(N, C, r_k, w)` strips, top to bottom.
        pool, grid: as :func:`pool_maps` takes them.

    Returns:
        :math:`(N, C \\cdot g^2)`, as :func:`pool_maps` returns.
    """
    if pool not in ("avg", "max", "gem"):
        raise FeatkitError(f"unknown pooling '{pool}'. Expected one of: {', '.join(POOLS)}")
    rows = torch.cat([_pool_within_rows(strip, pool, grid) for strip in strips], dim=2)  # (N, C, h, g)
    if pool == "max":
        return F.adaptive_max_pool2d(rows, grid).flatten(1)
    pooled = F.adaptive_avg_pool2d(rows, grid)
    return (pooled.pow(1.0 / GEM_P) if pool == "gem" else pooled).flatten(1)


def _pool_within_rows(strip: torch.Tensor, pool: str, grid: int) -> torch.Tensor:
    """:math:`(N, C, r, w)` -> :math:`(N, C, r, g)`: each row pooled over the grid's columns
    (for ``gem``, the mean of the clamped p-th powers)."""
    size = (strip.shape[2], grid)
    if pool == "max":
        return F.adaptive_max_pool2d(strip, size)
    if pool == "gem":
        strip = strip.clamp(min=1e-6).pow(GEM_P)
    return F.adaptive_avg_pool2d(strip, size)
