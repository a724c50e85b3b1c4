"""featkit plugin: ``1 - SSIM`` as featkit loss ``ssim``.

SSIM (Wang et al., "Image Quality Assessment: From Error Visibility to Structural Similarity",
IEEE TIP 2004) is computed by the pytorch-msssim package (MIT licence) with its Gaussian window
(11 taps, sigma 1.5). featkit images are in [-1, 1]; they are mapped to [0, 1] first, so the
data range is 1. featkit finds the loss through the entry point ``ssim`` in group
``featkit.losses``.
"""

from __future__ import annotations

import torch
from pytorch_msssim import ssim
from torch import nn

__all__ = ["SSIMLoss", "ssim_loss"]


class SSIMLoss(nn.Module):
    """``1 - SSIM`` of images in [-1, 1], averaged over the batch.

    Args:
        win_size: odd size of the Gaussian window.
        win_sigma: scale of the Gaussian window.

    Shape:
        - output, target: :math:`(N, C, H, W)` in [-1, 1], any C.
        - result: 0-dim tensor in [0, 2]; 0 for identical images.
    """

    def __init__(self, win_size: int = 11, win_sigma: float = 1.5) -> None:
        super().__init__()
        if win_size < 1 or win_size % 2 == 0:
            raise ValueError(f"win_size must be a positive odd number, got {win_size}")
        self.win_size = win_size
        self.win_sigma = win_sigma

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        similarity = ssim(
            (output + 1) / 2,
            (target + 1) / 2,
            data_range=1.0,
            size_average=True,
            win_size=self.win_size,
            win_sigma=self.win_sigma,
        )
        return 1.0 - similarity


def ssim_loss(win_size: int = 11, win_sigma: float = 1.5) -> SSIMLoss:
    """1 - SSIM (Wang et al. 2004, via pytorch-msssim) on images mapped to [0, 1]."""
    return SSIMLoss(win_size, win_sigma)
