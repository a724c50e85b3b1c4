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

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from featkit.encoders import AutoEncoder
from featkit.errors import FeatkitError
from featkit.runs.whitening import EMPTY_NORM, Whitening, whitening_for

__all__ = ["STRIP_BYTES", "describe", "describe_strips", "descriptor_dim", "stack_cells", "whitened_cells", "whitened_strips"]


#: Bytes of one strip of :func:`whitened_strips`: small enough for the CPU's caches to hold it
#: from the convolution to the normalisation (16 rows of a 1024 x 768 image's conv2 map).
STRIP_BYTES = 4 << 20


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
    maps, window, whitening = _layer_maps(model, images, layer, window, whiten)
    if whitening is not None and model.normalise_cells:
        return whitened_cells(maps, whitening)
    units = stack_cells(maps, window, model.normalise_cells)
    return units if whitening is None else whitening.apply(units)


def describe_strips(
    model: AutoEncoder, images: torch.Tensor, *, layer: str | None = None, window: int | None = None,
    whiten: bool = True,
) -> Iterator[torch.Tensor]:  # fmt: skip
    """:func:`describe`'s maps in consecutive strips of rows, for reductions such as pooling
    that need not hold the whole map: whitened descriptors come as :func:`whitened_strips`,
    any others as one strip.

    Yields:
        :math:`(N, D, r, w)` strips whose rows, concatenated, are :func:`describe`'s.
    """
    maps, window, whitening = _layer_maps(model, images, layer, window, whiten)
    if whitening is not None and model.normalise_cells:
        yield from whitened_strips(maps, whitening)
        return
    units = stack_cells(maps, window, model.normalise_cells)
    yield units if whitening is None else whitening.apply(units)


def _layer_maps(model: AutoEncoder, images: torch.Tensor, layer: str | None, window: int | None,
                whiten: bool) -> tuple[torch.Tensor, int, Whitening | None]:  # fmt: skip
    """The layer's float32 maps, the window and the whitening that applies (or ``None``)."""
    info = model.layer_info(layer)
    window = model.default_window if window is None else window
    whitening = whitening_for(model, info.name, window) if whiten else None
    return model.features(images, info.name).float(), window, whitening


def whitened_cells(maps: torch.Tensor, whitening: Whitening) -> torch.Tensor:
    """Steps 1-4 as one convolution: what ``whitening.apply(stack_cells(maps, w))`` gives, to
    float32 rounding, without building the :math:`C w^2`-long stacks (:func:`whitened_strips`
    written into one map).

    Args:
        maps: :math:`(N, C, h, w)` hidden-layer maps.
        whitening: fitted for this layer, ``D = C * whitening.window**2``.

    Returns:
        :math:`(N, K, h, w)` unit vectors in channels-last memory; empty windows are zero.
    """
    n, _, h, w = maps.shape
    cells = torch.empty(n, whitening.dim, h, w, dtype=maps.dtype, device=maps.device, memory_format=torch.channels_last)
    first = 0
    for strip in whitened_strips(maps, whitening):
        cells[:, :, first : first + strip.shape[2]] = strip
        first += strip.shape[2]
    return cells


def whitened_strips(maps: torch.Tensor, whitening: Whitening) -> Iterator[torch.Tensor]:
    """Steps 1-4 as one convolution, a strip of rows at a time.

    The stack of a window is the per-cell units divided by the window's norm ``s``, the square
    root of the window sum of the cells' squared norms; so the projected stack is the
    projection's convolution of the units (:meth:`Whitening.as_convolution`) divided by ``s``,
    plus the centring bias ``b``. As ``normalise(P v / s + b) = normalise(P v + s b)`` for
    ``s > 0``, the convolution takes ``s`` as one more input channel with ``b`` as its centre
    tap, and its output only needs normalising. Strips of :data:`STRIP_BYTES` keep that output
    in the CPU's caches from the convolution to the normalisation (2.5x faster than whole maps
    at 1024 x 768, ``bench/bench_readout.py``).

    Args:
        maps: :math:`(N, C, h, w)` hidden-layer maps.
        whitening: fitted for this layer, ``D = C * whitening.window**2``.

    Yields:
        :math:`(N, K, r, w)` unit vectors in channels-last memory, consecutive rows from the
        top (empty windows are zero).
    """
    # channels-last: each cell's numbers are contiguous, so reductions over channels read memory
    # once (20x faster than over NCHW planes for a 16-channel map at 1024 x 768)
    maps = maps.contiguous(memory_format=torch.channels_last)
    n, c, h, w = maps.shape
    size, pad = whitening.window, whitening.window // 2
    length = torch.linalg.vector_norm(maps, dim=1, keepdim=True)
    cell_norm = length.clamp(min=EMPTY_NORM)
    squares = (length / cell_norm).square()  # of the units: 1, or less for a cell near zero
    norm = F.avg_pool2d(squares, size, stride=1, padding=pad, divisor_override=1).sqrt()  # window sums
    kept = (norm >= EMPTY_NORM).to(maps.dtype)
    # the convolution's input: the units and the window norms, with pad zero rows above and below
    inputs = torch.empty(n, c + 1, h + 2 * pad, w, dtype=maps.dtype, device=maps.device,
                         memory_format=torch.channels_last)  # fmt: skip
    inputs[:, :, :pad] = inputs[:, :, pad + h :] = 0.0
    torch.div(maps, cell_norm, out=inputs[:, :c, pad : pad + h])
    inputs[:, c:, pad : pad + h] = norm.clamp(min=EMPTY_NORM)
    projection, bias = (t.to(maps.device, maps.dtype) for t in whitening.as_convolution(c))
    weight = projection.new_zeros(whitening.dim, c + 1, size, size)
    weight[:, :c] = projection
    weight[:, c, pad, pad] = bias
    weight = weight.contiguous(memory_format=torch.channels_last)
    rows = max(1, STRIP_BYTES // (4 * n * w * whitening.dim))
    for first in range(0, h, rows):
        last = min(h, first + rows)
        projected = F.conv2d(inputs[:, :, first : last + 2 * pad], weight, padding=(0, pad))
        length = torch.linalg.vector_norm(projected, dim=1, keepdim=True).clamp(min=EMPTY_NORM)
        yield projected.mul_(kept[:, :, first:last] / length)
