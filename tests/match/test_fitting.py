"""The transforms RANSAC fits: exact on exact data, least squares like scikit-image's on noisy
data, and linear in the number of points."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.transform import AffineTransform, FundamentalMatrixTransform, ProjectiveTransform

from featkit.tasks.fitting import AffineFit, EpipolarTransform, HomographyFit, null_vector

TRUE_H = np.array([[1.1, 0.05, 20.0], [-0.03, 0.95, -10.0], [2e-4, -1e-4, 1.0]])


def _project(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    mapped = np.c_[points, np.ones(len(points))] @ h.T
    return mapped[:, :2] / mapped[:, 2:]


def _stereo(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points of a 3-D scene seen by two cameras a baseline apart, and the true F."""
    k = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    angle = np.deg2rad(8.0)
    r = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    t = np.array([-1.0, 0.1, 0.05])
    scene = np.c_[rng.uniform(-2, 2, (n, 2)), rng.uniform(4, 9, n)]
    a = scene @ k.T
    b = (scene @ r.T + t) @ k.T
    tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
    f = np.linalg.inv(k).T @ tx @ r @ np.linalg.inv(k)
    return a[:, :2] / a[:, 2:], b[:, :2] / b[:, 2:], f


def _unit(m: np.ndarray) -> np.ndarray:
    m = m / np.linalg.norm(m)
    return m * np.sign(m.flat[np.argmax(np.abs(m))])


def test_null_vector_of_tall_and_wide_matrices():
    rng = np.random.default_rng(0)
    x = _unit(rng.normal(size=9))
    basis = np.linalg.qr(np.c_[x, rng.normal(size=(9, 8))])[0][:, 1:]  # orthogonal to x
    for rows in (8, 500):  # a minimal sample and a refit
        a = rng.normal(size=(rows, 8)) @ basis.T
        np.testing.assert_allclose(_unit(null_vector(a)), x, atol=1e-10)


def test_exact_data_give_the_true_transforms():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 500, (200, 2))
    np.testing.assert_allclose(_unit(HomographyFit.from_estimate(src, _project(TRUE_H, src)).params),
                               _unit(TRUE_H), atol=1e-9)  # fmt: skip
    affine = TRUE_H.copy()
    affine[2] = [0, 0, 1]
    np.testing.assert_allclose(AffineFit.from_estimate(src, _project(affine, src)).params, affine, atol=1e-9)
    a, b, f = _stereo(200, rng)
    fit = EpipolarTransform.from_estimate(a, b)
    np.testing.assert_allclose(_unit(fit.params), _unit(f), atol=1e-7)
    assert fit.residuals(a, b).max() < 1e-6  # pixels from the epipolar lines


def test_noisy_data_fit_as_well_as_scikit_image():
    """Least squares under another normalisation of the points: not the same numbers, but residuals
    within 1 % of scikit-image's own estimators."""
    rng = np.random.default_rng(2)
    src = rng.uniform(0, 500, (300, 2))
    dst = _project(TRUE_H, src) + rng.normal(0, 0.7, src.shape)
    for ours, theirs in ((HomographyFit, ProjectiveTransform), (AffineFit, AffineTransform)):
        rms = [np.sqrt(np.mean(c.from_estimate(src, dst).residuals(src, dst) ** 2)) for c in (ours, theirs)]
        assert rms[0] <= 1.01 * rms[1]
    a, b, _ = _stereo(300, rng)
    b = b + rng.normal(0, 0.7, b.shape)
    ours = EpipolarTransform.from_estimate(a, b)
    theirs = EpipolarTransform(FundamentalMatrixTransform.from_estimate(a, b).params)
    assert np.sqrt(np.mean(ours.residuals(a, b) ** 2)) <= 1.01 * np.sqrt(np.mean(theirs.residuals(a, b) ** 2))


@pytest.mark.parametrize("fit", [HomographyFit, EpipolarTransform])
def test_coincident_points_fail_instead_of_dividing_by_zero(fit):
    points = np.ones((8, 2))
    assert not fit.from_estimate(points, points + 1.0)


def test_collinear_points_fail_the_affine_fit():
    line = np.c_[np.arange(5.0), 2 * np.arange(5.0)]
    assert not AffineFit.from_estimate(line, line)


def test_a_refit_on_thousands_of_inliers_stays_small():
    """scikit-image's full SVD would build a 40,000 x 40,000 matrix (12.8 GB) here."""
    rng = np.random.default_rng(3)
    src = rng.uniform(0, 500, (20_000, 2))
    fit = HomographyFit.from_estimate(src, _project(TRUE_H, src))
    np.testing.assert_allclose(_unit(fit.params), _unit(TRUE_H), atol=1e-9)


@pytest.mark.parametrize("fit", [HomographyFit, AffineFit])
def test_weights_pick_the_pairs_that_count(fit):
    """A weighted fit ignores pairs of weight ~0: the clean half alone decides."""
    rng = np.random.default_rng(4)
    src = rng.uniform(0, 500, (100, 2))
    h = TRUE_H if fit is HomographyFit else np.vstack([TRUE_H[:2], [0, 0, 1]])
    dst = _project(h, src)
    dst[50:] += rng.normal(0, 30, (50, 2))
    weights = np.r_[np.ones(50), np.full(50, 1e-12)]
    np.testing.assert_allclose(_unit(fit.from_estimate(src, dst, weights).params), _unit(h), atol=1e-6)
