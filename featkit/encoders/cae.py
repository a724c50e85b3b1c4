"""Convolutional autoencoders: the paper's Table 1 and wider / deeper variants.

Table 1 (layers 1-5; layer 6 is the SFL filter bank, see :mod:`featkit.losses.frequency`):

====  ==================  ======  ==========
no.   filters             stride  activation
====  ==================  ======  ==========
2     32 x 3 x 3          1       ReLU
3     16 x 3 x 3          2       ReLU
4     32 x 3 x 3          0.5     ReLU
5     3 x 3 x 3           1       tanh
====  ==================  ======  ==========

Stride 0.5 is bilinear upsampling (section 4). featkit upsamples to the exact size of the
layer being mirrored rather than by a factor of 2, so the output has the input's size for odd
H and W too. Weights start from N(0, 0.02) (0.02 read as the standard deviation), biases at 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from featkit.encoders.base import AutoEncoder, FeatureInfo
from featkit.encoders.registry import register_encoder

__all__ = ["ConvAutoEncoder"]


class ConvAutoEncoder(AutoEncoder):
    """A fully convolutional autoencoder with mirrored bilinear-upsampling decoder.

    Args:
        channels: output channels of the encoder layers, e.g. ``(32, 16)`` for Table 1.
        strides: stride of each encoder layer (1 or 2), e.g. ``(1, 2)``.
        kernel_size: odd size of every filter.
        init_std: standard deviation of the N(0, std) initial weights; biases start at 0.
        in_channels: channels of the images (3 for RGB).

    The hidden layers are ``conv1 .. conv{L}`` (encoder) and ``deconv{L-1} .. deconv1``
    (decoder, before the output layer); the default feature layer is the last encoder layer,
    read out with 3 x 3 windows of cells (a cell of Table 1's CAE sees only 5 x 5 pixels).

    Shape:
        - Input: :math:`(N, 3, H, W)` in [-1, 1], any H, W >= 1.
        - Output: :math:`(N, 3, H, W)` in [-1, 1].
    """

    default_window = 3

    def __init__(
        self,
        channels: Sequence[int] = (32, 16),
        strides: Sequence[int] = (1, 2),
        kernel_size: int = 3,
        init_std: float = 0.02,
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        channels, strides = [int(c) for c in channels], [int(s) for s in strides]
        if len(channels) != len(strides) or not channels:
            raise ValueError(f"channels {channels} and strides {strides} must be non-empty and equal in length")
        if any(s not in (1, 2) for s in strides):
            raise ValueError(f"strides must be 1 or 2, got {strides}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        pad = kernel_size // 2
        self.strides = strides
        self.encoder = nn.ModuleList()
        previous = in_channels
        for c, s in zip(channels, strides):
            self.encoder.append(nn.Conv2d(previous, c, kernel_size, stride=s, padding=pad))
            previous = c
        # decoder layer i mirrors encoder layer i (i = L-1 .. 1): maps channels[i] -> channels[i-1]
        self.decoder = nn.ModuleList(
            nn.Conv2d(channels[i], channels[i - 1], kernel_size, padding=pad) for i in range(len(channels) - 1, 0, -1)
        )
        self.output = nn.Conv2d(channels[0], in_channels, kernel_size, padding=pad)
        for conv in self.modules():
            if isinstance(conv, nn.Conv2d):
                nn.init.normal_(conv.weight, 0.0, init_std)
                nn.init.zeros_(conv.bias)

        stride, infos = 1, []
        enc_strides = []
        for i, (c, s) in enumerate(zip(channels, strides), start=1):
            stride *= s
            enc_strides.append(stride)
            infos.append(FeatureInfo(f"conv{i}", c, stride))
        for i in range(len(channels) - 1, 0, -1):
            infos.append(FeatureInfo(f"deconv{i}", channels[i - 1], enc_strides[i - 1]))
        self.feature_info = infos
        self.default_layer = f"conv{len(channels)}"

    def forward_features(self, x, layers=None):
        wanted = set(layers) if layers is not None else None
        maps: dict[str, torch.Tensor] = {}
        sizes = [x.shape[-2:]]
        for i, conv in enumerate(self.encoder, start=1):
            x = F.relu(conv(x), inplace=True)  # a fresh conv output: no copy needed
            sizes.append(x.shape[-2:])
            maps[f"conv{i}"] = x
            if wanted is not None and wanted <= maps.keys():
                return None, {k: maps[k] for k in wanted}
        depth = len(self.encoder)
        for j, conv in enumerate(self.decoder):
            i = depth - 1 - j  # mirrors encoder layer i + 1, restores the size of layer i
            if self.strides[i] != 1:
                x = F.interpolate(x, size=tuple(sizes[i]), mode="bilinear", align_corners=False)
            x = F.relu(conv(x), inplace=True)
            maps[f"deconv{i}"] = x
            if wanted is not None and wanted <= maps.keys():
                return None, {k: maps[k] for k in wanted}
        if self.strides[0] != 1:
            x = F.interpolate(x, size=tuple(sizes[0]), mode="bilinear", align_corners=False)
        recon = torch.tanh(self.output(x))
        return recon, maps if wanted is None else {k: maps[k] for k in wanted}


@register_encoder("paper-cae")
def paper_cae(init_std: float = 0.02) -> ConvAutoEncoder:
    """Table 1 of the paper: 3-32-16-32-3, 3x3 filters, stride 2 then bilinear x2, tanh output."""
    return ConvAutoEncoder((32, 16), (1, 2), init_std=init_std)


@register_encoder("cae-wide")
def cae_wide(init_std: float = 0.02) -> ConvAutoEncoder:
    """Table 1 with four times the filters: 3-128-64-128-3."""
    return ConvAutoEncoder((128, 64), (1, 2), init_std=init_std)


@register_encoder("cae-deep")
def cae_deep(init_std: float = 0.02) -> ConvAutoEncoder:
    """Two downsampling stages: 3-32-32-16-32-32-3, features at stride 4."""
    return ConvAutoEncoder((32, 32, 16), (1, 2, 2), init_std=init_std)


@register_encoder("cae")
def cae(
    channels: Sequence[int] = (32, 16),
    strides: Sequence[int] = (1, 2),
    kernel_size: int = 3,
    init_std: float = 0.02,
) -> ConvAutoEncoder:
    """A CAE of your own shape: channels and strides (1 or 2) per encoder layer."""
    return ConvAutoEncoder(tuple(channels), tuple(strides), kernel_size, init_std)
