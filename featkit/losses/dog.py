"""Spatial frequency loss with a Difference-of-Gaussians bank, the author's later formulation.

Ichimura, Machine Vision and Applications, 2026 (eq. 13-17 of that paper).
Gaussians of scales ``base * radix**i`` (defaults 0.6 and 2) blur each colour channel with
``ceil(8 sigma)`` odd-sized kernels and replicate borders, giving ``B_0, ..., B_{S-2}``. The S
subbands are ``I - B_0``, ``B_0 - B_1``, ..., ``B_{S-3} - B_{S-2}`` and the low-pass
``B_{S-2}``; the loss of a subband is the mean squared difference over C x H x W, and the total
weighs the subbands either with fixed weights or with the inverse error ratio (IER), the mean
over calibration images of (pixel MSE) / (subband MSE).

The bank is linear and the same for both images, so featkit filters the residual once, and in
the frequency domain: one FFT per channel whatever the kernel sizes (up to 155 taps).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch

from featkit.errors import ShapeError
from featkit.losses.base import Loss
from featkit.losses.registry import register_loss
from featkit.ops.checks import check_image_batch, check_same_shape
from featkit.ops.filters import PADDING_MODES, DoGFilterBank, dog_scales

__all__ = ["DoGSpatialFrequencyLoss", "inverse_error_ratio"]

#: Smallest subband MSE an IER divides by (an error-free subband would otherwise divide by 0).
IER_EPS = 1e-12


def _subband_mse(bank: DoGFilterBank, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image subband MSE of the residual, :math:`(N, S)`, each a mean over C x H x W."""
    n, c, h, w = output.shape
    return bank.energy(output - target) / (c * h * w)


def inverse_error_ratio(
    bank: DoGFilterBank, output: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """Inverse error ratio of every image and subband: (pixel MSE) / (subband MSE).

    Args:
        bank: the DoG filter bank.
        output: reconstructions, :math:`(N, C, H, W)`.
        target: originals, same shape.

    Returns:
        Tensor of shape :math:`(N, S)`; a subband with a smaller error gets a larger ratio.
    """
    pixel = (output - target).square().mean(dim=(1, 2, 3))
    return pixel[:, None] / _subband_mse(bank, output, target).clamp_min(IER_EPS)


def _batches(x: torch.Tensor | Iterable[torch.Tensor]) -> list[torch.Tensor]:
    return [x] if isinstance(x, torch.Tensor) else list(x)


@register_loss("sfl-dog")
class DoGSpatialFrequencyLoss(Loss):
    """SFL with a Difference-of-Gaussians bank (2026): subband MSEs, fixed or IER weights.

    Args:
        base: scale of the first Gaussian.
        radix: ratio of consecutive Gaussian scales.
        num_subbands: S, the number of subbands (S - 1 Gaussians), at least 2.
        weights: one weight per subband, highest frequency first. Default: 1 each until
            :meth:`calibrate` sets the inverse error ratios.
        padding: border handling of the Gaussians; ``replicate`` is the published definition.

    Components are ``sfl-dog/0`` (``I - B_0``, the highest frequencies) to ``sfl-dog/<S-1>``
    (the low-pass ``B_{S-2}``), unweighted.

    Shape:
        - output, target: :math:`(N, C, H, W)`, any H, W.
        - result: 0-dim tensor.

    Examples:
        >>> loss = DoGSpatialFrequencyLoss(num_subbands=3)
        >>> x = torch.zeros(1, 3, 9, 7)
        >>> float(loss(x, x)), list(loss.weights)
        (0.0, ['sfl-dog/0', 'sfl-dog/1', 'sfl-dog/2'])
    """

    def __init__(
        self,
        base: float = 0.6,
        radix: float = 2.0,
        num_subbands: int = 7,
        weights: Sequence[float] | None = None,
        padding: str = "replicate",
    ) -> None:
        super().__init__()
        if padding not in PADDING_MODES:
            raise ValueError(f"invalid padding '{padding}'. Expected one of {PADDING_MODES}")
        self.sigmas = dog_scales(base, radix, int(num_subbands))
        self.bank = DoGFilterBank(self.sigmas, padding)
        self.names = [f"sfl-dog/{i}" for i in range(int(num_subbands))]
        weights = (1.0,) * len(self.names) if weights is None else tuple(float(w) for w in weights)
        if len(weights) != len(self.names):
            raise ValueError(
                f"{len(self.names)} subbands need {len(self.names)} weights, got {len(weights)}"
            )
        self.weights = dict(zip(self.names, weights))

    def components(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip(self.names, _subband_mse(self.bank, output, target).mean(dim=0).unbind()))

    @torch.no_grad()
    def calibrate(
        self,
        outputs: torch.Tensor | Iterable[torch.Tensor],
        targets: torch.Tensor | Iterable[torch.Tensor],
    ) -> dict[str, float]:
        """Set the weights to the inverse error ratios averaged over calibration images.

        Typically the outputs of the untrained model on the training images, before training.

        Args:
            outputs: reconstructions, one :math:`(N, C, H, W)` tensor or an iterable of batches
                (sizes may differ between batches).
            targets: the matching originals, batch for batch.

        Returns:
            The new weights, component name -> weight.

        Raises:
            ShapeError: for mismatched or malformed batches, or no images at all.
        """
        outputs, targets = _batches(outputs), _batches(targets)
        if len(outputs) != len(targets) or not outputs:
            raise ShapeError(
                f"calibration needs matching, non-empty batches, got {len(outputs)} and {len(targets)}"
            )
        ratios = []
        for output, target in zip(outputs, targets):
            check_image_batch(output, "output")
            check_image_batch(target, "target")
            check_same_shape(output, target)
            ratios.append(inverse_error_ratio(self.bank, output, target).double())
        mean = torch.cat(ratios).mean(dim=0)
        self.weights = dict(zip(self.names, mean.tolist()))
        return dict(self.weights)
