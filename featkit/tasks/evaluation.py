"""How well features retrieve images of the same class (labels from class subfolders).

Every image queries all the others (leave-one-out, exact ranking). Reported, averaged over the
queries whose class has at least one other member:

- ``mAP``: mean average precision over the full ranking;
- ``recall@k``: the share of queries with at least one image of their class among the ``k``
  nearest (the metric-learning convention; recall@1 equals 1-nearest-neighbour accuracy).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from featkit.choices import METRICS
from featkit.errors import FeatkitError
from featkit.features.files import class_labels, load_features
from featkit.tasks.index import prepare_vectors

__all__ = ["evaluate_retrieval", "retrieval_scores"]

#: Queries ranked per step; memory is QUERY_BLOCK x N distances.
QUERY_BLOCK = 512


def retrieval_scores(
    features: np.ndarray, labels: np.ndarray, *, metric: str = "cosine", ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Any]:
    """Leave-one-out retrieval scores of :math:`(N, D)` features with :math:`(N,)` labels.

    Returns:
        ``{"mAP": ..., "recall@1": ..., ..., "queries": Q, "classes": C}``.

    Raises:
        FeatkitError: lengths that differ, an unknown metric, or no class with two members.

    Examples:
        >>> x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> retrieval_scores(x, np.array([0, 0, 1, 1]), ks=(1,))["mAP"]
        1.0
    """
    if metric not in METRICS:
        raise FeatkitError(f"unknown metric '{metric}'. Expected one of: {', '.join(METRICS)}")
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise FeatkitError(f"{len(features)} feature rows but {len(labels)} labels")
    x = prepare_vectors(features, metric)
    norms = (x * x).sum(axis=1)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    queries = np.flatnonzero(counts[inverse] > 1)
    if len(queries) == 0:
        raise FeatkitError("no class has two or more images, so retrieval cannot be scored")
    ap_sum, hits = 0.0, {k: 0 for k in ks}
    for start in range(0, len(queries), QUERY_BLOCK):
        q = queries[start : start + QUERY_BLOCK]
        dist = norms[q, None] - 2.0 * x[q] @ x.T + norms[None, :]
        dist[np.arange(len(q)), q] = np.inf  # leave the query out
        order = np.argsort(dist, axis=1, kind="stable")[:, :-1]
        relevant = labels[order] == labels[q, None]
        ranks = np.arange(1, relevant.shape[1] + 1)
        precision_at_hits = np.cumsum(relevant, axis=1) / ranks * relevant
        ap_sum += float((precision_at_hits.sum(axis=1) / relevant.sum(axis=1)).sum())
        for k in ks:
            hits[k] += int(relevant[:, :k].any(axis=1).sum())
    scores = {"mAP": ap_sum / len(queries)}
    scores.update({f"recall@{k}": hits[k] / len(queries) for k in ks})
    scores.update(queries=int(len(queries)), classes=int(len(np.unique(labels))))
    return scores


def evaluate_retrieval(
    features: str | os.PathLike, *, metric: str = "cosine", ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Any]:
    """Retrieval scores of a features file whose images sit in class subfolders.

    Raises:
        FeatkitError: no manifest, or images that are not in class subfolders.
    """
    data, manifest = load_features(features, mmap=False)
    if manifest is None:
        raise FeatkitError(f"{features}: no manifest beside it, so there are no class labels")
    if manifest.get("dense"):
        raise FeatkitError(f"{features} holds dense feature maps (pool none); evaluate pooled features")
    classes = class_labels(manifest)
    if classes is None:
        raise FeatkitError(
            f"{features}: the images are not all in class subfolders of {manifest['root']} "
            "(expected root/<class>/<image>, the ImageFolder layout)"
        )
    return retrieval_scores(data, classes[0], metric=metric, ks=ks)
