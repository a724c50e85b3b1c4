"""Least-squares fits of the transforms that RANSAC verifies matches with.

scikit-image's estimators take the null vector of the constraint matrix from a full SVD,
``np.linalg.svd(A)``, whose left factor is K x K for K point pairs. RANSAC's final refit on
every inlier then dominates a match (thousands of inliers: 2K x 2K doubles for a homography).
These subclasses keep scikit-image's transforms and RANSAC and compute the same least-squares
solutions with an economical SVD, in time and memory linear in K:

- :class:`HomographyFit`: the normalised direct linear transform (Hartley & Zisserman, alg. 4.2);
- :class:`AffineFit`: ordinary least squares of the six affine parameters;
- :class:`EpipolarTransform`: the normalised 8-point algorithm with rank 2 enforced, and RANSAC
  residuals in pixels (distance to the epipolar line).

Points are ``(K, 2)`` arrays of x (column), y (row) in pixels.
"""

from __future__ import annotations

import numpy as np
from skimage.transform import FundamentalMatrixTransform, ProjectiveTransform

__all__ = ["AffineFit", "EpipolarTransform", "HomographyFit", "null_vector"]


def null_vector(a: np.ndarray) -> np.ndarray:
    """The unit vector ``x`` minimising ``|a x|``: the right singular vector of the smallest
    singular value of ``a`` :math:`(R, C)`, returned as :math:`(C,)`. Economical for tall
    ``a``; a wide one (a minimal sample) keeps its whole null space to pick from."""
    _, _, vt = np.linalg.svd(a, full_matrices=a.shape[0] < a.shape[1])
    return vt[-1]


def _root_weights(weights, count: int) -> np.ndarray:
    """Square roots of per-pair least-squares weights :math:`(K,)` (all ones for ``None``)."""
    if weights is None:
        return np.ones(count)
    weights = np.asarray(weights, np.float64)
    return np.sqrt(weights / weights.max())


def _normalising(points: np.ndarray) -> np.ndarray | None:
    """Hartley's 3 x 3 similarity moving ``points`` :math:`(K, 2)` to their centroid and
    scaling them to a mean distance of sqrt(2); ``None`` when they all coincide."""
    centre = points.mean(axis=0)
    spread = np.mean(np.hypot(*(points - centre).T))
    if not np.isfinite(spread) or spread <= 0:
        return None
    s = np.sqrt(2.0) / spread
    return np.array([[s, 0.0, -s * centre[0]], [0.0, s, -s * centre[1]], [0.0, 0.0, 1.0]])


def _normalised_pair(src: np.ndarray, dst: np.ndarray):
    """Both point sets normalised, with their matrices; ``None`` for a degenerate set."""
    ts, td = _normalising(src), _normalising(dst)
    if ts is None or td is None:
        return None
    return src * ts[0, 0] + ts[:2, 2], dst * td[0, 0] + td[:2, 2], ts, td


class HomographyFit(ProjectiveTransform):
    """scikit-image's homography, estimated by the normalised DLT with an economical SVD."""

    def _estimate(self, src, dst, weights=None):
        src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
        root = np.tile(_root_weights(weights, len(src)), 2)
        self.params = np.full((3, 3), np.nan)
        normalised = _normalised_pair(src, dst)
        if normalised is None:
            return "the points coincide"
        a, b, ts, td = normalised
        (x, y), (u, v) = a.T, b.T
        one, zero = np.ones_like(x), np.zeros_like(x)
        rows = np.concatenate(
            [
                np.stack([x, y, one, zero, zero, zero, -u * x, -u * y, -u], axis=1),
                np.stack([zero, zero, zero, x, y, one, -v * x, -v * y, -v], axis=1),
            ]
        )
        h = np.linalg.inv(td) @ null_vector(rows * root[:, None]).reshape(3, 3) @ ts
        if np.isclose(h[2, 2], 0.0):
            return "the homography sends the origin to infinity"
        self.params = h / h[2, 2]
        return None


class AffineFit(ProjectiveTransform):
    """An affine transform (a homography whose last row is 0 0 1), estimated by ordinary least
    squares. It extends scikit-image's ``ProjectiveTransform``: ``AffineTransform`` binds its
    ``from_estimate`` to itself, so a subclass of it would never be estimated by its own code."""

    def _estimate(self, src, dst, weights=None):
        src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
        root = _root_weights(weights, len(src))
        design = np.c_[src, np.ones(len(src))] * root[:, None]
        solution, _, rank, _ = np.linalg.lstsq(design, dst * root[:, None], rcond=None)
        if rank < 3:
            self.params = np.full((3, 3), np.nan)
            return "the points are collinear"
        self.params = np.vstack([solution.T, [0.0, 0.0, 1.0]])
        return None


class EpipolarTransform(FundamentalMatrixTransform):
    """scikit-image's fundamental matrix (normalised 8-point algorithm, rank 2 enforced, with an
    economical SVD) with RANSAC residuals in pixels: the distance of a point to its epipolar
    line, in whichever image it is larger (scikit-image's own residual is the Sampson
    distance)."""

    def _estimate(self, src, dst):
        src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
        self.params = np.full((3, 3), np.nan)
        normalised = _normalised_pair(src, dst)
        if normalised is None:
            return "the points coincide"
        a, b, ts, td = normalised
        a, b = np.c_[a, np.ones(len(a))], np.c_[b, np.ones(len(b))]
        # b^T F a = 0 for every pair: one row per pair over F's entries in row-major order
        rows = (b[:, :, None] * a[:, None, :]).reshape(len(a), 9)
        u, s, vt = np.linalg.svd(null_vector(rows).reshape(3, 3))
        s[2] = 0.0
        self.params = td.T @ (u * s) @ vt @ ts
        return None

    def residuals(self, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
        """Epipolar distances in pixels, :math:`(K,)`, of matched points ``src`` in A and
        ``dst`` in B, :math:`(K, 2)` each: the larger of the distance from ``dst`` to the line
        :math:`F a` in B and from ``src`` to the line :math:`F^\\top b` in A (homogeneous
        :math:`a, b`)."""
        a, b = np.c_[src, np.ones(len(src))], np.c_[dst, np.ones(len(dst))]
        lines_b, lines_a = a @ self.params.T, b @ self.params
        algebraic = np.abs(np.sum(b * lines_b, axis=1))
        norm = np.minimum(np.hypot(lines_b[:, 0], lines_b[:, 1]), np.hypot(lines_a[:, 0], lines_a[:, 1]))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.nan_to_num(algebraic / norm, nan=np.inf)
