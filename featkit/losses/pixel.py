"""Pixel loss (PL), eq. 4 of the paper."""

from __future__ import annotations

import torch

from featkit.losses.base import Loss
from featkit.losses.registry import register_loss

__all__ = ["PixelLoss", "pixel_loss"]


def pixel_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """E_PL of eq. 4 with all channel weights 1.

    Per image, the sum over channels of 1/2 times the mean over pixels of the squared
    difference; averaged over the batch.

    Args:
        output: :math:`(N, C, H, W)`.
        target: :math:`(N, C, H, W)`.

    Returns:
        0-dim tensor.

    Examples:
        >>> pixel_loss(torch.ones(1, 3, 2, 2), torch.zeros(1, 3, 2, 2))
        tensor(1.5000)
    """
    n, c = output.shape[:2]
    return 0.5 * c * (output - target).square().mean()


@register_loss("pl")
class PixelLoss(Loss):
    """Pixel loss (eq. 4): 1/2 mean squared error per channel, summed over channels."""

    def __init__(self) -> None:
        super().__init__()
        self.weights = {"pl": 1.0}

    def components(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"pl": pixel_loss(output, target)}
