"""Fixed-kernel filtering: sampled Gaussian and Laplacian-of-Gaussian kernels, and the one
place featkit convolves an image with a fixed kernel.

The normalised LoG of the paper (eq. 5) is

.. math::
    \\sigma^2 \\nabla^2 g(x, y) = -\\left(2 - \\frac{x^2 + y^2}{\\sigma^2}\\right) g(x, y),
    \\qquad g(x, y) = \\frac{1}{2\\pi\\sigma^2} e^{-(x^2 + y^2) / (2\\sigma^2)}

and its samples are exactly a sum of two outer products of 1-D kernels,
``K[y, x] = h(y) g(x) + g(y) h(x)`` with ``g(t) = exp(-t^2 / 2 sigma^2) / (sqrt(2 pi) sigma)``
and ``h(t) = (t^2 / sigma^2 - 1) g(t)``, so its 2-D DFT is a sum of two outer products of 1-D
DFTs. The Difference-of-Gaussians bank of the author's 2026 formulation is built the same way
from separable Gaussians.

Filter banks (:class:`LoGFilterBank`, :class:`DoGFilterBank`) run in the frequency domain: one
FFT per channel on a grid that holds the image and the largest kernel's reach, one inverse
FFT per band, crop. Zero padding needs no padded copy: the grid's own zero fill is the
padding, so the grid is only ``H + r`` (``H + 2r`` for the other border modes). That equals
direct correlation with the sampled kernels to float rounding, at a cost that does not grow
with the kernel size (27 taps for the paper's LoG, 155 for the DoG's largest Gaussian).
:func:`filter2d` is the direct (dense) form, for one kernel.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from featkit.errors import ShapeError

__all__ = [
    "PADDING_MODES",
    "DoGFilterBank",
    "LoGFilterBank",
    "dog_filter_bank",
    "dog_scales",
    "dog_transfer",
    "fft_band_energy",
    "fft_filter_bank",
    "fft_size",
    "filter2d",
    "gaussian_kernel1d",
    "kernel_size_for_sigma",
    "log_filter_bank",
    "log_kernel1d_pair",
    "log_kernel2d",
    "log_transfer",
    "min_grid",
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


def _check_padding_mode(padding_mode: str) -> None:
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"invalid padding mode '{padding_mode}'. Expected one of {PADDING_MODES}")


def _pad(x: torch.Tensor, pad_y: int, pad_x: int, padding_mode: str) -> torch.Tensor:
    _check_padding_mode(padding_mode)
    pads = (pad_x, pad_x, pad_y, pad_y)
    if padding_mode == "zeros":
        return F.pad(x, pads)
    limit = {"reflect": 0, "circular": 1}.get(padding_mode)
    if limit is not None and (pad_y >= x.shape[-2] + limit or pad_x >= x.shape[-1] + limit):
        raise ShapeError(
            f"{padding_mode} padding of {max(pad_x, pad_y)} needs images larger than that, got "
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


def dog_scales(base: float = 0.6, radix: float = 2.0, num_subbands: int = 7) -> tuple[float, ...]:
    """Gaussian scales ``base * radix**i`` of a DoG bank with ``num_subbands`` subbands.

    A bank of S subbands needs S - 1 Gaussians.

    Examples:
        >>> dog_scales()
        (0.6, 1.2, 2.4, 4.8, 9.6, 19.2)
    """
    if not base > 0 or not radix > 1 or num_subbands < 2:
        raise ValueError(
            f"need base > 0, radix > 1 and at least 2 subbands, got base={base}, radix={radix}, "
            f"num_subbands={num_subbands}"
        )
    return tuple(round(base * radix**i, 12) for i in range(num_subbands - 1))


def fft_size(n: int) -> int:
    """Smallest ``m >= n`` that is a power of two times at most three factors 3, 5 or 7.

    Every 7-smooth length is fast in big-O terms, but pocketfft's radix-3, 5 and 7 passes cost
    more per element than its radix-2 and 4 ones: a 315 x 315 (3 x 3 x 5 x 7) transform takes
    about 1.6x as long as a 320 x 320 one here (``bench/bench_losses.py`` uses such grids).

    Examples:
        >>> fft_size(313), fft_size(326), fft_size(454)
        (320, 336, 480)
    """
    m = max(int(n), 1)
    while True:
        rest, odd_factors = m, 0
        for p in (3, 5, 7):
            while rest % p == 0:
                rest //= p
                odd_factors += 1
        if odd_factors <= 3 and rest & (rest - 1) == 0:
            return m
        m += 1


# -- filter banks in the frequency domain ------------------------------------------------------


def _kernel_dft(taps: torch.Tensor, length: int, *, onesided: bool) -> torch.Tensor:
    """Real DFT (float64) of an odd, symmetric 1-D kernel centred on index 0 of a circular
    signal of ``length``; real because the kernel is symmetric."""
    size = taps.numel()
    if size > length:
        raise ValueError(f"a {size}-tap kernel does not fit a circular signal of {length}")
    circular = taps.new_zeros(length, dtype=torch.float64)
    circular[torch.arange(-(size // 2), size // 2 + 1, device=taps.device) % length] = taps.double()
    return (torch.fft.rfft(circular) if onesided else torch.fft.fft(circular)).real


def _separable_dft(col: torch.Tensor, row: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """2-D transfer function, :math:`(H, W // 2 + 1)`, of the kernel ``col[y] * row[x]``."""
    return (
        _kernel_dft(col, size[0], onesided=False)[:, None]
        * _kernel_dft(row, size[1], onesided=True)[None, :]
    )


def log_transfer(
    sigmas: Sequence[float],
    size: tuple[int, int],
    *,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Transfer functions of the sampled normalised LoG kernels (eq. 5) on an ``H x W`` circular
    grid, as :func:`torch.fft.rfft2` sees it: ``DFT(h) DFT(g)^T + DFT(g) DFT(h)^T``.

    Args:
        sigmas: the scales, one band each.
        size: ``(H, W)`` of the grid; each must hold the largest kernel.

    Returns:
        Tensor of shape :math:`(S, H, W // 2 + 1)`.
    """
    bands = []
    for sigma in sigmas:
        g, h = log_kernel1d_pair(sigma, device=device, dtype=torch.float64)
        bands.append(_separable_dft(h, g, size) + _separable_dft(g, h, size))
    return torch.stack(bands).to(dtype)


def dog_transfer(
    sigmas: Sequence[float],
    size: tuple[int, int],
    *,
    bands: Sequence[int] | None = None,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Transfer functions of the DoG subbands on an ``H x W`` circular grid.

    With ``G_i`` the separable sampled Gaussian of scale ``sigmas[i]`` (``ceil(8 sigma)`` taps,
    odd, unnormalised samples of the continuous density, :func:`gaussian_kernel1d`), the
    subbands are ``1 - G_0, G_0 - G_1, ..., G_{S-3} - G_{S-2}`` and the low-pass ``G_{S-2}``;
    they sum to 1.

    Args:
        sigmas: the S - 1 Gaussian scales, increasing.
        size: ``(H, W)`` of the grid; it must hold the kernels of the requested bands.
        bands: indices of the subbands to build (default: all S).

    Returns:
        Tensor of shape :math:`(len(bands), H, W // 2 + 1)`.
    """
    count = len(sigmas) + 1
    gaussians: dict[int, torch.Tensor] = {}

    def gaussian(i: int) -> torch.Tensor:
        if i not in gaussians:
            g = gaussian_kernel1d(sigmas[i], device=device, dtype=torch.float64)
            gaussians[i] = _separable_dft(g, g, size)
        return gaussians[i]

    def band(i: int) -> torch.Tensor:
        if i == 0:
            return 1.0 - gaussian(0)
        if i == count - 1:
            return gaussian(count - 2)
        return gaussian(i - 1) - gaussian(i)

    return torch.stack([band(i) for i in (range(count) if bands is None else bands)]).to(dtype)


def fft_filter_bank(
    x: torch.Tensor, transfer: torch.Tensor, grid: tuple[int, int], radius: int, padding_mode: str
) -> torch.Tensor:
    """Filter every channel with S kernels of radius at most ``radius``, keeping the size.

    The image (padded by ``radius`` with ``padding_mode``, unless that is ``zeros``) is
    zero-filled up to ``grid`` and transformed once; each band is one inverse FFT. The crop
    only reads samples within ``radius`` of the image, which the grid holds without circular
    wrap-around: the result equals direct correlation with the kernels to float rounding.

    Args:
        x: images of shape :math:`(N, C, H, W)`.
        transfer: :math:`(S, G_h, G_w // 2 + 1)` from :func:`log_transfer` or :func:`dog_transfer`.
        grid: ``(G_h, G_w)``, at least :func:`min_grid` of the image size.
        radius: half the size of the largest kernel.
        padding_mode: one of :data:`PADDING_MODES`.

    Returns:
        Tensor of shape :math:`(N, C, S, H, W)`.
    """
    _check_grid(x, grid, radius, padding_mode)
    return _filter_bank(x, _pairs(transfer), grid, radius, padding_mode)


def min_grid(size: tuple[int, int], radius: int, padding_mode: str) -> tuple[int, int]:
    """Smallest FFT grid (:func:`fft_size` per side) that filters an ``(H, W)`` image with
    kernels of ``radius`` without wrap-around: ``H + r`` for ``zeros`` padding (the grid's
    zero fill is the padding; at least the kernel's ``2r + 1``), ``H + 2r`` for the border
    modes that need a padded copy.

    Examples:
        >>> min_grid((300, 300), 13, "zeros"), min_grid((300, 300), 13, "reflect")
        ((320, 320), (336, 336))
    """
    reach = radius if padding_mode == "zeros" else 2 * radius
    return tuple(fft_size(max(n + reach, 2 * radius + 1)) for n in size)


def _check_grid(x: torch.Tensor, grid: tuple[int, int], radius: int, padding_mode: str) -> None:
    _check_padding_mode(padding_mode)
    needed = min_grid(tuple(x.shape[-2:]), radius, padding_mode)
    if grid[0] < needed[0] or grid[1] < needed[1]:
        raise ShapeError(f"FFT grid {tuple(grid)} is too small for images {tuple(x.shape[-2:])} and radius {radius}: need {needed}")


def _placed(x: torch.Tensor, radius: int, padding_mode: str) -> tuple[torch.Tensor, int]:
    """The array to transform and where the image starts in it: ``x`` itself at 0 for zero
    padding, else ``x`` padded by ``radius`` (the image then starts at ``radius``)."""
    if padding_mode == "zeros":
        return x, 0
    return _pad(x, radius, radius, padding_mode), radius


def _filter_bank(
    x: torch.Tensor, pairs: torch.Tensor, grid: tuple[int, int], radius: int, padding_mode: str
) -> torch.Tensor:
    placed, start = _placed(x, radius, padding_mode)
    spectrum = _embedded_spectrum(placed, grid)
    return _crop_inverse(_filter_spectrum(spectrum, pairs), grid, start, tuple(x.shape[-2:]))


def _filter_spectrum(spectrum: torch.Tensor, pairs: torch.Tensor) -> torch.Tensor:
    """(N, C, Gh, Gw') complex times :func:`_pairs` (S, Gh, Gw', 2) -> (N, C, S, Gh, Gw') complex,
    in real arithmetic (a complex-by-real product would first promote the transfer to complex)."""
    return torch.view_as_complex(torch.view_as_real(spectrum).unsqueeze(2) * pairs)


def _pairs(transfer: torch.Tensor) -> torch.Tensor:
    """(S, Gh, Gw') -> (S, Gh, Gw', 2): each value twice, to scale (real, imaginary) pairs.

    Laid out column-major in (Gh, Gw'), as :func:`torch.fft.fft` along dim -2 lays out its
    result, so the products are one contiguous sweep.
    """
    columns = transfer.transpose(-2, -1)
    return columns.unsqueeze(-1).expand(*columns.shape, 2).contiguous().transpose(-3, -2)


def _crop_inverse(
    spectra: torch.Tensor, grid: tuple[int, int], start: int, size: tuple[int, int]
) -> torch.Tensor:
    """Inverse of :func:`torch.fft.rfft2` on ``grid``, computing only the rows and columns of
    the circular crop of ``size`` that starts at ``(start, start)`` (negative wraps around):
    (..., Gh, Gw') -> (..., H, W)."""
    h, w = size
    # the column transform leaves its result column-major; the row transform reads rows faster
    rows = _circular_window(torch.fft.ifft(spectra, dim=-2), start, h, -2).contiguous()
    return _circular_window(torch.fft.irfft(rows, n=grid[1], dim=-1), start, w, -1)


def _embedded_spectrum(x: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """:func:`torch.fft.rfft2` of ``x`` zero-filled to ``grid``, skipping the all-zero rows."""
    return torch.fft.fft(torch.fft.rfft(x, n=grid[1], dim=-1), n=grid[0], dim=-2)


class _BandEnergy(torch.autograd.Function):
    """Energies of the cropped bands, with a backward that is one more frequency-domain filter.

    Every band is a circular convolution on the FFT grid with a symmetric kernel, hence
    self-adjoint; so the gradient with respect to the transformed array is the crop at
    ``-start`` of ``irfft2(sum_s T_s rfft2(2 g_s b_s))``, with each band ``b_s`` placed at the
    origin: S forward FFTs and one inverse, computed band by band so the intermediates stay in
    cache.
    """

    @staticmethod
    def forward(ctx, placed, pairs, grid, start, size):  # noqa: D102
        spectrum = torch.view_as_real(_embedded_spectrum(placed, grid))
        bands = [
            _crop_inverse(torch.view_as_complex(spectrum * pair), grid, start, size)
            for pair in pairs.unbind()
        ]
        ctx.save_for_backward(pairs, *bands)
        ctx.geometry = (grid, start, tuple(placed.shape[-2:]))
        return torch.stack([band.square().sum(dim=(1, 2, 3)) for band in bands], dim=1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # noqa: D102
        pairs, *bands = ctx.saved_tensors
        grid, start, size = ctx.geometry
        total = None
        for s, (band, pair) in enumerate(zip(bands, pairs.unbind())):
            weighted = band * (2.0 * grad[:, s, None, None, None])
            term = torch.view_as_real(_embedded_spectrum(weighted, grid)).mul_(pair)
            total = term if total is None else total.add_(term)
        return _crop_inverse(torch.view_as_complex(total), grid, -start, size), None, None, None, None


def _circular_window(x: torch.Tensor, start: int, length: int, dim: int) -> torch.Tensor:
    """Entries ``(start + i) mod G`` for ``i < length`` along ``dim`` of size ``G``, by slicing
    (a gather is several times slower)."""
    size = x.shape[dim]
    start %= size
    if start + length <= size:
        return x.narrow(dim, start, length)
    head = size - start
    return torch.cat([x.narrow(dim, start, head), x.narrow(dim, 0, length - head)], dim=dim)


def fft_band_energy(
    x: torch.Tensor, transfer: torch.Tensor, grid: tuple[int, int], radius: int, padding_mode: str
) -> torch.Tensor:
    """Sum over channels and pixels of the squared responses of :func:`fft_filter_bank`.

    Equal to ``fft_filter_bank(...).square().sum(dim=(1, 3, 4))`` with a cheaper backward.

    Returns:
        Tensor of shape :math:`(N, S)`.
    """
    _check_grid(x, grid, radius, padding_mode)
    return _band_energy(x, _pairs(transfer), grid, radius, padding_mode)


def _band_energy(
    x: torch.Tensor, pairs: torch.Tensor, grid: tuple[int, int], radius: int, padding_mode: str
) -> torch.Tensor:
    placed, start = _placed(x, radius, padding_mode)
    return _BandEnergy.apply(placed, pairs, grid, start, tuple(x.shape[-2:]))


@dataclass(frozen=True)
class _Group:
    """Consecutive bands ``[start, stop)`` filtered together on one FFT grid."""

    start: int
    stop: int
    radius: int
    grid: tuple[int, int]


def _plan_groups(radii: Sequence[int], size: tuple[int, int], padding_mode: str) -> list[_Group]:
    """Split bands into runs of consecutive bands that share an FFT grid.

    A small kernel does not need the grid of the largest one, but each extra grid costs one
    more transform of the image each way. Starting from one run per grid, adjacent runs merge
    while that lowers the cost ``sum(grid area x (bands + 1))``.
    """

    def grid(r: int) -> tuple[int, int]:
        return min_grid(size, r, padding_mode)

    def radius(run: list[int]) -> int:
        return max(radii[i] for i in run)

    def cost(run: list[int]) -> int:
        gh, gw = grid(radius(run))
        return gh * gw * (len(run) + 1)

    runs: list[list[int]] = []
    for band, r in enumerate(radii):
        if runs and grid(radius(runs[-1])) == grid(r):
            runs[-1].append(band)
        else:
            runs.append([band])
    while len(runs) > 1:
        gains = [cost(a) + cost(b) - cost(a + b) for a, b in zip(runs, runs[1:])]
        best = max(range(len(gains)), key=gains.__getitem__)
        if gains[best] <= 0:
            break
        runs[best : best + 2] = [runs[best] + runs[best + 1]]
    return [_Group(run[0], run[-1] + 1, radius(run), grid(radius(run))) for run in runs]


class _FFTFilterBank(nn.Module):
    """A fixed bank of symmetric kernels applied in the frequency domain.

    Bands are filtered in groups on the smallest FFT grids worth using (see
    :func:`_plan_groups`); the transfer functions are built once per image size, device and
    dtype. Subclasses set :attr:`radii` (the kernel radius of each band) and implement
    :meth:`build_transfer`.
    """

    radii: tuple[int, ...]
    _CACHE_SIZE = 8

    def __init__(self, padding_mode: str) -> None:
        super().__init__()
        _check_padding_mode(padding_mode)
        self.padding_mode = padding_mode
        self._cache: dict[tuple, list[tuple[_Group, torch.Tensor]]] = {}

    def build_transfer(
        self, bands: range, grid: tuple[int, int], device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        """Transfer functions of ``bands`` on ``grid``, :math:`(len(bands), G_h, G_w // 2 + 1)`."""
        raise NotImplementedError

    def _plan(self, x: torch.Tensor) -> list[tuple[_Group, torch.Tensor]]:
        key = (tuple(x.shape[-2:]), x.device, x.dtype)
        if key not in self._cache:
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            plan = []
            for group in _plan_groups(self.radii, key[0], self.padding_mode):
                transfer = self.build_transfer(
                    range(group.start, group.stop), group.grid, x.device, x.dtype
                )
                plan.append((group, _pairs(transfer)))
            self._cache[key] = plan
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Responses, :math:`(N, C, H, W)` -> :math:`(N, C, S, H, W)`."""
        parts = [
            _filter_bank(x, pairs, g.grid, g.radius, self.padding_mode)
            for g, pairs in self._plan(x)
        ]
        return torch.cat(parts, dim=2)

    def energy(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over channels and pixels of the squared responses, :math:`(N, S)`."""
        parts = [
            _band_energy(x, pairs, g.grid, g.radius, self.padding_mode)
            for g, pairs in self._plan(x)
        ]
        return torch.cat(parts, dim=1)


class LoGFilterBank(_FFTFilterBank):
    """Normalised LoG filters (eq. 5), one band per scale, applied to every channel.

    Exactly (to float rounding) correlation of each channel with :func:`log_kernel2d` of each
    scale, ``ceil(8 sigma)`` odd taps, borders extended by ``padding_mode``.

    Args:
        sigmas: the scales.
        padding_mode: one of :data:`PADDING_MODES`; ``zeros`` is the paper's conv layer.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, S, H, W)`

    Examples:
        >>> LoGFilterBank()(torch.zeros(2, 3, 5, 4)).shape
        torch.Size([2, 3, 3, 5, 4])
    """

    def __init__(
        self, sigmas: Sequence[float] = (0.8, 1.6, 3.2), padding_mode: str = "zeros"
    ) -> None:
        super().__init__(padding_mode)
        self.sigmas = tuple(float(s) for s in sigmas)
        self.radii = tuple(kernel_size_for_sigma(s) // 2 for s in self.sigmas)

    def build_transfer(
        self, bands: range, grid: tuple[int, int], device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        return log_transfer(self.sigmas[bands.start : bands.stop], grid, device=device, dtype=dtype)


class DoGFilterBank(_FFTFilterBank):
    """Difference-of-Gaussians subbands of every channel (see :func:`dog_transfer`).

    Equal (to float rounding) to blurring each channel with every separable sampled Gaussian
    (``ceil(8 sigma)`` odd taps, borders extended by ``padding_mode``) and taking differences:
    ``x - B_0, B_0 - B_1, ..., B_{S-3} - B_{S-2}, B_{S-2}``; one FFT per channel however large
    the kernels.

    Args:
        sigmas: the S - 1 Gaussian scales (see :func:`dog_scales`).
        padding_mode: one of :data:`PADDING_MODES`; ``replicate`` is the published definition.

    Shape:
        - Input: :math:`(N, C, H, W)`
        - Output: :math:`(N, C, S, H, W)`

    Examples:
        >>> DoGFilterBank()(torch.zeros(1, 3, 8, 5)).shape
        torch.Size([1, 3, 7, 8, 5])
    """

    def __init__(
        self, sigmas: Sequence[float] = dog_scales(), padding_mode: str = "replicate"
    ) -> None:
        super().__init__(padding_mode)
        self.sigmas = tuple(float(s) for s in sigmas)
        # subband i needs the kernels of scales i - 1 and i; the low-pass that of the last
        radii = [kernel_size_for_sigma(s) // 2 for s in self.sigmas]
        self.radii = (radii[0], *(max(a, b) for a, b in zip(radii, radii[1:])), radii[-1])

    def build_transfer(
        self, bands: range, grid: tuple[int, int], device: torch.device, dtype: torch.dtype
    ) -> torch.Tensor:
        return dog_transfer(self.sigmas, grid, bands=bands, device=device, dtype=dtype)


def log_filter_bank(
    x: torch.Tensor, sigmas: Sequence[float] = (0.8, 1.6, 3.2), padding_mode: str = "zeros"
) -> torch.Tensor:
    """Responses of a bank of normalised LoG filters, see :class:`LoGFilterBank`.

    Args:
        x: images of shape :math:`(N, C, H, W)`.
        sigmas: the scales, one band each.
        padding_mode: one of :data:`PADDING_MODES`.

    Returns:
        Tensor of shape :math:`(N, C, S, H, W)`.
    """
    return LoGFilterBank(sigmas, padding_mode)(x)


def dog_filter_bank(
    x: torch.Tensor, sigmas: Sequence[float] = dog_scales(), padding_mode: str = "replicate"
) -> torch.Tensor:
    """Difference-of-Gaussians subbands, see :class:`DoGFilterBank`.

    Args:
        x: images of shape :math:`(N, C, H, W)`.
        sigmas: the S - 1 Gaussian scales.
        padding_mode: one of :data:`PADDING_MODES`.

    Returns:
        Tensor of shape :math:`(N, C, S, H, W)` with ``S = len(sigmas) + 1``.
    """
    return DoGFilterBank(sigmas, padding_mode)(x)
