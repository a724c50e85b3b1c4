"""Matching across a change of scale: pyramid_descriptors and ``--scales``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from featkit.cli import main
from featkit.data.images import load_image
from featkit.encoders import create_encoder
from featkit.errors import MatchError
from featkit.tasks.homography import warp_image
from featkit.tasks.matching import PYRAMID_MIN_SIDE, PYRAMID_STEP, dense_descriptors, match, pyramid_descriptors

#: A zoom out to 0.55x about a point off the centre: beyond what one size of the features covers.
ZOOM = np.array([[0.55, 0.0, 40.0], [0.0, 0.55, 25.0], [0.0, 0.0, 1.0]])


def test_one_scale_is_the_image_alone():
    model = create_encoder("paper-cae")
    image = torch.rand(3, 40, 56) * 2 - 1
    desc, xy, level = pyramid_descriptors(model, image, scales=1)
    one, one_xy = dense_descriptors(model, image)
    np.testing.assert_array_equal(desc, one)
    np.testing.assert_array_equal(xy, one_xy)
    assert not level.any()


def test_levels_are_placed_in_the_image_s_own_pixels():
    model = create_encoder("pixels", stride=2)
    image = torch.rand(3, 96, 128) * 2 - 1
    desc, xy, level = pyramid_descriptors(model, image, scales=3, min_contrast=0)
    counts = np.bincount(level)
    sides = [(round(96 * PYRAMID_STEP**k), round(128 * PYRAMID_STEP**k)) for k in range(3)]
    assert counts.tolist() == [((h + 1) // 2) * ((w + 1) // 2) for h, w in sides]
    for k in range(3):  # every level spans the whole image, its cells further apart
        xs = np.unique(xy[level == k, 0])
        assert xs.min() < 2 * 2 ** (k / 2) and xs.max() > 127 - 2 * 2 ** (k / 2)
        np.testing.assert_allclose(np.diff(xs)[:-1], 2 * 128 / sides[k][1], rtol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, rtol=1e-5)


def test_a_pyramid_stops_before_levels_too_small_to_describe():
    model = create_encoder("pixels", stride=2)
    side = PYRAMID_MIN_SIDE + 8  # level 1 is below the limit
    _, _, level = pyramid_descriptors(model, torch.rand(3, side, 3 * side) * 2 - 1, scales=4, min_contrast=0)
    assert set(level.tolist()) == {0}
    with pytest.raises(MatchError, match="scales"):
        pyramid_descriptors(model, torch.zeros(3, 8, 8), scales=0)


def test_three_scales_match_a_zoomed_out_photo_that_one_scale_misses(sample_dir):
    """The shipped model on a held-out photo zoomed out to 0.55x: with 3 levels (which reach
    0.5x) it finds more than twice the correct matches, as precisely."""
    photo = load_image(sample_dir / "chelsea.png", max_side=192)
    zoomed = warp_image(photo, ZOOM)
    results = [match(photo, zoomed, ransac="none", scales=s, gt_homography=ZOOM) for s in (1, 3)]
    correct = [r.evaluation["mma"]["3"] * len(r.matches) for r in results]
    assert results[1].scales == 3 and "3 scales" in results[1].summary()
    assert correct[1] > 2 * correct[0], [r.summary() for r in results]
    assert results[1].evaluation["mma"]["3"] > 0.9


def test_cli_scales_reaches_the_json_and_refuses_zero(pair_files, tmp_path, capsys):
    a, b, _ = pair_files
    assert main(["match", str(a), str(b), "-o", str(tmp_path / "m.png"), "--json", str(tmp_path / "m.json"),
                 "--scales", "2", "--ransac", "none"]) == 0  # fmt: skip
    assert json.loads((tmp_path / "m.json").read_text())["scales"] == 2
    assert main(["match", str(a), str(b), "-o", str(tmp_path / "n.png"), "--scales", "0"]) == 2
    assert "--scales" in capsys.readouterr().err
