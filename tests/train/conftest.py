"""Fixtures for training tests: a tiny folder of real photos and a fast config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from PIL import Image

from featkit.data.images import find_images
from featkit.data.samples import sample_images
from featkit.training.config import TrainConfig

#: Sizes (W, H) of the tiny photos: different shapes, odd sides included.
SIZES = [(40, 30), (33, 41), (40, 30), (27, 27)]


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    """Four real photos shrunk to a few dozen pixels, in a nested folder."""
    root = tmp_path_factory.mktemp("tiny")
    (root / "sub").mkdir()
    for i, (path, size) in enumerate(zip(find_images(sample_images()), SIZES)):
        with Image.open(path) as img:
            img.convert("RGB").resize(size).save(root / ("sub" if i % 2 else ".") / f"photo{i}.png")
    return root


@pytest.fixture
def fast_config(tiny_folder, tmp_path):
    """A factory of small, quick configs writing under ``tmp_path``."""

    def make(**overrides) -> TrainConfig:
        base = TrainConfig(
            data=str(tiny_folder), out=str(tmp_path / "run"), epochs=2, crop=16, batch_size=3, epoch_windows=0,
            crops_per_image=2, recon_images=1, recon_epochs=[], device="cpu",
        )  # fmt: skip
        return dataclasses.replace(base, **overrides)

    return make
