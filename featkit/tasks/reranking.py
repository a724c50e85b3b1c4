"""Spatial verification of search hits: the classic re-ranking of instance retrieval.

Pooled features find images that *look* alike; a near-duplicate or another photo of the same
object also shares geometry. :func:`rerank` matches a query image to each of its first hits at
sparse LoG keypoints (:func:`~featkit.tasks.keypoints.keypoint_descriptors`: each described at
its own scale and orientation, so crops, rotations and zooms keep their matches), fits a
homography with RANSAC (:func:`~featkit.tasks.matching.verify`) and moves the hits with more
inliers first. The query is described once; each hit once per :class:`HitDescriptions` (one
per search), so hits shared by many queries are read and described once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import torch

from featkit.data.collections import ref_for_name
from featkit.data.images import load_image
from featkit.encoders import AutoEncoder
from featkit.errors import ImageError
from featkit.tasks.index import Neighbour
from featkit.tasks.keypoints import keypoint_descriptors
from featkit.tasks.matching import default_ransac_threshold, mutual_matches, verify

__all__ = ["DEFAULT_RERANK", "RERANK_SIDE", "HitDescriptions", "rerank"]

#: Hits ``featkit search`` verifies per image query by default: near-duplicate R@1 0.84 -> 0.94
#: on bench/bench_features.py's held-out photos, for about 1 s per query on a 2-core CPU.
DEFAULT_RERANK = 5
#: Longer side images are verified at (as ``featkit match`` matches by default).
RERANK_SIDE = 512
#: Lowe's ratio of the verifying matches, as ``featkit match``'s default.
RATIO = 0.8
#: Hit descriptions a :class:`HitDescriptions` keeps (each about 0.5 MB at 512 px).
CACHED_HITS = 64


class HitDescriptions:
    """Keypoint descriptions of indexed images, each read at most :data:`RERANK_SIDE` px and
    described once while it stays among the :data:`CACHED_HITS` used last.

    Images that cannot be read are remembered in :attr:`unreadable` (name → the reason, which
    names it) so that a caller can report them once.
    """

    def __init__(self, model: AutoEncoder, capacity: int = CACHED_HITS) -> None:
        self.model = model
        self.capacity = capacity
        self.unreadable: dict[str, str] = {}
        self._described: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __call__(self, name: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``(descriptors, xy)`` of the image named ``name`` (a path or ``shard.tar:member``),
        or ``None`` when it cannot be read."""
        if name in self._described:
            self._described.move_to_end(name)
            return self._described[name]
        if name in self.unreadable:
            return None
        try:
            image = load_image(ref_for_name(name), max_side=RERANK_SIDE)
        except ImageError as exc:
            self.unreadable[name] = str(exc)
            return None
        self._described[name] = keypoint_descriptors(self.model, image)
        if len(self._described) > self.capacity:
            self._described.popitem(last=False)
        return self._described[name]


def rerank(
    model: AutoEncoder, query: torch.Tensor, hits: Sequence[Neighbour], depth: int,
    descriptions: HitDescriptions | None = None,
) -> list[Neighbour]:  # fmt: skip
    """Order the first ``depth`` hits by homography inliers with ``query``, most first (ties
    keep their order); the hits after them keep their places. Ranks are renumbered and each
    verified hit carries its ``inliers``.

    A hit whose image cannot be read (moved, deleted, no path) counts as 0 inliers; its name
    and the reason are left in ``descriptions.unreadable``.

    Args:
        model: the encoder of the index.
        query: :math:`(3, H, W)` in [-1, 1], at most :data:`RERANK_SIDE` on its longer side.
        hits: the query's hits, nearest first.
        depth: how many of them to verify.
        descriptions: the hits' descriptions, shared by the queries of one search (a fresh one
            when omitted).

    Returns:
        The hits in their new order.
    """
    descriptions = descriptions if descriptions is not None else HitDescriptions(model)
    threshold = default_ransac_threshold(model.layer_info(None).stride)
    desc_q, xy_q = keypoint_descriptors(model, query)
    counted = []
    for hit in hits[:depth]:
        if hit.path is None:
            descriptions.unreadable[f"row {hit.id}"] = f"row {hit.id} of the index has no path"
            described = None
        else:
            described = descriptions(hit.path)
        if described is None:
            counted.append(replace(hit, inliers=0))
            continue
        desc_h, xy_h = described
        ia, ib, _ = mutual_matches(desc_q, desc_h, RATIO)
        _, inliers = verify(xy_q[ia], xy_h[ib], "homography", threshold=threshold)
        counted.append(replace(hit, inliers=int(inliers.sum())))
    order = sorted(range(len(counted)), key=lambda i: -counted[i].inliers)  # sorted() is stable
    ranked = [counted[i] for i in order] + list(hits[depth:])
    return [replace(hit, rank=rank) for rank, hit in enumerate(ranked, start=1)]
