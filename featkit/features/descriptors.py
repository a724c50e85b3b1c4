"""Local descriptors read out of a hidden layer: what ``featkit match`` compares and what
``featkit extract`` stores and pools.

The descriptor of cell ``(i, j)`` of a layer's map is made in four steps:

1. each cell's C channels are L2-normalised, so that no cell outweighs its neighbours by
   magnitude alone;
2. with a window ``w > 1`` the ``w x w`` cells around it are stacked (zeros beyond the border):
   :math:`C w^2` numbers that see ``w`` times the layer's stride further;
3. the stack is L2-normalised;
4. when the model carries a :class:`~featkit.runs.whitening.Whitening` fitted for this layer
   and window (every run that ``featkit train`` finishes has one, fitted on its own training
   images), the unit vector is centred, projected on the leading principal axes, scaled by
   :math:`1 / \\sqrt{\\lambda + \\epsilon}` and L2-normalised again: PCA-whitening, as is
   standard for retrieval descriptors (Jegou & Chum, ECCV 2012).

Cells whose map is zero (padding, a dead region) stay zero vectors, which callers drop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from featkit.encoders import AutoEncoder
from featkit.errors import FeatkitError
from featkit.runs.whitening import EMPTY_NORM, whitening_for

__all__ = ["describe", "descriptor_dim", "stack_cells"]


def stack_cells(maps: torch.Tensor, window: int, normalise: bool = True) -> torch.Tensor:
    """Steps 1-3: per-cell L2, ``window x window`` stacking, L2.

    Args:
        maps: :math:`(N, C, h, w)` hidden-layer maps.
        window: odd number of cells per side.
        normalise: ``False`` skips both L2 steps (stacked raw values).

    Returns:
        :math:`(N, C w^2, h, w)`: unit vectors (zero where a whole window is empty), or raw
        stacked values when ``normalise`` is false.

    Raises:
        FeatkitError: ``window`` is not a positive odd number.
    """
    if window < 1 or window % 2 == 0:
        raise FeatkitError(f"window must be a positive odd number of cells, got {window}")
    unit = F.normalize(maps, dim=1, eps=EMPTY_NORM) if normalise else maps
    if window > 1:
        n, _, h, w = unit.shape
        unit = F.unfold(unit, window, padding=window // 2).view(n, -1, h, w)
        unit = F.normalize(unit, dim=1, eps=EMPTY_NORM) if normalise else unit
    return unit


def descriptor_dim(model: AutoEncoder, layer: str | None = None, window: int | None = None,
                   whiten: bool = True) -> int:  # fmt: skip
    """The length of :func:`describe`'s vectors for these settings."""
    info = model.layer_info(layer)
    window = model.default_window if window is None else window
    whitening = whitening_for(model, info.name, window) if whiten else None
    return whitening.dim if whitening is not None else info.channels * window * window


def describe(
    model: AutoEncoder, images: torch.Tensor, *, layer: str | None = None, window: int | None = None,
    whiten: bool = True,
) -> torch.Tensor:  # fmt: skip
    """Dense local descriptors of a batch of images.

    Args:
        model: the encoder; its ``whitening`` attribute (set when a run directory is loaded)
            is applied when it was fitted for this layer and window and ``whiten`` is true.
        images: :math:`(N, 3, H, W)` in [-1, 1], on the model's device.
        layer: a name of ``model.feature_info``; default ``model.default_layer``.
        window: odd cells per side; default ``model.default_window``.
        whiten: apply the model's whitening when it fits.

    Returns:
        :math:`(N, D, h, w)` float32 unit vectors on the layer's grid (zero for empty cells;
        raw stacked values for an encoder with ``normalise_cells = False``),
        :math:`D` = :func:`descriptor_dim`.
    """
    info = model.layer_info(layer)
    window = model.default_window if window is None else window
    units = stack_cells(model.features(images, info.name).float(), window, model.normalise_cells)
    whitening = whitening_for(model, info.name, window) if whiten else None
    return units if whitening is None else whitening.apply(units)
