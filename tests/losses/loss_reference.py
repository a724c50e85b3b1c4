"""Slow, direct implementations of the losses, written from the equations for the tests.

Nothing here uses featkit's filters: kernels are sampled from the formulas and images are
correlated by explicit shifted sums, so the fast FFT paths are checked against first principles.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kernel_size(sigma: float) -> int:
    """Section 4: ceil(8 sigma), plus 1 when even."""
    k = math.ceil(round(8 * sigma, 9))
    return k + 1 if k % 2 == 0 else k


def log_kernel(sigma: float) -> torch.Tensor:
    """Eq. 5 sampled on the integer grid: -(2 - (x^2 + y^2) / sigma^2) g(x, y)."""
    half = kernel_size(sigma) // 2
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    r2 = t[:, None] ** 2 + t[None, :] ** 2
    g = torch.exp(-r2 / (2 * sigma**2)) / (2 * math.pi * sigma**2)
    return -(2 - r2 / sigma**2) * g


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """Separable 2-D sampled Gaussian density, not renormalised after truncation."""
    half = kernel_size(sigma) // 2
    t = torch.arange(-half, half + 1, dtype=torch.float64)
    g = torch.exp(-(t**2) / (2 * sigma**2)) / (math.sqrt(2 * math.pi) * sigma)
    return g[:, None] * g[None, :]


def pad(x: torch.Tensor, r: int, mode: str) -> torch.Tensor:
    if mode == "zeros":
        return F.pad(x, (r, r, r, r))
    return F.pad(x, (r, r, r, r), mode=mode)


def correlate(x: torch.Tensor, kernel: torch.Tensor, mode: str) -> torch.Tensor:
    """Direct 'same' correlation of every channel of (N, C, H, W) with a (k, k) kernel."""
    k = kernel.shape[0]
    h, w = x.shape[-2:]
    padded = pad(x, k // 2, mode)
    out = torch.zeros_like(x)
    for dy in range(k):
        for dx in range(k):
            out = out + kernel[dy, dx] * padded[..., dy : dy + h, dx : dx + w]
    return out


def pl(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 4, w_PL = 1: per image sum over channels of 1/2 mean over pixels; batch mean."""
    per_channel = 0.5 * (output - target).square().mean(dim=(2, 3))
    return per_channel.sum(dim=1).mean()


def sfl_bands(output, target, sigmas, mode="zeros", per_channel=False) -> torch.Tensor:
    """Eq. 6 per band (unweighted): both images through the LoG layer of Table 1."""
    bands = []
    for sigma in sigmas:
        kernel = log_kernel(sigma).to(output.dtype)
        fo, ft = correlate(output, kernel, mode), correlate(target, kernel, mode)
        if not per_channel:  # layer 6: one 3 x k x k filter per band sums the colours
            fo, ft = fo.sum(dim=1, keepdim=True), ft.sum(dim=1, keepdim=True)
        per_image = 0.5 * (fo - ft).square().mean(dim=(2, 3)).sum(dim=1)
        bands.append(per_image.mean())
    return torch.stack(bands)


def dog_bands(
    output, target, base=0.6, radix=2.0, num_subbands=7, mode="replicate"
) -> torch.Tensor:
    """The 2026 DoG SFL per subband: I - B0, B0 - B1, ..., low-pass; MSE over C x H x W."""
    sigmas = [base * radix**i for i in range(num_subbands - 1)]

    def subbands(x):
        blurred = [correlate(x, gaussian_kernel(s).to(x.dtype), mode) for s in sigmas]
        return [x - blurred[0]] + [a - b for a, b in zip(blurred, blurred[1:])] + [blurred[-1]]

    pairs = zip(subbands(output), subbands(target))
    return torch.stack([(a - b).square().mean(dim=(1, 2, 3)).mean() for a, b in pairs])
