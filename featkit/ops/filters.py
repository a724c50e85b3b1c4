"""Fixed-kernel filtering: sampled Gaussian and Laplacian-of-Gaussian kernels, and the one
place featkit convolves an image with a fixed kernel.

The normalised LoG of the paper (eq. 5) is

.. math::
    \\sigma^2 \\nabla^2 g(x, y) = -\\left(2 - \\frac{x^2 + y^2}{\\sigma^2}\\right) g(x, y),
    \\qquad g(x, y) = \\frac{1}{2\\pi\\sigma^2} e^{-(x^2 + y^2) / (2\\sigma^2)}

and its samples are exactly a sum of two outer products of 1-D kernels,
``K[y, x] = h(y) g(x) + g(y) h(x)`` with ``g(t) = exp(-t^2 / 2 sigma^2) / (sqrt(2 pi) sigma)``
and ``h(t) = (t^2 / sigma^2 - 1) g(t)``, so a k x k LoG costs four 1-D passes of k taps
instead of k^2 multiply-adds per pixel, with identical values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from featkit.errors import ShapeError

__all__ = [
    "PADDING_MODES",
    "LoGFilterBank",
    "filter2d",
    "gaussian_kernel1d",
    "kernel_size_for_sigma",
    "log_filter_bank",
    "log_kernel1d_pair",
    "log_kernel2d",
]

#: Border handling accepted by the filters: ``zeros`` is the paper's (a conv layer's padding).
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def kernel_size_for_sigma(sigma: float) -> int:
    """Kernel size of section 4: ``ceil(8 sigma)``, plus 1 when that is even.

    Examples:
        >>> [kernel_size_for_sigma(s) for s in (0.8, 1.6, 3.2)]
        [7, 13, 27]
    """
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    size = math.ceil(round(8.0 * sigma, 9))
    return size + 1 if size % 2 == 0 else size


def _taps(size: int, *, device: torch.device | None, dtype: torch.dtype) -> torch.Tensor:
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    half = size // 2
    return torch.arange(-half, half + 1, device=device, dtype=dtype)


def gaussian_kernel1d(
    sigma: float,
    size: int | None = None,
    *,
    normalize: bool = False,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Samples of the 1-D Gaussian ``exp(-t^2 / 2 sigma^2) / (sqrt(2 pi) sigma)``.

    Args:
        sigma: the scale, > 0.
        size: odd number of taps; default :func:`kernel_size_for_sigma`.
        normalize: rescale the taps to sum to 1 (a blur that keeps the mean).

    Returns:
        Tensor of shape :math:`(k,)`.
    """
    size = kernel_size_for_sigma(sigma) if size is None else size
    t = _taps(size, device=device, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2.0 * sigma**2)) / (math.sqrt(2.0 * math.pi) * sigma)
    if normalize:
        g = g / g.sum()
    return g.to(dtype)


def log_kernel1d_pair(
    sigma: float,
    size: int | None = None,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 1-D factors ``(g, h)`` of the sampled normalised LoG: ``K = h g^T + g h^T``.

    Returns:
        Two tensors of shape :math:`(k,)`.
    """
    size = kernel_size_for_sigma(sigma) if size is None else size
    t = _taps(size, device=device, dtype=torch.float64)
    g = gaussian_kernel1d(sigma, size, device=device, dtype=torch.float64)
    h = (t**2 / sigma**2 - 1.0) * g
    return g.to(dtype), h.to(dtype)


def log_kernel2d(
    sigma: float,
    size: int | None = None,
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Dense samples of eq. 5, ``-(2 - (x^2 + y^2) / sigma^2) g(x, y)``.

    Returns:
        Tensor of shape :math:`(k, k)`, indexed ``[y, x]``.

    Examples:
        >>> log_kernel2d(0.8).shape
        torch.Size([7, 7])
    """
    size = kernel_size_for_sigma(sigma) if size is None else size
    t = _taps(size, device=device, dtype=torch.float64)
    r2 = t[:, None] ** 2 + t[None, :] ** 2
    g = torch.exp(-r2 / (2.0 * sigma**2)) / (2.0 * math.pi * sigma**2)
    return (-(2.0 - r2 / sigma**2) * g).to(dtype)


def _pad(x: torch.Tensor, pad_y: int, pad_x: int, padding_mode: str) -> torch.Tensor:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"invalid padding mode '{padding_mode}'. Expected one of {PADDING_MODES}")
    pads = (pad_x, pad_x, pad_y, pad_y)
    if padding_mode == "zeros":
        return F.pad(x, pads)
    if padding_mode == "reflect" and (pad_y >= x.shape[-2] or pad_x >= x.shape[-1]):
        raise ShapeError(
            f"reflect padding of {max(pad_x, pad_y)} needs images larger than that, got "
            f"{tuple(x.shape[-2:])}; use padding 'zeros' or 'replicate'"
        )
    return F.pad(x, pads, mode=padding_mode)


def filter2d(x: torch.Tensor, kernel: torch.Tensor, padding_mode: str = "zeros") -> torch.Tensor:
    """Correlate every channel of ``x`` with the same dense 2-D kernel, keeping the size.

    Args:
        x: images of shape :math:`(N, C, H, W)`.
        kernel: odd-sized kernel of shape :math:`(k_y, k_x)`.
        padding_mode: one of :data:`PADDING_MODES`.

    Returns:
        Tensor of shape :math:`(N, C, H, W)`.
    """
    ky, kx = kernel.shape
    c = x.shape[1]
    weight = kernel.to(x).expand(c, 1, ky, kx)
    return F.conv2d(_pad(x, ky // 2, kx // 2, padding_mode), weight, groups=c)


def _bank_weights(
    sigmas: Sequence[float], *, device: torch.device | None, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column kernels for all scales, zero-extended to the largest size.

    Returns ``(rows, cols)`` of shapes (2S, 1, 1, K) and (2S, 1, K, 1): output channel
    ``2s`` is g_x * h_y and ``2s + 1`` is h_x * g_y for scale ``s``.
    """
    size = max(kernel_size_for_sigma(s) for s in sigmas)
    rows, cols = [], []
    for sigma in sigmas:
        k = kernel_size_for_sigma(sigma)
        g, h = log_kernel1d_pair(sigma, k, device=device, dtype=torch.float64)
        pad = (size - k) // 2
        g, h = F.pad(g, (pad, pad)), F.pad(h, (pad, pad))
        rows += [g, h]
        cols += [h, g]
    rows_t = torch.stack(rows).to(dtype).view(-1, 1, 1, size)
    cols_t = torch.stack(cols).to(dtype).view(-1, 1, size, 1)
    return rows_t, cols_t


def log_filter_bank(
    x: torch.Tensor,
    sigmas: Sequence[float] = (0.8, 1.6, 3.2),
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Responses of a bank of normalised LoG filters (eq. 5), one band per scale, per channel.

    Exactly equal to correlating each channel with :func:`log_kernel2d` of each scale, computed
    with separable 1-D passes after padding once.

    Args:
        x: images of shape :math:`(N, C, H, W)`.
        sigmas: the scales, one output band each.
        padding_mode: border handling, one of :data:`PADDING_MODES` (``zeros`` as a conv layer).

    Returns:
        Tensor of shape :math:`(N, C, S, H, W)` with ``S = len(sigmas)``.

    Examples:
        >>> log_filter_bank(torch.zeros(2, 3, 5, 4)).shape
        torch.Size([2, 3, 3, 5, 4])
    """
    n, c, h, w = x.shape
    rows, cols = _bank_weights(tuple(sigmas), device=x.device, dtype=x.dtype)
    return _apply_bank(x.reshape(n * c, 1, h, w), rows, cols, padding_mode).view(n, c, -1, h, w)


def _apply_bank(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, padding_mode: str) -> torch.Tensor:
    """(M, 1, H, W) -> (M, S, H, W) with the weights of :func:`_bank_weights`."""
    radius = rows.shape[-1] // 2
    padded = _pad(x, radius, radius, padding_mode)
    horizontal = F.conv2d(padded, rows)  # (M, 2S, H + 2r, W)
    both = F.conv2d(horizontal, cols, groups=cols.shape[0])  # (M, 2S, H, W)
    return both[:, 0::2] + both[:, 1::2]


class LoGFilterBank(nn.Module):
    """Module form of :func:`log_filter_bank` with the kernels built once.

    Args:
        sigmas: the scales.
        padding_mode: one of :data:`PADDING_MODES`.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, S, H, W)`
    """

    def __init__(self, sigmas: Sequence[float] = (0.8, 1.6, 3.2), padding_mode: str = "zeros") -> None:
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"invalid padding mode '{padding_mode}'. Expected one of {PADDING_MODES}")
        self.sigmas = tuple(float(s) for s in sigmas)
        self.padding_mode = padding_mode
        rows, cols = _bank_weights(self.sigmas, device=None, dtype=torch.float64)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        rows, cols = self.rows.to(x.dtype), self.cols.to(x.dtype)
        return _apply_bank(x.reshape(n * c, 1, h, w), rows, cols, self.padding_mode).view(n, c, -1, h, w)
