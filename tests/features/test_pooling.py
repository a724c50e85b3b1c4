"""featkit.features.pooling: pooling maps whole or strip by strip."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from featkit.errors import FeatkitError
from featkit.features.pooling import GEM_P, pool_maps, pool_strips
from tests.rounding import assert_rows_close


def _adaptive(maps: torch.Tensor, pool: str, grid: int) -> torch.Tensor:
    """The definition: each region of the grid pooled in one step."""
    if pool == "max":
        return F.adaptive_max_pool2d(maps, grid).flatten(1)
    if pool == "gem":
        return F.adaptive_avg_pool2d(maps.clamp(min=1e-6).pow(GEM_P), grid).pow(1 / GEM_P).flatten(1)
    return F.adaptive_avg_pool2d(maps, grid).flatten(1)


@pytest.mark.parametrize("grid", [1, 3])
@pytest.mark.parametrize("pool", ["avg", "max", "gem"])
def test_pooling_strip_by_strip_equals_pooling_the_whole_map(pool, grid):
    torch.manual_seed(0)
    maps = torch.rand(2, 4, 23, 17)
    expected = _adaptive(maps, pool, grid)
    whole = pool_maps(maps, pool, grid)
    strips = pool_strips(maps.split([5, 1, 9, 8], dim=2), pool, grid)
    assert whole.shape == strips.shape == (2, 4 * grid * grid)
    # a region mean in two steps (rows, then their mean) against one: sums of at most 23 x 17 terms
    for got in (whole, strips):
        assert_rows_close(got.numpy(), expected.numpy(), terms=23 * 17)


def test_an_unknown_pooling_is_named():
    with pytest.raises(FeatkitError, match="unknown pooling 'mean'"):
        pool_maps(torch.rand(1, 2, 3, 3), "mean")
