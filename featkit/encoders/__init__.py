"""Autoencoders whose hidden layers are featkit's features."""

from featkit.encoders import cae, daisy, pixels, timm_backbone  # noqa: F401  (registers the built-ins)
from featkit.encoders.base import AutoEncoder, FeatureInfo
from featkit.encoders.cae import ConvAutoEncoder
from featkit.encoders.registry import ENCODERS, create_encoder, list_encoders, register_encoder
from featkit.encoders.timm_backbone import TimmAutoEncoder

__all__ = [
    "ENCODERS",
    "AutoEncoder",
    "ConvAutoEncoder",
    "FeatureInfo",
    "TimmAutoEncoder",
    "create_encoder",
    "list_encoders",
    "register_encoder",
]
