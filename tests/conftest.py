"""Shared fixtures: small real photos and deterministic seeds."""

from __future__ import annotations

import pytest
import torch

from featkit.data.images import find_images, load_images
from featkit.data.samples import sample_images


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def sample_dir():
    """Folder of the ~20 real photos shipped by scikit-image and scikit-learn."""
    return sample_images()


@pytest.fixture(scope="session")
def small_photos(sample_dir):
    """Four sample photos at most 64 px on the longer side, as (3, H, W) tensors in [-1, 1]."""
    records, skipped = load_images(find_images(sample_dir)[:4], max_side=64)
    assert not skipped
    return [r.image for r in records]
