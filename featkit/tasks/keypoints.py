"""Sparse keypoints for matching: blobs of the paper's scale-normalised LoG, each described by
the encoder on a patch resampled to its scale and turned to its dominant orientation.

The dense descriptors of :func:`~featkit.tasks.matching.dense_descriptors` sit on a fixed
grid, see a fixed 11 x 11 pixels or so and are not turned with the image, so a change of
viewpoint (scale, roll, perspective) moves what each of them sees. Here, as in SIFT, every
keypoint carries its own frame:

1. :func:`detect_keypoints`: local extrema in space and scale of the normalised LoG
   :math:`\\sigma^2 \\nabla^2 g` (eq. 5 of the paper, :class:`~featkit.ops.filters.LoGFilterBank`)
   over octaves of the grey image, the blob detector of scale-space theory; weak responses and
   edges (a Hessian much longer than wide) are dropped, and positions and scales are refined
   to a fraction of a sample.
2. :func:`dominant_orientations`: the peaks of each keypoint's histogram of gradient
   directions (a keypoint with two strong directions gets two frames, as in SIFT).
3. :func:`keypoint_descriptors`: a patch of the descriptor's window of cells and
   :data:`PATCH_MARGIN` more each side, resampled so
   that the keypoint's scale spans :data:`PATCH_SIGMA` patch pixels, and turned so that its
   orientation points along x, goes through the encoder
   (:func:`~featkit.features.descriptors.describe`); the descriptor of the centre cell is the
   keypoint's.

Pixel convention as in :mod:`featkit.tasks.matching`: ``x`` the column, ``y`` the row, pixel
centres at integer coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from featkit.encoders import AutoEncoder
from featkit.features.descriptors import describe, descriptor_dim
from featkit.ops.filters import LoGFilterBank

__all__ = [
    "EDGE_RATIO",
    "LOG_SIGMA0",
    "LOG_THRESHOLD",
    "PATCH_MARGIN",
    "PATCH_SIGMA",
    "Keypoints",
    "detect_keypoints",
    "dominant_orientations",
    "keypoint_descriptors",
]

#: Scale of the first LoG band (pixels of the image matched) and bands per octave.
LOG_SIGMA0, LOG_PER_OCTAVE = 1.0, 3
#: Smallest normalised LoG response of a keypoint, for grey levels in [-1, 1].
LOG_THRESHOLD = 0.002
#: Largest ratio of the two principal curvatures of a keypoint's response (larger: an edge).
EDGE_RATIO = 10.0
#: Keypoints closer than this many samples to their octave's border are dropped.
BORDER = 4
#: An octave is not built when its shorter side would fall below this many pixels.
MIN_OCTAVE_SIDE = 16
#: Patch pixels spanned by a keypoint's scale: the descriptors of a CAE see about 11 x 11
#: patch pixels, so about 16 sigma, near SIFT's 12-sigma window.
PATCH_SIGMA = 0.7
#: Cells of context each side of a keypoint's descriptor window in its patch: with 2, the
#: patch of a CAE holds its centre descriptor's whole receptive field (6 gave the same
#: descriptors on the viewpoint pairs of bench/bench_features.py's training photos).
PATCH_MARGIN = 2
#: Orientation histogram: bins, the Gaussian weight's width (in keypoint scales) and the
#: share of the highest peak that another peak needs to give a frame of its own.
ORIENTATION_BINS, ORIENTATION_WIDTH, ORIENTATION_PEAK = 36, 3.0, 0.7
#: Side of the upright patch the orientation is measured on (patch pixels).
ORIENTATION_SIZE = 33
#: Keypoints resampled and described at a time (bounds the memory of a large image).
CHUNK = 512


@dataclass(frozen=True)
class Keypoints:
    """Keypoints of one image.

    Attributes:
        xy: float64 :math:`(K, 2)` positions in the image's pixels.
        sigma: float64 :math:`(K,)` scales in the image's pixels.
        response: float64 :math:`(K,)` normalised LoG responses (negative: a bright blob).
    """

    xy: np.ndarray
    sigma: np.ndarray
    response: np.ndarray

    def __len__(self) -> int:
        return len(self.sigma)

    def take(self, index: np.ndarray) -> Keypoints:
        """The keypoints at ``index`` (an index array or a boolean mask)."""
        return Keypoints(self.xy[index], self.sigma[index], self.response[index])


def octave_pyramid(image: torch.Tensor) -> list[torch.Tensor]:
    """``image`` and its halvings (antialiased bilinear) while the shorter side stays at least
    :data:`MIN_OCTAVE_SIDE`: a list of :math:`(C, H_o, W_o)`."""
    levels = [image]
    while min(levels[-1].shape[-2:]) // 2 >= MIN_OCTAVE_SIDE:
        h, w = levels[-1].shape[-2:]
        levels.append(F.interpolate(levels[-1][None], size=(h // 2, w // 2), mode="bilinear", antialias=True)[0])
    return levels


def detect_keypoints(
    image: torch.Tensor,
    *,
    threshold: float = LOG_THRESHOLD,
    edge_ratio: float = EDGE_RATIO,
    pyramid: list[torch.Tensor] | None = None,
    upsample: bool = False,
) -> Keypoints:
    """Scale-space extrema of the normalised LoG of the grey image.

    Each octave ``o`` of :func:`octave_pyramid` is filtered with ``LOG_PER_OCTAVE + 2`` bands
    at scales :math:`\\sigma_0 2^{(k - 1) / 3}` of its own pixels (the LoG's border mode is
    ``reflect``); a sample that is the largest (or smallest) of its 3 x 3 x 3 neighbours in an
    inner band, beyond ``threshold`` and not on an edge, is a keypoint. Its position is refined
    by a Newton step on the quadratic through its neighbours, its scale by a parabola.

    Args:
        image: :math:`(3, H, W)` in [-1, 1].
        threshold: smallest absolute response, see :data:`LOG_THRESHOLD`.
        edge_ratio: see :data:`EDGE_RATIO`.
        pyramid: :func:`octave_pyramid` of ``image``, when already built.
        upsample: also search an octave at twice the image's resolution (bilinear), as SIFT
            does: keypoints down to half the smallest scale, about 4x as many.

    Returns:
        The :class:`Keypoints`, in ``image``'s pixels.
    """
    pyramid = octave_pyramid(image) if pyramid is None else pyramid
    sigmas = [LOG_SIGMA0 * 2 ** ((k - 1) / LOG_PER_OCTAVE) for k in range(LOG_PER_OCTAVE + 2)]
    bank = LoGFilterBank(sigmas, padding_mode="reflect")
    parts = []
    first = -1 if upsample else 0
    levels = ([F.interpolate(pyramid[0][None], scale_factor=2.0, mode="bilinear")[0]] if upsample else []) + pyramid
    for octave, level in enumerate(levels, start=first):
        if min(level.shape[-2:]) <= 2 * BORDER:
            break
        response = bank(level.mean(dim=0)[None, None])[0, 0]  # (S, h, w)
        factor = 2.0**octave
        for sign in (1.0, -1.0):
            xy, band, value = _extrema(sign * response, threshold, edge_ratio)
            sigma = LOG_SIGMA0 * 2 ** ((band - 1) / LOG_PER_OCTAVE) * factor
            parts.append(((xy + 0.5) * factor - 0.5, sigma, sign * value))
    if not parts:
        return Keypoints(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
    xy, sigma, response = (np.concatenate(column) for column in zip(*parts))
    return Keypoints(xy, sigma, response)


def _extrema(r: torch.Tensor, threshold: float, edge_ratio: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Maxima of ``r`` :math:`(S, h, w)` in the inner bands, refined: ``(xy, band, value)``
    with fractional ``xy`` :math:`(K, 2)` and ``band`` :math:`(K,)`."""
    spatial = F.max_pool2d(r[None], 3, 1, 1)[0]  # each band's 3 x 3 maxima, then across bands
    around = torch.full_like(r, -math.inf)
    around[1:-1] = torch.maximum(torch.maximum(spatial[:-2], spatial[1:-1]), spatial[2:])
    peak = (r == around) & (r > threshold)
    peak[:, :BORDER], peak[:, -BORDER:], peak[:, :, :BORDER], peak[:, :, -BORDER:] = False, False, False, False
    s, y, x = torch.nonzero(peak, as_tuple=True)
    centre = r[s, y, x]

    def along(ds: int, dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
        """First and second differences of ``r`` at the peaks along one axis."""
        ahead, behind = r[s + ds, y + dy, x + dx], r[s - ds, y - dy, x - dx]
        return (ahead - behind) / 2, ahead + behind - 2 * centre

    (gx, dxx), (gy, dyy), (gs, dss) = along(0, 0, 1), along(0, 1, 0), along(1, 0, 0)
    dxy = (r[s, y + 1, x + 1] - r[s, y + 1, x - 1] - r[s, y - 1, x + 1] + r[s, y - 1, x - 1]) / 4
    det = dxx * dyy - dxy**2
    not_edge = (det > 0) & ((dxx + dyy) ** 2 * edge_ratio < (edge_ratio + 1) ** 2 * det)

    # the vertex of the quadratic through the neighbours, within half a sample: a Newton step
    # in space (the Hessian is negative definite where det > 0 and the point is a maximum)
    safe = torch.where(det > 0, det, torch.ones_like(det))
    ox = (-(dyy * gx - dxy * gy) / safe).clamp(-0.5, 0.5)
    oy = (-(dxx * gy - dxy * gx) / safe).clamp(-0.5, 0.5)
    ob = torch.where(dss < 0, -gs / dss.clamp_max(-1e-12), torch.zeros_like(gs)).clamp(-0.5, 0.5)
    xy = torch.stack([x + ox, y + oy], dim=1)
    band = s + ob
    return tuple(t[not_edge].double().numpy() for t in (xy, band, centre))


def _patches(
    pyramid: list[torch.Tensor], keypoints: Keypoints, angle: np.ndarray, size: int
) -> torch.Tensor:
    """Patches :math:`(K, 3, size, size)`: patch pixel ``(u, v)`` from the centre is the image
    at ``xy + z R(angle) (u, v)``, ``z = sigma / PATCH_SIGMA`` image pixels per patch pixel,
    sampled bilinearly from the octave that ``z`` shrinks least below its own pixels."""
    height, width = pyramid[0].shape[-2:]
    zoom = keypoints.sigma / PATCH_SIGMA
    octave = np.clip(np.floor(np.log2(np.maximum(zoom, 1.0))), 0, len(pyramid) - 1).astype(int)
    steps = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    v, u = torch.meshgrid(steps, steps, indexing="ij")
    out = torch.empty(len(keypoints), pyramid[0].shape[0], size, size)
    for o in np.unique(octave):
        rows = np.flatnonzero(octave == o)
        level = pyramid[o]
        h, w = level.shape[-2:]
        fx, fy = w / width, h / height
        x = torch.from_numpy((keypoints.xy[rows, 0] + 0.5) * fx - 0.5)[:, None, None]
        y = torch.from_numpy((keypoints.xy[rows, 1] + 0.5) * fy - 0.5)[:, None, None]
        z = torch.from_numpy(zoom[rows] * fx)[:, None, None]
        cos, sin = (torch.from_numpy(f(angle[rows]))[:, None, None] for f in (np.cos, np.sin))
        gx = x + z * (cos * u - sin * v)
        gy = y + z * (sin * u + cos * v)
        grid = torch.stack([(2 * gx + 1) / w - 1, (2 * gy + 1) / h - 1], dim=-1).to(level.dtype)
        batch = level[None].expand(len(rows), -1, -1, -1)
        out[rows] = F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out


def dominant_orientations(
    pyramid: list[torch.Tensor], keypoints: Keypoints
) -> tuple[np.ndarray, np.ndarray]:
    """Each keypoint's directions of gradient: the peaks of a histogram of
    :data:`ORIENTATION_BINS` directions, weighted by gradient magnitude and a Gaussian of
    :data:`ORIENTATION_WIDTH` keypoint scales, smoothed; every peak of at least
    :data:`ORIENTATION_PEAK` times the highest gives a frame, refined by a parabola.

    Args:
        pyramid: :func:`octave_pyramid` of the image (:math:`(3, H, W)` in [-1, 1] first).
        keypoints: its keypoints.

    Returns:
        ``(index, angle)``: for every frame, its keypoint's index :math:`(F,)` and the angle
        in radians in [-pi, pi) :math:`(F,)`, from +x towards +y.
    """
    if len(keypoints) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    grey = _patches(pyramid, keypoints, np.zeros(len(keypoints)), ORIENTATION_SIZE).mean(dim=1)
    gx = grey[:, 1:-1, 2:] - grey[:, 1:-1, :-2]
    gy = grey[:, 2:, 1:-1] - grey[:, :-2, 1:-1]
    steps = torch.arange(ORIENTATION_SIZE - 2, dtype=grey.dtype) - (ORIENTATION_SIZE - 3) / 2
    weight = torch.exp(-(steps[None] ** 2 + steps[:, None] ** 2) / (2 * (ORIENTATION_WIDTH * PATCH_SIGMA) ** 2))
    bins = ((torch.atan2(gy, gx) + math.pi) / (2 * math.pi) * ORIENTATION_BINS).long() % ORIENTATION_BINS
    k = len(keypoints)
    hist = torch.zeros(k, ORIENTATION_BINS, dtype=grey.dtype)
    hist.scatter_add_(1, bins.reshape(k, -1), (torch.hypot(gx, gy) * weight).reshape(k, -1))
    for _ in range(2):
        hist = (hist.roll(1, 1) + hist + hist.roll(-1, 1)) / 3
    left, right = hist.roll(1, 1), hist.roll(-1, 1)
    peak = (hist > left) & (hist >= right) & (hist >= ORIENTATION_PEAK * hist.amax(1, keepdim=True)) & (hist > 0)
    index, b = torch.nonzero(peak, as_tuple=True)
    l, m, r = left[index, b], hist[index, b], right[index, b]
    offset = 0.5 * (l - r) / (l - 2 * m + r).clamp_max(-1e-30)
    angle = (b + 0.5 + offset) / ORIENTATION_BINS * 2 * math.pi - math.pi
    return index.numpy(), angle.double().numpy()


def keypoint_descriptors(
    model: AutoEncoder,
    image: torch.Tensor,
    *,
    layer: str | None = None,
    window: int | None = None,
    whiten: bool = True,
    threshold: float = LOG_THRESHOLD,
    upsample: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors of an image's LoG keypoints, one per keypoint and dominant orientation.
    Keypoints and patches are found on the CPU; the patches go through the encoder on its
    device, :data:`CHUNK` at a time.

    Each frame's patch (``window + 2 * PATCH_MARGIN`` cells of the layer per side, an odd
    number) goes through :func:`~featkit.features.descriptors.describe`; the centre cell is
    its descriptor.

    Args:
        model: the encoder (its device is used).
        image: :math:`(3, H, W)` in [-1, 1].
        layer: a name from ``model.feature_info``; default ``model.default_layer``.
        window: odd cells per side stacked into each descriptor; default the model's.
        whiten: apply the run's whitening (when the model has one for this layer and window).
        threshold, upsample: see :func:`detect_keypoints`.

    Returns:
        ``(descriptors, xy)``: float32 :math:`(F, D)` unit rows (zero rows dropped) and
        float64 :math:`(F, 2)` keypoint positions in ``image``'s pixels.
    """
    info = model.layer_info(layer)
    window = model.default_window if window is None else window
    device = next(model.parameters(), torch.empty(0)).device
    pyramid = octave_pyramid(image.float().cpu())
    keypoints = detect_keypoints(image, threshold=threshold, pyramid=pyramid, upsample=upsample)
    index, angle = dominant_orientations(pyramid, keypoints)
    frames = keypoints.take(index)
    cells = window + 2 * PATCH_MARGIN
    size, centre = cells * info.stride, cells // 2
    parts = []
    with torch.inference_mode():
        for start in range(0, len(frames), CHUNK):
            rows = np.arange(start, min(start + CHUNK, len(frames)))
            patches = _patches(pyramid, frames.take(rows), angle[rows], size).to(device)
            parts.append(describe(model, patches, layer=info.name, window=window, whiten=whiten)[:, :, centre, centre])
    desc = torch.cat(parts).cpu() if parts else torch.zeros(0, descriptor_dim(model, info.name, window, whiten))
    norms = desc.norm(dim=1)
    keep = (norms > 1e-6).numpy()
    desc = (desc[keep] / norms[keep, None]).numpy().astype(np.float32)
    return np.ascontiguousarray(desc), frames.xy[keep]
