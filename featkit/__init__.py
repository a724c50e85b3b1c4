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

from typing import TYPE_CHECKING

from featkit import _moved
from featkit._lazy import lazy_exports
from featkit.version import __version__


#: Public name -> the module defining it. Imported on first use, so ``import featkit`` (and
#: ``featkit --help``) does not load torch until a verb that needs it is called.
_EXPORTS = {
    "FeatkitError": "featkit.errors",
    "TrainConfig": "featkit.training.config",
    "build_index": "featkit.tasks.index",
    "cluster": "featkit.tasks.clustering",
    "create_encoder": "featkit.encoders",
    "create_loss": "featkit.losses",
    "evaluate_retrieval": "featkit.tasks.evaluation",
    "expand_shards": "featkit.data.shards",
    "extract": "featkit.features.extraction",
    "iter_shard_images": "featkit.data.shards",
    "list_encoders": "featkit.encoders",
    "list_losses": "featkit.losses",
    "load_features": "featkit.features.files",
    "load_index": "featkit.tasks.index",
    "load_model": "featkit.runs.models",
    "match": "featkit.tasks.matching",
    "merge_features": "featkit.features.merging",
    "register_encoder": "featkit.encoders",
    "register_loss": "featkit.losses",
    "search": "featkit.tasks.search",
    "train": "featkit.training.loop",
    "write_shards": "featkit.data.shard_writer",
}

if TYPE_CHECKING:
    from featkit.data.shard_writer import write_shards
    from featkit.data.shards import expand_shards, iter_shard_images
    from featkit.encoders import create_encoder, list_encoders, register_encoder
    from featkit.errors import FeatkitError
    from featkit.features.extraction import extract
    from featkit.features.files import load_features
    from featkit.features.merging import merge_features
    from featkit.losses import create_loss, list_losses, register_loss
    from featkit.runs.models import load_model
    from featkit.tasks.clustering import cluster
    from featkit.tasks.evaluation import evaluate_retrieval
    from featkit.tasks.index import build_index, load_index
    from featkit.tasks.matching import match
    from featkit.tasks.search import search
    from featkit.training.config import TrainConfig
    from featkit.training.loop import train


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


_moved.install()

__all__ = ["__version__", *_EXPORTS]
