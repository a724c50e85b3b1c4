"""Sparse LoG keypoints: detection, orientation, description and ``--keypoints log``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from featkit.cli import main
from featkit.data.images import load_image
from featkit.encoders import create_encoder
from featkit.errors import MatchError
from featkit.features.descriptors import descriptor_dim
from featkit.tasks.homography import viewpoint_homography, warp_image
from featkit.tasks.keypoints import (
    LOG_THRESHOLD,
    detect_keypoints,
    dominant_orientations,
    keypoint_descriptors,
    octave_pyramid,
)
from featkit.tasks.matching import match


def _blob(size: tuple[int, int], centre: tuple[float, float], sigma: float) -> torch.Tensor:
    """A bright Gaussian blob on grey: :math:`(3, H, W)` in [-1, 1]."""
    y, x = torch.meshgrid(torch.arange(size[0], dtype=torch.float64), torch.arange(size[1], dtype=torch.float64),
                          indexing="ij")  # fmt: skip
    g = torch.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))
    return (g * 1.6 - 0.8).float().expand(3, -1, -1).clone()


@pytest.mark.parametrize("sigma", [1.5, 3.0, 6.0])
def test_a_gaussian_blob_is_found_at_its_centre_and_scale(sigma):
    """The normalised LoG of a Gaussian blob of width s peaks at its centre at scale s."""
    centre = (50.3, 41.6)
    found = detect_keypoints(_blob((96, 112), centre, sigma))
    strongest = np.argmax(np.abs(found.response))
    assert found.response[strongest] < 0  # a bright blob: the LoG is negative
    np.testing.assert_allclose(found.xy[strongest], centre, atol=0.35 * max(1.0, sigma / 2))
    assert abs(math.log(found.sigma[strongest] / sigma)) < math.log(1.2), found.sigma[strongest]


def test_edges_and_flat_regions_give_no_keypoints():
    """A straight step edge has one large principal curvature: it is not a blob."""
    step = torch.full((3, 64, 80), -0.5)
    step[:, :, 40:] = 0.5
    assert len(detect_keypoints(step)) == 0
    assert len(detect_keypoints(torch.zeros(3, 64, 80))) == 0
    blob = _blob((64, 80), (30.0, 30.0), 3.0)
    assert len(detect_keypoints(blob, threshold=10 * LOG_THRESHOLD)) > 0
    assert len(detect_keypoints(blob, threshold=2.0)) == 0  # above any response of this image


def test_keypoints_and_orientations_turn_with_the_image(sample_dir):
    """Turning a photo by 90 degrees moves its keypoints with it and turns their frames by
    90 degrees (the LoG is isotropic and the octaves halve exactly here). Float rounding may
    break a near tie between two samples differently, so a few keypoints may differ."""
    photo = load_image(sample_dir / "coffee.png", max_side=128)[:, :96, :128]
    turned = torch.rot90(photo, 1, dims=(1, 2))  # (x, y) -> (y, W - 1 - x)
    kp, kp_turned = detect_keypoints(photo), detect_keypoints(turned)
    assert len(kp) > 20
    moved = np.c_[kp.xy[:, 1], 127 - kp.xy[:, 0]]
    distance = np.linalg.norm(moved[:, None] - kp_turned.xy[None], axis=2)
    nearest = distance.argmin(axis=1)
    same = distance.min(axis=1) < 1e-3
    assert same.mean() > 0.95 and len(kp_turned) < 1.05 * len(kp)
    np.testing.assert_allclose(kp_turned.sigma[nearest[same]], kp.sigma[same], rtol=1e-3)
    index, angle = dominant_orientations(octave_pyramid(photo), kp)
    index_t, angle_t = dominant_orientations(octave_pyramid(turned), kp_turned)
    # rot90 turns x towards -y: a direction at angle t goes to t - 90 degrees, so each frame
    # should have a frame of the turned keypoint there
    off = [min(abs((b - a + 0.5 * math.pi + math.pi) % (2 * math.pi) - math.pi) for b in angle_t[index_t == nearest[i]])
           for i, a in zip(index, angle) if same[i] and (index_t == nearest[i]).any()]  # fmt: skip
    assert len(off) > 0.9 * len(index) and np.mean(np.array(off) < math.radians(5)) > 0.9, np.mean(np.array(off) < math.radians(5))


def test_descriptors_are_unit_rows_at_the_keypoints(sample_dir):
    model = create_encoder("paper-cae")
    photo = load_image(sample_dir / "coffee.png", max_side=96)
    desc, xy = keypoint_descriptors(model, photo)
    assert desc.dtype == np.float32 and desc.shape[1] == descriptor_dim(model) and len(desc) == len(xy) > 0
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, rtol=1e-5)
    assert (xy >= -0.5).all() and (xy[:, 0] <= photo.shape[2] - 0.5).all() and (xy[:, 1] <= photo.shape[1] - 0.5).all()
    empty, none_xy = keypoint_descriptors(model, torch.zeros(3, 40, 40))
    assert empty.shape == (0, desc.shape[1]) and none_xy.shape == (0, 2)


def test_log_keypoints_hold_under_a_viewpoint_change_where_dense_cells_do_not(sample_dir):
    """The shipped model on a held-out photo seen from 40 degrees aside, zoomed to 0.7x and
    rolled 25 degrees: dense cells find few right matches, LoG keypoints most of them."""
    photo = load_image(sample_dir / "chelsea.png", max_side=192)
    h = viewpoint_homography((photo.shape[2], photo.shape[1]), 40.0, "vertical", scale=0.7, rotation=25.0)
    view = warp_image(photo, h)
    dense, sparse = (match(photo, view, ransac="none", keypoints=k, gt_homography=h) for k in ("dense", "log"))
    correct = [r.evaluation["mma"]["3"] * len(r.matches) for r in (dense, sparse)]
    assert sparse.keypoints == "log" and "LoG keypoints" in sparse.summary()
    assert sparse.evaluation["mma"]["3"] > 0.9 > dense.evaluation["mma"]["3"] + 0.2, (dense.summary(), sparse.summary())
    assert correct[1] > 2 * correct[0]
    assert sparse.num_descriptors[0] < dense.num_descriptors[0] / 3
    fine = match(photo, view, ransac="none", keypoints="log2x", gt_homography=h)  # an octave at 2x too
    assert fine.keypoints == "log2x" and "LoG keypoints from 2x" in fine.summary()
    assert fine.evaluation["mma"]["3"] > 0.9 and fine.evaluation["mma"]["3"] * len(fine.matches) > 1.5 * correct[1], fine.summary()


def test_bad_keypoint_options_are_refused():
    image = torch.zeros(3, 32, 32)
    with pytest.raises(MatchError, match="unknown keypoints 'sift'"):
        match(image, image, "pixels", keypoints="sift")
    with pytest.raises(MatchError, match="own scale"):
        match(image, image, "pixels", keypoints="log", scales=2)


def test_cli_keypoints_reach_the_json_and_refuse_scales(pair_files, tmp_path, capsys):
    a, b, _ = pair_files
    assert main(["match", str(a), str(b), "-o", str(tmp_path / "m.png"), "--json", str(tmp_path / "m.json"),
                 "--keypoints", "log", "--ransac", "none"]) == 0  # fmt: skip
    written = json.loads((tmp_path / "m.json").read_text())
    assert written["keypoints"] == "log" and "LoG keypoints" in written["summary"]
    assert main(["match", str(a), str(b), "-o", str(tmp_path / "n.png"), "--keypoints", "log", "--scales", "2"]) == 2
    assert "--scales" in capsys.readouterr().err
    assert main(["match", str(a), str(b), "-o", str(tmp_path / "n.png"), "--keypoints", "sparse"]) == 2
    assert "--keypoints" in capsys.readouterr().err
    assert not (tmp_path / "n.png").exists()
