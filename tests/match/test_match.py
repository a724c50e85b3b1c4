"""featkit.tasks.matching: descriptors, mutual matching, RANSAC, coordinates and evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from featkit.encoders import create_encoder
from featkit.errors import MatchError
from featkit.tasks.matching import MATCH_DTYPE, dense_descriptors, match, mutual_matches, verify
from featkit.tasks.homography import evaluate_homography, load_homography


@pytest.mark.parametrize(
    "model, window",
    [("paper-cae", 1), (create_encoder("pixels", stride=2), 3)],
    ids=["paper-cae-random", "pixels-window3"],
)
def test_recovers_known_homography(photo, warped, model, window):
    image_b, true_h = warped
    result = match(photo, image_b, model, window=window, gt_homography=true_h)
    ev = result.evaluation
    assert result.transform is not None
    assert ev["corner_error"] < 2.0, result.summary()
    assert ev["mma"]["3"] > 0.3 and ev["mma_inliers"]["3"] > 0.8, result.summary()
    assert result.num_inliers >= 20


def test_descriptor_positions_are_cell_centres():
    model = create_encoder("pixels", stride=4)
    image = torch.rand(3, 18, 21) * 2 - 1
    desc, xy = dense_descriptors(model, image, min_contrast=0)
    assert desc.shape == (5 * 6, 3) and desc.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(desc, axis=1), 1.0, rtol=1e-5)
    xs, ys = np.unique(xy[:, 0]), np.unique(xy[:, 1])
    np.testing.assert_allclose(xs, [1.5, 5.5, 9.5, 13.5, 17.5, 20.0])  # last centre clipped into the image
    np.testing.assert_allclose(ys, [1.5, 5.5, 9.5, 13.5, 17.0])


def test_window_stacks_neighbouring_cells():
    model = create_encoder("pixels", stride=2)
    image = torch.rand(3, 16, 16) * 2 - 1
    one, _ = dense_descriptors(model, image, min_contrast=0)
    three, _ = dense_descriptors(model, image, window=3, min_contrast=0)
    assert three.shape == (one.shape[0], 27)
    with pytest.raises(MatchError, match="odd"):
        dense_descriptors(model, image, window=2)


def test_flat_cells_are_skipped():
    model = create_encoder("paper-cae")
    image = torch.zeros(3, 32, 32)
    image[:, 8:24, 8:24] = torch.rand(3, 16, 16)
    desc, xy = dense_descriptors(model, image)
    assert 0 < len(desc) < 16 * 16
    assert xy.min() >= 4 and xy.max() <= 27  # only cells near the textured square
    assert len(dense_descriptors(model, torch.full((3, 32, 32), 0.3))[0]) == 0


def test_coordinates_undo_stride_and_max_side(tmp_path, sample_dir, save_png):
    """B is A cropped by (dx, dy) = (40, 24) original pixels; both are downscaled differently."""
    from featkit.data.images import load_image

    full = load_image(sample_dir / "astronaut.png")  # 512 x 512
    save_png(full, tmp_path / "a.png")
    save_png(full[:, 24:, 40:], tmp_path / "b.png")  # 472 x 488
    result = match(tmp_path / "a.png", tmp_path / "b.png", "paper-cae", max_side=160, ransac="affine")
    assert result.size_a == (512, 512) and result.size_b == (472, 488)
    m = result.matches[result.matches["inlier"]]
    assert len(m) > 50
    assert m["xa"].max() > 400 and m["ya"].max() > 400  # original pixels, not the 160 px copy
    np.testing.assert_allclose(np.median(m["xa"] - m["xb"]), 40, atol=1.5)
    np.testing.assert_allclose(np.median(m["ya"] - m["yb"]), 24, atol=1.5)
    np.testing.assert_allclose(result.transform[:2, 2], [-40, -24], atol=3)


def test_tensor_inputs_are_downscaled_and_mapped_back(photo, warped):
    image_b, true_h = warped
    big_a = torch.nn.functional.interpolate(photo[None], scale_factor=2, mode="bilinear")[0]
    big_to_small = np.array([[0.5, 0, -0.25], [0, 0.5, -0.25], [0, 0, 1]])  # pixel centres
    result = match(big_a, image_b, "paper-cae", max_side=128, gt_homography=true_h @ big_to_small)
    assert result.size_a == (256, 256)
    assert result.evaluation["corner_error"] < 4.0, result.summary()


def test_mutual_matches_recovers_a_permutation():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 16)).astype(np.float32)
    a /= np.linalg.norm(a, axis=1, keepdims=True)
    perm = rng.permutation(300)
    b = a[perm] + rng.normal(0, 0.01, a.shape).astype(np.float32)
    b /= np.linalg.norm(b, axis=1, keepdims=True)
    ia, ib, score = mutual_matches(a, b, ratio=0.8)
    assert len(ia) == 300
    np.testing.assert_array_equal(perm[ib], ia)
    assert np.all(np.diff(score) <= 0) and np.all((score > 0) & (score <= 1))


def test_mutual_matches_rejects_ambiguous_and_empty():
    a = np.tile(np.array([[1, 0, 0, 0]], np.float32), (5, 1))
    b = np.eye(4, dtype=np.float32)
    assert len(mutual_matches(a, b)[0]) == 0  # every B row sees five equal A rows
    assert len(mutual_matches(np.zeros((0, 4), np.float32), b)[0]) == 0
    ia, ib, _ = mutual_matches(b[:1], b)  # a single A row: B's ratio has no second A row
    assert list(ia) == [0] and list(ib) == [0]


@pytest.mark.parametrize("model_name", ["homography", "affine"])
def test_verify_separates_inliers_from_outliers(model_name):
    rng = np.random.default_rng(1)
    pts = rng.uniform(0, 200, (80, 2))
    true = np.array([[1.1, 0.1, 5.0], [-0.05, 0.95, -3.0], [0.0002 if model_name == "homography" else 0, 0, 1]])
    homog = np.c_[pts, np.ones(80)] @ true.T
    dst = homog[:, :2] / homog[:, 2:]
    dst[:20] += rng.uniform(30, 60, (20, 2))  # outliers
    transform, inliers = verify(pts, dst, model_name, threshold=2.0)
    np.testing.assert_array_equal(inliers, np.arange(80) >= 20)
    np.testing.assert_allclose(transform / transform[2, 2], true, atol=1e-6)


def _two_view_scene(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random 3-D points at depths 4-12 seen by two cameras one unit apart.

    Returns:
        ``(a, b, f)``: :math:`(n, 2)` pixels in each view and the true fundamental matrix.
    """
    rng = np.random.default_rng(seed)
    k = np.array([[300.0, 0, 160], [0, 300, 120], [0, 0, 1]])
    angle = np.deg2rad(8)
    r = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = np.array([-1.0, 0.1, 0.2])
    points = np.c_[rng.uniform(-1, 1, (n, 2)), rng.uniform(4, 12, n)]

    def project(x):
        x = x @ k.T
        return x[:, :2] / x[:, 2:]

    cross = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    f = np.linalg.inv(k).T @ cross @ r @ np.linalg.inv(k)
    return project(points), project(points @ r.T + t), f


def _line_distances(f, a, b):
    """Distance of each B point to its epipolar line F a, pixels."""
    lines = np.c_[a, np.ones(len(a))] @ f.T
    return np.abs(np.sum(np.c_[b, np.ones(len(b))] * lines, axis=1)) / np.hypot(lines[:, 0], lines[:, 1])


def test_fundamental_recovers_the_epipolar_geometry_of_a_scene_with_depth():
    a, b, true_f = _two_view_scene(0, 200)
    b = b + np.random.default_rng(1).normal(0, 0.2, b.shape)
    # outliers: pushed 15-40 px off their true epipolar line, so no geometry can explain them
    lines = np.c_[a[:50], np.ones(50)] @ true_f.T
    normals = lines[:, :2] / np.hypot(lines[:, 0], lines[:, 1])[:, None]
    b[:50] += normals * np.random.default_rng(2).uniform(15, 40, (50, 1)) * np.sign(np.arange(50) % 2 - 0.5)[:, None]
    assert _line_distances(true_f, a[:50], b[:50]).min() > 14

    f, inliers = verify(a, b, "fundamental", threshold=2.0)
    np.testing.assert_array_equal(inliers, np.arange(200) >= 50)
    assert np.linalg.matrix_rank(f / np.abs(f).max(), tol=1e-9) == 2
    held_a, held_b, _ = _two_view_scene(3, 100)  # true correspondences RANSAC never saw
    assert _line_distances(f, held_a, held_b).max() < 1.0  # x_b^T F x_a ~ 0
    assert _line_distances(f.T, held_b, held_a).max() < 1.0

    _, homography_inliers = verify(a, b, "homography", threshold=2.0)
    assert homography_inliers.sum() < 0.5 * 150  # a plane cannot explain depth


def test_fundamental_keeps_more_of_a_real_stereo_pair_than_a_homography(sample_dir):
    left, right = sample_dir / "motorcycle_left.png", sample_dir / "motorcycle_right.png"
    plane = match(left, right, "paper-cae", max_side=256)
    epipolar = match(left, right, "paper-cae", max_side=256, ransac="fundamental")
    assert len(plane.matches) == len(epipolar.matches) > 1000
    assert epipolar.num_inliers > 1.3 * plane.num_inliers, (plane.summary(), epipolar.summary())
    kept = epipolar.matches[epipolar.matches["inlier"]]
    assert np.median(np.abs(kept["ya"] - kept["yb"])) < 1.0  # a rectified pair: epipolar lines are rows


def test_fundamental_result_has_no_corner_error(photo, warped):
    image_b, true_h = warped
    result = match(photo, image_b, "paper-cae", ransac="fundamental", gt_homography=true_h)
    assert result.transform.shape == (3, 3) and result.num_inliers >= 16
    assert result.evaluation["corner_error"] is None and result.evaluation["mma"]["3"] > 0.3
    assert "fundamental inliers" in result.summary() and result.to_json()["ransac"] == "fundamental"


def test_verify_without_enough_matches_or_with_none():
    pts = np.zeros((3, 2))
    assert verify(pts, pts, "homography")[0] is None
    assert not verify(pts, pts, "homography")[1].any()
    rng = np.random.default_rng(0)
    random_a, random_b = rng.uniform(0, 100, (10, 2)), rng.uniform(0, 100, (10, 2))
    assert verify(random_a, random_b, "homography", threshold=0.5)[0] is None  # 4 always fit
    transform, inliers = verify(pts, pts, "none")
    assert transform is None and inliers.all()
    with pytest.raises(MatchError, match="similarity"):
        verify(pts, pts, "similarity")


def test_evaluate_homography_counts_errors_exactly():
    m = np.zeros(4, MATCH_DTYPE)
    m["xa"], m["ya"] = [0, 10, 20, 30], [0, 0, 0, 0]
    true = np.array([[1, 0, 5], [0, 1, 0], [0, 0, 1.0]])  # shift by 5 px
    m["xb"] = m["xa"] + 5 + np.array([0.5, 2.0, 4.0, 9.0])  # errors 0.5, 2, 4, 9 px
    m["inlier"] = [True, True, False, False]
    ev = evaluate_homography(m, true, (40, 10), transform=true + np.array([[0, 0, 2], [0, 0, 0], [0, 0, 0]]))
    assert ev["mma"] == {"1": 0.25, "3": 0.5, "5": 0.75}
    assert ev["mma_inliers"] == {"1": 0.5, "3": 1.0, "5": 1.0}
    assert ev["corner_error"] == pytest.approx(2.0)
    empty = evaluate_homography(np.zeros(0, MATCH_DTYPE), true, (40, 10))
    assert empty["mma"]["3"] == 0.0 and empty["corner_error"] is None and empty["num_matches"] == 0


def test_load_homography_checks_the_file(tmp_path):
    good = tmp_path / "h.txt"
    good.write_text("1 0 2\n0 1 3\n0 0 1\n")
    np.testing.assert_allclose(load_homography(good), [[1, 0, 2], [0, 1, 3], [0, 0, 1]])
    (tmp_path / "short.txt").write_text("1 0 2 0 1 3")
    (tmp_path / "singular.txt").write_text("1 1 0\n1 1 0\n0 0 0\n")
    (tmp_path / "words.txt").write_text("a b c\n")
    for name, message in [("short", "expected 9 numbers"), ("singular", "singular"), ("words", "cannot read"), ("missing", "no such")]:
        with pytest.raises(MatchError, match=message):
            load_homography(tmp_path / f"{name}.txt")


def test_featureless_image_has_no_matches(photo):
    grey = torch.full_like(photo, 0.2)
    result = match(grey, photo, "paper-cae", gt_homography=np.eye(3))
    assert len(result.matches) == 0 and result.transform is None and result.num_inliers == 0
    assert result.num_descriptors[0] == 0
    data = json.loads(json.dumps(result.to_json()))
    assert data["matches"] == [] and data["evaluation"]["mma"]["3"] == 0.0


def test_options_are_checked(photo):
    with pytest.raises(MatchError, match="wildly different size"):
        match(photo, photo[:, :20, :20], "pixels")
    with pytest.raises(MatchError, match="ratio"):
        match(photo, photo, "pixels", ratio=0)
    with pytest.raises(MatchError, match="ransac"):
        match(photo, photo, "pixels", ransac="similarity")
    with pytest.raises(MatchError, match=r"\(3, H, W\)"):
        match(photo[0], photo, "pixels")


def test_max_matches_keeps_the_most_distinctive(photo, warped):
    full = match(photo, warped[0], "paper-cae", ransac="none")
    capped = match(photo, warped[0], "paper-cae", ransac="none", max_matches=10)
    assert len(capped.matches) == 10 < len(full.matches)
    np.testing.assert_array_equal(capped.matches, full.matches[:10])


def test_dense_search_memory_stays_linear():
    """A 2000 x 2000 pair runs within 4 GiB, and a 20k x 20k search never holds the 1.6 GB
    distance matrix (checked in a fresh process by its peak resident memory)."""
    script = textwrap.dedent(
        """
        import resource, sys, tempfile, pathlib
        import numpy as np
        from PIL import Image
        from featkit.data import sample_images
        from featkit.tasks.matching import match, mutual_matches
        tmp = pathlib.Path(tempfile.mkdtemp())
        img = Image.open(sample_images() / "astronaut.png").convert("RGB").resize((2000, 2000))
        img.save(tmp / "a.png", compress_level=1); img.rotate(4).save(tmp / "b.png", compress_level=1)
        r = match(tmp / "a.png", tmp / "b.png", "paper-cae", max_side=256)
        rng = np.random.default_rng(0)
        d = rng.standard_normal((20000, 8)).astype("float32")
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        mutual_matches(d, d[::-1].copy())
        print(len(r.matches), r.size_a[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr
    n_matches, width, peak_mib = map(int, proc.stdout.split())
    assert n_matches > 0 and width == 2000
    assert peak_mib < 2048, f"peak resident memory {peak_mib} MiB"
