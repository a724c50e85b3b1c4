"""Spatial correspondences between two images from dense hidden feature maps.

The pipeline, one function per step:

1. :func:`dense_descriptors`: every cell of a hidden layer's map becomes an L2-normalised
   descriptor placed at the cell's centre in input pixels; cells on flat image regions (no
   local contrast) are skipped, since they have nothing to match.
   :func:`pyramid_descriptors` does the same on an image pyramid, for a change of scale;
   :func:`~featkit.tasks.keypoints.keypoint_descriptors` describes sparse LoG keypoints
   instead, each on a patch resampled to its scale and orientation (``keypoints="log"``).
2. :func:`mutual_matches`: symmetric nearest neighbours found with faiss (exact inner-product
   search on unit vectors, computed block by block, so an N x M distance
   matrix is never held) and Lowe's ratio test applied in both directions.
3. :func:`verify`: geometric verification with scikit-image's RANSAC fitting a homography or
   an affine transform (planar scenes, a rotating camera), or the fundamental matrix of the
   epipolar geometry (scenes with depth seen from two places).

:func:`match` runs the three steps on two images and reports every coordinate in the
original images' pixels (stride and ``max_side`` resizing undone).
:func:`~featkit.tasks.homography.evaluate_homography`
scores matches against a known homography: mean matching accuracy (MMA) at 1, 3 and 5 px and
the corner error of the estimated transform.

Pixel convention: ``x`` is the column and ``y`` the row, and pixel centres sit at integer
coordinates, so an image of width W spans x in [-0.5, W - 0.5].
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from skimage.measure import ransac
from threadpoolctl import threadpool_limits

from featkit.choices import KEYPOINT_MODES, RANSAC_MODEL_NAMES
from featkit.data.images import load_images
from featkit.encoders import AutoEncoder
from featkit.errors import ImageError, MatchError
from featkit.features.descriptors import describe
from featkit.io import ensure_new, write_json
from featkit.runs.models import load_encoder
from featkit.runs.whitening import whitening_for
from featkit.runtime.devices import resolve_device
from featkit.tasks.fitting import AffineFit, EpipolarTransform, HomographyFit
from featkit.tasks.homography import evaluate_homography, load_homography
from featkit.tasks.keypoints import keypoint_descriptors

__all__ = [
    "EpipolarTransform",
    "ImageInput",
    "MATCH_DTYPE",
    "MatchResult",
    "RANSAC_MODELS",
    "default_ransac_threshold",
    "dense_descriptors",
    "match",
    "mutual_matches",
    "pyramid_descriptors",
    "save_match_json",
    "verify",
]

#: What the summary line adds for each sparse keypoint mode.
LOG_SUMMARY = {"log": ", LoG keypoints", "log2x": ", LoG keypoints from 2x"}


#: One match: positions in both original images, the ratio-test score and the RANSAC verdict.
MATCH_DTYPE = np.dtype(
    [("xa", "f8"), ("ya", "f8"), ("xb", "f8"), ("yb", "f8"), ("score", "f8"), ("inlier", "?")]
)


#: ``--ransac`` choices: the transform fitted (:mod:`featkit.tasks.fitting`), or ``None`` for no
#: verification.
RANSAC_MODELS: dict[str, type | None] = dict(
    zip(RANSAC_MODEL_NAMES, (HomographyFit, AffineFit, EpipolarTransform, None))
)
_MIN_SAMPLES = {"homography": 4, "affine": 3, "fundamental": 8}
ImageInput = str | os.PathLike | torch.Tensor


def dense_descriptors(
    model: AutoEncoder,
    image: torch.Tensor,
    *,
    layer: str | None = None,
    window: int | None = None,
    whiten: bool = True,
    min_contrast: float = 0.01,
) -> tuple[np.ndarray, np.ndarray]:
    """Local descriptors (:func:`featkit.features.descriptors.describe`) of every informative cell of a
    hidden layer.

    Cell ``(i, j)`` of a layer with stride ``s`` is placed at its centre
    ``(j * s + (s - 1) / 2, i * s + (s - 1) / 2)``, clipped into the image.

    Args:
        model: the encoder (its device is used).
        image: :math:`(3, H, W)` in [-1, 1].
        layer: a name from ``model.feature_info``; default ``model.default_layer``.
        window: odd neighbourhood size, in cells, stacked into each descriptor; default
            ``model.default_window``.
        whiten: apply the run's whitening (when the model has one for this layer and window).
        min_contrast: skip cells whose neighbourhood of the grey image has a standard
            deviation below this (pixels in [-1, 1]); 0 keeps every cell with a non-zero
            descriptor.

    Returns:
        ``(descriptors, xy)``: float32 :math:`(N, D)` unit rows and float64 :math:`(N, 2)`
        positions in ``image``'s pixels, for the N kept cells.

    Raises:
        UnknownNameError: ``layer`` is not a layer of ``model``.
        MatchError: ``window`` is not a positive odd number.
    """
    window = model.default_window if window is None else window
    if window < 1 or window % 2 == 0:
        raise MatchError(f"window must be a positive odd number of cells, got {window}")
    info = model.layer_info(layer)
    device = next(model.parameters(), torch.empty(0)).device
    x = image.unsqueeze(0).to(device=device, dtype=torch.float32)
    with torch.inference_mode():
        fmap = describe(model, x, layer=info.name, window=window, whiten=whiten)[0]  # (D, h, w)
        c, h, w = fmap.shape
        s = info.stride
        height, width = image.shape[-2:]
        ys = np.clip(np.arange(h) * s + (s - 1) / 2.0, 0, height - 1)
        xs = np.clip(np.arange(w) * s + (s - 1) / 2.0, 0, width - 1)
        desc = fmap.permute(1, 2, 0).reshape(-1, c)
        norms = desc.norm(dim=1)
        keep = norms > 1e-6
        if min_contrast > 0:
            contrast = _local_contrast(x, max(3, s + 1 - s % 2))  # odd box about a cell wide
            rows = torch.as_tensor(np.round(ys), dtype=torch.long, device=device)
            cols = torch.as_tensor(np.round(xs), dtype=torch.long, device=device)
            keep &= (contrast[rows][:, cols] >= min_contrast).reshape(-1)
        desc = (desc[keep] / norms[keep, None]).cpu().numpy().astype(np.float32)
        keep = keep.cpu().numpy()
    grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
    return np.ascontiguousarray(desc), grid[keep]


#: Ratio of the sides of consecutive pyramid levels in :func:`pyramid_descriptors`.
PYRAMID_STEP = 2**-0.5
#: A pyramid stops before a level whose shorter side would fall below this many pixels.
PYRAMID_MIN_SIDE = 32


def pyramid_descriptors(
    model: AutoEncoder, image: torch.Tensor, *, scales: int = 1, **options: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`dense_descriptors` of ``image`` at ``scales`` sizes: the image itself and its
    downscales by :data:`PYRAMID_STEP` per level (antialiased bilinear), all placed in the
    image's own pixels, so that two pyramids match across a change of scale of up to
    ``PYRAMID_STEP ** -(scales - 1)`` either way.

    Args:
        model: the encoder.
        image: :math:`(3, H, W)` in [-1, 1].
        scales: levels, at least 1 (1: the image alone, what :func:`dense_descriptors` gives);
            levels whose shorter side would fall below :data:`PYRAMID_MIN_SIDE` are left out.
        **options: passed to :func:`dense_descriptors`.

    Returns:
        ``(descriptors, xy, level)``: float32 :math:`(N, D)` unit rows, float64 :math:`(N, 2)`
        positions in ``image``'s pixels, and each row's pyramid level :math:`(N,)` (0: full size).
    """
    if scales < 1:
        raise MatchError(f"scales must be at least 1, got {scales}")
    height, width = image.shape[-2:]
    parts = []
    for level in range(scales):
        size = (round(height * PYRAMID_STEP**level), round(width * PYRAMID_STEP**level))
        if level and min(size) < PYRAMID_MIN_SIDE:
            break
        scaled = image if level == 0 else F.interpolate(image[None], size=size, mode="bilinear", antialias=True)[0]
        desc, xy = dense_descriptors(model, scaled, **options)
        xy = (xy + 0.5) * np.array([width / size[1], height / size[0]]) - 0.5
        parts.append((desc, xy, np.full(len(desc), level)))
    return tuple(np.concatenate(columns) for columns in zip(*parts))


def _local_contrast(x: torch.Tensor, size: int) -> torch.Tensor:
    """Standard deviation of the grey image over a ``size`` x ``size`` box: :math:`(H, W)`."""
    grey = x.mean(dim=1, keepdim=True)
    pad = size // 2
    mean = F.avg_pool2d(grey, size, 1, pad, count_include_pad=False)
    sq = F.avg_pool2d(grey * grey, size, 1, pad, count_include_pad=False)
    return (sq - mean * mean).clamp_min(0).sqrt()[0, 0]


def _nearest_two(queries: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest and second-nearest rows of ``base`` for each query (unit vectors), via faiss.

    Returns:
        ``(index, d1, d2)``: nearest index :math:`(Q,)` and Euclidean distances to the two
        nearest :math:`(Q,)`; ``d2`` is ``inf`` when ``base`` has a single row.
    """
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    sims, ids = index.search(queries, min(2, len(base)))
    dist = np.sqrt(np.clip(2.0 - 2.0 * sims.astype(np.float64), 0.0, None))
    d2 = dist[:, 1] if dist.shape[1] > 1 else np.full(len(queries), np.inf)
    return ids[:, 0].astype(np.int64), dist[:, 0], d2


def _ratio(d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """Lowe's ratio d1 / d2, with ties (including 0 / 0) counted as 1: ambiguous."""
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d2 > 0, d1 / d2, 1.0)
    return np.where(d1 >= d2, 1.0, r)


def mutual_matches(
    desc_a: np.ndarray, desc_b: np.ndarray, ratio: float = 0.8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric nearest-neighbour matches that pass Lowe's ratio test both ways.

    Each row of ``desc_a`` is searched in ``desc_b`` (k = 2); the rows of ``desc_b`` that
    some A row picked are then searched in ``desc_a`` (k = 2). A pair is kept when each is the
    other's nearest neighbour and both ratios ``d1 / d2`` are below ``ratio``. faiss computes
    distances block by block, so memory stays linear in N + M.

    Args:
        desc_a: float32 :math:`(N, D)` unit rows.
        desc_b: float32 :math:`(M, D)` unit rows.
        ratio: Lowe's threshold in (0, 1]; lower keeps fewer, more distinctive matches.

    Returns:
        ``(ia, ib, score)``: indices into A and B and ``score = 1 - max(ratio_ab, ratio_ba)``
        in (0, 1] (higher is more distinctive), sorted by decreasing score.

    Examples:
        >>> a = np.eye(3, dtype=np.float32)
        >>> ia, ib, score = mutual_matches(a, a[[2, 0, 1]])
        >>> ia.tolist(), ib.tolist(), score.tolist()
        ([0, 1, 2], [1, 2, 0], [1.0, 1.0, 1.0])
    """
    empty = np.zeros(0, np.int64)
    if len(desc_a) == 0 or len(desc_b) == 0:
        return empty, empty, np.zeros(0)
    nn_ab, d1, d2 = _nearest_two(desc_a, desc_b)
    ratio_ab = _ratio(d1, d2)
    ia = np.flatnonzero(ratio_ab < ratio)
    if len(ia) == 0:
        return empty, empty, np.zeros(0)
    candidates = np.unique(nn_ab[ia])
    nn_ba, e1, e2 = _nearest_two(desc_b[candidates], desc_a)
    back = np.full(len(desc_b), -1, np.int64)
    back[candidates] = nn_ba
    ratio_ba = np.ones(len(desc_b))
    ratio_ba[candidates] = _ratio(e1, e2)
    ib = nn_ab[ia]
    ok = (back[ib] == ia) & (ratio_ba[ib] < ratio)
    ia, ib = ia[ok], ib[ok]
    score = 1.0 - np.maximum(ratio_ab[ia], ratio_ba[ib])
    order = np.argsort(-score, kind="stable")
    return ia[order], ib[order], score[order]


def default_ransac_threshold(stride: int, pixels_per_matched_pixel: float = 1.0) -> float:
    """``featkit match``'s inlier threshold: 1.5 feature cells, at least 3 px, in the pixels
    errors are measured in (``pixels_per_matched_pixel`` of them per pixel as matched)."""
    return max(3.0, 1.5 * stride * pixels_per_matched_pixel)


def _check_ransac(name: str) -> None:
    if name not in RANSAC_MODELS:
        raise MatchError(f"unknown ransac model '{name}'; choose from {', '.join(RANSAC_MODELS)}")


def verify(
    points_a: np.ndarray,
    points_b: np.ndarray,
    ransac_model: str = "homography",
    *,
    threshold: float = 3.0,
    max_trials: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Fit a transform A -> B with scikit-image's RANSAC and flag the inliers.

    A fit is accepted only when at least twice its minimal sample (8 matches for a
    homography, 6 for an affine transform, 16 for a fundamental matrix) agree with it: fewer
    can agree by coincidence.

    Args:
        points_a: :math:`(K, 2)` x, y in image A.
        points_b: :math:`(K, 2)` x, y in image B.
        ransac_model: ``"homography"``, ``"affine"``, ``"fundamental"`` (epipolar geometry,
            see :class:`EpipolarTransform`) or ``"none"`` (every match is an inlier).
        threshold: largest error of an inlier in pixels: the reprojection error in B, or for
            ``"fundamental"`` the distance to the epipolar line (in either image).
        max_trials: RANSAC iterations at most (it stops early once confident).
        seed: seeds RANSAC's sampling so results are reproducible.

    Returns:
        ``(transform, inliers)``: the 3 x 3 matrix mapping homogeneous A points to B, or for
        ``"fundamental"`` the matrix F with :math:`b^\\top F a = 0` (mapping A points to
        their epipolar lines in B); ``None`` if no model was found or ``"none"``. And a
        boolean :math:`(K,)`.
    """
    _check_ransac(ransac_model)
    k = len(points_a)
    model_class = RANSAC_MODELS[ransac_model]
    if model_class is None:
        return None, np.ones(k, bool)
    if k < _MIN_SAMPLES[ransac_model]:
        return None, np.zeros(k, bool)
    # each trial's products are of a few thousand numbers: BLAS threads only add wake-ups (3x)
    with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
        warnings.simplefilter("ignore")  # degenerate random samples are expected and skipped
        model, inliers = ransac(
            (points_a, points_b),
            model_class,
            min_samples=_MIN_SAMPLES[ransac_model],
            residual_threshold=threshold,
            max_trials=max_trials,
            stop_probability=0.999,
            rng=seed,
        )
    if model is None or not model or inliers is None or not np.all(np.isfinite(model.params)):
        return None, np.zeros(k, bool)
    if inliers.sum() < 2 * _MIN_SAMPLES[ransac_model]:  # a minimal sample always fits exactly
        return None, np.zeros(k, bool)
    return np.asarray(model.params, dtype=np.float64), np.asarray(inliers, bool)


@dataclass
class MatchResult:
    """Correspondences between two images, in their original pixels.

    Attributes:
        matches: :data:`MATCH_DTYPE` array of K matches (fields xa, ya, xb, yb, score,
            inlier), sorted by decreasing score.
        transform: the verified 3 x 3 A -> B matrix (with ``ransac="fundamental"`` the
            fundamental matrix F, :math:`b^\\top F a = 0`), or ``None``.
        ransac: the model fitted (``"homography"``, ``"affine"``, ``"fundamental"`` or ``"none"``).
        layer: the hidden layer whose maps were matched.
        stride: that layer's stride (input pixels per cell).
        size_a: ``(width, height)`` of image A as stored in its file (or the given tensor).
        size_b: the same for image B.
        num_descriptors: descriptors kept in A and B (cells with contrast).
        evaluation: :func:`evaluate_homography` against ``gt_homography``, when given.
        sources: how A and B were given (paths, or ``"<tensor>"``).
        model: the model's spec or encoder name.
        window: cells per side stacked into each descriptor.
        whitened: whether the run's descriptor whitening was applied.
        scales: pyramid levels asked for (:func:`pyramid_descriptors`; a small image may use
            fewer).
        keypoints: where descriptors were taken, one of :data:`~featkit.choices.KEYPOINT_MODES`.
    """

    matches: np.ndarray
    transform: np.ndarray | None
    ransac: str
    layer: str
    stride: int
    size_a: tuple[int, int]
    size_b: tuple[int, int]
    num_descriptors: tuple[int, int]
    evaluation: dict[str, Any] | None = None
    sources: tuple[str, str] = ("<tensor>", "<tensor>")
    model: str = ""
    window: int = 1
    whitened: bool = False
    scales: int = 1
    keypoints: str = "dense"

    @property
    def num_inliers(self) -> int:
        """Matches RANSAC kept (all of them with ``ransac="none"``)."""
        return int(self.matches["inlier"].sum())

    def summary(self) -> str:
        """One line: counts, the layer, the model and, with a ground truth, MMA and corner error."""
        k = len(self.matches)
        verified = "unverified" if self.ransac == "none" else f"{self.num_inliers} {self.ransac} inliers"
        line = (
            f"{k} matches, {verified}; layer {self.layer} (stride {self.stride}, window {self.window}"
            f"{', whitened' if self.whitened else ''}{f', {self.scales} scales' if self.scales > 1 else ''}"
            f"{LOG_SUMMARY.get(self.keypoints, '')}), "
            f"{self.num_descriptors[0]} x {self.num_descriptors[1]} descriptors; model {self.model}"
        )
        if self.evaluation is not None:
            mma = "/".join(f"{v:.2f}" for v in self.evaluation["mma"].values())
            px = "/".join(self.evaluation["mma"])
            ce = self.evaluation["corner_error"]
            line += f"; MMA@{px}px {mma}; corner error " + ("n/a" if ce is None else f"{ce:.2f} px")
        return line

    def to_json(self) -> dict[str, Any]:
        """Plain data for ``--json``: every match as a dict, plus the summary and sizes.

        ``"transform"`` is what ``"ransac"`` names: a homography or affine matrix A -> B, or
        the fundamental matrix F (``[xb, yb, 1] F [xa, ya, 1]^T = 0``).
        """
        return {
            "image_a": self.sources[0],
            "image_b": self.sources[1],
            "model": self.model,
            "layer": self.layer,
            "stride": self.stride,
            "window": self.window,
            "whitened": self.whitened,
            "scales": self.scales,
            "keypoints": self.keypoints,
            "size_a": list(self.size_a),
            "size_b": list(self.size_b),
            "ransac": self.ransac,
            "transform": None if self.transform is None else self.transform.tolist(),
            "num_matches": len(self.matches),
            "num_inliers": self.num_inliers,
            "num_descriptors": list(self.num_descriptors),
            "evaluation": self.evaluation,
            "summary": self.summary(),
            "matches": [
                {
                    "xa": float(m["xa"]),
                    "ya": float(m["ya"]),
                    "xb": float(m["xb"]),
                    "yb": float(m["yb"]),
                    "score": float(m["score"]),
                    "inlier": bool(m["inlier"]),
                }
                for m in self.matches
            ],
        }


def save_match_json(result: MatchResult, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write :meth:`MatchResult.to_json` atomically, refusing to replace a file unless asked.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = ensure_new(path, overwrite=overwrite)
    write_json(path, result.to_json())
    return path


def _load(image: ImageInput, max_side: int | None) -> tuple[torch.Tensor, tuple[int, int], str]:
    """An image as :math:`(3, H, W)` in [-1, 1], its original ``(W, H)`` and a label."""
    if isinstance(image, torch.Tensor):
        if image.dim() != 3 or image.shape[0] != 3 or min(image.shape) == 0:
            raise MatchError(f"an image tensor must have shape (3, H, W), got {tuple(image.shape)}")
        size = (int(image.shape[2]), int(image.shape[1]))
        if max_side is not None and max(size) > max_side:
            scale = max_side / max(size)
            hw = (max(1, round(size[1] * scale)), max(1, round(size[0] * scale)))
            image = F.interpolate(image[None].float(), size=hw, mode="bilinear", antialias=True)[0]
        return image.float(), size, "<tensor>"
    records, skipped = load_images([image], max_side=max_side)
    if skipped:
        path, reason = skipped[0]
        raise ImageError(f"{path}: {reason}")
    return records[0].image, records[0].original_size, str(image)


def match(
    image_a: ImageInput,
    image_b: ImageInput,
    model: AutoEncoder | str | os.PathLike | None = None,
    *,
    layer: str | None = None,
    ratio: float = 0.8,
    ransac: str = "homography",
    max_matches: int | None = None,
    max_side: int | None = 512,
    ransac_threshold: float | None = None,
    window: int | None = None,
    whiten: bool = True,
    min_contrast: float = 0.01,
    scales: int = 1,
    keypoints: str = "dense",
    max_size_ratio: float = 4.0,
    gt_homography: np.ndarray | str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    seed: int = 0,
) -> MatchResult:
    """Find spatial correspondences between two images with a model's dense hidden features.

    Args:
        image_a: an image file, or a :math:`(3, H, W)` tensor in [-1, 1].
        image_b: the same for the second image.
        model: an encoder, or a spec as in ``featkit extract`` (a run directory, a shipped
            model, ``timm:<name>`` or ``paper-cae`` with seeded random weights, or the baselines
            ``pixels`` and ``daisy``); ``None``: the shipped
            :data:`~featkit.runs.models.DEFAULT_MODEL`.
        layer: hidden layer to match; default the model's ``default_layer``.
        ratio: Lowe's ratio threshold in (0, 1].
        ransac: ``"homography"``, ``"affine"`` (planar scenes, a rotating camera),
            ``"fundamental"`` (epipolar geometry: scenes with depth) or ``"none"``.
        max_matches: keep at most this many matches (the most distinctive) before RANSAC.
        max_side: downscale each image so its longer side is at most this before computing
            features (``None``: full size); coordinates are reported in original pixels.
        ransac_threshold: inlier reprojection error in pixels of B (for ``"fundamental"``:
            distance to the epipolar line); default 1.5 feature cells of B, at least 3 px.
        window: odd neighbourhood of cells stacked into each descriptor, see
            :func:`dense_descriptors`; default the model's ``default_window``.
        whiten: apply the run's descriptor whitening (a trained run has one).
        min_contrast: see :func:`dense_descriptors`.
        scales: describe each image on a pyramid of this many levels, :data:`PYRAMID_STEP`
            apart, and match across levels (:func:`pyramid_descriptors`): 3 levels cover a zoom
            of 0.5-2x between the images; 1 (default) matches the images at one size.
        keypoints: ``"dense"`` (default): every cell of the layer with contrast;
            ``"log"``: sparse blobs of the normalised LoG, each described on a patch resampled
            to its scale and dominant orientation (:mod:`featkit.tasks.keypoints`): fewer
            descriptors, for changes of viewpoint, zoom and roll (``scales`` must then be 1);
            ``"log2x"``: the same with an octave at twice the image's resolution too (as SIFT
            does): about 6x the descriptors and 2.5-3x the right matches for about 8x the time.
        max_size_ratio: refuse pairs whose sides, as matched, differ by more than this factor
            (features are not scale invariant).
        gt_homography: the true 3 x 3 A -> B homography (array or text file);
            fills :attr:`MatchResult.evaluation` (without a corner error for ``"fundamental"``,
            whose matrix maps points to lines).
        device: ``cpu``, ``cuda``, ``auto``...; default: where a given encoder already is, CPU
            for a spec. A given encoder is moved there and put in eval mode.
        seed: seeds RANSAC.

    Returns:
        A :class:`MatchResult`; it holds no matches (and ``transform is None``) when the images
        have nothing distinctive in common.

    Raises:
        ImageError: an image file cannot be read.
        MatchError: bad options or images of wildly different size.
        CheckpointError, UnknownNameError: ``model`` or ``layer`` cannot be resolved.
    """
    if not 0.0 < ratio <= 1.0:
        raise MatchError(f"ratio must be in (0, 1], got {ratio}")
    _check_ransac(ransac)
    if max_matches is not None and max_matches < 1:
        raise MatchError(f"max_matches must be at least 1, got {max_matches}")
    if keypoints not in KEYPOINT_MODES:
        raise MatchError(f"unknown keypoints '{keypoints}'; choose from {', '.join(KEYPOINT_MODES)}")
    if keypoints != "dense" and scales != 1:
        raise MatchError("scales applies to dense keypoints; LoG keypoints are described at their own scale")
    if max_side is not None and max_side < 8:
        raise MatchError(f"max_side must be at least 8 pixels, got {max_side}")
    true_h = None
    if gt_homography is not None:
        true_h = gt_homography if isinstance(gt_homography, np.ndarray) else load_homography(gt_homography)
        if true_h.shape != (3, 3):
            raise MatchError(f"gt_homography must be 3 x 3, got {true_h.shape}")
    if isinstance(model, AutoEncoder):
        spec = str(getattr(model, "config", {}).get("name", type(model).__name__))
        model = (model if device is None else model.to(resolve_device(device))).eval()
    else:
        model, described = load_encoder(model, device=device or "cpu")
        spec = described["model"]
    info = model.layer_info(layer)

    img_a, size_a, src_a = _load(image_a, max_side)
    img_b, size_b, src_b = _load(image_b, max_side)
    (ha, wa), (hb, wb) = img_a.shape[-2:], img_b.shape[-2:]
    factor = max(max(ha, wa), max(hb, wb)) / min(max(ha, wa), max(hb, wb))
    if factor > max_size_ratio:
        raise MatchError(
            f"images of wildly different size: {src_a} is {wa} x {ha} and {src_b} is {wb} x {hb} as "
            f"matched ({factor:.1f}x apart, limit {max_size_ratio:g}x); features are not scale "
            "invariant, so resize one image or raise max_size_ratio (--max-size-ratio)"
        )
    window = model.default_window if window is None else window
    whitened = whiten and whitening_for(model, info.name, window) is not None
    opts = {"layer": info.name, "window": window, "whiten": whiten}
    if keypoints != "dense":
        opts["upsample"] = keypoints == "log2x"
        desc_a, xy_a = keypoint_descriptors(model, img_a, **opts)
        desc_b, xy_b = keypoint_descriptors(model, img_b, **opts)
    else:
        desc_a, xy_a, _ = pyramid_descriptors(model, img_a, scales=scales, min_contrast=min_contrast, **opts)
        desc_b, xy_b, _ = pyramid_descriptors(model, img_b, scales=scales, min_contrast=min_contrast, **opts)
    ia, ib, score = mutual_matches(desc_a, desc_b, ratio)
    if max_matches is not None:
        ia, ib, score = ia[:max_matches], ib[:max_matches], score[:max_matches]

    scale_a = np.array([size_a[0] / wa, size_a[1] / ha])
    scale_b = np.array([size_b[0] / wb, size_b[1] / hb])
    pa = (xy_a[ia] + 0.5) * scale_a - 0.5
    pb = (xy_b[ib] + 0.5) * scale_b - 0.5
    if ransac_threshold is None:
        ransac_threshold = default_ransac_threshold(info.stride, float(scale_b.max()))
    transform, inliers = verify(pa, pb, ransac, threshold=ransac_threshold, seed=seed)

    matches = np.zeros(len(ia), MATCH_DTYPE)
    matches["xa"], matches["ya"] = pa[:, 0], pa[:, 1]
    matches["xb"], matches["yb"] = pb[:, 0], pb[:, 1]
    matches["score"], matches["inlier"] = score, inliers
    estimate = None if ransac == "fundamental" else transform  # a point-to-line map has no corners
    evaluation = None if true_h is None else evaluate_homography(matches, true_h, size_a, estimate)
    return MatchResult(
        matches=matches,
        transform=transform,
        ransac=ransac,
        layer=info.name,
        stride=info.stride,
        size_a=size_a,
        size_b=size_b,
        num_descriptors=(len(desc_a), len(desc_b)),
        evaluation=evaluation,
        sources=(src_a, src_b),
        model=spec,
        window=window,
        whitened=whitened,
        scales=scales,
        keypoints=keypoints,
    )
