"""featkit: learn image features with frequency-aware convolutional autoencoders.

Public verbs (the CLI calls the same functions)::

    loss = featkit.create_loss("pl+sfl")                      # eq. 7 of the paper
    model = featkit.create_encoder("paper-cae")                # Table 1
    run = featkit.train(featkit.TrainConfig(data="photos/"))  # featkit train
    featkit.extract("photos/", run, "feats.npy")              # featkit extract
    featkit.build_index("feats.npy", "feats.faiss")           # featkit index
    featkit.search("feats.faiss", ["query.jpg"], k=10)        # featkit search
    featkit.cluster("feats.npy", 8)                           # featkit cluster
    featkit.match("a.jpg", "b.jpg", run)                      # featkit match
    featkit.write_shards("photos/", "shards/")                # featkit shards
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: Public name -> the module defining it. Imported on first use, so ``import featkit`` (and
#: ``featkit --help``) does not load torch until a verb that needs it is called.
_EXPORTS = {
    "FeatkitError": "featkit.errors",
    "TrainConfig": "featkit.training",
    "build_index": "featkit.retrieval",
    "cluster": "featkit.clustering",
    "create_encoder": "featkit.encoders",
    "create_loss": "featkit.losses",
    "evaluate_retrieval": "featkit.evaluate",
    "expand_shards": "featkit.shards",
    "extract": "featkit.extraction",
    "iter_shard_images": "featkit.shards",
    "list_encoders": "featkit.encoders",
    "list_losses": "featkit.losses",
    "load_features": "featkit.extraction",
    "load_index": "featkit.retrieval",
    "load_model": "featkit.checkpoint",
    "match": "featkit.matching",
    "merge_features": "featkit.extraction",
    "register_encoder": "featkit.encoders",
    "register_loss": "featkit.losses",
    "search": "featkit.retrieval",
    "train": "featkit.training",
    "write_shards": "featkit.shards",
}

if TYPE_CHECKING:
    from featkit.checkpoint import load_model
    from featkit.clustering import cluster
    from featkit.encoders import create_encoder, list_encoders, register_encoder
    from featkit.errors import FeatkitError
    from featkit.evaluate import evaluate_retrieval
    from featkit.extraction import extract, load_features, merge_features
    from featkit.losses import create_loss, list_losses, register_loss
    from featkit.matching import match
    from featkit.retrieval import build_index, load_index, search
    from featkit.shards import expand_shards, iter_shard_images, write_shards
    from featkit.training import TrainConfig, train


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'featkit' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = ["__version__", *_EXPORTS]
