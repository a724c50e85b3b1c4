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
"""

from featkit.encoders import create_encoder, list_encoders, register_encoder
from featkit.errors import FeatkitError
from featkit.losses import create_loss, list_losses, register_loss
from featkit.checkpoint import load_model
from featkit.training import TrainConfig, train
from featkit.matching import match
from featkit.clustering import cluster
from featkit.evaluate import evaluate_retrieval
from featkit.extraction import extract, load_features, merge_features
from featkit.retrieval import build_index, load_index, search

__version__ = "0.1.0"

__all__ = [
    "FeatkitError",
    "TrainConfig",
    "__version__",
    "build_index",
    "cluster",
    "create_encoder",
    "create_loss",
    "evaluate_retrieval",
    "extract",
    "list_encoders",
    "list_losses",
    "load_features",
    "load_index",
    "load_model",
    "match",
    "merge_features",
    "register_encoder",
    "register_loss",
    "search",
    "train",
]
