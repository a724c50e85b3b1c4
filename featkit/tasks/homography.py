"""Ground truth for matching: homographies read from files or drawn at random, images warped
by them, and matches scored against them (mean matching accuracy at 1, 3 and 5 px, corner
error of the estimated transform)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skimage.transform import ProjectiveTransform

from featkit.errors import MatchError

__all__ = [
    "MMA_THRESHOLDS",
    "evaluate_homography",
    "load_homography",
    "random_homography",
    "viewpoint_homography",
    "warp_image",
]


#: Default thresholds (px) of the mean matching accuracy.
MMA_THRESHOLDS = (1, 3, 5)


def load_homography(path: str | os.PathLike) -> np.ndarray:
    """Read a 3 x 3 homography (whitespace or comma separated) from a text file.

    Raises:
        MatchError: naming the file when it is missing, not 3 x 3 numbers, or singular.
    """
    path = Path(path)
    try:
        text = path.read_text().replace(",", " ")
        values = np.array(text.split(), dtype=np.float64)
    except FileNotFoundError as exc:
        raise MatchError(f"{path}: no such homography file") from exc
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise MatchError(f"{path}: cannot read a 3 x 3 homography ({exc})") from exc
    if values.size != 9:
        raise MatchError(f"{path}: expected 9 numbers (a 3 x 3 homography), got {values.size}")
    h = values.reshape(3, 3)
    if not np.all(np.isfinite(h)) or abs(np.linalg.det(h)) < 1e-12:
        raise MatchError(f"{path}: the homography is singular or not finite")
    return h


def _apply(h: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map :math:`(K, 2)` points through a 3 x 3 homography."""
    homog = np.c_[points, np.ones(len(points))] @ h.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return homog[:, :2] / homog[:, 2:3]


def evaluate_homography(
    matches: np.ndarray,
    true_h: np.ndarray,
    size_a: tuple[int, int],
    transform: np.ndarray | None = None,
    thresholds: Sequence[float] = MMA_THRESHOLDS,
) -> dict[str, Any]:
    """Score matches and an estimated transform against the true homography A -> B.

    Args:
        matches: structured :data:`MATCH_DTYPE` array in original pixels.
        true_h: 3 x 3 homography mapping A's pixels to B's.
        size_a: ``(width, height)`` of image A, whose four corners measure the transform.
        transform: the estimated 3 x 3 A -> B matrix, if any.
        thresholds: pixel thresholds of the mean matching accuracy.

    Returns:
        ``{"mma": {"1": ..., "3": ..., "5": ...}, "mma_inliers": {...}, "corner_error": ...,
        "num_matches": K}``: MMA is the fraction of matches whose B point lies within the
        threshold of the true position (0 when there are no matches; ``mma_inliers`` counts
        only RANSAC inliers); ``corner_error`` is the mean distance (pixels of B) between the
        corners of A mapped by the estimate and by the truth, ``None`` without an estimate.
    """
    pa = np.c_[matches["xa"], matches["ya"]]
    pb = np.c_[matches["xb"], matches["yb"]]
    err = np.linalg.norm(_apply(true_h, pa) - pb, axis=1) if len(pa) else np.zeros(0)
    err = np.nan_to_num(err, nan=np.inf)
    inl = matches["inlier"]

    def mma(e: np.ndarray) -> dict[str, float]:
        return {f"{t:g}": float(np.mean(e <= t)) if len(e) else 0.0 for t in thresholds}

    corner_error = None
    if transform is not None:
        w, h = size_a
        corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
        gap = np.linalg.norm(_apply(transform, corners) - _apply(true_h, corners), axis=1)
        corner_error = float(np.mean(gap)) if np.all(np.isfinite(gap)) else float("inf")
    return {"mma": mma(err), "mma_inliers": mma(err[inl]), "corner_error": corner_error, "num_matches": len(pa)}


def random_homography(
    size: tuple[int, int],
    rng: np.random.Generator,
    *,
    max_rotation: float = 20.0,
    scale_range: tuple[float, float] = (0.8, 1.25),
    max_perspective: float = 0.1,
    max_shift: float = 0.05,
) -> np.ndarray:
    """A random homography about the centre of a ``(width, height)`` image.

    It rotates by up to ``max_rotation`` degrees, scales within ``scale_range``, shifts by up
    to ``max_shift`` of the size and tilts so that a corner moves by up to
    ``max_perspective`` of the size.

    Returns:
        3 x 3 float64 matrix mapping pixels of the image to the warped image.
    """
    w, h = size
    centre = np.array([[1, 0, -(w - 1) / 2], [0, 1, -(h - 1) / 2], [0, 0, 1.0]])
    theta = np.deg2rad(rng.uniform(-max_rotation, max_rotation))
    s = np.exp(rng.uniform(*np.log(scale_range)))
    cos, sin = s * np.cos(theta), s * np.sin(theta)
    similarity = np.array([[cos, -sin, 0], [sin, cos, 0], [0, 0, 1]])
    tilt = np.eye(3)
    tilt[2, :2] = rng.uniform(-max_perspective, max_perspective, 2) / (np.array([w, h]) / 2)
    shift = np.eye(3)
    shift[:2, 2] = rng.uniform(-max_shift, max_shift, 2) * np.array([w, h])
    return np.linalg.inv(centre) @ shift @ tilt @ similarity @ centre


def viewpoint_homography(
    size: tuple[int, int],
    tilt: float,
    axis: str = "vertical",
    *,
    scale: float = 1.0,
    rotation: float = 0.0,
    focal: float | None = None,
) -> np.ndarray:
    """How a plane seen head-on in a ``(width, height)`` image looks to a camera that has moved
    round it by ``tilt`` degrees, zoomed by ``scale`` and rolled by ``rotation`` degrees.

    The camera orbits the point of the plane at the image centre, about an axis through it
    parallel to the image's ``"vertical"`` or ``"horizontal"`` axis, so the centre stays in
    view and the plane is foreshortened as a turned camera sees it: ``K [r1 r2 e3] K^-1``
    for the rotation's columns ``r1, r2`` (the plane's points are ``Z = d`` for any depth
    ``d``; the orbit fixes ``(0, 0, d)``). Zoom and roll are about the centre, after the tilt.

    Args:
        size: ``(width, height)`` in pixels.
        tilt: degrees the camera moves round the plane; below 90 (edge on).
        axis: ``"vertical"`` (the camera moves sideways) or ``"horizontal"`` (up or down).
        scale: magnification of the second view (2: the plane looks twice as large).
        rotation: in-plane rotation of the second view, in degrees.
        focal: focal length in pixels; default the longer side (a 53-degree field of view).

    Returns:
        3 x 3 float64 matrix mapping pixels of the image to the second view.

    Raises:
        MatchError: a tilt of 90 degrees or more, an unknown axis, or a scale that is not positive.
    """
    if not 0.0 <= abs(tilt) < 90.0:
        raise MatchError(f"tilt must be below 90 degrees, got {tilt}")
    if axis not in ("vertical", "horizontal"):
        raise MatchError(f"axis must be 'vertical' or 'horizontal', got {axis!r}")
    if scale <= 0:
        raise MatchError(f"scale must be positive, got {scale}")
    w, h = size
    f = float(max(w, h)) if focal is None else float(focal)
    camera = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1.0]])
    t = np.deg2rad(tilt)
    c, s = np.cos(t), np.sin(t)
    turn = (np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]) if axis == "vertical"
            else np.array([[1, 0, 0], [0, c, -s], [0, s, c]]))  # fmt: skip
    plane = np.c_[turn[:, :2], [0.0, 0.0, 1.0]]
    r = np.deg2rad(rotation)
    zoom = np.array([[scale * np.cos(r), -scale * np.sin(r), 0], [scale * np.sin(r), scale * np.cos(r), 0], [0, 0, 1.0]])
    centre = np.array([[1, 0, -(w - 1) / 2], [0, 1, -(h - 1) / 2], [0, 0, 1.0]])
    return np.linalg.inv(centre) @ zoom @ centre @ camera @ plane @ np.linalg.inv(camera)


def warp_image(image: torch.Tensor, homography: np.ndarray, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Warp :math:`(3, H, W)` by a homography (image pixels -> output pixels), with skimage.

    Args:
        image: :math:`(3, H, W)` in [-1, 1].
        homography: 3 x 3 mapping input pixel positions to output positions.
        size: output ``(width, height)``; default the input's.

    Returns:
        :math:`(3, H', W')` in [-1, 1]; pixels from outside the input are mid-grey (0).
    """
    from skimage.transform import warp

    w, h = size or (image.shape[2], image.shape[1])
    inverse = ProjectiveTransform(np.linalg.inv(homography))
    arr = image.permute(1, 2, 0).double().numpy()
    out = warp(arr, inverse, output_shape=(h, w), order=1, mode="constant", cval=0.0, preserve_range=True)
    return torch.from_numpy(out.transpose(2, 0, 1).astype(np.float32))
