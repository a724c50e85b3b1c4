"""Spatial frequency loss (SFL), eq. 5-6 of the paper.

The (L+1)-th layer of Table 1 applies a bank of normalised LoG filters (eq. 5) to the
reconstruction and to the original; each filter sums the three colour channels into one
response (the layer's weights are 3 x k x k per band). E_SFL weighs the 1/2 mean squared
response difference of every band. The layer is linear and the same for both images, so
featkit filters the colour-summed residual once, in the frequency domain
(:class:`~featkit.ops.filters.LoGFilterBank`): same values as the dense 27 x 27 layer, at a
small fraction of its cost.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from featkit.losses.base import Loss
from featkit.losses.registry import register_loss
from featkit.ops.filters import PADDING_MODES, LoGFilterBank

__all__ = ["PAPER_SCALES", "PAPER_WEIGHTS", "SpatialFrequencyLoss"]

#: Scales sigma_c of section 4, highest spatial frequency first.
PAPER_SCALES = (0.8, 1.6, 3.2)
#: Subband weights w_SFL(c) of section 4: the highest band emphasised.
PAPER_WEIGHTS = (100.0, 10.0, 10.0)


def band_name(sigma: float) -> str:
    """Component name of the band at scale ``sigma``, e.g. ``"sfl/0.8"``."""
    return f"sfl/{sigma:g}"


@register_loss("sfl")
class SpatialFrequencyLoss(Loss):
    """Spatial frequency loss (eq. 5-6): weighted MSE of LoG filter-bank responses.

    Args:
        scales: LoG scales sigma_c, one subband each. Default: the paper's 0.8, 1.6, 3.2.
        weights: w_SFL(c) per scale. Default: the paper's 100, 10, 10 for the paper's
            scales, else 1 for every scale.
        padding: border handling of the filters, one of ``zeros`` (the paper's conv layer),
            ``reflect``, ``replicate``, ``circular``.
        per_channel: filter every colour channel on its own and sum the per-channel losses,
            instead of the paper's single response per band summed over colours.

    Shape:
        - output, target: :math:`(N, C, H, W)`, values in [-1, 1]; any H, W.
        - result: 0-dim tensor; components ``sfl/<sigma>`` unweighted.

    Examples:
        >>> loss = SpatialFrequencyLoss()
        >>> x = torch.zeros(2, 3, 9, 11)
        >>> float(loss(x, x))
        0.0
    """

    def __init__(
        self,
        scales: Sequence[float] = PAPER_SCALES,
        weights: Sequence[float] | None = None,
        padding: str = "zeros",
        per_channel: bool = False,
    ) -> None:
        super().__init__()
        scales = tuple(float(s) for s in scales)
        if not scales or any(not s > 0 for s in scales):
            raise ValueError(f"scales must be positive numbers, got {scales}")
        if len(set(scales)) != len(scales):
            raise ValueError(f"scales must be distinct, got {scales}")
        if weights is None:
            weights = PAPER_WEIGHTS if scales == PAPER_SCALES else (1.0,) * len(scales)
        weights = tuple(float(w) for w in weights)
        if len(weights) != len(scales):
            raise ValueError(f"{len(scales)} scales need {len(scales)} weights, got {len(weights)}")
        if padding not in PADDING_MODES:
            raise ValueError(f"invalid padding '{padding}'. Expected one of {PADDING_MODES}")
        self.scales = scales
        self.per_channel = per_channel
        self.bank = LoGFilterBank(scales, padding)
        self.names = [band_name(s) for s in scales]
        self.weights = dict(zip(self.names, weights))

    def components(self, output: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
        residual = output - target
        if not self.per_channel:
            residual = residual.sum(dim=1, keepdim=True)
        h, w = residual.shape[-2:]
        bands = 0.5 * self.bank.energy(residual).mean(dim=0) / (h * w)  # (S,)
        return dict(zip(self.names, bands.unbind()))
