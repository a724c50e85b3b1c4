"""``timm:<model>``: a timm backbone (``features_only``) as the encoder, a light decoder on top.

The backbone sees ImageNet-normalised pixels (converted from featkit's [-1, 1] with the
model's own ``pretrained_cfg`` mean and std). The decoder projects the deepest map to a few
channels and upsamples by 2 per step, halving channels, to the input's exact size, ending in
a 3x3 conv and tanh like the paper's CAE. ``pretrained=True`` needs the weights from the
Hugging Face hub (internet); tests and the default use random weights.

Any image of at least 1 x 1 pixels trains: an image with a side shorter than the backbone's
total stride is padded by edge replication (see :func:`_pad_small`: every side at least the
stride, and two deepest cells so that BatchNorm sees more than one value per channel), and the
maps and the reconstruction are cropped back to the image's own size. The padding depends
only on the image's size, not on the mode, so training and extraction see the same function.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from featkit.encoders.base import AutoEncoder, FeatureInfo
from featkit.encoders.registry import ENCODERS
from featkit.errors import FeatkitError

__all__ = ["TimmAutoEncoder"]


class TimmAutoEncoder(AutoEncoder):
    """A timm backbone as the encoder of an autoencoder.

    Args:
        model_name: any timm model that supports ``features_only`` (e.g. ``resnet18``).
        pretrained: load timm's pretrained weights (downloads them).
        decoder_channels: channels after the projection of the deepest map.

    Hidden layers are named ``stage0 .. stage{K-1}`` after timm's feature stages, with timm's
    channels and reductions; the default layer is the deepest.
    """

    def __init__(self, model_name: str, pretrained: bool = False, decoder_channels: int = 64) -> None:
        super().__init__()
        import timm

        try:
            self.backbone = timm.create_model(model_name, features_only=True, pretrained=pretrained)
        except RuntimeError as exc:  # timm: "Unknown model (...)"
            raise FeatkitError(f"timm cannot build '{model_name}' as a feature backbone: {exc}") from exc
        cfg = getattr(self.backbone, "pretrained_cfg", None) or {}
        mean = torch.tensor(cfg.get("mean", (0.485, 0.456, 0.406)), dtype=torch.float32)
        std = torch.tensor(cfg.get("std", (0.229, 0.224, 0.225)), dtype=torch.float32)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", std.view(1, -1, 1, 1), persistent=False)

        info = self.backbone.feature_info
        self.feature_info = [
            FeatureInfo(f"stage{i}", int(c), int(r)) for i, (c, r) in enumerate(zip(info.channels(), info.reduction()))
        ]
        self.default_layer = self.feature_info[-1].name
        deepest = self.feature_info[-1]
        steps = max(int(round(math.log2(deepest.stride))), 0)
        self.project = nn.Conv2d(deepest.channels, decoder_channels, 1)
        layers, channels = [], decoder_channels
        for _ in range(steps):
            out = max(channels // 2, 16)
            layers.append(nn.Conv2d(channels, out, 3, padding=1))
            channels = out
        self.up = nn.ModuleList(layers)
        self.output = nn.Conv2d(channels, 3, 3, padding=1)

    def forward_features(self, x, layers=None):
        h, w = x.shape[-2:]
        padded = _pad_small(x, self.feature_info[-1].stride)
        stages = self.backbone(((padded + 1.0) * 0.5 - self.mean) / self.std)
        maps = {info.name: m for info, m in zip(self.feature_info, stages)}
        if padded is not x:  # drop the cells that only the padding produced
            maps = {
                info.name: maps[info.name][..., : math.ceil(h / info.stride), : math.ceil(w / info.stride)]
                for info in self.feature_info
            }
        if layers is not None:
            return None, {k: maps[k] for k in layers}
        ph, pw = padded.shape[-2:]
        y = F.relu(self.project(stages[-1]))
        for i, conv in enumerate(self.up, start=1):
            remaining = len(self.up) - i
            size = (math.ceil(ph / 2**remaining), math.ceil(pw / 2**remaining))
            y = F.relu(conv(F.interpolate(y, size=size, mode="bilinear", align_corners=False)))
        if y.shape[-2:] != (ph, pw):
            y = F.interpolate(y, size=(ph, pw), mode="bilinear", align_corners=False)
        return torch.tanh(self.output(y))[..., :h, :w], maps


def _pad_small(x: torch.Tensor, stride: int) -> torch.Tensor:
    """Pad an image smaller than the backbone's total stride so every backbone can train on it.

    Sides shorter than ``stride`` are extended to ``stride`` (backbones with an unpadded
    patchify stem, such as ConvNeXt, need that much to run at all). An image no larger than
    ``stride`` on both sides would still have a single deepest cell, and BatchNorm in training
    mode needs more than one value per channel, so its longer side (the width on a tie) is
    extended to ``2 * stride``: two cells whether the backbone rounds sizes up or down.
    Padding replicates the last row or column; larger images are returned as they are.

    Args:
        x: :math:`(N, C, H, W)`, any :math:`H, W \\ge 1`.
        stride: the backbone's total stride (its deepest reduction).

    Returns:
        ``x`` itself, or :math:`(N, C, H', W')` with :math:`H' \\ge H, W' \\ge W` and ``x`` in its
        top-left corner.
    """
    h, w = x.shape[-2:]
    ph, pw = max(h, stride), max(w, stride)
    if h <= stride and w <= stride:  # a single deepest cell
        if w >= h:
            pw = 2 * stride
        else:
            ph = 2 * stride
    if (ph, pw) == (h, w):
        return x
    return F.pad(x, (0, pw - w, 0, ph - h), mode="replicate")


def _timm_factory(model_name: str, pretrained: bool = False, decoder_channels: int = 64) -> TimmAutoEncoder:
    """A timm backbone (features_only) with a light upsampling decoder, e.g. timm:resnet18."""
    return TimmAutoEncoder(model_name, pretrained=pretrained, decoder_channels=decoder_channels)


ENCODERS.register_prefix("timm", _timm_factory)
