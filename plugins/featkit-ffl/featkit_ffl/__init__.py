"""featkit plugin: the focal frequency loss as featkit loss ``ffl``.

Wraps ``FocalFrequencyLoss`` from the focal-frequency-loss package (Jiang et al., "Focal
Frequency Loss for Image Reconstruction and Synthesis", ICCV 2021; MIT licence). featkit finds
it through the entry point ``ffl`` in group ``featkit.losses``, so once this package is
installed ``featkit.create_loss("pl+ffl")`` works.
"""

from __future__ import annotations

from focal_frequency_loss import FocalFrequencyLoss
from torch import nn

__all__ = ["focal_frequency_loss"]


def focal_frequency_loss(
    alpha: float = 1.0,
    patch_factor: int = 1,
    ave_spectrum: bool = False,
    log_matrix: bool = False,
    batch_matrix: bool = False,
) -> nn.Module:
    """Focal frequency loss (Jiang et al., ICCV 2021): spectrum error weighted by its own size.

    Args:
        alpha: exponent of the spectrum weight matrix.
        patch_factor: split each image into ``patch_factor**2`` patches before the FFT.
        ave_spectrum: compare the batch-mean spectra instead of per-image spectra.
        log_matrix: take the log of the weight matrix.
        batch_matrix: normalise the weight matrix over the batch instead of per image.

    Returns:
        A module called as ``loss(output, target)`` on :math:`(N, C, H, W)` tensors that
        returns a 0-dim tensor.
    """
    return FocalFrequencyLoss(
        alpha=alpha,
        patch_factor=patch_factor,
        ave_spectrum=ave_spectrum,
        log_matrix=log_matrix,
        batch_matrix=batch_matrix,
    )
