"""Spatial verification of search hits: the classic re-ranking of instance retrieval.

Pooled features find images that *look* alike; a near-duplicate or another photo of the same
object also shares geometry. :func:`rerank` matches a query image to each of its first hits at
sparse LoG keypoints (:func:`~featkit.tasks.keypoints.keypoint_descriptors`: each described at
its own scale and orientation, so crops, rotations and zooms keep their matches), fits a
homography with RANSAC (:func:`~featkit.tasks.matching.verify`) and moves the hits with more
inliers first. The query is described once; each hit once.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import replace

import torch

from featkit.data.collections import ref_for_name
from featkit.data.images import load_image
from featkit.encoders import AutoEncoder
from featkit.errors import FeatkitWarning, ImageError
from featkit.tasks.index import Neighbour
from featkit.tasks.keypoints import keypoint_descriptors
from featkit.tasks.matching import default_ransac_threshold, mutual_matches, verify

__all__ = ["RERANK_SIDE", "rerank"]

#: Longer side images are verified at (as ``featkit match`` matches by default).
RERANK_SIDE = 512
#: Lowe's ratio of the verifying matches, as ``featkit match``'s default.
RATIO = 0.8


def rerank(model: AutoEncoder, query: torch.Tensor, hits: Sequence[Neighbour], depth: int) -> list[Neighbour]:
    """Order the first ``depth`` hits by homography inliers with ``query``, most first (ties
    keep their order); the hits after them keep their places. Ranks are renumbered and each
    verified hit carries its ``inliers``.

    A hit whose image cannot be read (moved, deleted, no path) is verified as 0 inliers, with a
    :class:`~featkit.errors.FeatkitWarning` that names it.

    Args:
        model: the encoder of the index.
        query: :math:`(3, H, W)` in [-1, 1], at most :data:`RERANK_SIDE` on its longer side.
        hits: the query's hits, nearest first.
        depth: how many of them to verify.

    Returns:
        The hits in their new order.
    """
    threshold = default_ransac_threshold(model.layer_info(None).stride)
    desc_q, xy_q = keypoint_descriptors(model, query)
    counted = []
    for hit in hits[:depth]:
        try:
            if hit.path is None:
                raise ImageError("the index holds no path for it")
            image = load_image(ref_for_name(hit.path), max_side=RERANK_SIDE)
        except ImageError as exc:
            warnings.warn(FeatkitWarning(f"could not verify hit {hit.path or hit.id}: {exc}"), stacklevel=2)
            counted.append(replace(hit, inliers=0))
            continue
        desc_h, xy_h = keypoint_descriptors(model, image)
        ia, ib, _ = mutual_matches(desc_q, desc_h, RATIO)
        _, inliers = verify(xy_q[ia], xy_h[ib], "homography", threshold=threshold)
        counted.append(replace(hit, inliers=int(inliers.sum())))
    order = sorted(range(len(counted)), key=lambda i: -counted[i].inliers)  # sorted() is stable
    ranked = [counted[i] for i in order] + list(hits[depth:])
    return [replace(hit, rank=rank) for rank, hit in enumerate(ranked, start=1)]
