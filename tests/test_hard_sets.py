"""bench/hard_sets.py: the hard held-out sets and how they are scored, checked against truths
built by hand (and SIFT, the anchor, against a viewpoint pair's true homography)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from featkit.data.samples import sample_images
from tests.scripts import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import hard_sets  # noqa: E402


def test_disparity_errors_measure_from_the_true_position_and_skip_unknown_disparity():
    disparity = np.full((10, 20), 4.0)
    disparity[0, 0] = np.nan
    pa = np.array([[10.0, 5.0], [12.0, 3.0], [0.0, 0.0]])
    pb = np.array([[6.0, 5.0], [8.0, 7.0], [0.0, 0.0]])  # exact; 4 px off in y; no truth
    np.testing.assert_allclose(hard_sets.disparity_errors(pa, pb, disparity), [0.0, 4.0])


def test_match_scores_average_over_pairs_and_count_correct_matches():
    scores = hard_sets.match_scores([np.array([0.5, 2.0, 10.0, 4.0]), np.zeros(0)])
    assert scores["mma1"] == pytest.approx(0.125) and scores["mma3"] == pytest.approx(0.25)
    assert scores["mma5"] == pytest.approx(0.375) and scores["correct"] == pytest.approx(1.0)


def test_search_scores_share_tied_ranks():
    base = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    queries = np.array([[1.0, 0.0], [0.0, 1.0]])  # the first ties with a distractor
    scores = hard_sets.search_scores(queries, base, np.array([0, 2]))
    assert scores["r1"] == pytest.approx(0.5) and scores["map"] == pytest.approx((1 / 1.5 + 1) / 2)


@pytest.mark.parametrize("kind", hard_sets.EDITS)
def test_every_edit_gives_an_image_in_range(kind):
    image = torch.rand(3, 60, 90) * 2 - 1
    edited = hard_sets.edit(image, kind, np.random.default_rng(0))
    assert edited.shape[0] == 3 and edited.min() >= -1 and edited.max() <= 1
    if kind == "third":
        assert edited.shape[1:] == (20, 30)
    if kind == "grey":
        assert torch.equal(edited[0], edited[1])


def test_an_unknown_edit_is_named():
    with pytest.raises(ValueError, match="unknown edit 'sepia'"):
        hard_sets.edit(torch.zeros(3, 8, 8), "sepia", np.random.default_rng(0))


def test_sift_matches_a_viewpoint_pair_where_its_truth_says():
    pairs = hard_sets.viewpoint_pairs([sample_images() / "astronaut.png"], 256, seed=0)
    assert [p["bin"] for p in pairs] == [0, 1, 2]
    pair = pairs[0]  # 20-35 degrees
    pa, pb = hard_sets.correspondences(hard_sets.Sift(), pair["a"], pair["b"], None)
    scores = hard_sets.match_scores([hard_sets.homography_errors(pa, pb, pair["h"])])
    assert len(pa) >= 20 and scores["mma3"] >= 0.8  # a wrong truth (or warp) would put most far off


def test_the_stereo_pair_has_its_disparity():
    pair = hard_sets.stereo_pair()
    assert pair["a"].shape == pair["b"].shape == (3, 500, 741)
    assert pair["disparity"].shape == (500, 741) and 0.9 < np.isfinite(pair["disparity"]).mean() < 1.0
