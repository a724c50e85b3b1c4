"""Grouping extracted features with scikit-learn, scored against folder labels when present.

:func:`cluster` runs k-means, agglomerative (Ward) clustering or DBSCAN, optionally after PCA,
and reports the silhouette score. When the images sit in class subfolders (the ImageFolder
convention, see :func:`featkit.features.files.class_labels`) it also reports normalised mutual
information (NMI) and the adjusted Rand index (ARI) against those classes.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featkit.choices import CLUSTER_METHODS, METRICS
from featkit.errors import FeatkitError, ShapeError
from featkit.features.files import class_labels, load_features
from featkit.io import atomic_path, ensure_new
from featkit.tasks.index import prepare_vectors

__all__ = ["AGGLOMERATIVE_LIMIT", "CLUSTER_METHODS", "ClusterResult", "cluster", "clusters_path"]

#: Agglomerative clustering needs O(N^2) memory; larger collections are refused.
AGGLOMERATIVE_LIMIT = 20_000
#: Silhouette is O(N^2); it is estimated on a sample of this many points.
SILHOUETTE_SAMPLE = 10_000


@dataclass(frozen=True)
class ClusterResult:
    """Cluster assignment and its scores.

    Attributes:
        labels: :math:`(N,)` cluster of each row; ``-1`` is DBSCAN noise.
        n_clusters: clusters found (noise excluded).
        silhouette: in [-1, 1], higher is better; ``None`` when undefined (fewer than 2
            clusters, or every point its own cluster).
        nmi: NMI against the folder classes, or ``None`` without classes.
        ari: ARI against the folder classes, or ``None``.
        csv_path: where the labels were written, or ``None``.
    """

    labels: np.ndarray
    n_clusters: int
    silhouette: float | None
    nmi: float | None
    ari: float | None
    csv_path: Path | None


def clusters_path(features: str | os.PathLike) -> Path:
    """``feats.npy`` -> ``feats.clusters.csv`` (beside the manifest)."""
    return Path(features).with_suffix(".clusters.csv")


def _dbscan_eps(x: np.ndarray, min_samples: int) -> float:
    """Median distance to the ``min_samples``-th neighbour: a density scale of the data."""
    from sklearn.neighbors import NearestNeighbors

    k = min(min_samples, len(x) - 1)
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    return float(np.median(distances[:, k])) or 1e-6


def cluster(
    features: np.ndarray | str | os.PathLike,
    k: int | None = None,
    *,
    method: str = "kmeans",
    pca: int | None = None,
    metric: str = "cosine",
    eps: float | None = None,
    min_samples: int = 5,
    seed: int = 0,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> ClusterResult:
    """Cluster :math:`(N, D)` features.

    Args:
        features: an array, or a ``.npy`` from :func:`featkit.features.extraction.extract` (its manifest
            supplies image paths and folder classes).
        k: number of clusters (k-means and agglomerative).
        method: ``kmeans``, ``agglomerative`` (Ward) or ``dbscan``.
        pca: reduce to this many dimensions first.
        metric: ``cosine`` L2-normalises rows first; ``l2`` uses them as they are.
        eps: DBSCAN neighbourhood radius (default: median distance to the ``min_samples``-th
            neighbour).
        min_samples: DBSCAN core-point size.
        seed: random state of k-means, PCA and the silhouette sample.
        out: CSV of labels (``path,cluster[,class]``); default :func:`clusters_path` of a
            features file, nothing for an array.
        overwrite: replace an existing CSV.

    Raises:
        ShapeError: NaN or infinite rows, or features that are not 2-D.
        FeatkitError: a bad method, k, PCA size, or too many points for agglomerative.
    """
    from sklearn.cluster import DBSCAN, AgglomerativeClustering, KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_score

    if method not in CLUSTER_METHODS:
        raise FeatkitError(f"unknown clustering method '{method}'. Expected one of: {', '.join(CLUSTER_METHODS)}")
    if metric not in METRICS:
        raise FeatkitError(f"unknown metric '{metric}'. Expected one of: {', '.join(METRICS)}")
    manifest = None
    if isinstance(features, (str, os.PathLike)):
        data, manifest = load_features(features, mmap=False)
        if manifest is not None and manifest.get("dense"):
            raise FeatkitError(f"{features} holds dense feature maps (pool none); cluster pooled features")
        out = clusters_path(features) if out is None else out
    else:
        data = features
    x = prepare_vectors(data, metric)
    n, dim = x.shape
    if method != "dbscan":
        if k is None:
            raise FeatkitError(f"{method} needs the number of clusters k (-k)")
        if not 2 <= k <= n:
            raise FeatkitError(f"cannot make {k} clusters from {n} samples: k must be between 2 and {n}")
    if method == "agglomerative" and n > AGGLOMERATIVE_LIMIT:
        raise FeatkitError(
            f"agglomerative clustering needs O(N^2) memory; {n} samples is over {AGGLOMERATIVE_LIMIT}, use kmeans"
        )
    if out is not None:
        ensure_new(out, overwrite=overwrite)
    if pca is not None:
        if not 1 <= pca <= min(n, dim):
            raise FeatkitError(f"PCA to {pca} dimensions needs 1 <= pca <= min(samples, dim) = {min(n, dim)}")
        x = PCA(pca, random_state=seed).fit_transform(x).astype(np.float32)

    if method == "kmeans":
        labels = KMeans(k, n_init=4, random_state=seed).fit_predict(x)
    elif method == "agglomerative":
        labels = AgglomerativeClustering(k, linkage="ward").fit_predict(x)
    else:
        if n < 2:
            raise ShapeError(f"DBSCAN needs at least 2 samples, got {n}")
        radius = eps if eps is not None else _dbscan_eps(x, min_samples)
        labels = DBSCAN(eps=radius, min_samples=min_samples).fit_predict(x)

    clustered = labels >= 0
    n_clusters = len(set(labels[clustered].tolist()))
    silhouette = None
    if 2 <= n_clusters < clustered.sum():
        size = min(SILHOUETTE_SAMPLE, int(clustered.sum()))
        silhouette = float(silhouette_score(x[clustered], labels[clustered], sample_size=size, random_state=seed))
    classes = class_labels(manifest) if manifest is not None else None
    nmi = ari = None
    if classes is not None:
        nmi = float(normalized_mutual_info_score(classes[0], labels))
        ari = float(adjusted_rand_score(classes[0], labels))
    csv_path = None
    if out is not None:
        csv_path = _write_labels(Path(out), labels, manifest, classes)
    return ClusterResult(labels, n_clusters, silhouette, nmi, ari, csv_path)


def _write_labels(
    out: Path, labels: np.ndarray, manifest: dict[str, Any] | None, classes: tuple[np.ndarray, list[str]] | None
) -> Path:
    with atomic_path(out) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", "cluster"] + (["class"] if classes else []))
        for i, label in enumerate(labels.tolist()):
            path = manifest["items"][i]["path"] if manifest else str(i)
            writer.writerow([path, label] + ([classes[1][classes[0][i]]] if classes else []))
    return out
