"""The ssim plugin: 1 - SSIM of [-1, 1] images, checked against scikit-image's SSIM."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

import featkit
from featkit.losses import LOSSES
from featkit_ssim import SSIMLoss, ssim_loss


@pytest.fixture
def ssim_registered(monkeypatch):
    """Register the factory as the entry point would, without installing the package."""
    monkeypatch.setattr(LOSSES, "_entries", dict(LOSSES._entries))
    if "ssim" not in LOSSES.names():
        LOSSES.add("ssim", ssim_loss)


def _pair(seed: int = 0, size=(1, 3, 40, 48)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(size, generator=g, dtype=torch.float64) * 2 - 1
    noisy = (x + 0.3 * torch.randn(size, generator=g, dtype=torch.float64)).clamp(-1, 1)
    return noisy, x


def test_matches_scikit_image_gaussian_ssim():
    output, target = _pair()
    ours = float(ssim_loss()(output, target))
    # scikit-image with the same Gaussian window, data range 1 and sample covariance off
    a = ((output[0] + 1) / 2).permute(1, 2, 0).numpy()
    b = ((target[0] + 1) / 2).permute(1, 2, 0).numpy()
    reference = structural_similarity(
        a,
        b,
        channel_axis=2,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        win_size=11,
    )
    assert ours == pytest.approx(1 - reference, abs=2e-3)


def test_zero_for_identical_and_ordered_by_damage():
    output, target = _pair()
    loss = SSIMLoss()
    assert float(loss(target, target)) == pytest.approx(0.0, abs=1e-6)
    slightly = (target + 0.05 * (output - target)).clamp(-1, 1)
    assert 0 < float(loss(slightly, target)) < float(loss(output, target))


def test_rejects_even_window():
    with pytest.raises(ValueError, match="odd"):
        SSIMLoss(win_size=10)


def test_combines_with_featkit_losses(ssim_registered):
    output, target = (t.float() for t in _pair(1))
    loss = featkit.create_loss("pl+0.1*ssim", ssim={"win_size": 7})
    total, parts = loss.evaluate(output, target)
    assert set(parts) == {"pl", "ssim"}
    assert torch.allclose(total, parts["pl"] + 0.1 * SSIMLoss(win_size=7)(output, target))
    x = output.clone().requires_grad_(True)
    loss(x, target).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert np.isfinite(float(total))
