"""faiss indexes over extracted features: building, tuning and loading them (queries:
:mod:`featkit.tasks.search`).

:func:`build_index` picks an index for the collection size: exact (``flat``) below
:data:`EXACT_LIMIT` vectors, an inverted file (``ivf``) above. Approximate indexes are tuned at
build time: their search breadth (``nprobe`` for IVF, ``efSearch`` for HNSW) is raised until
recall@10 against exact search, measured on a sample of the collection (each point's own
match left out), reaches ``target_recall``; the estimate is kept in the manifest.

Vectors are compared in faiss with squared L2 distance; ``metric="cosine"`` L2-normalises them
first, so the ranking is by cosine similarity. Reported distances are ``1 - cos`` (cosine) or
the Euclidean distance (l2): smaller is nearer.

The index is written with ``faiss.write_index`` and its manifest beside it
(``feats.faiss`` -> ``feats.faiss.json``): index settings plus the features manifest, so
search results name image paths and image queries are extracted with the same model.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featkit.choices import INDEX_KINDS, METRICS
from featkit.errors import FeatkitError, ShapeError
from featkit.features.files import iter_feature_chunks, load_features
from featkit.io import atomic_path, ensure_new, read_json, write_json
from featkit.version import __version__

__all__ = [
    "CALIBRATION_QUERIES",
    "CHUNK_ROWS",
    "EXACT_LIMIT",
    "FeatureIndex",
    "HNSW_M",
    "IVFPQ_MIN",
    "Neighbour",
    "REFINE_FACTOR",
    "build_index",
    "choose_kind",
    "exact_knn",
    "index_manifest_path",
    "load_index",
    "prepare_vectors",
]


#: Collections smaller than this get an exact index.
EXACT_LIMIT = 100_000
#: Vectors added to an index per step.
CHUNK_ROWS = 65_536
#: Sample of the collection used to tune approximate indexes.
CALIBRATION_QUERIES = 500
#: HNSW graph degree.
HNSW_M = 32
#: ivfpq: fewest vectors to train on, and how many candidates per hit its 8-bit refinement re-ranks.
IVFPQ_MIN = 1000
REFINE_FACTOR = 16


def choose_kind(count: int) -> str:
    """The index kind ``kind="auto"`` picks for ``count`` vectors: ``flat`` (exact) below
    :data:`EXACT_LIMIT`, else ``ivf``."""
    return "flat" if count < EXACT_LIMIT else "ivf"


def index_manifest_path(index_path: str | os.PathLike) -> Path:
    """``feats.faiss`` -> ``feats.faiss.json``."""
    index_path = Path(index_path)
    return index_path.with_name(index_path.name + ".json")


def prepare_vectors(x: np.ndarray, metric: str) -> np.ndarray:
    """Float32, C-contiguous copy of :math:`(N, D)` vectors; rows L2-normalised for cosine.

    Raises:
        ShapeError: not 2-D, or holding NaN or infinite values (naming the first bad row).
    """
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    if x.ndim != 2:
        raise ShapeError(f"vectors must have shape (N, D), got {x.shape}")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ShapeError(f"{len(rows)} vector(s) hold NaN or infinite values (first: row {rows[0]})")
    if metric == "cosine":
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        np.divide(x, norms, out=x, where=norms > 0)
    return x


def _distances(squared: np.ndarray, metric: str) -> np.ndarray:
    squared = np.maximum(squared, 0.0)
    return squared / 2.0 if metric == "cosine" else np.sqrt(squared)


def _chunks(source: np.ndarray | Path) -> Iterator[np.ndarray]:
    if isinstance(source, Path):
        return iter_feature_chunks(source, CHUNK_ROWS)
    return (source[i : i + CHUNK_ROWS] for i in range(0, len(source), CHUNK_ROWS))


def exact_knn(
    queries: np.ndarray, database: np.ndarray | str | os.PathLike, k: int, metric: str = "cosine"
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours, streaming the database in blocks (a ``.npy`` path is read
    block by block, so memory stays small however large it is).

    Args:
        queries: :math:`(Q, D)`.
        database: :math:`(N, D)` array or a float32 ``.npy`` file.
        k: neighbours per query (at most N are returned).
        metric: ``cosine`` or ``l2``.

    Returns:
        ``(distances, ids)``, each :math:`(Q, \\min(k, N))`, nearest first.
    """
    import faiss

    queries = prepare_vectors(queries, metric)
    source = Path(database) if isinstance(database, (str, os.PathLike)) else database
    best_d = np.full((len(queries), 0), np.inf, dtype=np.float32)
    best_i = np.zeros((len(queries), 0), dtype=np.int64)
    start = 0
    for block in _chunks(source):
        block = prepare_vectors(block, metric)
        d, i = faiss.knn(queries, block, min(k, len(block)))
        best_d = np.concatenate([best_d, d], axis=1)
        best_i = np.concatenate([best_i, i + start], axis=1)
        order = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(best_d, order, 1), np.take_along_axis(best_i, order, 1)
        start += len(block)
    return _distances(best_d, metric), best_i


@dataclass(frozen=True)
class Neighbour:
    """One search hit: ``rank`` (1 = nearest), row ``id`` in the features, ``path`` of the
    image (``None`` for bare vectors), ``distance``, and ``inliers``: homography inliers with
    the query when the hit was verified (``featkit search --rerank``), else ``None``."""

    rank: int
    id: int
    path: str | None
    distance: float
    inliers: int | None = None


class FeatureIndex:
    """A faiss index with its manifest.

    Args:
        index: the faiss index (squared-L2 metric).
        manifest: ``{"index": settings, "features": features manifest or None}``.
    """

    def __init__(self, index: Any, manifest: dict[str, Any]) -> None:
        self.index = index
        self.manifest = manifest
        self._set_breadth(manifest["index"].get("breadth"))

    @property
    def metric(self) -> str:
        """``cosine`` or ``l2``."""
        return self.manifest["index"]["metric"]

    @property
    def dim(self) -> int:
        """Vector length D."""
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def _set_breadth(self, value: int | None) -> None:
        import faiss

        kind = self.manifest["index"]["kind"]
        name = {"ivf": "nprobe", "ivfpq": "nprobe", "hnsw": "efSearch"}.get(kind)
        if name and value:
            faiss.ParameterSpace().set_index_parameter(self.index, name, int(value))
        if kind == "ivfpq":
            faiss.ParameterSpace().set_index_parameter(self.index, "k_factor_rf", REFINE_FACTOR)

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Nearest ``k`` rows for each of :math:`(Q, D)` vectors.

        Returns:
            ``(distances, ids)``, each :math:`(Q, \\min(k, N))`; ids of ``-1`` mark slots an
            approximate index could not fill.

        Raises:
            ShapeError: vectors of another dimension, or NaN values.
        """
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ShapeError(f"query vectors have shape {vectors.shape} but the index holds vectors of dimension {self.dim}")
        if k < 1:
            raise FeatkitError(f"k must be >= 1, got {k}")
        d, i = self.index.search(prepare_vectors(vectors, self.metric), min(k, len(self)))
        return _distances(d, self.metric), i

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write the index and its manifest beside it, atomically."""
        import faiss

        path = ensure_new(path, overwrite=overwrite)
        with atomic_path(path) as tmp:
            faiss.write_index(self.index, str(tmp))
        write_json(index_manifest_path(path), self.manifest)
        return path


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f[f >= 0]) & set(t)) for f, t in zip(found, truth))
    return hits / truth.size


def _calibrate(
    index: Any, kind: str, source: np.ndarray | Path, sample: np.ndarray, metric: str, target: float
) -> tuple[int, float]:
    """Smallest search breadth whose recall@10 on ``sample`` (own match left out) reaches
    ``target``, or the one with the best recall if none does."""
    import faiss

    k = min(10, index.ntotal - 1)
    queries = prepare_vectors(sample, metric)
    _, truth = exact_knn(queries, source, k + 1, metric)
    truth = truth[:, 1:]  # drop the query itself (equal vectors can swap; negligible)
    if kind == "hnsw":
        name, values = "efSearch", [16, 32, 64, 128, 256, 512, 1024]
    else:
        nlist = faiss.extract_index_ivf(index).nlist
        steps = range(2 * int(math.log2(nlist)) + 3)  # half powers of two: 1, 2, 3, 4, 6, 8, 11, 16 ...
        name, values = "nprobe", sorted({min(round(2 ** (p / 2)), nlist) for p in steps})
    best = (values[-1], -1.0)
    space = faiss.ParameterSpace()
    for value in values:
        space.set_index_parameter(index, name, value)
        _, found = index.search(queries, k + 1)
        recall = _recall(found[:, 1:], truth)
        if recall >= target:
            return value, recall
        if recall > best[1] + 1e-3:
            best = (value, recall)
    return best


def _factory(kind: str, count: int, dim: int) -> tuple[str, int | None]:
    if kind == "flat":
        return "Flat", None
    if kind == "hnsw":
        return f"HNSW{HNSW_M}", None
    nlist = max(1, min(int(4 * math.sqrt(count)), count // 40))
    if kind == "ivf":
        return f"IVF{nlist},Flat", nlist
    if count < IVFPQ_MIN:
        raise FeatkitError(f"ivfpq needs at least {IVFPQ_MIN} vectors to train its codebooks, got {count}; use flat or ivf")
    if dim % 2:
        raise FeatkitError(f"ivfpq codes pairs of dimensions, so it needs an even dimension, got {dim}; use flat or ivf")
    return f"IVF{nlist},PQ{dim // 2}x4fs,Refine(SQ8)", nlist


def build_index(
    features: np.ndarray | str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    kind: str = "auto",
    metric: str = "cosine",
    target_recall: float = 0.95,
    seed: int = 0,
    overwrite: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> FeatureIndex:
    """Build a faiss index over features, streaming them in blocks.

    Args:
        features: :math:`(N, D)` array, or a ``.npy`` written by :func:`featkit.features.extraction.extract`
            (its manifest is kept so results name images).
        out: where to save the index (and ``<out>.json``); ``None`` keeps it in memory.
        kind: ``auto`` (:func:`choose_kind`), ``flat`` (exact), ``ivf``, ``hnsw`` or ``ivfpq``
            (compressed for large collections: 4-bit product-quantised codes of pairs of
            dimensions scanned with faiss fast-scan, hits re-ranked with 8-bit scalar-quantised
            vectors; 1.5 bytes per dimension instead of 4; needs an even D).
        metric: ``cosine`` or ``l2``.
        target_recall: recall@10 that approximate indexes are tuned to reach.
        seed: seed of the training and calibration samples.
        overwrite: replace an existing ``out``.
        on_progress: called as ``on_progress(added, total)`` while vectors are added.

    Raises:
        FeatkitError: unknown kind or metric, or dense (``pool="none"``) features.
        ShapeError: features that are not 2-D finite floats.
    """
    import faiss

    if kind not in INDEX_KINDS:
        raise FeatkitError(f"unknown index kind '{kind}'. Expected one of: {', '.join(INDEX_KINDS)}")
    if metric not in METRICS:
        raise FeatkitError(f"unknown metric '{metric}'. Expected one of: {', '.join(METRICS)}")
    if out is not None:
        ensure_new(out, overwrite=overwrite)
    if isinstance(features, (str, os.PathLike)):
        source: np.ndarray | Path = Path(features)
        data, manifest = load_features(source)
        if manifest is not None and manifest.get("dense"):
            raise FeatkitError(f"{source} holds dense feature maps (pool none); index pooled features (--pool avg)")
        if data.dtype != np.float32:
            source = np.asarray(data, dtype=np.float32)
    else:
        source = data = np.asarray(features)
        manifest = None
        if data.ndim != 2:
            raise ShapeError(f"features must have shape (N, D), got {data.shape}")
    count, dim = data.shape
    if count == 0:
        raise ShapeError("cannot index an empty collection")
    kind = choose_kind(count) if kind == "auto" else kind
    factory, nlist = _factory(kind, count, dim)
    index = faiss.index_factory(dim, factory, faiss.METRIC_L2)
    rng = np.random.default_rng(seed)
    if kind == "ivfpq":
        faiss.ParameterSpace().set_index_parameter(index, "k_factor_rf", REFINE_FACTOR)
    if not index.is_trained:
        train = np.sort(rng.choice(count, size=min(count, 40 * nlist), replace=False))  # faiss asks >= 39 per list
        index.train(prepare_vectors(data[train], metric))
    added = 0
    for block in _chunks(source):
        index.add(prepare_vectors(block, metric))
        added += len(block)
        if on_progress:
            on_progress(added, count)
    settings: dict[str, Any] = {"kind": kind, "factory": factory, "metric": metric, "dim": dim, "count": count}
    if kind in ("ivf", "ivfpq", "hnsw") and count > 1:
        sample = data[np.sort(rng.choice(count, size=min(count, CALIBRATION_QUERIES), replace=False))]
        breadth, recall = _calibrate(index, kind, source, sample, metric, target_recall)
        settings.update(nlist=nlist, breadth=breadth, recall_at_10=round(recall, 4), calibration_queries=len(sample))
    result = FeatureIndex(index, {"featkit_version": __version__, "index": settings, "features": manifest})
    if out is not None:
        result.save(out, overwrite=overwrite)
    return result


#: faiss starts every index file with a four-letter code beginning with "I" (IxF2 flat, IwFl IVF,
#: IHNf HNSW, IxRF refined, IxPT transformed, IBxF binary, ...).
_FAISS_MAGIC = b"I"
_NPY_MAGIC = b"\x93NUMPY"
_BUILD_HINT = "build one with `featkit index FEATURES.npy -o INDEX.faiss`"


def _is_image(path: Path) -> bool:
    """Whether Pillow recognises ``path`` from its header (nothing is decoded)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path):
                return True
    except Image.DecompressionBombError:
        return True
    except (OSError, ValueError):  # UnidentifiedImageError is an OSError
        return False


def _check_index_file(path: Path) -> None:
    """Check that ``path`` can be a faiss index, from its first bytes only.

    Raises:
        FeatkitError: one line saying what ``path`` is instead (missing, a folder, a features
            file, an image, something else) and how to get an index.
    """
    if path.is_dir():
        raise FeatkitError(f"{path} is a folder, not an index; {_BUILD_HINT}")
    if not path.is_file():
        raise FeatkitError(f"{path}: no such index file")
    with path.open("rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if head.startswith(_FAISS_MAGIC):
        return
    if head.startswith(_NPY_MAGIC):
        raise FeatkitError(
            f"{path} is a features file, not an index; build one with "
            f"`featkit index {path} -o {path.with_suffix('.faiss')}` and search that"
        )
    if _is_image(path):
        raise FeatkitError(f"{path} is an image, not an index: the index comes first (`featkit search INDEX.faiss QUERY...`)")
    raise FeatkitError(f"{path} is not a faiss index; {_BUILD_HINT}")


def load_index(path: str | os.PathLike) -> FeatureIndex:
    """Read an index written by :func:`build_index` and its manifest.

    Raises:
        FeatkitError: a missing, corrupt or mismatched index or manifest, or a file that is
            not an index at all (a features file, an image, ...).
    """
    import faiss

    path = Path(path)
    mpath = index_manifest_path(path)
    _check_index_file(path)
    if not mpath.is_file():
        raise FeatkitError(f"{path}: its manifest {mpath.name} is missing; rebuild it with `featkit index`")
    try:
        index = faiss.read_index(str(path))
        manifest = read_json(mpath)
        count = manifest["index"]["count"]
    except (RuntimeError, OSError, ValueError, KeyError, TypeError) as exc:
        raise FeatkitError(f"{path}: unreadable index or manifest ({str(exc).strip().splitlines()[0] if str(exc).strip() else exc})") from exc
    if index.ntotal != count:
        raise FeatkitError(f"{path} holds {index.ntotal} vectors but {mpath.name} describes {count}; rebuild the index")
    return FeatureIndex(index, manifest)
