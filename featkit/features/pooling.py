"""Pooling a feature map into one row per image: average, max or generalised mean (GeM) over a
``grid x grid`` layout of cells."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from featkit.choices import POOLS
from featkit.errors import FeatkitError

__all__ = ["GEM_P", "pool_maps"]


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
    if pool == "avg":
        pooled = F.adaptive_avg_pool2d(maps, grid)
    elif pool == "max":
        pooled = F.adaptive_max_pool2d(maps, grid)
    elif pool == "gem":
        pooled = F.adaptive_avg_pool2d(maps.clamp(min=1e-6).pow(GEM_P), grid).pow(1.0 / GEM_P)
    else:
        raise FeatkitError(f"unknown pooling '{pool}'. Expected one of: {', '.join(POOLS)}")
    return pooled.flatten(1)
