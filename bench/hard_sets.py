"""Where features are hard to get right: the held-out sets of bench/bench_features.py's hard
columns, the two methods that only take part in some of them (SIFT, perceptual hashing), and
how each set is scored.

- **Viewpoint**: held-out photos seen as a camera moved 20-60 degrees round them would see a
  plane (:func:`featkit.tasks.homography.viewpoint_homography`), zoomed 0.5-2x, rolled up to
  30 degrees and re-lit; one pair per photo and difficulty bin of the tilt.
- **Real stereo**: scikit-image's motorcycle pair (Middlebury 2014, a quarter of full size:
  741 x 500) with its true disparity; a match ``(xa, ya) -> (xb, yb)`` is right when
  ``(xb, yb)`` is near ``(xa - d(xa, ya), ya)``.
- **Near-duplicates**: each held-out photo edited the seven ways people edit photos (crop to
  60-80 %, rotation up to 15 degrees, greyscale, Gaussian blur, JPEG quality 20, a third of the
  size, brightness and contrast 0.7-1.3x), each edit searched among the originals of every
  sample photo.

Matching is the same for every method: mutual nearest neighbours that pass Lowe's ratio test
(0.8) both ways, no RANSAC; a method's matches are scored in the original images' pixels.
"""

from __future__ import annotations

import io
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter
from scipy.fft import dctn

import featkit
from featkit.data.images import load_image
from featkit.encoders import AutoEncoder
from featkit.tasks.homography import _apply, viewpoint_homography, warp_image
from featkit.tasks.matching import mutual_matches

from bench_match import brightness_change  # noqa: E402  (bench/ is on sys.path where this is imported)

#: Tilt bins of the viewpoint pairs, in degrees.
VIEW_BINS = ((20.0, 35.0), (35.0, 50.0), (50.0, 60.0))
#: Zoom range and largest roll of the viewpoint pairs.
VIEW_SCALES, VIEW_ROLL = (0.5, 2.0), 30.0
#: Match-error thresholds in pixels; a match within the middle one counts as correct.
THRESHOLDS = (1, 3, 5)
CORRECT_PX = 3
RATIO = 0.8
#: The everyday edits of the near-duplicate set, in order.
EDITS = ("crop", "rotate", "grey", "blur", "jpeg20", "third", "light")


# -- the sets ------------------------------------------------------------------------------------------
def viewpoint_pairs(photos: list[Path], side: int, seed: int) -> list[dict]:
    """One pair per photo and tilt bin: ``{"name", "bin", "a", "b", "h"}`` (``h``: A -> B)."""
    rng = np.random.default_rng(seed)
    pairs = []
    for path in photos:
        image = load_image(path, max_side=side)
        size = (image.shape[2], image.shape[1])
        for k, (low, high) in enumerate(VIEW_BINS):
            tilt = rng.uniform(low, high) * rng.choice([-1, 1])
            axis = str(rng.choice(["vertical", "horizontal"]))
            scale = float(np.exp(rng.uniform(*np.log(VIEW_SCALES))))
            h = viewpoint_homography(size, tilt, axis, scale=scale, rotation=rng.uniform(-VIEW_ROLL, VIEW_ROLL))
            view = brightness_change(warp_image(image, h), rng)
            pairs.append({"name": f"{path.stem}#{k}", "bin": k, "a": image, "b": view, "h": h})
    return pairs


def stereo_pair() -> dict:
    """The motorcycle pair at full size with the left image's disparity: ``{"a", "b", "disparity"}``
    (``a``, ``b``: :math:`(3, 500, 741)` in [-1, 1]; ``disparity``: :math:`(500, 741)`, NaN where
    unknown)."""
    from skimage.data import stereo_motorcycle

    left, right, disparity = stereo_motorcycle()
    tensor = lambda a: torch.from_numpy(a).permute(2, 0, 1).float() / 127.5 - 1  # noqa: E731
    disparity = np.where(np.isfinite(disparity), disparity, np.nan).astype(np.float64)
    return {"a": tensor(left), "b": tensor(right), "disparity": disparity}


def to_pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray(((image.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8))


def _to_tensor(image: Image.Image) -> torch.Tensor:
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).float() / 127.5 - 1


def edit(image: torch.Tensor, kind: str, rng: np.random.Generator) -> torch.Tensor:
    """One of :data:`EDITS` applied to :math:`(3, H, W)` in [-1, 1], as a photo editor does it."""
    pil = to_pil(image)
    w, h = pil.size
    if kind == "crop":
        keep = rng.uniform(0.6, 0.8)
        cw, ch = int(w * keep), int(h * keep)
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        pil = pil.crop((x, y, x + cw, y + ch))
    elif kind == "rotate":
        pil = pil.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC)
    elif kind == "grey":
        pil = pil.convert("L")
    elif kind == "blur":
        pil = pil.filter(ImageFilter.GaussianBlur(rng.uniform(1.5, 3.0)))
    elif kind == "jpeg20":
        buffer = io.BytesIO()
        pil.save(buffer, format="JPEG", quality=20)
        pil = Image.open(io.BytesIO(buffer.getvalue()))
    elif kind == "third":
        pil = pil.resize((max(8, w // 3), max(8, h // 3)), Image.Resampling.BICUBIC)
    elif kind == "light":
        pil = ImageEnhance.Contrast(ImageEnhance.Brightness(pil).enhance(rng.uniform(0.7, 1.3))).enhance(rng.uniform(0.7, 1.3))
    else:
        raise ValueError(f"unknown edit {kind!r}; the edits are {', '.join(EDITS)}")
    return _to_tensor(pil)


@dataclass(frozen=True)
class NearDuplicates:
    """Edited copies of held-out photos and the originals they are searched among.

    Attributes:
        queries: the edited copies.
        truth: for each query, the index of its original in ``base``.
        base: every sample photo's original.
    """

    queries: list[torch.Tensor]
    truth: np.ndarray
    base: list[torch.Tensor]


def near_duplicates(held_out: list[Path], every_photo: list[Path], side: int, seed: int) -> NearDuplicates:
    """Each of ``held_out`` under every edit, and the originals of ``every_photo`` (which holds them)."""
    rng = np.random.default_rng(seed)
    base = [load_image(p, max_side=side) for p in every_photo]
    queries, truth = [], []
    for path in held_out:
        original = every_photo.index(path)
        for kind in EDITS:
            queries.append(edit(base[original], kind, rng))
            truth.append(original)
    return NearDuplicates(queries, np.array(truth), base)


# -- the methods that are not encoders --------------------------------------------------------------
class Sift:
    """OpenCV's SIFT keypoints and descriptors on the grey image (``opencv-python-headless``,
    a bench dependency)."""

    def __init__(self) -> None:
        import cv2

        self._cv2, self._sift = cv2, cv2.SIFT_create()

    def describe(self, image: torch.Tensor, max_side: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints in the original pixels :math:`(K, 2)` and unit descriptors :math:`(K, 128)`."""
        grey = np.asarray(to_pil(image).convert("L"))
        h, w = grey.shape
        factor = 1.0 if max_side is None or max(h, w) <= max_side else max_side / max(h, w)
        if factor != 1.0:
            grey = self._cv2.resize(grey, (round(w * factor), round(h * factor)), interpolation=self._cv2.INTER_AREA)
        points, desc = self._sift.detectAndCompute(grey, None)
        if desc is None:
            return np.zeros((0, 2)), np.zeros((0, 128), np.float32)
        xy = (np.array([p.pt for p in points]) + 0.5) / factor - 0.5
        return xy, np.ascontiguousarray(desc / np.linalg.norm(desc, axis=1, keepdims=True).clip(1e-12), np.float32)


class PerceptualHash:
    """The DCT perceptual hash photo-dedup tools use (imagehash's ``phash``): the grey image at
    32 x 32, its 8 x 8 lowest frequencies against their median, 64 bits as +-1 (so the dot
    product ranks by Hamming distance)."""

    def embed(self, images: list[torch.Tensor]) -> np.ndarray:
        rows = []
        for image in images:
            grey = np.asarray(to_pil(image).convert("L").resize((32, 32), Image.Resampling.LANCZOS), np.float64)
            low = dctn(grey, norm="ortho")[:8, :8]
            rows.append(np.where(low > np.median(low), 1.0, -1.0).ravel())
        return np.array(rows, np.float32)


@dataclass(frozen=True)
class Matcher:
    """An encoder matched with options of ``featkit match`` (``--scales``, ``--keypoints``);
    it takes part in matching only."""

    model: AutoEncoder
    scales: int = 1
    keypoints: str = "dense"


@dataclass(frozen=True)
class Reranked:
    """A model searched through ``featkit search --rerank depth`` (near-duplicates only): the
    model's spec, since search runs on files as a user's would."""

    spec: str
    depth: int


Method = AutoEncoder | Matcher | Reranked | Sift | PerceptualHash


def correspondences(
    method: AutoEncoder | Matcher | Sift, a: torch.Tensor, b: torch.Tensor, max_side: int | None,
    window: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Matches of A to B in the original pixels: ``(pa, pb)``, each :math:`(K, 2)`; ``window``
    as ``featkit.match`` takes it (encoders only)."""
    if isinstance(method, Sift):
        (xy_a, da), (xy_b, db) = method.describe(a, max_side), method.describe(b, max_side)
        ia, ib, _ = mutual_matches(da, db, RATIO)
        return xy_a[ia], xy_b[ib]
    matcher = method if isinstance(method, Matcher) else Matcher(method)
    found = featkit.match(a, b, matcher.model, ratio=RATIO, ransac="none", max_side=max_side, window=window,
                          scales=matcher.scales, keypoints=matcher.keypoints).matches  # fmt: skip
    return np.c_[found["xa"], found["ya"]], np.c_[found["xb"], found["yb"]]


def reranked_ranks(method: Reranked, dups: NearDuplicates) -> tuple[np.ndarray, float]:
    """Each query's rank of its original through ``featkit search --rerank``, end to end on
    files: the originals and the edited copies written as PNG files, ``featkit.extract`` and
    ``featkit.build_index`` over the originals, every copy searched. Also the seconds per query."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "gallery").mkdir()
        for i, image in enumerate(dups.base):
            to_pil(image).save(folder / "gallery" / f"{i:03d}.png")
        queries = [folder / f"query-{i:03d}.png" for i in range(len(dups.queries))]
        for path, image in zip(queries, dups.queries):
            to_pil(image).save(path)
        featkit.extract(folder / "gallery", method.spec, folder / "f.npy")
        featkit.build_index(folder / "f.npy", folder / "f.faiss")
        start = time.perf_counter()
        results = featkit.search(folder / "f.faiss", queries, k=len(dups.base), rerank=method.depth)
        seconds = (time.perf_counter() - start) / len(queries)
    ranks = [next(hit.rank for hit in r.neighbours if Path(hit.path).stem == f"{t:03d}") for r, t in zip(results, dups.truth)]
    return np.array(ranks), seconds


# -- scoring --------------------------------------------------------------------------------------------
def homography_errors(pa: np.ndarray, pb: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Distance of each B point from A's point mapped by the true homography, in B's pixels."""
    return np.nan_to_num(np.linalg.norm(_apply(h, pa) - pb, axis=1), nan=np.inf) if len(pa) else np.zeros(0)


def disparity_errors(pa: np.ndarray, pb: np.ndarray, disparity: np.ndarray) -> np.ndarray:
    """Distance of each right-image point from its true position ``(xa - d, ya)``; matches
    whose left point has no known disparity are left out."""
    if len(pa) == 0:
        return np.zeros(0)
    rows = np.clip(np.round(pa[:, 1]).astype(int), 0, disparity.shape[0] - 1)
    cols = np.clip(np.round(pa[:, 0]).astype(int), 0, disparity.shape[1] - 1)
    d = disparity[rows, cols]
    known = np.isfinite(d)
    return np.hypot(pb[known, 0] - (pa[known, 0] - d[known]), pb[known, 1] - pa[known, 1])


def match_scores(errors: list[np.ndarray]) -> dict[str, float]:
    """Over pairs: the mean share of matches within each threshold (0 for a pair without
    matches) and the mean number within :data:`CORRECT_PX` (``correct``)."""
    shares = {f"mma{t}": float(np.mean([np.mean(e <= t) if len(e) else 0.0 for e in errors])) for t in THRESHOLDS}
    return {**shares, "correct": float(np.mean([np.sum(e <= CORRECT_PX) for e in errors]))}


def search_scores(queries: np.ndarray, base: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """R@1 and mAP of each query's one original among ``base`` by cosine similarity (with one
    relevant image, AP is the reciprocal of its rank; images tied with it share their ranks)."""
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)  # noqa: E731
    sims = unit(queries.astype(np.float64)) @ unit(base.astype(np.float64)).T
    own = sims[np.arange(len(truth)), truth]
    ties = (sims == own[:, None]).sum(axis=1) - 1  # 64-bit hashes tie often: they share the ranks
    return rank_scores(1 + (sims > own[:, None]).sum(axis=1) + ties / 2)


def rank_scores(rank: np.ndarray) -> dict[str, float]:
    """R@1 and mAP from each query's rank of its one relevant image (1: first)."""
    return {"r1": float(np.mean(rank == 1)), "map": float(np.mean(1.0 / rank))}
