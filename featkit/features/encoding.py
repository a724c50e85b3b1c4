"""Running an encoder over batches of images and reading out their rows: dense descriptors,
pooled vectors or raw activations, in forward passes of bounded pixels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from featkit.data.images import size_buckets
from featkit.encoders import AutoEncoder
from featkit.features.descriptors import describe, describe_strips
from featkit.features.pooling import pool_strips
from featkit.runtime.devices import network_input

__all__ = ["PIXELS_PER_FORWARD", "encode_images"]


#: Pixels per forward pass: larger batches of the same size overflow the CPU caches and run
#: 2-3x slower per image (measured with paper-cae on 128 x 128 images).
PIXELS_PER_FORWARD = 1 << 16


@torch.inference_mode()
def encode_images(
    model: AutoEncoder, images: Sequence[torch.Tensor], layer: str, pool: str = "avg", grid: int = 1, *,
    raw: bool = False, window: int | None = None, whiten: bool = True,
) -> list[np.ndarray]:  # fmt: skip
    """Features of images of any sizes; equally sized ones run as one batch.

    Args:
        model: the encoder (on its device, in eval mode).
        images: :math:`(3, H_i, W_i)` tensors in [-1, 1].
        layer: one of ``model.feature_info``.
        pool: ``avg | max | gem`` -> a :math:`(D g^2,)` vector per image; ``none`` -> the dense
            map, channels last: :math:`(h_i, w_i, D)`.
        grid: pooling grid (see :func:`~featkit.features.pooling.pool_maps`).
        raw: the layer's activations themselves (D = C), instead of its local descriptors
            (:func:`featkit.features.descriptors.describe`).
        window, whiten: the descriptors' settings (ignored when ``raw``).

    Returns:
        One float32 array per image, in input order.
    """
    device = next(iter(model.parameters()), torch.empty(0)).device
    out: list[np.ndarray | None] = [None] * len(images)
    sizes = [tuple(im.shape[-2:]) for im in images]
    for bucket in size_buckets(sizes, None):
        h, w = sizes[bucket[0]]
        step = max(1, PIXELS_PER_FORWARD // (h * w))
        for first in range(0, len(bucket), step):
            batch = bucket[first : first + step]
            stacked = network_input(torch.stack([images[i] for i in batch]), device)
            if pool == "none":
                maps = model.features(stacked, layer) if raw else describe(model, stacked, layer=layer,
                                                                           window=window, whiten=whiten)  # fmt: skip
                rows = maps.permute(0, 2, 3, 1)
            else:
                strips = [model.features(stacked, layer)] if raw else describe_strips(
                    model, stacked, layer=layer, window=window, whiten=whiten)  # fmt: skip
                rows = pool_strips(strips, pool, grid)
            rows = rows.float().cpu().numpy()
            for i, r in zip(batch, rows):
                out[i] = r
    return out  # type: ignore[return-value]
