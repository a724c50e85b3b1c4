"""A loss plugin whose 5th call in a process returns NaN (a --plugin module for the fault tests)."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from featkit.losses import register_loss

_calls = itertools.count(1)


class NanOnFifthCall(nn.Module):
    """Mean absolute error, except NaN on the 5th call in this process (later calls are fine)."""

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        value = (output - target).abs().mean()
        return value * float("nan") if next(_calls) == 5 else value


@register_loss("nan-at-5")
def nan_at_5() -> NanOnFifthCall:
    """L1 loss that becomes NaN on its 5th call (fault injection)."""
    return NanOnFifthCall()
