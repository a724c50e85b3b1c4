"""featkit.data.procedural: dead-leaves images."""

from __future__ import annotations

import numpy as np
from PIL import Image

from featkit.data.procedural import COVERAGE, dead_leaves, write_dead_leaves


def test_dead_leaves_are_a_pure_function_of_the_seed_and_cover_the_image_with_many_sizes(tmp_path):
    first = write_dead_leaves(tmp_path / "a", 2, side=64, seed=3)
    again = write_dead_leaves(tmp_path / "b", 2, side=64, seed=3)
    other = write_dead_leaves(tmp_path / "c", 1, side=64, seed=4)
    assert [p.name for p in first] == ["leaves-0000.png", "leaves-0001.png"]
    pixels = [np.asarray(Image.open(p)) for p in first]
    assert all(np.array_equal(a, np.asarray(Image.open(b))) for a, b in zip(pixels, again))
    assert not np.array_equal(pixels[0], pixels[1]) and not np.array_equal(pixels[0], np.asarray(Image.open(other[0])))
    image = dead_leaves(96, np.random.default_rng(0))
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    colours, counts = np.unique(image.reshape(-1, 3), axis=0, return_counts=True)
    # occlusion makes regions of every size: a few large ones cover much, many cover a few pixels
    assert len(colours) > 50 and counts.max() > 0.02 * 96 * 96 and np.median(counts) < 0.005 * 96 * 96
    assert 0 < COVERAGE < 1
