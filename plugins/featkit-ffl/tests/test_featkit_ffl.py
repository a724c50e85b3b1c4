"""The ffl plugin: the factory builds the upstream loss, and featkit combines it in specs."""

from __future__ import annotations

import pytest
import torch
from focal_frequency_loss import FocalFrequencyLoss

import featkit
from featkit.losses import LOSSES
from featkit_ffl import focal_frequency_loss


@pytest.fixture
def ffl_registered(monkeypatch):
    """Register the factory as the entry point would, without installing the package."""
    monkeypatch.setattr(LOSSES, "_entries", dict(LOSSES._entries))
    if "ffl" not in LOSSES.names():
        LOSSES.add("ffl", focal_frequency_loss)


def test_factory_matches_upstream_loss():
    x, y = torch.rand(2, 3, 16, 12) * 2 - 1, torch.rand(2, 3, 16, 12) * 2 - 1
    ours = focal_frequency_loss(alpha=2.0)(x, y)
    theirs = FocalFrequencyLoss(alpha=2.0)(x, y)
    assert ours.dim() == 0 and torch.equal(ours, theirs)
    assert float(focal_frequency_loss()(x, x)) == 0.0


def test_combines_with_featkit_losses(ffl_registered):
    loss = featkit.create_loss("pl+0.5*ffl", ffl={"alpha": 2.0})
    x, y = torch.rand(1, 3, 10, 14) * 2 - 1, torch.rand(1, 3, 10, 14) * 2 - 1
    total, parts = loss.evaluate(x, y)
    assert set(parts) == {"pl", "ffl"}
    expected = parts["pl"] + 0.5 * FocalFrequencyLoss(alpha=2.0)(x, y)
    assert torch.allclose(total, expected)
