"""A real photo, a warped copy of it by a known homography, and both as files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from featkit.data.images import load_image
from featkit.tasks.homography import random_homography, warp_image


def save_tensor_image(image: torch.Tensor, path) -> None:
    """Write a (3, H, W) tensor in [-1, 1] as an 8-bit PNG."""
    arr = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr).save(path)


@pytest.fixture(scope="session")
def save_png():
    """The PNG writer, for tests that make their own files."""
    return save_tensor_image


@pytest.fixture(scope="session")
def photo(sample_dir) -> torch.Tensor:
    """The astronaut photo at 128 x 128, (3, H, W) in [-1, 1]."""
    return load_image(sample_dir / "astronaut.png", max_side=128)


@pytest.fixture(scope="session")
def warped(photo):
    """``(image_b, H)``: the photo warped by a seeded random homography H (A -> B)."""
    h = random_homography((photo.shape[2], photo.shape[1]), np.random.default_rng(3))
    return warp_image(photo, h), h


@pytest.fixture(scope="session")
def pair_files(tmp_path_factory, photo, warped):
    """``(a.png, b.png, H.txt)`` on disk."""
    root = tmp_path_factory.mktemp("pair")
    save_tensor_image(photo, root / "a.png")
    save_tensor_image(warped[0], root / "b.png")
    np.savetxt(root / "H.txt", warped[1])
    return root / "a.png", root / "b.png", root / "H.txt"
