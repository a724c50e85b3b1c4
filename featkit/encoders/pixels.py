"""``pixels``: down-sampled raw pixels as "features", the baseline trained features must beat."""

from __future__ import annotations

import torch.nn.functional as F

from featkit.encoders.base import AutoEncoder, FeatureInfo
from featkit.encoders.registry import register_encoder

__all__ = ["PixelFeatures"]


class PixelFeatures(AutoEncoder):
    """Average-pooled RGB pixels as a 3-channel feature map; reconstruction is the identity.

    Pooled by :func:`featkit.extract` without a grid, the map becomes a tiny-image descriptor:
    an 8 x 8 thumbnail, :math:`3 \\cdot 8^2 = 192` numbers, not the 3 of the mean colour.

    Args:
        stride: pooling window and stride (1 keeps every pixel).

    Shape:
        - features: :math:`(N, 3, \\lceil H / s \\rceil, \\lceil W / s \\rceil)`.
    """

    default_grid = 8
    normalise_cells = False

    def __init__(self, stride: int = 4) -> None:
        super().__init__()
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.stride = int(stride)
        self.feature_info = [FeatureInfo("pixels", 3, self.stride)]
        self.default_layer = "pixels"

    def forward_features(self, x, layers=None):
        s = self.stride
        pooled = x if s == 1 else F.avg_pool2d(x, s, s, ceil_mode=True, count_include_pad=False)
        return (None if layers is not None else x), {"pixels": pooled}


@register_encoder("pixels")
def pixels(stride: int = 4) -> PixelFeatures:
    """Baseline: raw RGB pixels average-pooled by `stride` (no learning)."""
    return PixelFeatures(stride)
