"""The components every run logs whatever its loss: PL and the paper's SFL bands, unweighted."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from featkit.data.images import size_buckets
from featkit.encoders import AutoEncoder
from featkit.losses import PAPER_SCALES, create_loss
from featkit.losses.frequency import band_name
from featkit.runtime.devices import network_input

__all__ = ["PROBE_COMPONENTS", "evaluate_images"]


#: Components logged every epoch whatever the loss: PL and the paper's SFL bands, unweighted.
PROBE_COMPONENTS = ("pl", *(band_name(s) for s in PAPER_SCALES))


def evaluate_images(
    model: AutoEncoder, images: Sequence[torch.Tensor], *, device: str | torch.device = "cpu"
) -> dict[str, float]:
    """PL and the paper's SFL bands (unweighted) of ``model`` on whole images.

    Args:
        model: an autoencoder.
        images: :math:`(3, H_i, W_i)` tensors in [-1, 1], any sizes.
        device: where to run.

    Returns:
        ``{"pl": ..., "sfl/0.8": ..., "sfl/1.6": ..., "sfl/3.2": ...}``, means over images.
    """
    probe = create_loss("pl+sfl").to(device)
    sums = dict.fromkeys(PROBE_COMPONENTS, 0.0)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for group in size_buckets([tuple(im.shape[-2:]) for im in images], None):
            batch = network_input(torch.stack([images[i] for i in group]), device)
            parts = probe.components(model(batch).float(), batch)
            for name in PROBE_COMPONENTS:
                sums[name] += float(parts[name]) * len(batch)
    model.train(was_training)
    return {k: v / len(images) for k, v in sums.items()}
