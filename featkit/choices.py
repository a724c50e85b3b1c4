"""The named choices of featkit's settings, in a module that imports nothing heavy.

The command line lists these in ``--help`` without loading torch, faiss or scikit-learn
(``featkit --help`` stays instant); the modules that implement each choice import it from
here, so every name is written once.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLUSTER_METHODS", "DEFAULT_PRESET", "INDEX_KINDS", "METRICS", "POOLS", "PRESETS", "KEYPOINT_MODES", "RANSAC_MODEL_NAMES"]

#: Training presets (see :mod:`featkit.training`): the settings each fills in when a
#: :class:`~featkit.training.TrainConfig` leaves them as ``None``.
PRESETS: dict[str, dict[str, Any]] = {
    "standard": dict(
        epochs=38, optimizer="adam", lr=6e-3, momentum=0.9, weight_decay=0.0, schedule="cosine", warmup=0,
        batch_size=4, crop=256, crops_per_image=1, epoch_windows=128, contrast=0.1,
    ),
    "paper": dict(
        epochs=2000, optimizer="sgd", lr=0.02, momentum=0.5, weight_decay=0.0, schedule="constant", warmup=0,
        batch_size=0, crop=0, crops_per_image=1, epoch_windows=0, contrast=0.0,
    ),
    "fast": dict(
        epochs=100, optimizer="adam", lr=6e-3, momentum=0.9, weight_decay=0.0, schedule="cosine", warmup=0,
        batch_size=0, crop=0, crops_per_image=1, epoch_windows=0, contrast=0.0,
    ),
    "quality": dict(
        epochs=200, optimizer="adam", lr=6e-3, momentum=0.9, weight_decay=0.0, schedule="cosine", warmup=0,
        batch_size=4, crop=0, crops_per_image=1, epoch_windows=0, contrast=0.0,
    ),
}  # fmt: skip
#: The preset ``featkit train`` uses when none is named.
DEFAULT_PRESET = "standard"

#: Pooling of a hidden layer in :func:`featkit.extract`; ``none`` keeps the dense maps.
POOLS = ("avg", "max", "gem", "none")

#: faiss index kinds of :func:`featkit.build_index`; ``auto`` picks by collection size.
INDEX_KINDS = ("auto", "flat", "ivf", "hnsw", "ivfpq")

#: Distances between feature vectors (``cosine``: rows L2-normalised first).
METRICS = ("cosine", "l2")

#: Methods of :func:`featkit.cluster`.
CLUSTER_METHODS = ("kmeans", "agglomerative", "dbscan")

#: Where :func:`featkit.match` describes an image: every informative cell of the layer's grid
#: (``dense``), or at blobs of the normalised LoG, each at its scale and orientation (``log``,
#: :mod:`featkit.tasks.keypoints`), also from an octave at twice the resolution (``log2x``).
KEYPOINT_MODES = ("dense", "log", "log2x")

#: Geometric verification of :func:`featkit.match`; ``none`` keeps every match.
RANSAC_MODEL_NAMES = ("homography", "affine", "fundamental", "none")
