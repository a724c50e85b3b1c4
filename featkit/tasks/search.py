"""Querying an index with images or feature rows: :func:`search` extracts image queries with the
model the index was built from and returns their nearest neighbours by path; the first hits of
image queries are re-ranked by spatial verification (:mod:`featkit.tasks.reranking`) unless
told not to."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from featkit.data.collections import open_collection, ref_for_name
from featkit.data.images import ImageRef, load_image
from featkit.encoders import AutoEncoder
from featkit.data.loading import image_batches
from featkit.errors import FeatkitError, FeatkitWarning
from featkit.features.encoding import encode_images
from featkit.features.files import load_features
from featkit.runs.models import load_encoder
from featkit.tasks.index import FeatureIndex, Neighbour, load_index
from featkit.tasks.reranking import DEFAULT_RERANK, RERANK_SIDE, HitDescriptions, rerank as verified

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
) -> tuple[list[str], np.ndarray, int]:  # fmt: skip
    """Names and vectors of the queries: rows of ``.npy`` files, then images run through the
    model the index was built with; also how many of them (the last ones) are images."""
    if isinstance(queries, np.ndarray):
        return [f"vector[{i}]" for i in range(len(queries))], queries, 0
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
    return names, np.concatenate(blocks), len(images)


def search(
    index: FeatureIndex | str | os.PathLike,
    queries: Sequence[str | os.PathLike] | np.ndarray,
    k: int = 10,
    *,
    rerank: int | None = None,
    device: str = "cpu",
    on_progress: Callable[[int, int], None] | None = None,
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
            hits with more inliers first; 0 ranks by distance alone. ``None`` (default):
            :data:`~featkit.tasks.reranking.DEFAULT_RERANK` hits for image queries against an
            index built from images, none for vector queries. Costs about ``rerank``
            descriptions of a :data:`~featkit.tasks.reranking.RERANK_SIDE` px image per query
            (hits shared by queries are described once).
        device: where to run the model for image queries.
        on_progress: called as ``on_progress(done, total)`` after each verified query.

    Raises:
        ShapeError: query vectors of another dimension.
        FeatkitError: queries from another model, an unreadable query image, or ``rerank``
            with vector queries or an index without image paths.

    Warns:
        FeatkitWarning: once, naming the hits that could not be read for verification (they
        count as 0 inliers).
    """
    if rerank is not None and rerank < 0:
        raise FeatkitError(f"rerank must be 0 or more hits, got {rerank}")
    index = load_index(index) if not isinstance(index, FeatureIndex) else index
    features = index.manifest.get("features")
    vector_queries = isinstance(queries, np.ndarray) or any(Path(q).suffix == ".npy" for q in queries)
    if rerank and (features is None or vector_queries):
        raise FeatkitError("--rerank verifies images against images: query with image files and an index built "
                           "from images, not vectors")  # fmt: skip
    depth = (DEFAULT_RERANK if features is not None else 0) if rerank is None else rerank
    model_of_index = functools.cache(lambda: _index_model(features, device))
    names, vectors, n_images = _query_vectors(queries, features, model_of_index)
    distances, ids = index.search_vectors(vectors, max(k, depth))
    items = features["items"] if features else None
    descriptions = HitDescriptions(model_of_index()) if depth and n_images else None
    first_image = len(names) - n_images
    results = []
    for q, (name, drow, irow) in enumerate(zip(names, distances, ids)):
        found = [(float(d), int(i)) for d, i in zip(drow, irow) if i >= 0]
        hits = [Neighbour(rank, i, items[i]["path"] if items else None, d) for rank, (d, i) in enumerate(found, start=1)]
        if descriptions is not None and q >= first_image:
            query = load_image(ref_for_name(name), max_side=RERANK_SIDE)
            hits = verified(model_of_index(), query, hits, depth, descriptions)
            if on_progress is not None:
                on_progress(q - first_image + 1, n_images)
        results.append(QueryResult(name, hits[:k]))
    if descriptions is not None and descriptions.unreadable:
        reason, n = next(iter(descriptions.unreadable.values())), len(descriptions.unreadable)
        which = f"a hit ({reason}); it counts" if n == 1 else f"{n} hits (e.g. {reason}); they count"
        warnings.warn(FeatkitWarning(f"could not verify {which} as 0 inliers"), stacklevel=2)
    return results
