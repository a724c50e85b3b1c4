"""Querying an index with images or feature rows: :func:`search` extracts image queries with the
model the index was built from and returns their nearest neighbours by path, optionally
re-ranked by spatial verification (:mod:`featkit.tasks.reranking`)."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featkit.data.collections import open_collection, ref_for_name
from featkit.data.images import ImageRef, load_image
from featkit.encoders import AutoEncoder
from featkit.data.loading import image_batches
from featkit.errors import FeatkitError
from featkit.features.encoding import encode_images
from featkit.features.files import load_features
from featkit.runs.models import load_encoder
from featkit.tasks.index import FeatureIndex, Neighbour, load_index
from featkit.tasks.reranking import RERANK_SIDE, rerank as verified

__all__ = ["QueryResult", "search"]


@dataclass(frozen=True)
class QueryResult:
    """The hits of one query (an image path, or ``file.npy[row]``)."""

    query: str
    neighbours: list[Neighbour]


_MATCHING = ("fingerprint", "layer", "features", "window", "whitened", "pool", "grid")


def _index_model(features: dict[str, Any], device: str) -> AutoEncoder:
    """The model an index was built with, checked to be the same weights.

    Raises:
        FeatkitError: its weights changed since.
    """
    model, info = load_encoder(features["model"], device)
    if info["fingerprint"] != features["fingerprint"]:
        raise FeatkitError(
            f"model {features['model']} is not the one the index was built with (its weights changed); "
            "re-extract and re-index, or query with vectors"
        )
    return model


def _query_vectors(
    queries: Sequence[str | os.PathLike] | np.ndarray, features: dict[str, Any] | None,
    model_of_index: Callable[[], AutoEncoder],
) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """Names and vectors of the queries: rows of ``.npy`` files, or images run through the
    model the index was built with."""
    if isinstance(queries, np.ndarray):
        return [f"vector[{i}]" for i in range(len(queries))], queries
    names: list[str] = []
    blocks: list[np.ndarray] = []
    images: list[ImageRef] = []
    for query in queries:
        if Path(query).suffix == ".npy":
            query = Path(query)
            vectors, manifest = load_features(query, mmap=False)
            if manifest is not None and features is not None:
                differ = [k for k in _MATCHING if manifest.get(k) != features.get(k)]
                if differ:
                    raise FeatkitError(
                        f"{query} was extracted with model {manifest.get('model')} (layer {manifest.get('layer')}, "
                        f"pool {manifest.get('pool')}) but the index with {features.get('model')} (layer "
                        f"{features.get('layer')}, pool {features.get('pool')}): they differ in {', '.join(differ)}"
                    )
            paths = [item["path"] for item in manifest["items"]] if manifest else None
            names += paths or [f"{query.name}[{i}]" for i in range(len(vectors))]
            blocks.append(np.asarray(vectors))
        else:
            images += open_collection(query).refs
    if images:
        if features is None:
            raise FeatkitError("this index was built from bare vectors, so image queries cannot be encoded; query with a .npy of vectors")
        model = model_of_index()
        vectors = []
        for batch in image_batches(images, batch_size=8, max_side=features.get("max_side")):
            for item in batch:
                if item.image is None:
                    raise FeatkitError(f"query {item.path}: {item.reason}")
            vectors += encode_images(model, [item.image for item in batch], features["layer"], features["pool"],
                                     features["grid"], raw=features.get("features", "activations") == "activations",
                                     window=features.get("window"), whiten=features.get("whitened", False))  # fmt: skip
            names += [str(item.path) for item in batch]
        blocks.append(np.stack(vectors))
    if not names:
        raise FeatkitError("no queries: pass image files or folders, or a .npy of vectors")
    return names, np.concatenate(blocks)


def search(
    index: FeatureIndex | str | os.PathLike,
    queries: Sequence[str | os.PathLike] | np.ndarray,
    k: int = 10,
    *,
    rerank: int = 0,
    device: str = "cpu",
) -> list[QueryResult]:
    """The ``k`` nearest images of each query.

    Args:
        index: a :class:`FeatureIndex` or the path of one saved by :func:`build_index`.
        queries: image files, folders, .txt lists or tar shards (encoded with the index's model, layer and pooling),
            ``.npy`` files of vectors (checked against the index's model when a manifest sits
            beside them), or an :math:`(Q, D)` array.
        k: hits per query; a larger k than the collection returns the whole collection.
        rerank: verify the first ``rerank`` hits of each image query by matching it to them
            at LoG keypoints and fitting a homography (:func:`featkit.tasks.reranking.rerank`),
            hits with more inliers first; 0 (default) ranks by distance alone. Costs about
            ``rerank`` descriptions of a :data:`~featkit.tasks.reranking.RERANK_SIDE` px image
            per query.
        device: where to run the model for image queries.

    Raises:
        ShapeError: query vectors of another dimension.
        FeatkitError: queries from another model, an unreadable query image, or ``rerank``
            with vector queries or an index without image paths.
    """
    if rerank < 0:
        raise FeatkitError(f"rerank must be 0 or more hits, got {rerank}")
    index = load_index(index) if not isinstance(index, FeatureIndex) else index
    features = index.manifest.get("features")
    if rerank and (features is None or isinstance(queries, np.ndarray) or any(Path(q).suffix == ".npy" for q in queries)):
        raise FeatkitError("--rerank verifies images against images: query with image files and an index built "
                           "from images, not vectors")  # fmt: skip
    model_of_index = functools.cache(lambda: _index_model(features, device))
    names, vectors = _query_vectors(queries, features, model_of_index)
    distances, ids = index.search_vectors(vectors, max(k, rerank))
    items = features["items"] if features else None
    results = []
    for name, drow, irow in zip(names, distances, ids):
        found = [(float(d), int(i)) for d, i in zip(drow, irow) if i >= 0]
        hits = [Neighbour(rank, i, items[i]["path"] if items else None, d) for rank, (d, i) in enumerate(found, start=1)]
        if rerank:
            query = load_image(ref_for_name(name), max_side=RERANK_SIDE)
            hits = verified(model_of_index(), query, hits, rerank)
        results.append(QueryResult(name, hits[:k]))
    return results
